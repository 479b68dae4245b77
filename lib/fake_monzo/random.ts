// Seeded randomness for the fake's made-up data: the same seed gives the same household every run,
// which keeps demo screenshots and tests repeatable. `Math.random` cannot be seeded.

/** A small seeded PRNG (mulberry32) returning numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A stable 32-bit hash of `text` (FNV-1a), to seed a PRNG or make up account numbers. */
export function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A Monzo-looking object id, e.g. `tx_00009…` with 22 characters after the prefix, derived from `seed`. */
export function objectId(prefix: string, seed: string): string {
  // Two 32-bit hashes, so that ten thousand ids (the import benchmark) do not collide.
  const first = mulberry32(hash(seed));
  const second = mulberry32(hash(`${seed}\u0000`));
  let tail = "";
  for (let i = 0; i < 17; i++) tail += BASE62[Math.floor((i < 9 ? first : second)() * 62)];
  return `${prefix}_00009${tail}`;
}
