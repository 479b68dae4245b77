import type { Clock } from "../shared/clock.ts";
import type { FakeAccount } from "./data.ts";
import { merchant, type ShopKey } from "./merchants.ts";
import { mulberry32, objectId } from "./random.ts";
import { type FakeTransaction, insertTransaction, makeTransaction, rfc3339 } from "./transaction.ts";

// The demo's amounts move a little on every read, so its dashboard shows lines rather than flat values.
// A fixed seed makes every run move the same way, which keeps demo screenshots and tests repeatable.
const SEED = 0x4d6f6e7a;
// A separate stream for new transactions, so that adding them left the balances' walk as it was.
const TRANSACTION_SEED = 0x7478646d;
// At most one new transaction per account this often, and each read then has this chance of one.
const MIN_GAP_MS = 5 * 60_000;
const NEW_TRANSACTION_CHANCE = 0.3;
// The demo's card payments settle after this long, so the exporter's re-read of pending rows has work.
const SETTLE_AFTER_MS = 2 * 3_600_000;
const SHOPS: readonly ShopKey[] = ["pret", "tesco", "tfl", "greggs", "amazon", "cineworld", "coop"];

/** Moves live amounts by small whole-pence steps of a seeded random walk. */
export interface Drift {
  /** Moves the balance and today's spend of `account`. */
  balance(account: FakeAccount): void;
  /** Moves the balance of every live pot of `account`. */
  pots(account: FakeAccount): void;
  /**
   * Now and then (at most once per 5 minutes of the clock per account) adds a small pending card
   * payment to an open current account, taking it off the balance; settles its own after 2 hours.
   */
  transactions(account: FakeAccount): void;
}

/** A drift that repeats from run to run, timing new transactions by `clock`. */
export function createDrift(clock: Clock): Drift {
  const random = mulberry32(SEED);
  const next = mulberry32(TRANSACTION_SEED);
  const lastAdded = new Map<string, number>();
  let pending: FakeTransaction[] = [];
  let made = 0;
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
    transactions(account) {
      const now = clock.now();
      pending = pending.filter((t) => {
        if (now - Date.parse(t.created) < SETTLE_AFTER_MS) return true;
        t.settled = rfc3339(now);
        t.amount_is_pending = false;
        t.updated = t.settled;
        return false;
      });
      if (account.closed || !account.type.startsWith("uk_retail")) return;
      if (now - (lastAdded.get(account.id) ?? -Infinity) < MIN_GAP_MS || next() >= NEW_TRANSACTION_CHANCE) return;
      lastAdded.set(account.id, now);
      made += 1;
      const shop = merchant(SHOPS[Math.floor(next() * SHOPS.length)]);
      const amount = -(150 + Math.floor(next() * 1350));
      const transaction = makeTransaction(account.id, account.owners[0] ?? "", {
        id: objectId("tx", `drift|${account.id}|${made}`),
        created: rfc3339(now),
        amount,
        description: shop.name.toUpperCase(),
        category: shop.category,
        merchant: shop,
        scheme: "mastercard",
        settled: "",
      });
      insertTransaction(account.transactions, transaction);
      pending.push(transaction);
      account.balance += amount;
      account.spendToday += amount;
    },
  };
}
