// The owner of the Deno KV connection: opened on first use, shared by users whose work overlaps,
// closed after the last of them (a ":memory:" store excepted), and a failure to open is a value.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type OpenedKv, openKv } from "../lib/kv.ts";
import { KvLease } from "../lib/kv_lease.ts";
import type { Result } from "../lib/result.ts";
import { withTempDir } from "./helpers/harness.ts";
import { CAN_LIST_OPEN_FILES, openFilesOf } from "./helpers/open_files.ts";

/** The real opener, counting its calls and the closes of the stores it opened. */
function counting() {
  const counts = { opens: 0, closes: 0 };
  const open = async (location: string): Promise<Result<OpenedKv>> => {
    counts.opens++;
    const opened = await openKv(location);
    if (opened.ok) {
      // Counted on this one store object only; every other Deno.Kv is left as it is.
      const kv = opened.value.kv;
      const close = kv.close.bind(kv);
      kv.close = () => {
        counts.closes++;
        close();
      };
    }
    return opened;
  };
  return { counts, open };
}

Deno.test("overlapping users share one connection, opened once and closed once after both are done", async () => {
  await withTempDir(async (dir) => {
    const path = join(await Deno.realPath(dir), "data.kv");
    const { counts, open } = counting();
    const lease = new KvLease(path, { open });
    // Both ask before the store has finished opening.
    const [a, b] = await Promise.all([lease.acquire(), lease.acquire()]);
    assert.ok(a.ok && b.ok);
    assert.equal(counts.opens, 1, "each user opened the store");
    assert.equal(a.value.kv, b.value.kv);
    assert.equal(a.value.connection, b.value.connection);
    // A third joins while they hold it.
    const joined = await lease.use((kv) => kv.set(["k"], 1));
    assert.ok(joined.ok);
    assert.equal(counts.opens, 1);

    a.value.release();
    a.value.release(); // Twice: must not count as b's release.
    assert.ok(lease.isOpen);
    assert.equal(counts.closes, 0, "closed while a user still held it");
    assert.equal((await b.value.kv.get(["k"])).value, 1);
    if (CAN_LIST_OPEN_FILES) assert.notDeepEqual(openFilesOf(path), []);

    b.value.release();
    assert.equal(counts.closes, 1);
    assert.ok(!lease.isOpen);
    if (CAN_LIST_OPEN_FILES) assert.deepEqual(openFilesOf(path), [], "the data file is still open");

    // The next user opens it again, as a new connection, and finds what was written.
    const again = await lease.use(async (kv, connection) => ({ value: (await kv.get(["k"])).value, connection }));
    assert.ok(again.ok);
    assert.deepEqual(again.value, { value: 1, connection: a.value.connection + 1 });
    assert.deepEqual(counts, { opens: 2, closes: 2 });
    lease.close();
  });
});

Deno.test("a failure to open is the value of that use, and the next use tries again", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "later", "data.kv");
    const { counts, open } = counting();
    const lease = new KvLease(path, { open });
    let ran = false;
    const failed = await lease.use(() => Promise.resolve(ran = true));
    assert.ok(!failed.ok);
    assert.ok(failed.error.startsWith(`Cannot open the data store "${path}": `), failed.error);
    assert.ok(!failed.error.includes("\n"));
    assert.ok(!ran, "the work ran without a store");

    await Deno.mkdir(join(dir, "later"));
    const worked = await lease.use((kv) => kv.set(["k"], 1));
    assert.ok(worked.ok, worked.ok ? "" : worked.error);
    assert.deepEqual(counts, { opens: 2, closes: 1 });
    lease.close();
  });
});

Deno.test("an unusable file found when opening is moved aside and reported, as at start", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    await Deno.writeTextFile(path, "this is not a database ".repeat(200));
    const moved: string[] = [];
    const lease = new KvLease(path, { open: (at) => openKv(at, () => 0), onMovedAside: (aside) => moved.push(aside) });
    const worked = await lease.use((kv) => kv.set(["k"], 1));
    assert.ok(worked.ok, worked.ok ? "" : worked.error);
    assert.deepEqual(moved, [`${path}.corrupt-1970-01-01T00-00-00.000Z`]);
    assert.ok((await Deno.stat(moved[0])).isFile);
    lease.close();
  });
});

Deno.test('a ":memory:" store stays open after its last user and keeps its data until the lease is closed', async () => {
  const { counts, open } = counting();
  const lease = new KvLease(":memory:", { open });
  assert.ok((await lease.use((kv) => kv.set(["k"], "kept"))).ok);
  assert.ok(lease.isOpen);
  const read = await lease.use(async (kv) => (await kv.get(["k"])).value);
  assert.ok(read.ok);
  assert.equal(read.value, "kept");
  assert.deepEqual(counts, { opens: 1, closes: 0 });

  lease.close();
  assert.deepEqual(counts, { opens: 1, closes: 1 });
  assert.ok(!lease.isOpen);
  const after = await lease.acquire();
  assert.ok(!after.ok, "a closed lease opened the store again");
  assert.equal(counts.opens, 1);
});

Deno.test("closing while a user holds the store closes it when that user is done", async () => {
  await withTempDir(async (dir) => {
    const { counts, open } = counting();
    const lease = new KvLease(join(dir, "data.kv"), { open });
    const held = await lease.acquire();
    assert.ok(held.ok);
    lease.close();
    assert.equal(counts.closes, 0, "closed under a user's feet");
    await held.value.kv.set(["k"], 1);
    held.value.release();
    assert.deepEqual(counts, { opens: 1, closes: 1 });
  });
});

Deno.test("a lease over a store the caller opened never opens nor closes it", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const lease = KvLease.over(kv);
    const used = await lease.use((store) => Promise.resolve(store === kv));
    assert.ok(used.ok && used.value);
    lease.close();
    await kv.set(["still"], "open");
    assert.equal((await kv.get(["still"])).value, "open");
  } finally {
    kv.close();
  }
});
