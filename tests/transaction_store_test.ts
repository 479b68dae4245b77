// The Deno KV layer: opening (file, memory, a corrupt file), and the transaction store: what it keeps
// on disk, what it holds in memory, and totals that always equal a recount of what is stored.

import { MONZO_VIEW } from "../lib/spending/classify.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkDataPath, openKv } from "../lib/store/kv.ts";
import { cashFlow } from "../lib/spending/rules.ts";
import { decodeStoredTransaction, type StoredTransaction } from "../lib/monzo/transaction.ts";
import { TransactionStore } from "../lib/store/transaction_store.ts";
import { withTempDir } from "./helpers/harness.ts";
import { failingKv } from "./helpers/failing_kv.ts";
import { cannotMount, notRoot, withReadOnly } from "./helpers/mounts.ts";

const ACCOUNT = "acc_00009StoreTest";
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

/** Transaction `n`, created `n` hours after T0; settled unless `pending`. */
function tx(n: number, { amount = -100 * n, pending = false, category = "groceries" } = {}): StoredTransaction {
  const createdMs = T0 + n * HOUR;
  return {
    id: `tx_${String(n).padStart(8, "0")}`,
    accountId: ACCOUNT,
    createdMs,
    settledMs: pending ? null : createdMs + 1_000,
    amount,
    currency: "GBP",
    category,
    categories: null,
    declined: false,
    includeInSpending: true,
    potMove: false,
    isLoad: false,
    description: "",
    merchant: null,
    counterparty: null,
  };
}

/** Opens the store at `location`, whose clock says T0: before every transaction here, so all of them count. */
async function open(location: string, recentSince = T0): Promise<{ kv: Deno.Kv; store: TransactionStore }> {
  const opened = await openKv(location);
  assert.ok(opened.ok, opened.ok ? "" : opened.error);
  const store = await TransactionStore.open(opened.value.kv, {
    decode: decodeStoredTransaction,
    recentSince,
    clock: { now: () => T0 },
  });
  assert.ok(store.ok, store.ok ? "" : store.error);
  return { kv: opened.value.kv, store: store.value };
}

/** Every transaction stored for the account, read straight from Deno KV. */
async function everything(kv: Deno.Kv): Promise<StoredTransaction[]> {
  const all: StoredTransaction[] = [];
  for await (const entry of kv.list<StoredTransaction>({ prefix: ["tx", ACCOUNT] })) all.push(entry.value);
  return all;
}

/** Writes `txs` as the step does: looking up what is stored first, so totals move by the difference. */
async function put(store: TransactionStore, txs: StoredTransaction[], remove: StoredTransaction[] = []) {
  const previous = await store.stored(txs);
  assert.ok(previous.ok);
  const written = await store.write(ACCOUNT, { put: txs, remove }, previous.value);
  assert.ok(written.ok, written.ok ? "" : written.error);
}

Deno.test("what is written is there after reopening, and memory holds only pending and recent ones", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    const first = await open(path);
    // More than one commit's worth, out of order; every tenth one pending.
    const all = Array.from({ length: 2_500 }, (_, i) => tx(2_500 - i, { pending: (2_500 - i) % 10 === 0 }));
    const history = { start: T0, complete: true };
    const previous = await first.store.stored(all);
    assert.ok(previous.ok && previous.value.size === 0);
    assert.ok((await first.store.write(ACCOUNT, { put: all, history }, previous.value)).ok);
    first.kv.close();

    const since = T0 + 2_000 * HOUR;
    const again = await open(path, since);
    try {
      assert.deepEqual(again.store.summary(ACCOUNT), { count: 2_500, flows: cashFlow(all, MONZO_VIEW) });
      assert.equal(again.store.newest(ACCOUNT)?.id, tx(2_500).id);
      assert.deepEqual(again.store.history(ACCOUNT), history);
      assert.deepEqual(
        again.store.pending(ACCOUNT).map((t) => t.id),
        all.filter((t) => t.settledMs === null).reverse().map((t) => t.id),
      );
      assert.deepEqual(
        again.store.recent(ACCOUNT, since).map((t) => t.createdMs),
        all.filter((t) => t.createdMs >= since).map((t) => t.createdMs).reverse(),
      );
      // Older settled ones are not held in memory, but are still found in the store.
      const held = again.store.recent(ACCOUNT, 0);
      const expected = all.filter((t) => t.createdMs >= since || t.settledMs === null).length;
      assert.equal(held.length, expected, "memory holds more than the pending and recent transactions");
      assert.ok(expected < all.length / 3);
      const old = await again.store.stored([tx(1)]);
      assert.ok(old.ok);
      assert.deepEqual(old.value.get(tx(1).id), tx(1));
    } finally {
      again.kv.close();
    }
  });
});

Deno.test("settling, replacing and dropping keep the totals equal to a recount of what is stored", async () => {
  const { kv, store } = await open(":memory:");
  try {
    // A deterministic walk of new, settled, changed and released transactions.
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const live = new Map<string, StoredTransaction>();
    for (let step = 0; step < 400; step++) {
      const n = 1 + Math.floor(random() * 120);
      const held = live.get(tx(n).id);
      const roll = random();
      if (held && held.settledMs === null && roll < 0.2) {
        await put(store, [], [held]);
        live.delete(held.id);
      } else {
        const next = tx(n, { pending: roll < 0.5, amount: roll < 0.8 ? -100 * n : 50 * n });
        await put(store, [next]);
        live.set(next.id, next);
      }
    }
    const stored = await everything(kv);
    assert.equal(stored.length, live.size);
    assert.deepEqual(store.summary(ACCOUNT), { count: live.size, flows: cashFlow(stored, MONZO_VIEW) });
  } finally {
    kv.close();
  }
});

Deno.test("a write that fails leaves memory as it was, so it is simply done again", async () => {
  const { kv, store } = await open(":memory:");
  await put(store, [tx(1)]);
  kv.close();
  const failed = await store.write(ACCOUNT, { put: [tx(2)], remove: [tx(1)] });
  assert.ok(!failed.ok);
  assert.match(failed.error, /^Cannot write the data store: /);
  assert.ok(!failed.error.includes("\n"));
  assert.deepEqual(store.recent(ACCOUNT, 0), [tx(1)]);
  assert.equal(store.summary(ACCOUNT).count, 1);
});

Deno.test("stored entries that no longer decode, or sit under another key, are left out and counted", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    const first = await open(path);
    await put(first.store, [tx(1), tx(2, { pending: true })]);
    // An older format, and an entry filed under another account than it names.
    await first.kv.set(["tx", ACCOUNT, tx(3).createdMs, tx(3).id], { id: tx(3).id, createdMs: "yesterday" });
    await first.kv.set(["tx", ACCOUNT, tx(4).createdMs, tx(4).id], { ...tx(4), accountId: "acc_other" });
    await first.kv.set(["history", ACCOUNT], { start: "long ago" });
    first.kv.close();
    const { kv, store } = await open(path);
    try {
      assert.deepEqual(store.recent(ACCOUNT, 0).map((t) => t.id), [tx(1).id, tx(2).id]);
      assert.equal(store.dropped, 2);
      assert.equal(store.newest(ACCOUNT)?.id, tx(2).id, "the newest readable transaction is not found");
      assert.equal(store.history(ACCOUNT), undefined);
    } finally {
      kv.close();
    }
  });
});

Deno.test("a data file that is not a store is moved aside, never deleted, and a new store is made", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    const garbage = "this is not a database ".repeat(200);
    await Deno.writeTextFile(path, garbage);
    const opened = await openKv(path, () => T0);
    assert.ok(opened.ok, opened.ok ? "" : opened.error);
    try {
      assert.equal(opened.value.movedAside, `${path}.corrupt-2026-01-01T00-00-00.000Z`);
      assert.equal(await Deno.readTextFile(opened.value.movedAside), garbage);
      await opened.value.kv.set(["x"], 1);
      assert.equal((await opened.value.kv.get(["x"])).value, 1);
    } finally {
      opened.value.kv.close();
    }
  });
});

Deno.test("a data path whose folder is missing is a one-line error naming data_path, the file and the folder", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "missing", "data.kv");
    const opened = await openKv(path);
    assert.ok(!opened.ok);
    assert.ok(opened.error.startsWith(`Cannot use data_path "${path}": `), opened.error);
    assert.ok(opened.error.includes(`"${join(dir, "missing")}"`), opened.error);
    assert.ok(!opened.error.includes("\n"));
  });
});

Deno.test("a store that throws during a session is the session's one-line error naming it, and memory stays as it was", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    const opened = await openKv(path);
    assert.ok(opened.ok, opened.ok ? "" : opened.error);
    const failing = failingKv(opened.value.kv);
    try {
      const made = await TransactionStore.open(failing.kv, {
        decode: decodeStoredTransaction,
        recentSince: T0,
        location: path,
        clock: { now: () => T0 },
      });
      assert.ok(made.ok, made.ok ? "" : made.error);
      const store = made.value;
      assert.ok((await store.session(() => put(store, [tx(1)]))).ok);

      failing.fail(true);
      // The work goes on as the step's does, each call's failure being its value.
      const failed = await store.session(async () => {
        const previous = await store.stored([tx(2)]);
        return previous.ok ? store.write(ACCOUNT, { put: [tx(2)] }, previous.value) : previous;
      });
      assert.ok(failing.thrown > 0);
      assert.ok(!failed.ok, "a store that threw was a session that worked");
      assert.ok(failed.error.startsWith(`Cannot read the data store "${path}": `), failed.error);
      assert.ok(!failed.error.includes("\n"));
      assert.deepEqual(store.summary(ACCOUNT), { count: 1, flows: cashFlow([tx(1)], MONZO_VIEW) });

      // The same handle works again once the store does: nothing is opened anew.
      failing.fail(false);
      const again = await store.session(() => put(store, [tx(2)]));
      assert.ok(again.ok, again.ok ? "" : again.error);
      assert.deepEqual(store.summary(ACCOUNT), { count: 2, flows: cashFlow([tx(1), tx(2)], MONZO_VIEW) });
    } finally {
      opened.value.kv.close();
    }
  });
});

Deno.test("a work's own failure is its result, not the session's error", async () => {
  const { kv, store } = await open(":memory:");
  try {
    const ran = await store.session(() => Promise.resolve("the work's own failure"));
    assert.ok(ran.ok);
    assert.equal(ran.value, "the work's own failure");
  } finally {
    kv.close();
  }
});

Deno.test({
  name: "an unwritable data_path is one line naming data_path and the file, and the file is left as it was",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("transaction_store_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const folder = join(dir, "store");
      await Deno.mkdir(folder);
      const path = join(folder, "data.kv");
      const made = await open(path);
      await put(made.store, [tx(1)]);
      made.kv.close();
      const before = await Deno.readFile(path);
      await withReadOnly(folder, async () => {
        for (const location of [path, join(folder, "new.kv")]) {
          const checked = await checkDataPath(location);
          assert.ok(!checked.ok, `${location} was found writable`);
          assert.ok(checked.error.startsWith(`Cannot use data_path "${location}": `), checked.error);
          assert.ok(!checked.error.includes("\n"));
          const opened = await openKv(location);
          assert.ok(!opened.ok, `${location} was opened`);
          assert.equal(opened.error, checked.error);
        }
      });
      assert.deepEqual(await Deno.readFile(path), before);
      assert.deepEqual([...Deno.readDirSync(folder)].map((entry) => entry.name), ["data.kv"]);
      assert.ok((await checkDataPath(path)).ok);
    });
  },
});
