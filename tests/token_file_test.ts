// The tokens file against real file systems: unreadable files kept aside under names that never
// replace an earlier copy, odd things at the tokens path or its `.tmp`, full disks, bind-mounted and
// read-only mounts, and the start-up check. Mounts need root; those tests are skipped (and say why)
// where the machine does not allow them.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkTokenPath,
  decodeLogins,
  encodeLogins,
  MAX_TOKENS_FILE_BYTES,
  type StoredLogin,
  tokenFile,
} from "../lib/logins/token_file.ts";
import { settlesWithin } from "./helpers/e2e.ts";
import { cannotMount, explainSkipped, notRoot, run, withBind, withMount, withReadOnly } from "./helpers/mounts.ts";
if (notRoot !== null) explainSkipped("token_file_test's tests that mount", notRoot);
import { withTempDir } from "./helpers/harness.ts";

function login(userId: string | null, tag: string, expiresAt = Date.UTC(2026, 5, 1, 12, 0, 0)): StoredLogin {
  return { userId, accessToken: `test-access-${tag}`, refreshToken: `test-refresh-${tag}`, expiresAt };
}

/** The names in `dir`, sorted. */
async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

async function storedIn(path: string): Promise<StoredLogin[]> {
  const decoded = decodeLogins(await Deno.readTextFile(path));
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  return decoded.value;
}

/** Asserts that `result` is an error naming `path` on one line and containing each of `words`. */
function assertError(result: { ok: boolean; error?: string }, path: string, ...words: string[]): string {
  assert.equal(result.ok, false, `expected an error naming ${path}`);
  const message = result.error ?? "";
  assert.ok(message.includes(path), `the error does not name "${path}": ${message}`);
  assert.ok(!message.includes("\n"), `the error is more than one line: ${message}`);
  for (const word of words) assert.ok(message.includes(word), `"${word}" missing from: ${message}`);
  return message;
}

const CORRUPT_A = '{"access_token": "test-access-first-incident';
const CORRUPT_B = '{"access_token": "test-access-second-incident';

// ---------------------------------------------------------------------------------------------
// Unreadable files are kept, under a name no later incident reuses

Deno.test("an undecodable file is moved aside before the first write, to a new name each incident, and the write names it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    await Deno.writeTextFile(path, CORRUPT_A, { mode: 0o600 });
    const first = tokenFile(path);
    assertError(await first.read(), path, "not valid JSON");
    const alice = login("user_00009Alice", "alice");
    const written = await first.write([alice]);
    assert.ok(written.ok, written.ok ? "" : written.error);
    assert.equal(written.keptAside, `${path}.unreadable`);
    assert.equal(await Deno.readTextFile(`${path}.unreadable`), CORRUPT_A);
    assert.deepEqual(await storedIn(path), [alice]);
    // Only the first write after the failed read moves anything.
    const again = await first.write([alice]);
    assert.ok(again.ok);
    assert.equal(again.keptAside, undefined);

    // A later incident: the earlier copy stays as it was, the new one gets a name of its own.
    await Deno.writeTextFile(path, CORRUPT_B, { mode: 0o600 });
    const second = tokenFile(path);
    assert.equal((await second.read()).ok, false);
    const bob = login("user_00009Bob", "bob");
    const rewritten = await second.write([bob]);
    assert.ok(rewritten.ok, rewritten.ok ? "" : rewritten.error);
    assert.equal(rewritten.keptAside, `${path}.unreadable.1`);
    assert.equal(await Deno.readTextFile(`${path}.unreadable`), CORRUPT_A);
    assert.equal(await Deno.readTextFile(`${path}.unreadable.1`), CORRUPT_B);
    assert.deepEqual(await storedIn(path), [bob]);
    assert.deepEqual(await listing(dir), ["tokens.json", "tokens.json.unreadable", "tokens.json.unreadable.1"]);
  });
});

Deno.test("a name already taken by anything is skipped when moving aside, never replaced", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    await Deno.writeTextFile(`${path}.unreadable`, "kept from before");
    await Deno.mkdir(`${path}.unreadable.1`);
    await Deno.symlink("/nonexistent-target", `${path}.unreadable.2`);
    await Deno.writeTextFile(path, CORRUPT_A);
    const file = tokenFile(path);
    assert.equal((await file.read()).ok, false);
    const written = await file.write([login("user_1", "one")]);
    assert.ok(written.ok, written.ok ? "" : written.error);
    assert.equal(written.keptAside, `${path}.unreadable.3`);
    assert.equal(await Deno.readTextFile(`${path}.unreadable`), "kept from before");
    assert.ok((await Deno.lstat(`${path}.unreadable.1`)).isDirectory);
    assert.equal(await Deno.readLink(`${path}.unreadable.2`), "/nonexistent-target");
    assert.equal(await Deno.readTextFile(`${path}.unreadable.3`), CORRUPT_A);
  });
});

Deno.test("a write that follows no failed read moves nothing aside", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const fresh = tokenFile(path);
    assert.deepEqual(await fresh.read(), { ok: true, value: { logins: [] } });
    const written = await fresh.write([login("user_1", "one")]);
    assert.deepEqual(written, { ok: true, value: undefined });
    const again = tokenFile(path);
    assert.ok((await again.read()).ok);
    assert.deepEqual(await again.write([login("user_1", "two")]), { ok: true, value: undefined });
    assert.deepEqual(await listing(dir), ["tokens.json"]);
  });
});

Deno.test({
  name: "when the unreadable file cannot be moved aside (a bind-mounted file) the write fails and leaves it as it was",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("token_file_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const path = join(dir, "tokens.json");
      const source = join(dir, "host-tokens.json");
      await Deno.writeTextFile(source, CORRUPT_A);
      await Deno.writeTextFile(path, "");
      await withBind(source, path, async () => {
        const file = tokenFile(path);
        assert.equal((await file.read()).ok, false);
        const written = await file.write([login("user_1", "one")]);
        assertError(written, path, "mount its folder");
        assert.equal(written.keptAside, undefined);
        assert.equal(await Deno.readTextFile(path), CORRUPT_A);
        // Neither the reserved name nor a temporary file is left behind.
        assert.deepEqual(await listing(dir), ["host-tokens.json", "tokens.json"]);
      });
      assert.equal(await Deno.readTextFile(source), CORRUPT_A);
    });
  },
});

Deno.test("a file over 1 MiB is refused without decoding it, and is kept aside rather than overwritten", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    // Valid in every other way: only its size gives it away.
    const huge = encodeLogins([{ ...login("user_1", "one"), accessToken: "x".repeat(MAX_TOKENS_FILE_BYTES) }]);
    await Deno.writeTextFile(path, huge);
    const file = tokenFile(path);
    assertError(await file.read(), path, "too large");
    const written = await file.write([login("user_1", "small")]);
    assert.ok(written.ok);
    assert.equal(written.keptAside, `${path}.unreadable`);
    assert.equal((await Deno.stat(`${path}.unreadable`)).size, huge.length);
  });
});

Deno.test("invalid UTF-8 in a tokens file is a read error, not a login whose token was silently mangled", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const text = encodeLogins([login("user_1", "BYTE")]);
    const bytes = new TextEncoder().encode(text);
    bytes[text.indexOf("BYTE")] = 0xff;
    await Deno.writeFile(path, bytes);
    const file = tokenFile(path);
    assertError(await file.read(), path, "UTF-8");
    const written = await file.write([login("user_1", "fresh")]);
    assert.equal(written.keptAside, `${path}.unreadable`);
    assert.deepEqual(await Deno.readFile(`${path}.unreadable`), bytes);
  });
});

Deno.test("logins keyed __proto__ and constructor are read as logins, and round-trip without touching prototypes", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const entry = (tag: string) => ({
      access_token: `test-access-${tag}`,
      expires_at: "2026-06-01T12:00:00.000Z",
      refresh_token: `test-refresh-${tag}`,
    });
    // JSON.parse makes "__proto__" an own key; a hand-written file is the only way to get one.
    const text = `{"logins": {"__proto__": ${JSON.stringify(entry("proto"))}, ` +
      `"constructor": ${JSON.stringify(entry("ctor"))}, "user_00009Alice": ${JSON.stringify(entry("alice"))}}}`;
    await Deno.writeTextFile(path, text, { mode: 0o600 });
    const file = tokenFile(path);
    const read = await file.read();
    assert.ok(read.ok, read.ok ? "" : read.error);
    const byUser = new Map(read.value.logins.map((l) => [l.userId, l.accessToken]));
    assert.deepEqual(
      [...byUser].sort(),
      [["__proto__", "test-access-proto"], ["constructor", "test-access-ctor"], [
        "user_00009Alice",
        "test-access-alice",
      ]].sort(),
    );
    assert.equal(Object.getPrototypeOf({}), Object.prototype);
    assert.equal((Object.prototype as Record<string, unknown>).access_token, undefined);

    assert.ok((await file.write(read.value.logins)).ok);
    const again = await tokenFile(path).read();
    assert.ok(again.ok);
    assert.deepEqual(
      new Map(again.value.logins.map((l) => [l.userId, l.accessToken])),
      byUser,
      "a login was lost on the way through the file",
    );
  });
});

Deno.test("an expiry no date can hold is written as long past, instead of failing this and every later write", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const file = tokenFile(path);
    const absurd = [{ ...login("user_1", "far"), expiresAt: 1e20 }, { ...login("user_2", "nan"), expiresAt: NaN }];
    const written = await file.write(absurd);
    assert.ok(written.ok, written.ok ? "" : written.error);
    const stored = await storedIn(path);
    assert.deepEqual(stored.map((l) => [l.userId, l.accessToken, l.expiresAt]), [
      ["user_1", "test-access-far", 0],
      ["user_2", "test-access-nan", 0],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Odd things at the tokens path and at its .tmp

Deno.test("a folder at the tokens path is a read error and a write error, and the folder is left as it was", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    await Deno.mkdir(path);
    await Deno.writeTextFile(join(path, "inside"), "someone's file");
    const file = tokenFile(path);
    assertError(await file.read(), path, "folder");
    assertError(await file.write([login("user_1", "one")]), path, "folder");
    assert.equal(await Deno.readTextFile(join(path, "inside")), "someone's file");
    assert.deepEqual(await listing(dir), ["tokens.json"]);
  });
});

Deno.test("a FIFO at the tokens path is a read error at once, not a read that waits for a writer forever", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const made = await run("mkfifo", [path]);
    assert.equal(made.code, 0, made.stderr);
    const reading = tokenFile(path).read();
    const settled = await settlesWithin(reading, 2_000);
    if (!settled) {
      // Releases the stuck read so the test ends (and fails) instead of hanging.
      const writer = await Deno.open(path, { write: true });
      writer.close();
    }
    assert.ok(settled, "read() waited on the FIFO");
    assertError(await reading, path, "not a regular file");
  });
});

Deno.test("a leftover .tmp that is a symbolic link or an empty folder is cleared, and the link's target is untouched", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const victim = join(dir, "victim.txt");
    await Deno.writeTextFile(victim, "not yours");
    await Deno.symlink(victim, `${path}.tmp`);
    const file = tokenFile(path);
    const first = await file.write([login("user_1", "one")]);
    assert.ok(first.ok, first.ok ? "" : first.error);
    assert.equal(await Deno.readTextFile(victim), "not yours");
    assert.ok((await Deno.lstat(path)).isFile);

    await Deno.mkdir(`${path}.tmp`);
    const second = await file.write([login("user_1", "two")]);
    assert.ok(second.ok, second.ok ? "" : second.error);
    assert.equal((await storedIn(path))[0].accessToken, "test-access-two");
    assert.deepEqual(await listing(dir), ["tokens.json", "victim.txt"]);
  });
});

Deno.test("a .tmp folder with files in it fails the write, naming it, and the tokens file is untouched", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const file = tokenFile(path);
    assert.ok((await file.write([login("user_1", "one")])).ok);
    const before = await Deno.readTextFile(path);
    await Deno.mkdir(`${path}.tmp`);
    await Deno.writeTextFile(join(`${path}.tmp`, "inside"), "x");
    const written = await file.write([login("user_1", "two")]);
    assertError(written, `${path}.tmp`, "in the way");
    assert.equal(await Deno.readTextFile(path), before);
  });
});

Deno.test("read() and write() resolve with an error for paths that cannot be files at all, never reject", async () => {
  await withTempDir(async (dir) => {
    const plain = join(dir, "plain");
    await Deno.writeTextFile(plain, "a file, not a folder");
    const paths = [join(plain, "tokens.json"), join(dir, "nul\0byte.json"), join(dir, "x".repeat(300))];
    for (const path of paths) {
      const file = tokenFile(path);
      const read = await file.read().then((r) => r, (e) => assert.fail(`read() threw for ${path}: ${e}`));
      const written = await file.write([login("user_1", "one")]).then(
        (r) => r,
        (e) => assert.fail(`write() threw for ${path}: ${e}`),
      );
      for (const result of [read, written]) {
        if (!result.ok) assert.ok(!result.error.includes("\n"), result.error);
      }
      assert.equal(written.ok, false, `writing to ${JSON.stringify(path)} succeeded`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Mounts and full disks

Deno.test({
  name: "a disk that fills during the write leaves the old file intact, removes the .tmp, and says no space left",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("token_file_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const folder = join(dir, "small");
      await Deno.mkdir(folder);
      await withMount(["-t", "tmpfs", "-o", "size=16k,mode=700", "tmpfs"], folder, async () => {
        const path = join(folder, "tokens.json");
        const file = tokenFile(path);
        assert.ok((await file.write([login("user_1", "old")])).ok);
        const before = await Deno.readTextFile(path);
        // About 40 KiB of logins cannot fit in what is left of 16 KiB.
        const many = Array.from(
          { length: 40 },
          (_, i) => ({ ...login(`user_${i}`, "new"), accessToken: "a".repeat(1000) }),
        );
        const written = await file.write(many);
        assertError(written, path, "no space left on device");
        assert.equal(await Deno.readTextFile(path), before);
        assert.deepEqual(await listing(folder), ["tokens.json"]);
      });
    });
  },
});

Deno.test({
  name: "replacing a bind-mounted tokens file fails with the mount fix, and leaves the mounted file and no .tmp",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("token_file_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const path = join(dir, "tokens.json");
      const source = join(dir, "host-tokens.json");
      const original = encodeLogins([login("user_1", "mounted")]);
      await Deno.writeTextFile(source, original, { mode: 0o600 });
      await Deno.writeTextFile(path, "");
      await withBind(source, path, async () => {
        const file = tokenFile(path);
        assert.ok((await file.read()).ok);
        const written = await file.write([login("user_1", "rotated")]);
        assertError(written, path, "mount point", "mount its folder");
        assert.equal(await Deno.readTextFile(path), original);
        assert.deepEqual(await listing(dir), ["host-tokens.json", "tokens.json"]);
      });
    });
  },
});

Deno.test({
  name: "a loose mode that cannot be fixed (a read-only mount) is a notice and the logins are read, not a crash",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("token_file_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const folder = join(dir, "state");
      await Deno.mkdir(folder);
      const path = join(folder, "tokens.json");
      const alice = login("user_00009Alice", "alice");
      await Deno.writeTextFile(path, encodeLogins([alice]));
      await Deno.chmod(path, 0o644);
      await withReadOnly(folder, async () => {
        const read = await tokenFile(path).read();
        assert.ok(read.ok, read.ok ? "" : read.error);
        assert.deepEqual(read.value.logins, [alice]);
        const notice = read.value.notice ?? "";
        assert.ok(notice.includes(path) && notice.includes("644"), notice);
        assert.ok(notice.includes("cannot be made 600"), notice);
      });
    });
  },
});

// ---------------------------------------------------------------------------------------------
// The start-up check

Deno.test("checkTokenPath accepts a new file in a writable folder and an existing file, and changes nothing", async () => {
  await withTempDir(async (dir) => {
    const absent = join(dir, "tokens.json");
    assert.deepEqual(await checkTokenPath(absent), { ok: true, value: undefined });
    assert.deepEqual(await listing(dir), []);

    const present = join(dir, "present.json");
    await Deno.writeTextFile(present, encodeLogins([login("user_1", "one")]), { mode: 0o600 });
    const before = await Deno.stat(present);
    assert.deepEqual(await checkTokenPath(present), { ok: true, value: undefined });
    const after = await Deno.stat(present);
    assert.equal(after.ino, before.ino);
    assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
    assert.deepEqual(await listing(dir), ["present.json"]);
  });
});

Deno.test("checkTokenPath refuses a missing folder, naming it and saying to create it", async () => {
  await withTempDir(async (dir) => {
    const folder = join(dir, "not-yet-mounted");
    const path = join(folder, "tokens.json");
    const message = assertError(await checkTokenPath(path), path, `"${folder}"`, "create it");
    assert.ok(!message.includes("\n"));
  });
});

Deno.test("checkTokenPath refuses a folder, a FIFO, a path through a file, and symbolic links (live or dangling)", async () => {
  await withTempDir(async (dir) => {
    const folder = join(dir, "a-folder");
    await Deno.mkdir(folder);
    assertError(await checkTokenPath(folder), folder, "folder, not a file");

    const fifo = join(dir, "fifo");
    assert.equal((await run("mkfifo", [fifo])).code, 0);
    assertError(await checkTokenPath(fifo), fifo, "not a regular file");

    const plain = join(dir, "plain");
    await Deno.writeTextFile(plain, "");
    assertError(await checkTokenPath(join(plain, "tokens.json")), join(plain, "tokens.json"));

    const target = join(dir, "real.json");
    await Deno.writeTextFile(target, encodeLogins([login("user_1", "one")]));
    const link = join(dir, "link.json");
    await Deno.symlink(target, link);
    assertError(await checkTokenPath(link), link, "symbolic link", `"${target}"`);
    const dangling = join(dir, "dangling.json");
    await Deno.symlink(join(dir, "gone.json"), dangling);
    assertError(await checkTokenPath(dangling), dangling, "symbolic link", "does not exist");
  });
});

Deno.test({
  name: "checkTokenPath refuses a bind-mounted file, and a folder mounted where the file should be, with the fix",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("token_file_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const path = join(dir, "tokens.json");
      const source = join(dir, "host-tokens.json");
      await Deno.writeTextFile(source, encodeLogins([login("user_1", "one")]));
      await Deno.writeTextFile(path, "");
      await withBind(source, path, async () => {
        assertError(await checkTokenPath(path), path, "mount point", "-v ./data:/data", "mount its folder");
      });
      // `docker run -v ./tokens.json:/app/tokens.json` with no such file on the host mounts a folder.
      await Deno.remove(path);
      await Deno.mkdir(path);
      const hostFolder = join(dir, "host-folder");
      await Deno.mkdir(hostFolder);
      await withBind(hostFolder, path, async () => {
        // Seen as a folder (a mount from the same file system is not told apart), with the same fix.
        assertError(await checkTokenPath(path), path, "folder, not a file", "mount its folder");
      });
      // Mounted nowhere, a file there is fine again.
      await Deno.remove(path);
      assert.ok((await checkTokenPath(path)).ok);
    });
  },
});

Deno.test({
  name: "checkTokenPath refuses a folder on a read-only mount, naming it",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("token_file_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const folder = join(dir, "state");
      await Deno.mkdir(folder);
      const path = join(folder, "tokens.json");
      await Deno.writeTextFile(path, encodeLogins([login("user_1", "one")]), { mode: 0o600 });
      await withReadOnly(folder, async () => {
        assertError(await checkTokenPath(path), path, `"${folder}"`, "read-only");
        assertError(await checkTokenPath(join(folder, "new.json")), join(folder, "new.json"), "read-only");
      });
      assert.ok((await checkTokenPath(path)).ok);
    });
  },
});
