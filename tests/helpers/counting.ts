// A data store whose counters began long ago, for the tests of what the cash-flow counters count:
// their fixtures are history from before the exporter starts, which a store made at start would
// rightly leave out of monzo_spent_total and monzo_received_total (they count from the counting start).

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { decodeStoredTransaction } from "../../lib/monzo/transaction.ts";
import { TransactionStore } from "../../lib/store/transaction_store.ts";
import { openKv } from "../../lib/store/kv.ts";
import { T0 } from "./harness.ts";

/** Ten years before {@link T0}: earlier than any fixture's transaction. */
export const LONG_AGO = T0 - 10 * 365 * 24 * 3_600_000;

/** Makes the store at `dataPath` hold `accounts` since `at`, as a store that first held them then would. */
export async function countingSince(dataPath: string, accounts: readonly string[], at = LONG_AGO): Promise<void> {
  const opened = await openKv(dataPath);
  assert.ok(opened.ok, opened.ok ? "" : opened.error);
  try {
    const store = await TransactionStore.open(opened.value.kv, {
      decode: decodeStoredTransaction,
      recentSince: 0,
      clock: { now: () => at },
    });
    assert.ok(store.ok, store.ok ? "" : store.error);
    for (const account of accounts) {
      const written = await store.value.write(account, {});
      assert.ok(written.ok, written.ok ? "" : written.error);
      assert.equal(store.value.countingStart(account), at);
    }
  } finally {
    opened.value.kv.close();
  }
}

/** A harness `prepare` that makes its default store (beside the tokens file) hold `accounts` since {@link LONG_AGO}. */
export const countingLongAgo = (...accounts: string[]) => (_fake: unknown, tokensPath: string): Promise<void> =>
  countingSince(join(dirname(tokensPath), "data.kv"), accounts);
