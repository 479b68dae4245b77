// Issue 18: counters never drop. The store's kept cash-flow totals are what was counted under a
// Counting (rules, shares, the household's own accounts); when the counting changes (new rules or
// shares at a restart, a second member's accounts becoming known mid-run) the totals of what settled
// since the counting start are worked out again, and an account whose totals would change starts a
// new counting start with counters from 0. Against the real store on disk, reopened as a restart does.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Counting, MONZO_VIEW, type OwnAccount, OwnAccounts } from "../lib/spending/classify.ts";
import { cashFlow } from "../lib/spending/rules.ts";
import { decodeStoredTransaction, type StoredTransaction } from "../lib/monzo/transaction.ts";
import { openKv } from "../lib/store/kv.ts";
import { TransactionStore } from "../lib/store/transaction_store.ts";
import { storeSource } from "../lib/backfill/store_source.ts";
import { ruleWith as rule, storedTransaction } from "./helpers/stored.ts";

const CURRENT = "acc_00009AliceCurrent";
const JOINT = "acc_00009Joint";
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const ALICE_ONLY: OwnAccount[] = [{ id: CURRENT, sortCode: "040004", accountNumber: "11111111" }];
const HOUSEHOLD: OwnAccount[] = [...ALICE_ONLY, { id: JOINT, sortCode: "040004", accountNumber: "22222222" }];

/** Transaction `n` on `accountId`, created `n` hours after T0 and settled a minute later. */
function tx(n: number, fields: Partial<StoredTransaction> = {}, accountId = CURRENT): StoredTransaction {
  const createdMs = T0 + n * HOUR;
  return storedTransaction({
    id: `tx_${String(n).padStart(8, "0")}`,
    accountId,
    createdMs,
    settledMs: createdMs + 60_000,
    amount: -100 * n,
    description: `SHOP ${n}`,
    ...fields,
  });
}

const counting = (fields: Partial<Counting>): Counting => ({ ...MONZO_VIEW, ...fields });

/** Opens the store at `path` with its clock at `now` (a restart), runs `body`, and closes it. */
async function withStore(path: string, now: number, body: (store: TransactionStore) => Promise<void>): Promise<void> {
  const opened = await openKv(path);
  assert.ok(opened.ok, opened.ok ? "" : opened.error);
  try {
    const store = await TransactionStore.open(opened.value.kv, {
      decode: decodeStoredTransaction,
      recentSince: 0,
      clock: { now: () => now },
    });
    assert.ok(store.ok, store.ok ? "" : store.error);
    await body(store.value);
  } finally {
    opened.value.kv.close();
  }
}

async function withPath(body: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "monzo-counting-change-test-" });
  try {
    await body(join(dir, "data.kv"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `txs` as the step does: looking up what is stored first. */
async function put(store: TransactionStore, txs: StoredTransaction[]): Promise<void> {
  const previous = await store.stored(txs);
  assert.ok(previous.ok);
  const written = await store.write(txs[0].accountId, { put: txs }, previous.value);
  assert.ok(written.ok, written.ok ? "" : written.error);
}

async function recount(store: TransactionStore, with_: Counting): Promise<readonly string[]> {
  const done = await store.setCounting(with_);
  assert.ok(done.ok, done.ok ? "" : done.error);
  return done.value.restarted;
}

const spent = (store: TransactionStore, accountId = CURRENT) =>
  store.summary(accountId).flows.find((flow) => flow.currency === "GBP")?.spentMinor;
const received = (store: TransactionStore, accountId = CURRENT) =>
  store.summary(accountId).flows.find((flow) => flow.currency === "GBP")?.receivedMinor;

/** The first life of a store: counted under `first` from T0, with `txs` written; spent as counted. */
async function firstLife(path: string, first: Counting, txs: StoredTransaction[]): Promise<number | undefined> {
  let counted: number | undefined;
  await withStore(path, T0, async (store) => {
    assert.deepEqual(await recount(store, first), []);
    await put(store, txs);
    counted = spent(store);
  });
  return counted;
}

const HISTORY = [tx(1), tx(2, { category: "eating_out", description: "PRET" }), tx(3)];

Deno.test("a rule added across a restart that changes what was counted: counters from 0, a new counting start", async () => {
  await withPath(async (path) => {
    assert.equal(await firstLife(path, MONZO_VIEW, HISTORY), 100 + 200 + 300);
    const later = T0 + 100 * HOUR;
    const rules = [rule(1, { description: /pret/i, exclude: true })];
    await withStore(path, later, async (store) => {
      assert.equal(spent(store), 600, "the kept totals are read back as counted");
      assert.deepEqual(await recount(store, counting({ rules })), [CURRENT]);
      assert.equal(store.countingStart(CURRENT), later);
      assert.equal(spent(store), 0);
      // What settles from now on counts under the rule: a Pret lunch is excluded, the rest counts.
      await put(store, [tx(101, { description: "PRET" }), tx(102)]);
      assert.equal(spent(store), 10_200);
    });
    // The new start and its totals are on disk: the same rules at the next start change nothing.
    await withStore(path, later + 10 * HOUR, async (store) => {
      assert.deepEqual(
        await recount(store, counting({ rules: [rule(1, { description: /pret/i, exclude: true })] })),
        [],
      );
      assert.equal(store.countingStart(CURRENT), later);
      assert.equal(spent(store), 10_200);
    });
  });
});

Deno.test("an account's share changed across a restart: counters from 0, a new counting start", async () => {
  await withPath(async (path) => {
    const joint = HISTORY.map((t) => ({ ...t, accountId: JOINT }));
    await withStore(path, T0, async (store) => {
      await recount(store, MONZO_VIEW);
      await put(store, joint);
      await put(store, HISTORY);
      assert.equal(spent(store, JOINT), 600);
    });
    const later = T0 + 100 * HOUR;
    await withStore(path, later, async (store) => {
      // Only the joint account's share: Alice's own account keeps counting on.
      assert.deepEqual(await recount(store, counting({ accountShares: new Map([[JOINT, 0.5]]) })), [JOINT]);
      assert.equal(store.countingStart(JOINT), later);
      assert.equal(spent(store, JOINT), 0);
      assert.equal(store.countingStart(CURRENT), T0);
      assert.equal(spent(store), 600);
      await put(store, [tx(101, {}, JOINT)]);
      // 10,100 × 0.5.
      assert.equal(spent(store, JOINT), 5_050);
    });
  });
});

Deno.test("a second member logging in mid-run turns old transfers internal: counters from 0, kept at restart", async () => {
  await withPath(async (path) => {
    const transfer = tx(4, {
      amount: -50_000,
      category: "transfers",
      counterparty: { accountId: JOINT, sortCode: null, accountNumber: null },
    });
    const fps = tx(5, {
      amount: 20_000,
      category: "transfers",
      counterparty: { accountId: null, sortCode: "040004", accountNumber: "22222222" },
    });
    const later = T0 + 100 * HOUR;
    let now = T0;
    const opened = await openKv(path);
    assert.ok(opened.ok);
    try {
      const store = await TransactionStore.open(opened.value.kv, {
        decode: decodeStoredTransaction,
        recentSince: 0,
        clock: { now: () => now },
      });
      assert.ok(store.ok);
      const s = store.value;
      // Only Alice is logged in: the joint account is not known, so the transfers count.
      await recount(s, counting({ own: new OwnAccounts(ALICE_ONLY) }));
      await put(s, [...HISTORY, transfer, fps]);
      assert.equal(spent(s), 600 + 50_000);
      assert.equal(received(s), 20_000);
      // The joint account's owner logs in: the same stored transfers are internal now.
      now = later;
      assert.deepEqual(await recount(s, counting({ own: new OwnAccounts(HOUSEHOLD) })), [CURRENT]);
      assert.equal(s.countingStart(CURRENT), later);
      assert.deepEqual([spent(s), received(s)], [0, 0]);
      // Recognised when figures are computed, never written into the store: the stored transfer is unchanged.
      const stored = await s.stored([transfer]);
      assert.ok(stored.ok);
      assert.deepEqual(stored.value.get(transfer.id), transfer);
    } finally {
      opened.value.kv.close();
    }
    // The known accounts are kept: after a restart, before any login answers, the transfers stay internal.
    await withStore(path, later + HOUR, async (store) => {
      assert.deepEqual(store.ownAccounts.map((account) => account.id), [CURRENT, JOINT]);
      assert.deepEqual(await recount(store, counting({ own: new OwnAccounts(store.ownAccounts) })), []);
      assert.equal(store.countingStart(CURRENT), later);
    });
  });
});

Deno.test("an unchanged counting keeps the counters and the counting start, across a restart and mid-run", async () => {
  await withPath(async (path) => {
    const rules =
      () => [rule(1, { description: /pret/i, share: 0.5 }), rule(2, { description: /nothing/i, exclude: true })];
    const own = () => new OwnAccounts(HOUSEHOLD);
    const transfer = tx(4, {
      amount: -50_000,
      counterparty: { accountId: JOINT, sortCode: null, accountNumber: null },
    });
    // 100 + 200 × 0.5 + 300; the transfer is internal.
    assert.equal(await firstLife(path, counting({ rules: rules(), own: own() }), [...HISTORY, transfer]), 500);
    await withStore(path, T0 + 100 * HOUR, async (store) => {
      // Equal rules and accounts, made anew as a restart makes them.
      assert.deepEqual(await recount(store, counting({ rules: rules(), own: own() })), []);
      assert.equal(store.countingStart(CURRENT), T0);
      assert.equal(spent(store), 500);
      // A rule that changes nothing already counted (it matches nothing settled) restarts nothing either.
      assert.deepEqual(
        await recount(store, counting({ rules: [...rules(), rule(3, { id: "tx_none", exclude: true })], own: own() })),
        [],
      );
      assert.equal(spent(store), 500);
      assert.equal(store.countingStart(CURRENT), T0);
    });
  });
});

Deno.test("a settled transaction re-categorised into a rule that excludes it restarts the counters, never lowers them", async () => {
  await withPath(async (path) => {
    const rules = [rule(1, { category: "cash", exclude: true })];
    assert.equal(await firstLife(path, counting({ rules }), HISTORY), 600);
    const later = T0 + 100 * HOUR;
    await withStore(path, later, async (store) => {
      assert.deepEqual(await recount(store, counting({ rules })), []);
      // Monzo says tx 3 is cash now (re-categorised in the app): the rule excludes it.
      await put(store, [{ ...HISTORY[2], category: "cash" }]);
      assert.equal(store.countingStart(CURRENT), later);
      assert.equal(spent(store), 0);
    });
  });
});

Deno.test("monzo_rules_matched's counts: each stored transaction for its first matching rule, internal ones not", async () => {
  await withPath(async (path) => {
    const rules = [
      rule(1, { description: /shop/i, share: 0.5 }),
      rule(2, { category: "groceries", exclude: true }),
      rule(3, { id: "tx_never" }),
    ];
    const transfer = tx(9, {
      description: "SHOP TRANSFER",
      counterparty: { accountId: JOINT, sortCode: null, accountNumber: null },
    });
    const declined = tx(10, { declined: true });
    const lunch = tx(11, { description: "PRET" });
    const txs = [...HISTORY, transfer, declined, lunch];
    const view = counting({ rules, own: new OwnAccounts(HOUSEHOLD) });
    await withStore(path, T0, async (store) => {
      await recount(store, view);
      await put(store, txs);
      // Worked out on its own: tx 1 and 3 say SHOP (rule 1); tx 2 is PRET in eating_out (no rule); the
      // lunch is PRET in groceries (rule 2); the transfer is internal and the decline left out, whatever
      // they match.
      assert.deepEqual([...store.rulesMatched].sort(), [["1", 2], ["2", 1]]);
    });
    await withStore(path, T0 + HOUR, async (store) => {
      assert.deepEqual([...store.rulesMatched], [], "nothing is counted before a counting is set");
      await recount(store, view);
      assert.deepEqual([...store.rulesMatched].sort(), [["1", 2], ["2", 1]]);
      // Figures agree with the rules: 100 and 300 at half, 200 whole, the lunch excluded.
      assert.deepEqual(cashFlow(txs, view)[0].spentMinor, 50 + 200 + 150);
      assert.equal(spent(store), 50 + 200 + 150);
    });
  });
});

Deno.test("the counters starting again never move where the live figures began: liveSince and the backfill's end stay at the first counting start", async () => {
  await withPath(async (path) => {
    await firstLife(path, MONZO_VIEW, HISTORY);
    const later = T0 + 100 * HOUR;
    await withStore(path, later, async (store) => {
      assert.deepEqual(await recount(store, counting({ rules: [rule(1, { description: /pret/i, exclude: true })] })), [
        CURRENT,
      ]);
      assert.equal(store.countingStart(CURRENT), later);
      assert.equal(store.liveSince(CURRENT), T0, "a restart of the counters moved where the live figures began");
      // A settled transaction now excluded restarts them once more, mid-run.
      await put(store, [tx(150)]);
      await put(store, [tx(150, { description: "PRET" })]);
      assert.equal(store.countingStart(CURRENT), later);
      assert.equal(store.liveSince(CURRENT), T0);
      assert.ok((await store.saveBalance(CURRENT, { balanceMinor: 1, currency: "GBP", at: later })).ok);
      assert.ok((await store.markRead(CURRENT, later)).ok);
      await store.write(CURRENT, { history: { start: T0 - 24 * HOUR, complete: true } });
    });
    await withStore(path, later + HOUR, (store) => {
      assert.equal(store.liveSince(CURRENT), T0, "reopening lost where the live figures began");
      const { source } = storeSource(store);
      assert.deepEqual(source.accounts().map((account) => account.countingStart), [T0]);
      return Promise.resolve();
    });
  });
});
