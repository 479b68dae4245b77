/**
 * What the backfill reads: a narrow view of the store, so the generator is tested against plain
 * values and the store behind it can change without touching the generator.
 *
 * @module
 */
import type { StoredTransaction } from "../monzo/transaction.ts";
import { compareText } from "../shared/compare.ts";

/** One account as the backfill needs it; times are epoch ms, amounts minor units. */
export interface BackfillAccount {
  readonly accountId: string;
  /** The currency of its balance. */
  readonly currency: string;
  /** The oldest time its stored history covers: the counters count from 0 here. */
  readonly historyStart: number;
  /** When the store's live counters began: the backfill ends before it. */
  readonly countingStart: number;
  /** The balance of the last poll, and when it was read. */
  readonly balance: { readonly balanceMinor: number; readonly at: number };
}

/** The stored history, read as many times as the generator needs; never written. */
export interface BackfillSource {
  /** The accounts with a stored history. */
  accounts(): readonly BackfillAccount[];
  /** The account's stored transactions, oldest first by creation time (then id); each call reads them again. */
  transactions(accountId: string): AsyncIterable<StoredTransaction>;
}

/** A source over values in memory (tests, and anything already holding the history). */
export function memorySource(
  accounts: readonly BackfillAccount[],
  transactions: readonly StoredTransaction[],
): BackfillSource {
  const sorted = [...transactions].sort((a, b) => a.createdMs - b.createdMs || compareText(a.id, b.id));
  return {
    accounts: () => accounts,
    async *transactions(accountId) {
      for (const tx of sorted) if (tx.accountId === accountId) yield tx;
    },
  };
}
