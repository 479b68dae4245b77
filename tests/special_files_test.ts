// A FIFO, a folder or another non-file where the config, the tokens file or the data store should be
// (issue 15, finding 7), against the real program (`deno run … main.ts`, the start task's permissions).
// Each is refused in one line naming the file and what it is, and never hangs the start: every child has
// a deadline, after which it is killed and the test fails. Links to regular files keep working where
// they worked before (the config and the data store; a linked tokens file has always been refused).

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig, MAX_CONFIG_BYTES } from "../lib/config/config.ts";
import { startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import { openKv } from "../lib/store/kv.ts";
import { tokenFile } from "../lib/logins/token_file.ts";
import {
  bareConfigFields,
  CLIENT_ID,
  CLIENT_SECRET,
  configFields,
  freePort,
  PROGRAM,
  programLines,
  settlesWithin,
  spawn,
  startServing,
  writeConfig,
} from "./helpers/e2e.ts";
import { withTempDir } from "./helpers/harness.ts";

const STACK_TRACE = /^\s+at |error: Uncaught|Stack trace/m;
/** Long enough for a start on a loaded machine; a FIFO read waits for ever. */
const DEADLINE_MS = 20_000;

async function mkfifo(path: string): Promise<void> {
  const made = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
}

/** Runs the program with `args` to its end, killed at the deadline; whether it was, and what it said. */
async function runToEnd(args: readonly string[]): Promise<{ hung: boolean; code: number; lines: string[] }> {
  const running = spawn(Deno.execPath(), [...PROGRAM, ...args]);
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    running.child.kill("SIGKILL");
  }, DEADLINE_MS);
  await running.status.finally(() => clearTimeout(timer));
  const { code } = await running.stop();
  return { hung, code, lines: programLines(running.stderr.text) };
}

/** Asserts a one-line refusal, at once, naming `path` and `kind`. */
function assertRefused(ended: { hung: boolean; code: number; lines: string[] }, path: string, kind: string): void {
  const said = ended.lines.join("\n");
  assert.equal(ended.hung, false, `the program hung (killed after ${DEADLINE_MS / 1000} s); it said:\n${said}`);
  assert.notEqual(ended.code, 0, `exit code 0:\n${said}`);
  assert.equal(ended.lines.length, 1, `more than one line:\n${said}`);
  assert.ok(ended.lines[0].includes(`"${path}"`), `the line does not name "${path}": ${said}`);
  assert.ok(ended.lines[0].includes(kind), `the line does not say "${kind}": ${said}`);
  assert.doesNotMatch(said, STACK_TRACE);
}

/** A config's keys with no Monzo behind it: these starts end before any request. */
function bareFields(port: number): Record<string, string> {
  return { ...bareConfigFields(port), tokens_path: "tokens.json" };
}

const KINDS: ReadonlyArray<[string, string, (path: string) => Promise<void>]> = [
  ["a FIFO", "FIFO", mkfifo],
  ["a folder", "folder", (path) => Deno.mkdir(path)],
];

for (const [name, kind, make] of KINDS) {
  Deno.test(`${name} as the config: the start, --check-config and --healthcheck refuse in one line at once`, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "config.toml");
      await make(path);
      for (const extra of [[], ["--check-config"], ["--healthcheck"]]) {
        const ended = await runToEnd(["--config", path, ...extra]);
        assertRefused(ended, path, kind);
      }
    });
  });

  Deno.test(`${name} as the tokens file: the start and --check-config refuse in one line at once`, async () => {
    await withTempDir(async (dir) => {
      const tokensPath = join(dir, "tokens.json");
      await make(tokensPath);
      const configPath = await writeConfig(dir, {
        ...bareFields(freePort()),
        data_path: ":memory:",
      });
      for (const extra of [[], ["--check-config"]]) {
        assertRefused(await runToEnd(["--config", configPath, ...extra]), tokensPath, kind);
      }
    });
  });

  Deno.test(`${name} as data_path: the start and --check-config refuse in one line at once, and leave it where it is`, async () => {
    await withTempDir(async (dir) => {
      const dataPath = join(dir, "store.kv");
      await make(dataPath);
      const configPath = await writeConfig(dir, {
        ...bareFields(freePort()),
        data_path: dataPath,
      });
      for (const extra of [[], ["--check-config"]]) {
        assertRefused(await runToEnd(["--config", configPath, ...extra]), dataPath, kind);
      }
      const after = await Deno.lstat(dataPath);
      assert.ok(after.isFifo || after.isDirectory, "the data_path was replaced");
    });
  });
}

Deno.test("a config and a data store reached through symbolic links to regular files still start", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: true });
  await withTempDir(async (dir) => {
    const port = freePort();
    await Deno.mkdir(join(dir, "real"));
    const dataPath = join(dir, "store.kv");
    // A store made by a first start on the real path, then reached through a link.
    const realConfig = await writeConfig(join(dir, "real"), {
      ...configFields(fake, port),
      tokens_path: join(dir, "tokens.json"),
      data_path: join(dir, "real", "store.kv"),
    });
    await Deno.symlink(join(dir, "real", "store.kv"), dataPath);
    await Deno.writeTextFile(
      realConfig,
      (await Deno.readTextFile(realConfig)).replace(/^data_path = .*$/m, `data_path = ${JSON.stringify(dataPath)}`),
    );
    // The store file must exist for the link to lead somewhere: Deno KV makes it at first open.
    const kv = await Deno.openKv(join(dir, "real", "store.kv"));
    kv.close();
    const configLink = join(dir, "config.toml");
    await Deno.symlink(realConfig, configLink);
    const program = await startServing(["--config", configLink], port, DEADLINE_MS);
    try {
      assert.match(program.stderr.text, /Config ".*config\.toml" is valid/);
    } finally {
      await program.stop("SIGKILL");
    }
    assert.ok((await Deno.lstat(dataPath)).isSymlink, "the link to the store was replaced");
  });
  await fake.close();
});

Deno.test("the config, tokens and store readers refuse a socket, a device and a link to a FIFO by name, and a config beyond 1 MiB", async () => {
  await withTempDir(async (dir) => {
    const socketPath = join(dir, "socket");
    const listener = Deno.listen({ transport: "unix", path: socketPath });
    try {
      const fifo = join(dir, "fifo");
      await mkfifo(fifo);
      const linkToFifo = join(dir, "link-to-fifo");
      await Deno.symlink(fifo, linkToFifo);
      const cases: Array<[string, string]> = [
        [socketPath, "a socket"],
        ["/dev/null", "a character device"],
        [linkToFifo, "a FIFO"],
      ];
      for (const [path, kind] of cases) {
        const readers: Array<[string, Promise<{ ok: boolean; error?: string }>]> = [
          ["loadConfig", loadConfig(path)],
          ["tokenFile().read", tokenFile(path).read()],
          ["openKv", openKv(path)],
        ];
        for (const [reader, reading] of readers) {
          assert.ok(await settlesWithin(reading, 5_000), `${reader} hung on ${kind}`);
          const result = await reading;
          assert.equal(result.ok, false, `${reader} took ${kind}`);
          const message = result.error ?? "";
          assert.ok(message.includes(`"${path}"`) && message.includes(kind), `${reader}: ${message}`);
          assert.ok(!message.includes("\n"), message);
        }
      }
      const big = join(dir, "big.toml");
      await Deno.writeTextFile(big, `# ${"x".repeat(MAX_CONFIG_BYTES)}\n`);
      const loaded = await loadConfig(big);
      assert.equal(loaded.ok, false);
      assert.match(loaded.ok ? "" : loaded.error, /too large for a config file/);
    } finally {
      listener.close();
    }
  });
});
