// The Deno KV layer: opening (file, memory, a corrupt file), and the transaction store's round trips.

import assert from "node:assert/strict";
import { join } from "node:path";
import { openKv } from "../lib/kv.ts";
import { type KeyedTransaction, TransactionStore } from "../lib/transaction_store.ts";
import { withTempDir } from "./helpers/harness.ts";

interface Tx extends KeyedTransaction {
  readonly amount: number;
}

function decode(value: unknown): Tx | null {
  if (typeof value !== "object" || value === null) return null;
  const { id, accountId, createdMs, amount } = value as Record<string, unknown>;
  if (typeof id !== "string" || typeof accountId !== "string") return null;
  if (typeof createdMs !== "number" || typeof amount !== "number") return null;
  return { id, accountId, createdMs, amount };
}

const ACCOUNT = "acc_00009StoreTest";
const T0 = Date.UTC(2026, 0, 1);

function tx(n: number, amount = -n): Tx {
  return { id: `tx_${String(n).padStart(6, "0")}`, accountId: ACCOUNT, createdMs: T0 + n * 60_000, amount };
}

async function open(location: string): Promise<{ kv: Deno.Kv; store: TransactionStore<Tx> }> {
  const opened = await openKv(location);
  assert.ok(opened.ok, opened.ok ? "" : opened.error);
  const store = await TransactionStore.open(opened.value.kv, { decode });
  assert.ok(store.ok, store.ok ? "" : store.error);
  return { kv: opened.value.kv, store: store.value };
}

Deno.test("transactions and histories written to a file are all there after reopening, oldest first", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    const first = await open(path);
    // More than one atomic commit's worth, written out of order.
    const all = Array.from({ length: 2_500 }, (_, i) => tx(2_500 - i));
    const history = { start: T0, complete: true };
    assert.ok((await first.store.write(ACCOUNT, { put: all, history })).ok);
    assert.ok((await first.store.write(ACCOUNT, { remove: [tx(7).id], put: [tx(8, 999)] })).ok);
    first.kv.close();

    const again = await open(path);
    try {
      const stored = again.store.transactions(ACCOUNT);
      assert.equal(stored.length, 2_499);
      assert.deepEqual(stored.slice(0, 3).map((t) => t.id), [tx(1).id, tx(2).id, tx(3).id]);
      assert.equal(again.store.get(ACCOUNT, tx(7).id), undefined);
      assert.equal(again.store.get(ACCOUNT, tx(8).id)?.amount, 999);
      assert.equal(again.store.newest(ACCOUNT)?.id, tx(2_500).id);
      assert.deepEqual(again.store.history(ACCOUNT), history);
      assert.deepEqual(again.store.accounts(), [ACCOUNT]);
    } finally {
      again.kv.close();
    }
  });
});

Deno.test("a store in memory starts empty and keeps what is written", async () => {
  const { kv, store } = await open(":memory:");
  try {
    assert.deepEqual(store.transactions(ACCOUNT), []);
    assert.ok((await store.write(ACCOUNT, { put: [tx(1)] })).ok);
    assert.deepEqual(store.transactions(ACCOUNT), [tx(1)]);
  } finally {
    kv.close();
  }
});

Deno.test("a write that fails leaves memory as it was, so it is simply done again", async () => {
  const { kv, store } = await open(":memory:");
  assert.ok((await store.write(ACCOUNT, { put: [tx(1)] })).ok);
  kv.close();
  const failed = await store.write(ACCOUNT, { put: [tx(2)], remove: [tx(1).id] });
  assert.ok(!failed.ok);
  assert.match(failed.error, /^Cannot write the data store: /);
  assert.ok(!failed.error.includes("\n"));
  assert.deepEqual(store.transactions(ACCOUNT), [tx(1)]);
});

Deno.test("stored entries that no longer decode are dropped at open and counted, not fatal", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    const raw = await Deno.openKv(path);
    await raw.set(["tx", ACCOUNT, tx(1).id], tx(1));
    await raw.set(["tx", ACCOUNT, "tx_bad"], { id: "tx_bad", accountId: ACCOUNT, createdMs: "yesterday" });
    // An entry filed under another account than it says is not trusted either.
    await raw.set(["tx", "acc_other", tx(2).id], tx(2));
    await raw.set(["history", ACCOUNT], { start: "long ago" });
    raw.close();
    const { kv, store } = await open(path);
    try {
      assert.deepEqual(store.transactions(ACCOUNT), [tx(1)]);
      assert.deepEqual(store.transactions("acc_other"), []);
      assert.equal(store.dropped, 2);
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

Deno.test("a data path whose folder is missing is a one-line error naming it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "missing", "data.kv");
    const opened = await openKv(path);
    assert.ok(!opened.ok);
    assert.ok(opened.error.startsWith(`Cannot open the data store "${path}": `), opened.error);
    assert.ok(!opened.error.includes("\n"));
  });
});
