import type { FakeAccount } from "./data.ts";

// The demo's amounts move a little on every read, so its dashboard shows lines rather than flat values.
// A fixed seed makes every run move the same way, which keeps demo screenshots and tests repeatable.
const SEED = 0x4d6f6e7a;

/** Moves live amounts by small whole-pence steps of a seeded random walk. */
export interface Drift {
  /** Moves the balance and today's spend of `account`. */
  balance(account: FakeAccount): void;
  /** Moves the balance of every live pot of `account`. */
  pots(account: FakeAccount): void;
}

/** A drift that repeats from run to run. */
export function createDrift(): Drift {
  const random = mulberry32(SEED);
  return {
    balance(account) {
      account.balance += Math.round((random() * 2 - 1) * 500);
      if (random() < 0.6) account.spendToday -= Math.floor(random() * 300);
      // Now and then a new day starts.
      if (random() < 0.02) account.spendToday = 0;
      account.spendToday = Math.min(0, account.spendToday);
    },
    pots(account) {
      for (const pot of account.pots) {
        if (!pot.deleted) pot.balance = Math.max(0, pot.balance + Math.round((random() * 2 - 1) * 200));
      }
    },
  };
}

/** A small seeded PRNG (mulberry32); `Math.random` cannot be seeded. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
