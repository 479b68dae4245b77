// The real program against file systems that lose logins (issue 7): a tokens file bind-mounted on
// its own, a read-only folder, a missing folder, a file of another user, run as `nobody` through
// setpriv. `deno run … main.ts --config X` runs with the start task's own permissions, so the checks
// work without --allow-sys. Each test either sees the start refuse in one line with the fix (exit 1,
// nothing listening, the file untouched) or sees the start go on and a later login keep the old
// file. Tests that need root, mounts or another user are skipped, saying why, where not allowed.

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { type FakeMonzo, startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import { decodeLogins, encodeLogins, type StoredLogin } from "../lib/logins/token_file.ts";
import {
  ALICE,
  AUTH_KEY,
  bareConfigFields,
  BOB,
  CLIENT_ID,
  CLIENT_SECRET,
  configFields,
  freePort,
  get,
  PROGRAM,
  programLines,
  ROOT,
  type Running,
  runWhileProbing,
  spawn,
  startServing,
  waitFor,
  writeConfig,
} from "./helpers/e2e.ts";
import {
  cannotMount,
  explainSkipped,
  nobodyCommand,
  nobodyIds,
  notRoot,
  otherUserUnavailable,
  run,
  withBind,
  withReadOnly,
} from "./helpers/mounts.ts";

const STACK_TRACE = /^\s+at |error: Uncaught|Stack trace/m;
const MOUNT_FIX = 'mount its folder instead, e.g. -v ./data:/data with tokens_path = "/data/tokens.json"';

// ---------------------------------------------------------------------------------------------
// Running as nobody: the deno binary, the repository and a copy of the npm cache must be readable.

async function denoDir(): Promise<string> {
  const info = await run(Deno.execPath(), ["info", "--json"]);
  return JSON.parse(info.stdout).denoDir;
}

/** A DENO_DIR owned by nobody holding the npm packages; removed by the caller. */
async function nobodyDenoDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "monzo-fs-deno-dir-" });
  await Deno.chmod(dir, 0o755);
  const copied = await run("cp", ["-a", join(await denoDir(), "npm"), join(dir, "npm")]);
  if (copied.code !== 0) throw new Error(`cannot copy the npm cache: ${copied.stderr}`);
  const { uid, gid } = await nobodyIds();
  const owned = await run("chown", ["-R", `${uid}:${gid}`, dir]);
  if (owned.code !== 0) throw new Error(`cannot chown the npm cache copy: ${owned.stderr}`);
  return dir;
}

/** The command and arguments that run the program as nobody with `denoDirPath`. */
function asNobody(denoDirPath: string, args: readonly string[]): [string, string[]] {
  return nobodyCommand([
    "env",
    `DENO_DIR=${denoDirPath}`,
    "HOME=/nonexistent",
    Deno.execPath(),
    ...PROGRAM.slice(0, 1),
    "--cached-only",
    ...PROGRAM.slice(1),
    ...args,
  ]);
}

/** Why the program cannot run as nobody here, or null when it can (probed by running --version). */
async function probeNobodyProgram(): Promise<string | null> {
  if (otherUserUnavailable !== null) return otherUserUnavailable;
  let dir: string | null = null;
  try {
    dir = await nobodyDenoDir();
    const [command, args] = asNobody(dir, ["--version"]);
    const child = spawn(command, args);
    const status = await child.status;
    await child.stop();
    if (status.code !== 0) return `nobody cannot run ${ROOT}/main.ts (${child.stderr.text.trim()})`;
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true });
  }
}

const nobodyUnavailable = await probeNobodyProgram();
if (nobodyUnavailable !== null) explainSkipped("filesystem_test's tests as nobody", nobodyUnavailable);
if (notRoot !== null) explainSkipped("filesystem_test's tests that mount", notRoot);

// ---------------------------------------------------------------------------------------------
// Helpers

/** A temporary folder that nobody can enter (mode 755), removed afterwards. */
async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "monzo-fs-test-" });
  await Deno.chmod(dir, 0o755);
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function withNobody(body: (denoDirPath: string) => Promise<void>): Promise<void> {
  const dir = await nobodyDenoDir();
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `tokens.json` in a folder `state` of `dir` that nobody owns (the file itself is the test's to make). */
async function nobodysTokensPath(dir: string): Promise<string> {
  const { uid } = await nobodyIds();
  const folder = join(dir, "state");
  await Deno.mkdir(folder);
  await Deno.chown(folder, uid, null);
  return join(folder, "tokens.json");
}

/** A config with no fake Monzo behind it (enough for the start-up checks), readable by nobody. */
async function writeBareConfig(dir: string, port: number, tokensPath: string): Promise<string> {
  const path = await writeConfig(dir, {
    ...bareConfigFields(port),
    tokens_path: tokensPath,
    // These tests are about the tokens file; the transaction store is kept out of their folders.
    data_path: ":memory:",
  });
  await Deno.chmod(path, 0o644);
  return path;
}

/**
 * Runs `--check-config` and then the start on `configPath` (as nobody when `denoDirPath` is given)
 * and asserts that both refuse in one line naming `tokensPath` and every one of `words`, exit 1,
 * and never listen.
 */
async function assertRefused(
  configPath: string,
  port: number,
  tokensPath: string,
  words: readonly string[],
  denoDirPath?: string,
): Promise<string> {
  let line = "";
  for (const extra of [["--check-config"], []]) {
    const args = ["--config", configPath, ...extra];
    const [command, commandArgs] = denoDirPath ? asNobody(denoDirPath, args) : [Deno.execPath(), [...PROGRAM, ...args]];
    const ended = await runWhileProbing(command, commandArgs, port);
    const what = extra.length ? "--check-config" : "the start";
    assert.equal(ended.listened, false, `${what} listened`);
    assert.equal(ended.code, 1, `${what} exited ${ended.code}:\n${ended.stderrLines.join("\n")}`);
    assert.equal(ended.stdout, "", `${what} printed: ${ended.stdout}`);
    assert.equal(ended.stderrLines.length, 1, `${what} said more than one line:\n${ended.stderrLines.join("\n")}`);
    line = ended.stderrLines[0];
    assert.ok(line.includes(`"${tokensPath}"`), `${what} does not name the tokens path: ${line}`);
    for (const word of words) assert.ok(line.includes(word), `${what}: "${word}" missing from: ${line}`);
    assert.doesNotMatch(line, STACK_TRACE);
  }
  return line;
}

function login(userId: string, tag: string): StoredLogin {
  return {
    userId,
    accessToken: `test-access-${tag}`,
    refreshToken: `test-refresh-${tag}`,
    expiresAt: Date.UTC(2030, 0, 1),
  };
}

async function storedIn(path: string): Promise<StoredLogin[]> {
  const decoded = decodeLogins(await Deno.readTextFile(path));
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  return decoded.value;
}

async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** Starts the program (as root) on a config pointed at `fake`; waits until it serves. */
async function startProgram(dir: string, fake: FakeMonzo, port: number): Promise<Running> {
  const configPath = await writeConfig(dir, { ...configFields(fake, port), data_path: ":memory:" });
  return await startServing(["--config", configPath], port);
}

/** Logs `userId` in through /authorize and /callback, as a browser does; the callback page's text. */
async function logInThroughBrowserFlow(fake: FakeMonzo, port: number, userId: string): Promise<string> {
  const base = `http://127.0.0.1:${port}`;
  const authorize = await fetch(`${base}/authorize?key=${encodeURIComponent(AUTH_KEY)}`, { redirect: "manual" });
  await authorize.body?.cancel();
  assert.equal(authorize.status, 302);
  const state = new URL(authorize.headers.get("location") ?? "").searchParams.get("state") ?? "";
  const code = fake.issueCode(userId, `${base}/callback`);
  const callback = await get(`${base}/callback?${new URLSearchParams({ code, state })}`);
  assert.equal(callback.status, 200, callback.text);
  return callback.text;
}

// ---------------------------------------------------------------------------------------------
// Refused at start

Deno.test("a tokens folder that does not exist: --check-config and the start refuse in one line saying to create it", async () => {
  await withTempDir(async (dir) => {
    const port = freePort();
    const tokensPath = join(dir, "state", "tokens.json");
    const configPath = await writeBareConfig(dir, port, tokensPath);
    await assertRefused(configPath, port, tokensPath, [`"${join(dir, "state")}"`, "create it"]);
    await assert.rejects(Deno.stat(join(dir, "state")), Deno.errors.NotFound);
  });
});

Deno.test({
  name:
    "a bind-mounted tokens file: --check-config and the start refuse in one line with the fix, and the file is untouched",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("filesystem_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const port = freePort();
      const tokensPath = join(dir, "tokens.json");
      const hostFile = join(dir, "host-tokens.json");
      const original = encodeLogins([login(ALICE, "mounted")]);
      await Deno.writeTextFile(hostFile, original, { mode: 0o600 });
      await Deno.writeTextFile(tokensPath, "");
      const configPath = await writeBareConfig(dir, port, tokensPath);
      await withBind(hostFile, tokensPath, async () => {
        await assertRefused(configPath, port, tokensPath, ["mount point", MOUNT_FIX]);
        assert.equal(await Deno.readTextFile(tokensPath), original);
      });
      assert.deepEqual(await listing(dir), ["config.toml", "host-tokens.json", "tokens.json"]);
    });
  },
});

Deno.test({
  name: "a tokens folder on a read-only mount: --check-config and the start refuse in one line naming the folder",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("filesystem_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const port = freePort();
      const folder = join(dir, "state");
      await Deno.mkdir(folder);
      const tokensPath = join(folder, "tokens.json");
      const original = encodeLogins([login(ALICE, "kept")]);
      await Deno.writeTextFile(tokensPath, original, { mode: 0o600 });
      const configPath = await writeBareConfig(dir, port, tokensPath);
      await withReadOnly(folder, async () => {
        await assertRefused(configPath, port, tokensPath, [`"${folder}"`, "read-only"]);
      });
      assert.equal(await Deno.readTextFile(tokensPath), original);
    });
  },
});

Deno.test({
  name:
    "as nobody, a root-owned mode-600 tokens file: --check-config and the start refuse with owner and mode, file untouched",
  ignore: nobodyUnavailable !== null,
  async fn() {
    await withTempDir(async (dir) => {
      await withNobody(async (denoDirPath) => {
        const port = freePort();
        const tokensPath = await nobodysTokensPath(dir);
        const original = encodeLogins([login(ALICE, "roots")]);
        await Deno.writeTextFile(tokensPath, original, { mode: 0o600 });
        const configPath = await writeBareConfig(dir, port, tokensPath);
        await assertRefused(configPath, port, tokensPath, [
          "permission denied",
          "owned by uid 0 with mode 600",
          `uid ${(await nobodyIds()).uid}`,
        ], denoDirPath);
        assert.equal(await Deno.readTextFile(tokensPath), original);
        const info = await Deno.stat(tokensPath);
        assert.equal(info.uid, 0);
        assert.equal((info.mode ?? 0) & 0o777, 0o600);
        assert.deepEqual(await listing(dirname(tokensPath)), ["tokens.json"]);
      });
    });
  },
});

Deno.test({
  name: "as nobody, a folder nobody cannot write: --check-config and the start refuse naming the folder",
  ignore: nobodyUnavailable !== null,
  async fn() {
    await withTempDir(async (dir) => {
      await withNobody(async (denoDirPath) => {
        const port = freePort();
        const folder = join(dir, "state");
        await Deno.mkdir(folder, { mode: 0o755 });
        await Deno.chmod(folder, 0o755);
        const tokensPath = join(folder, "tokens.json");
        const configPath = await writeBareConfig(dir, port, tokensPath);
        await assertRefused(
          configPath,
          port,
          tokensPath,
          [`"${folder}"`, "cannot create files", "writable"],
          denoDirPath,
        );
        assert.deepEqual(await listing(folder), []);
      });
    });
  },
});

Deno.test({
  name:
    "as nobody, a root-owned file in a sticky folder (like /tmp): the start refuses, since no save could replace it",
  ignore: nobodyUnavailable !== null,
  async fn() {
    await withTempDir(async (dir) => {
      await withNobody(async (denoDirPath) => {
        const port = freePort();
        const folder = join(dir, "shared");
        await Deno.mkdir(folder);
        await Deno.chmod(folder, 0o1777);
        const tokensPath = join(folder, "tokens.json");
        await Deno.writeTextFile(tokensPath, encodeLogins([login(ALICE, "roots")]));
        await Deno.chmod(tokensPath, 0o644);
        const configPath = await writeBareConfig(dir, port, tokensPath);
        await assertRefused(configPath, port, tokensPath, ["sticky", "uid 0"], denoDirPath);
        // The refusal is right: nobody really cannot replace the file there.
        const mine = join(folder, "mine");
        const tried = await run(...nobodyCommand([
          "sh",
          "-c",
          'echo x > "$1" && mv -f "$1" "$2"',
          "sh",
          mine,
          tokensPath,
        ]));
        assert.notEqual(tried.code, 0, "nobody could replace the file after all");
      });
    });
  },
});

// ---------------------------------------------------------------------------------------------
// The start goes on

Deno.test({
  name:
    "as nobody, a root-owned mode-644 tokens file it can read but not chmod: the start goes on with a one-line notice",
  ignore: nobodyUnavailable !== null,
  async fn() {
    await withTempDir(async (dir) => {
      await withNobody(async (denoDirPath) => {
        const port = freePort();
        const tokensPath = await nobodysTokensPath(dir);
        await Deno.writeTextFile(tokensPath, encodeLogins([login(ALICE, "loose")]));
        await Deno.chmod(tokensPath, 0o644);
        const configPath = await writeBareConfig(dir, port, tokensPath);
        const [command, args] = asNobody(denoDirPath, ["--config", configPath]);
        const program = spawn(command, args);
        try {
          await waitFor("the exporter to serve /healthz", async () => {
            return (await get(`http://127.0.0.1:${port}/healthz`)).status === 200;
          }, { timeoutMs: 20_000 }).catch((error) => {
            throw new Error(`${error.message}; stderr:\n${program.stderr.text}`);
          });
          const notice = programLines(program.stderr.text).find((line) => line.includes("cannot be made 600"));
          assert.ok(notice, `no notice about the mode:\n${program.stderr.text}`);
          assert.ok(notice.includes(tokensPath) && notice.includes("644"), notice);
          assert.doesNotMatch(program.stderr.text, STACK_TRACE);
          const page = await get(`http://127.0.0.1:${port}/`);
          assert.ok(page.text.includes(ALICE), "the stored login is not shown");
        } finally {
          await program.stop("SIGTERM");
        }
      });
    });
  },
});

Deno.test("an undecodable tokens file: the start goes on, and each later login keeps the earlier file under a new name", async () => {
  await withTempDir(async (dir) => {
    const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: true });
    try {
      const tokensPath = join(dir, "tokens.json");
      const incidents = ['{"access_token": "test-access-first', '{"access_token": "test-access-second'];
      for (const [index, corrupt] of incidents.entries()) {
        await Deno.writeTextFile(tokensPath, corrupt, { mode: 0o600 });
        const port = freePort();
        const program = await startProgram(dir, fake, port);
        try {
          await logInThroughBrowserFlow(fake, port, index === 0 ? ALICE : BOB);
          await waitFor("the new login on disk", async () => {
            try {
              return (await storedIn(tokensPath)).length === 1;
            } catch {
              return false;
            }
          });
        } finally {
          await program.stop("SIGTERM");
        }
        assert.doesNotMatch(program.stderr.text, STACK_TRACE);
      }
      assert.equal(await Deno.readTextFile(`${tokensPath}.unreadable`), incidents[0]);
      assert.equal(await Deno.readTextFile(`${tokensPath}.unreadable.1`), incidents[1]);
      assert.deepEqual((await storedIn(tokensPath)).map((l) => l.userId), [BOB]);
    } finally {
      await fake.close();
    }
  });
});

Deno.test({
  name:
    "a tokens file bind-mounted after the start: the save after a login fails with the mount fix in the log, file untouched",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("filesystem_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: true });
      try {
        const port = freePort();
        const tokensPath = join(dir, "tokens.json");
        const program = await startProgram(dir, fake, port);
        try {
          const hostFile = join(dir, "host-tokens.json");
          const original = encodeLogins([login(ALICE, "on-the-host")]);
          await Deno.writeTextFile(hostFile, original, { mode: 0o600 });
          await Deno.writeTextFile(tokensPath, "");
          await withBind(hostFile, tokensPath, async () => {
            await logInThroughBrowserFlow(fake, port, ALICE);
            const line = await waitFor(
              "the failed save in the log",
              () => programLines(program.stderr.text).find((l) => l.includes(MOUNT_FIX)),
            );
            assert.ok(line.includes(`"${tokensPath}"`), line);
            assert.equal(await Deno.readTextFile(tokensPath), original);
          });
          // The lock file is the running exporter's (lib/store/instance_lock.ts); nothing else is left beside.
          assert.deepEqual(await listing(dir), ["config.toml", "host-tokens.json", "tokens.json", "tokens.json.lock"]);
        } finally {
          await program.stop("SIGTERM");
        }
        assert.doesNotMatch(program.stderr.text, STACK_TRACE);
      } finally {
        await fake.close();
      }
    });
  },
});

// ---------------------------------------------------------------------------------------------
// The persistence itself, as nobody: the one way to see "permission denied" on read

Deno.test({
  name:
    "as nobody, a root-owned mode-600 file that cannot be read is moved aside by the next write, each incident to a new name",
  ignore: nobodyUnavailable !== null,
  async fn() {
    await withTempDir(async (dir) => {
      await withNobody(async (denoDirPath) => {
        const tokensPath = await nobodysTokensPath(dir);
        const helper = join(ROOT, "tests/helpers/token_file_once.ts");
        const originals = [encodeLogins([login(ALICE, "first")]), encodeLogins([login(ALICE, "second")])];
        for (const [index, original] of originals.entries()) {
          await Deno.writeTextFile(tokensPath, original, { mode: 0o600 });
          await Deno.chown(tokensPath, 0, 0);
          const ran = await run(...nobodyCommand([
            "env",
            `DENO_DIR=${denoDirPath}`,
            "HOME=/nonexistent",
            Deno.execPath(),
            "run",
            "--cached-only",
            `--config=${join(ROOT, "deno.json")}`,
            "--allow-read",
            "--allow-write",
            helper,
            tokensPath,
            `user_new${index}`,
          ]));
          assert.equal(ran.code, 0, ran.stderr);
          const { read, written } = JSON.parse(ran.stdout);
          assert.equal(read.ok, false);
          assert.ok(read.error.includes("permission denied"), read.error);
          const aside = index === 0 ? `${tokensPath}.unreadable` : `${tokensPath}.unreadable.1`;
          // JSON drops the undefined value: ok with nothing else but the name of the copy.
          assert.deepEqual(written, { ok: true, keptAside: aside });
        }
        for (const [index, aside] of [`${tokensPath}.unreadable`, `${tokensPath}.unreadable.1`].entries()) {
          assert.equal(await Deno.readTextFile(aside), originals[index]);
          const info = await Deno.stat(aside);
          assert.equal(info.uid, 0, `${aside} is not the root-owned original`);
          assert.equal((info.mode ?? 0) & 0o777, 0o600);
        }
        assert.deepEqual((await storedIn(tokensPath)).map((l) => l.userId), ["user_new1"]);
        assert.equal((await Deno.stat(tokensPath)).uid, (await nobodyIds()).uid);
      });
    });
  },
});
