// One exporter per tokens file and per data store (issue 15, finding 2). Two real programs (`deno run …
// main.ts`, the start task's permissions) on one config: the second refuses in one line naming the
// file, before it listens; once the first is killed with SIGKILL, the kernel has let go of its lock
// and a new one starts. The same for two configs sharing only a data store. lockInstance itself is
// tried in this process for what a start must refuse around the lock file.

import assert from "node:assert/strict";
import { join } from "node:path";
import { startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import { lockExporterFiles, lockInstance, lockPathFor } from "../lib/store/instance_lock.ts";
import {
  bareConfigFields,
  CLIENT_ID,
  CLIENT_SECRET,
  configFields,
  freePort,
  get,
  PROGRAM,
  type Running,
  runWhileProbing,
  startServing,
  writeConfig,
} from "./helpers/e2e.ts";
import { withTempDir } from "./helpers/harness.ts";
import { cannotMount, explainSkipped, notRoot, withReadOnly } from "./helpers/mounts.ts";
if (notRoot !== null) explainSkipped("instance_lock_test's read-only folder test", notRoot);

const STACK_TRACE = /^\s+at |error: Uncaught|Stack trace/m;

/** Starts the program on `configPath` listening on `port` (not the config's); waits until it serves /healthz. */
function startOn(configPath: string, port: number): Promise<Running> {
  return startServing(["--config", configPath, "--web.listen-address", `127.0.0.1:${port}`], port);
}

/** Runs a second start on `configPath` (on a port of its own) and asserts the one-line refusal naming `file`. */
async function assertSecondRefused(configPath: string, file: string): Promise<string> {
  const port = freePort();
  const ended = await runWhileProbing(
    Deno.execPath(),
    [...PROGRAM, "--config", configPath, "--web.listen-address", `127.0.0.1:${port}`],
    port,
  );
  const said = ended.stderrLines.join("\n");
  assert.equal(ended.listened, false, `the second exporter listened:\n${said}`);
  assert.notEqual(ended.code, 0, `the second exporter exited 0:\n${said}`);
  assert.equal(ended.stderrLines.length, 1, `the second exporter said more than one line:\n${said}`);
  const line = ended.stderrLines[0];
  assert.ok(line.includes(`"${file}"`), `the refusal does not name "${file}": ${line}`);
  assert.match(line, /another exporter is using/i);
  assert.doesNotMatch(line, STACK_TRACE);
  return line;
}

Deno.test("a second exporter on the same config refuses in one line naming the tokens file; after a SIGKILL of the first, a new one starts", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: true });
  await withTempDir(async (dir) => {
    const configPath = await writeConfig(dir, configFields(fake, freePort()));
    const tokensPath = join(dir, "tokens.json");
    const firstPort = freePort();
    const first = await startOn(configPath, firstPort);
    let third: Running | null = null;
    try {
      await assertSecondRefused(configPath, tokensPath);
      // The refused start left the first one serving.
      assert.equal((await get(`http://127.0.0.1:${firstPort}/healthz`)).status, 200);
      const info = await Deno.stat(lockPathFor(tokensPath));
      assert.equal((info.mode ?? 0) & 0o777, 0o600, "the lock file is not mode 600");
      // --check-config only reads: it runs beside a live exporter.
      const checked = await runWhileProbing(
        Deno.execPath(),
        [...PROGRAM, "--config", configPath, "--check-config"],
        freePort(),
      );
      assert.equal(checked.code, 0, checked.stderrLines.join("\n"));

      await first.stop("SIGKILL");
      third = await startOn(configPath, freePort());
    } finally {
      await first.stop("SIGKILL");
      await third?.stop("SIGKILL");
    }
  });
  await fake.close();
});

Deno.test("two configs sharing only data_path: the second refuses in one line naming the data store; after a SIGKILL of the first, it starts", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: true });
  await withTempDir(async (dir) => {
    const dataPath = join(dir, "shared.kv");
    await Deno.mkdir(join(dir, "a"));
    await Deno.mkdir(join(dir, "b"));
    const configA = await writeConfig(join(dir, "a"), { ...configFields(fake, freePort()), data_path: dataPath });
    const configB = await writeConfig(join(dir, "b"), { ...configFields(fake, freePort()), data_path: dataPath });
    const first = await startOn(configA, freePort());
    let second: Running | null = null;
    try {
      await assertSecondRefused(configB, dataPath);
      await first.stop("SIGKILL");
      second = await startOn(configB, freePort());
    } finally {
      await first.stop("SIGKILL");
      await second?.stop("SIGKILL");
    }
  });
  await fake.close();
});

Deno.test("lockInstance: a second hold on the same file is refused at once, and taken once the first lets go", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    const first = await lockInstance(path, "tokens file");
    assert.ok(first.ok, first.ok ? "" : first.error);
    try {
      // flock conflicts between two opens even within one process, so this is what a second exporter sees.
      const second = await lockInstance(path, "tokens file");
      assert.equal(second.ok, false);
      assert.match(second.ok ? "" : second.error, /^Another exporter is using the tokens file ".*tokens\.json"/);
      assert.ok(!(second.ok ? "" : second.error).includes("\n"));
    } finally {
      first.value.release();
    }
    const again = await lockInstance(path, "tokens file");
    assert.ok(again.ok, again.ok ? "" : again.error);
    again.value.release();
    // The lock is a file of its own: the tokens file is never created or touched by it.
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  });
});

Deno.test("lockInstance refuses in one line a lock path that is a folder, a FIFO or a symbolic link (even to the guarded file)", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "tokens.json");
    await Deno.writeTextFile(path, "{}");
    const cases: Array<[string, () => Promise<void>]> = [
      ["a folder", () => Deno.mkdir(lockPathFor(path))],
      ["a FIFO", async () => {
        const made = await new Deno.Command("mkfifo", { args: [lockPathFor(path)] }).output();
        assert.equal(made.code, 0);
      }],
      ["a symbolic link", () => Deno.symlink(path, lockPathFor(path))],
    ];
    for (const [kind, make] of cases) {
      await make();
      const locked = await lockInstance(path, "tokens file");
      assert.equal(locked.ok, false, `${kind} was taken as the lock file`);
      const message = locked.ok ? "" : locked.error;
      assert.ok(message.includes(`"${path}"`) && message.includes(kind), `${kind}: ${message}`);
      assert.ok(!message.includes("\n"));
      await Deno.remove(lockPathFor(path));
    }
    assert.equal(await Deno.readTextFile(path), "{}");
  });
});

Deno.test("lockInstance: a lock file that cannot be created is one line naming it; the memory and remote stores take no lock", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "missing-folder", "store.kv");
    const locked = await lockInstance(path, "data store");
    assert.equal(locked.ok, false);
    const message = locked.ok ? "" : locked.error;
    assert.ok(message.includes(`"${lockPathFor(path)}"`) && message.includes("cannot create"), message);

    const tokensPath = join(dir, "tokens.json");
    for (const dataPath of [":memory:", "https://kv.example/store"]) {
      const held = await lockExporterFiles({ tokensPath, dataPath });
      assert.ok(held.ok, held.ok ? "" : held.error);
      assert.deepEqual(held.value.map((lock) => lock.path), [lockPathFor(tokensPath)]);
      for (const lock of held.value) lock.release();
    }
  });
});

Deno.test({
  name:
    "a data store in a read-only folder: the start refuses in one line naming data_path and the file, before any lock",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("instance_lock_test's test that mounts")) return;
    await withTempDir(async (dir) => {
      const folder = join(dir, "store");
      await Deno.mkdir(folder);
      const dataPath = join(folder, "monzo-exporter.kv");
      (await Deno.openKv(dataPath)).close();
      const port = freePort();
      const configPath = await writeConfig(dir, {
        ...bareConfigFields(port),
        data_path: dataPath,
      });
      const ended = await withReadOnly(
        folder,
        () => runWhileProbing(Deno.execPath(), [...PROGRAM, "--config", configPath], port),
      );
      const said = ended.stderrLines.join("\n");
      assert.equal(ended.listened, false, said);
      assert.notEqual(ended.code, 0, said);
      assert.equal(ended.stderrLines.length, 1, said);
      assert.ok(said.startsWith(`Cannot use data_path "${dataPath}": `) && said.includes("read-only"), said);
      await assert.rejects(Deno.stat(lockPathFor(dataPath)), Deno.errors.NotFound);
    });
  },
});
