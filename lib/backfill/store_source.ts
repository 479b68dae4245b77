/**
 * The backfill's view of the real store: each account with a stored history, its counting start and
 * the balance of the last poll. Reads only; the store is never written through it.
 *
 * @module
 */
import type { TransactionStore } from "../store/transaction_store.ts";
import type { BackfillAccount, BackfillSource } from "./source.ts";

/** The source, and the accounts with a history that it leaves out because no poll has saved their balance. */
export interface StoreSource {
  readonly source: BackfillSource;
  /** Account ids, sorted: a history but no balance yet (the balance is what every past one is worked back from). */
  readonly withoutBalance: readonly string[];
}

/**
 * The accounts of `store` that have a stored history, live figures (their first counting start) and a saved balance, and their
 * transactions as the store lists them (oldest first by creation time, then id).
 */
export function storeSource(store: TransactionStore): StoreSource {
  const accounts: BackfillAccount[] = [];
  const withoutBalance: string[] = [];
  for (const accountId of store.accountIds()) {
    const history = store.history(accountId);
    // Where the live figures began: later starts of the counters again do not move the backfill's end.
    const countingStart = store.liveSince(accountId);
    if (history === undefined || countingStart === undefined) continue;
    const balance = store.lastBalance(accountId);
    if (balance === undefined) {
      withoutBalance.push(accountId);
      continue;
    }
    accounts.push({
      accountId,
      currency: balance.currency,
      historyStart: history.start,
      countingStart,
      balance: { balanceMinor: balance.balanceMinor, at: balance.at },
    });
  }
  return {
    source: { accounts: () => accounts, transactions: (accountId) => store.transactionsOf(accountId) },
    withoutBalance,
  };
}
