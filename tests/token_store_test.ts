import assert from "node:assert/strict";
import { join } from "node:path";
import type { Logger } from "../lib/shared/log.ts";
import { decodeLogins, type StoredLogin, tokenFile } from "../lib/logins/token_file.ts";
import { problem } from "../lib/shared/problems.ts";
import { loginKey, TokenStore } from "../lib/logins/token_store.ts";
import { generationOf } from "./helpers/token_writer.ts";
import { withTempDir } from "./helpers/harness.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

interface LogLine {
  readonly level: "info" | "warn" | "error";
  readonly message: string;
}

function recordingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    log: {
      info: (message) => lines.push({ level: "info", message }),
      warn: (message) => lines.push({ level: "warn", message }),
      error: (message) => lines.push({ level: "error", message }),
    },
  };
}

async function openStore(path: string) {
  const { log, lines } = recordingLogger();
  const store = await TokenStore.open(tokenFile(path), log);
  return { store, lines };
}

async function fileMode(path: string): Promise<number> {
  const mode = (await Deno.stat(path)).mode;
  assert.notEqual(mode, null, "this platform reports no file modes");
  return mode! & 0o777;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(path));
}

function login(userId: string | null, tag: string, expiresAt = Date.UTC(2026, 5, 1, 12, 0, 0)): StoredLogin {
  return { userId, accessToken: `test-access-${tag}`, refreshToken: `test-refresh-${tag}`, expiresAt };
}

function byUser(logins: readonly StoredLogin[]): StoredLogin[] {
  return [...logins].sort((a, b) => (a.userId ?? "").localeCompare(b.userId ?? ""));
}

/** A tokens.json as the original Rust exporter writes it (serde_json pretty, chrono's RFC 3339). */
const ORIGINAL_FILE = `{
  "access_token": "test-access-token-from-the-original",
  "expires_at": "2026-12-01T10:00:00.123456789Z",
  "refresh_token": "test-refresh-token-from-the-original"
}`;
const ORIGINAL_EXPIRY = Date.UTC(2026, 11, 1, 10, 0, 0, 123);

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Reads a tokens file as the original exporter does: serde into
 * `{access_token: String, expires_at: DateTime<Utc>, refresh_token: String}`, unknown fields ignored.
 */
function readAsOriginal(json: unknown): { accessToken: string; expiresAt: number; refreshToken: string } {
  assert.ok(typeof json === "object" && json !== null && !Array.isArray(json), "not a JSON object");
  const record = json as Record<string, unknown>;
  for (const field of ["access_token", "expires_at", "refresh_token"]) {
    assert.equal(typeof record[field], "string", `the original needs ${field} as a string`);
  }
  const expiresAt = record.expires_at as string;
  assert.match(expiresAt, RFC3339, "the original parses expires_at as RFC 3339");
  return {
    accessToken: record.access_token as string,
    expiresAt: Date.parse(expiresAt),
    refreshToken: record.refresh_token as string,
  };
}

// ---------------------------------------------------------------------------------------------
// The file format

Deno.test("the original exporter's tokens.json is read, with nanosecond expiry and no user id", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    await Deno.writeTextFile(path, ORIGINAL_FILE, { mode: 0o600 });
    const { store, lines } = await openStore(path);
    assert.equal(store.loadError, null);
    assert.deepEqual(store.logins(), [{
      userId: null,
      accessToken: "test-access-token-from-the-original",
      refreshToken: "test-refresh-token-from-the-original",
      expiresAt: ORIGINAL_EXPIRY,
    }]);
    assert.deepEqual(store.statuses(), [{ userId: null, loggedIn: true, expiresAt: ORIGINAL_EXPIRY }]);
    assert.deepEqual(lines, [], "a good file with mode 600 gives nothing to say");
  });
});

Deno.test("expires_at is read in the RFC 3339 spellings chrono writes", () => {
  for (
    const [text, expected] of [
      ["2026-12-01T10:00:00Z", Date.UTC(2026, 11, 1, 10, 0, 0)],
      ["2026-12-01T10:00:00.5Z", Date.UTC(2026, 11, 1, 10, 0, 0, 500)],
      ["2026-12-01T10:00:00.123456789Z", ORIGINAL_EXPIRY],
      ["2026-12-01T11:00:00.123+01:00", ORIGINAL_EXPIRY],
    ] as const
  ) {
    const decoded = decodeLogins(JSON.stringify({ access_token: "a", expires_at: text, refresh_token: "r" }));
    assert.ok(decoded.ok, `${text}: ${decoded.ok ? "" : decoded.error}`);
    assert.equal(decoded.value[0].expiresAt, expected, text);
  }
});

Deno.test("with one login the file keeps the original format, plus user_id, and the original can read it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const { store } = await openStore(path);
    const alice = login("user_00009Alice", "alice", ORIGINAL_EXPIRY);
    assert.ok((await store.apply({ kind: "logged_in", login: alice })).written.ok);
    const json = await readJson(path);
    assert.deepEqual(Object.keys(json).sort(), ["access_token", "expires_at", "refresh_token", "user_id"]);
    assert.equal(json.user_id, "user_00009Alice");
    assert.deepEqual(readAsOriginal(json), {
      accessToken: alice.accessToken,
      expiresAt: alice.expiresAt,
      refreshToken: alice.refreshToken,
    });
    const reopened = await openStore(path);
    assert.deepEqual(reopened.store.logins(), [alice]);
  });
});

Deno.test("a login without a refresh token still writes the refresh_token field the original requires", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const { store } = await openStore(path);
    const noRefresh: StoredLogin = { ...login("user_00009Alice", "alice"), refreshToken: null };
    assert.ok((await store.apply({ kind: "logged_in", login: noRefresh })).written.ok);
    assert.equal(readAsOriginal(await readJson(path)).refreshToken, "");
    assert.deepEqual((await openStore(path)).store.logins(), [noRefresh]);
  });
});

Deno.test("the original's login, once its user is known, is replaced rather than kept twice", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    await Deno.writeTextFile(path, ORIGINAL_FILE, { mode: 0o600 });
    const { store } = await openStore(path);
    const [original] = store.logins();
    const identified = { ...original, userId: "user_00009Alice" };
    assert.ok((await store.apply({ kind: "identified", from: original, login: identified })).written.ok);
    assert.deepEqual(store.logins(), [identified]);
    const json = await readJson(path);
    assert.equal(json.user_id, "user_00009Alice");
    assert.equal(readAsOriginal(json).accessToken, original.accessToken);
  });
});

Deno.test("two logins are written in the multi-login format and both are read back", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const { store } = await openStore(path);
    const alice = login("user_00009Alice", "alice");
    const bob = login("user_00009Bob", "bob", Date.UTC(2026, 6, 1));
    assert.ok((await store.apply({ kind: "logged_in", login: alice })).written.ok);
    assert.ok((await store.apply({ kind: "logged_in", login: bob })).written.ok);
    const json = await readJson(path);
    assert.deepEqual(Object.keys(json), ["logins"]);
    assert.deepEqual(Object.keys(json.logins as object).sort(), ["user_00009Alice", "user_00009Bob"]);
    const reopened = await openStore(path);
    assert.equal(reopened.store.loadError, null);
    assert.deepEqual(byUser(reopened.store.logins()), [alice, bob]);
  });
});

// ---------------------------------------------------------------------------------------------
// File mode

Deno.test("the tokens file is written with mode 600, even over a looser file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const { store } = await openStore(path);
    assert.ok((await store.apply({ kind: "logged_in", login: login("user_00009Alice", "alice") })).written.ok);
    assert.equal(await fileMode(path), 0o600);
    await Deno.chmod(path, 0o644);
    assert.ok((await store.apply({ kind: "logged_in", login: login("user_00009Bob", "bob") })).written.ok);
    assert.equal(await fileMode(path), 0o600);
  });
});

Deno.test("a tokens file readable by others is made 600 at start, with a notice", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    await Deno.writeTextFile(path, ORIGINAL_FILE);
    await Deno.chmod(path, 0o644);
    const { store, lines } = await openStore(path);
    assert.equal(await fileMode(path), 0o600);
    assert.equal(store.logins().length, 1, "the login is still read");
    assert.equal(store.loadError, null);
    const warnings = lines.filter((line) => line.level === "warn");
    assert.equal(warnings.length, 1, JSON.stringify(lines));
    assert.ok(warnings[0].message.includes(path), warnings[0].message);
    assert.ok(warnings[0].message.includes("600"), warnings[0].message);
  });
});

// ---------------------------------------------------------------------------------------------
// Unreadable files and failed writes

Deno.test("a corrupt tokens file is a loadError, and the next save sets it aside instead of overwriting it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const corrupt = '{"access_token": "test-access-tok';
    await Deno.writeTextFile(path, corrupt, { mode: 0o600 });
    const { store, lines } = await openStore(path);
    assert.deepEqual(store.logins(), []);
    assert.ok(store.loadError?.includes(path), String(store.loadError));
    assert.ok(lines.some((line) => line.level === "error" && line.message.includes(path)), JSON.stringify(lines));

    const alice = login("user_00009Alice", "alice");
    assert.ok((await store.apply({ kind: "logged_in", login: alice })).written.ok);
    assert.equal(await Deno.readTextFile(`${path}.unreadable`), corrupt);
    const decoded = decodeLogins(await Deno.readTextFile(path));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value, [alice]);
    assert.equal(store.loadError, null, "the error is resolved once a new file is written");
  });
});

Deno.test("a tokens file of the wrong shape is a loadError naming the bad field", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    await Deno.writeTextFile(
      path,
      JSON.stringify({ access_token: "test-access", expires_at: "next tuesday", refresh_token: "test-refresh" }),
      { mode: 0o600 },
    );
    const { store } = await openStore(path);
    assert.deepEqual(store.logins(), []);
    assert.ok(store.loadError?.includes("expires_at"), String(store.loadError));
  });
});

/** Saves into a store whose writes fail, checks the login is kept, then lets `repair` fix it and flushes. */
async function checkWriteFailure(path: string, repair: () => Promise<void>): Promise<void> {
  const { store, lines } = await openStore(path);
  const alice = login("user_00009Alice", "alice");
  const saved = await store.apply({ kind: "logged_in", login: alice });
  assert.ok(saved.applied && !saved.written.ok, "the write should have failed");
  assert.deepEqual(store.logins(), [alice], "the login is kept in memory");
  // The poller shows writeError with the poll's problems; the store itself stays quiet.
  const problem = store.writeError ?? "";
  assert.ok(problem.includes(path), problem);
  assert.ok(!problem.includes(alice.accessToken) && !problem.includes(alice.refreshToken!));
  assert.deepEqual(lines.filter((line) => line.level === "error"), []);

  await repair();
  assert.ok((await store.flush()).ok);
  assert.equal(store.writeError, null);
  const decoded = decodeLogins(await Deno.readTextFile(path));
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value, [alice]);
  assert.equal(await fileMode(path), 0o600);

  // Nothing is left to write, so flush does not write again.
  await Deno.remove(path);
  assert.ok((await store.flush()).ok);
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
}

Deno.test("when the tokens folder is missing the login is kept in memory and flush() writes it later", async () => {
  await withTempDir(async (dir) => {
    const folder = join(dir, "not-yet-mounted");
    await checkWriteFailure(join(folder, "tokens.json"), () => Deno.mkdir(folder));
  });
});

const isRoot = Deno.uid() === 0;
if (isRoot) {
  console.log(
    "token_store_test: running as root, which can write into read-only folders; the read-only test is skipped",
  );
}

Deno.test({
  name: "when the tokens folder is read-only the login is kept in memory and flush() writes it later",
  ignore: isRoot,
  async fn() {
    await withTempDir(async (dir) => {
      const folder = join(dir, "state");
      await Deno.mkdir(folder);
      await Deno.chmod(folder, 0o500);
      await checkWriteFailure(join(folder, "tokens.json"), () => Deno.chmod(folder, 0o700));
    });
  },
});

// ---------------------------------------------------------------------------------------------
// Store behaviour

Deno.test("saving a new login of the same user replaces the old one", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const { store } = await openStore(path);
    const first = login("user_00009Alice", "first");
    const second = login("user_00009Alice", "second", first.expiresAt + 3_600_000);
    assert.ok((await store.apply({ kind: "logged_in", login: first })).written.ok);
    assert.ok((await store.apply({ kind: "logged_in", login: second })).written.ok);
    assert.deepEqual(store.logins(), [second]);
    assert.deepEqual(store.statuses(), [{ userId: "user_00009Alice", loggedIn: true, expiresAt: second.expiresAt }]);
    const json = await readJson(path);
    assert.equal(readAsOriginal(json).accessToken, second.accessToken);
    assert.ok(!(await Deno.readTextFile(path)).includes(first.accessToken));
  });
});

Deno.test("logOut forgets the login, records why in statuses(), and a new login clears it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const { store } = await openStore(path);
    const alice = login("user_00009Alice", "alice");
    const bob = login("user_00009Bob", "bob");
    assert.ok((await store.apply({ kind: "logged_in", login: alice })).written.ok);
    assert.ok((await store.apply({ kind: "logged_in", login: bob })).written.ok);
    const ended = problem("logged_out", alice.userId!, { detail: "invalid_grant" });
    assert.ok((await store.apply({ kind: "ended", from: alice, problem: ended })).written.ok);

    assert.deepEqual(store.logins(), [bob]);
    assert.equal(store.get(loginKey(alice)), undefined);
    const statuses = store.statuses();
    assert.deepEqual(statuses.find((s) => s.userId === alice.userId), {
      userId: alice.userId,
      loggedIn: false,
      reason: ended.message,
      problem: ended,
    });
    assert.deepEqual(statuses.find((s) => s.userId === bob.userId), {
      userId: bob.userId,
      loggedIn: true,
      expiresAt: bob.expiresAt,
    });
    // Back to one login: the file is in the original's format again, without the logged-out tokens.
    const text = await Deno.readTextFile(path);
    assert.ok(!text.includes(alice.accessToken));
    assert.equal(readAsOriginal(JSON.parse(text)).accessToken, bob.accessToken);

    const again = login("user_00009Alice", "alice-again");
    assert.ok((await store.apply({ kind: "logged_in", login: again })).written.ok);
    assert.deepEqual(store.statuses().filter((s) => s.userId === alice.userId), [
      { userId: alice.userId, loggedIn: true, expiresAt: again.expiresAt },
    ]);
  });
});

Deno.test("no temporary file is left behind after saves and log-outs", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const { store } = await openStore(path);
    for (let i = 0; i < 5; i++) {
      assert.ok((await store.apply({ kind: "logged_in", login: login(`user_0000${i}`, `n${i}`) })).written.ok);
    }
    const gone = store.get("user_00001")!;
    const ended = problem("logged_out", "user_00001", { detail: "invalid_grant" });
    assert.ok((await store.apply({ kind: "ended", from: gone, problem: ended })).written.ok);
    assert.ok((await store.apply({ kind: "logged_in", login: login("user_00002", "replaced") })).written.ok);
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["tokens.json"]);
  });
});

Deno.test("concurrent saves are written one after the other and all end up in the file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const { store } = await openStore(path);
    const logins = Array.from({ length: 10 }, (_, i) => login(`user_${i}`, `c${i}`));
    const results = await Promise.all(logins.map((l) => store.apply({ kind: "logged_in", login: l })));
    assert.ok(results.every((r) => r.applied && r.written.ok));
    const decoded = decodeLogins(await Deno.readTextFile(path));
    assert.ok(decoded.ok);
    assert.deepEqual(byUser(decoded.value), byUser(logins));
  });
});

// ---------------------------------------------------------------------------------------------
// Crash safety

const HELPER = new URL("./helpers/token_writer.ts", import.meta.url).pathname;
const DENO_JSON = new URL("../deno.json", import.meta.url).pathname;
const CRASH_LOGINS = 64;
const CRASH_TOKEN_LENGTH = 4_096;
const KILLS = 24;

/** Starts the writer, waits for its first complete write, kills it after `delayMs`. */
async function runAndKill(path: string, firstGeneration: number, delayMs: number): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      `--config=${DENO_JSON}`,
      "--allow-read",
      "--allow-write",
      HELPER,
      path,
      String(firstGeneration),
      String(CRASH_LOGINS),
      String(CRASH_TOKEN_LENGTH),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  let ended = false;
  try {
    while (!seen.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      seen += decoder.decode(value, { stream: true });
    }
    if (!ended) {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.kill("SIGKILL");
    }
  } finally {
    while (!(await reader.read()).done) { /* drain */ }
    reader.releaseLock();
  }
  const status = await child.status;
  const errors = await stderr;
  assert.ok(!ended, `the writer stopped before its first write (code ${status.code}): ${errors}`);
  assert.equal(status.signal, "SIGKILL", `the writer ended on its own: ${errors}`);
}

Deno.test("a writer killed at random moments always leaves a complete set of logins, old or new", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    let killedMidWrite = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const firstGeneration = (kill + 1) * 1_000_000;
      // Some kills right after the first write, most a little later, none at a fixed phase.
      const delayMs = kill % 4 === 0 ? 0 : Math.random() * 60;
      await runAndKill(path, firstGeneration, delayMs);
      try {
        await Deno.stat(`${path}.tmp`);
        killedMidWrite += 1;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }

      const text = await Deno.readTextFile(path);
      const decoded = decodeLogins(text);
      assert.ok(decoded.ok, `after kill ${kill} the file does not parse (${text.length} bytes)`);
      const logins = decoded.value;
      assert.equal(logins.length, CRASH_LOGINS, `after kill ${kill}: ${logins.length} logins`);
      const generation = Number(/^access-(\d+)-/.exec(logins[0].accessToken)?.[1]);
      assert.ok(generation >= firstGeneration, `after kill ${kill}: generation ${generation} is from an earlier run`);
      assert.deepEqual(
        byUser(logins),
        generationOf(generation, CRASH_LOGINS, CRASH_TOKEN_LENGTH),
        `after kill ${kill}: a mixed or torn set`,
      );
      assert.equal(await fileMode(path), 0o600);
    }
    console.log(`token_store_test: ${killedMidWrite} of ${KILLS} kills landed while a write was in progress`);
    assert.ok(killedMidWrite > 0, "no kill landed during a write, so the test proved nothing");

    // The exporter starts fine after a crash, and its next write clears the stale temporary file.
    const { store } = await openStore(path);
    assert.equal(store.loadError, null);
    assert.equal(store.logins().length, CRASH_LOGINS);
    assert.ok((await store.apply({ kind: "logged_in", login: login("user_00009Alice", "after-crash") })).written.ok);
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["tokens.json"]);
  });
});
