// A reload never switches a protection off, and the web config and its certificate files are regular
// files read in bounded size and time: a FIFO, directory or device is refused in one line, at start
// and on reload, without hanging either.

import assert from "node:assert/strict";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { createLogger } from "../lib/shared/log.ts";
import { loadWebConfig, MAX_WEB_FILE_BYTES, watchWebConfig, type WebConfig } from "../lib/config/web_config.ts";
import { configFields, freePort, runWhileProbing, writeConfig } from "./helpers/e2e.ts";
import { type GatedExporter, withGatedExporter } from "./helpers/gated_app.ts";
import { withTempDir } from "./helpers/harness.ts";
import { haveTools, makeCertificates } from "./helpers/tls.ts";

const tools = haveTools();
if (!tools) console.warn("SKIPPED: openssl is not installed, so the TLS parts of these tests cannot run");

const hash = (password: string) => bcrypt.hashSync(password, 4);
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

async function loaded(path: string): Promise<WebConfig> {
  const result = await loadWebConfig(path);
  assert.ok(result.ok, result.ok ? "" : result.error.message);
  return result.value;
}

/** Settles with `promise`, or fails the test after `ms` rather than hanging it. */
async function within<T>(what: string, promise: Promise<T>, ms = 8_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function mkfifo(path: string): Promise<void> {
  const made = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(made.success, "mkfifo failed");
}

async function status({ exporter }: GatedExporter, authorization?: string, path = "/metrics") {
  const response = await exporter.app.request(path, { headers: authorization ? { authorization } : {} });
  return { status: response.status, text: await response.text() };
}

Deno.test("reload: a file caught empty, half-written or without its users keeps basic auth on, said at ERROR and on /", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "web.yml");
    const good = `basic_auth_users:\n  alice: ${hash("pw")}\n  bob: ${hash("bob")}\n`;
    await Deno.writeTextFile(path, good);
    const lines: string[] = [];
    const watch = watchWebConfig(await loaded(path), {
      log: createLogger({ sink: (line) => lines.push(line) }),
      intervalMs: 3_600_000,
    });
    try {
      await withGatedExporter({ config: watch.current, problem: watch.problem }, async (gated) => {
        const cases: Array<[string, string]> = [
          ["an empty file (a shell's > redirection, caught before the write)", ""],
          ["a file cut after its first line", "basic_auth_users:\n"],
          ["a file of comments only", "# basic auth\n"],
          ["a file with its users removed", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"],
          ["users set to nothing", "basic_auth_users: {}\n"],
        ];
        for (const [what, text] of cases) {
          // Written in place, as an editor or a full disk leaves it.
          await Deno.writeTextFile(path, text);
          await watch.check();
          assert.equal(watch.problem()?.code, "web_config_protection_off", `${what}: ${watch.problem()?.message}`);
          assert.equal(watch.current().users.size, 2, what);
          assert.equal((await status(gated)).status, 401, `${what}: /metrics answered without a password`);
          assert.equal((await status(gated, basic("alice", "pw"))).status, 200, what);
          const landing = await status(gated, basic("alice", "pw"), "/");
          assert.match(
            landing.text,
            /<p id="web-config" class="bad">Refused to reload web config .*basic auth off/,
            what,
          );
          // Back to the good file between cases, so each one is a fresh refusal.
          await Deno.writeTextFile(path, good);
          await watch.check();
          assert.equal(watch.problem(), null, what);
        }
        const errors = lines.filter((line) => / ERROR /.test(line));
        assert.equal(errors.length, cases.length, lines.join("\n"));
        for (const line of errors) {
          assert.ok(line.includes(path), line);
          assert.match(
            line,
            /basic_auth_users.*turning basic auth off needs a restart; the last valid web config stays/,
          );
        }
        // Fewer users, but some: a revocation, applied at once.
        await Deno.writeTextFile(path, `basic_auth_users:\n  alice: ${hash("pw")}\n`);
        await watch.check();
        assert.equal(watch.problem(), null);
        assert.equal((await status(gated, basic("bob", "bob"))).status, 401);
        assert.equal((await status(gated, basic("alice", "pw"))).status, 200);
      });
    } finally {
      watch.close();
    }
  });
});

Deno.test("a start with a web config without users serves without basic auth, as the file says", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "web.yml");
    await Deno.writeTextFile(path, "");
    const watch = watchWebConfig(await loaded(path), { log: createLogger({ sink: () => {} }), intervalMs: 3_600_000 });
    try {
      await withGatedExporter({ config: watch.current, problem: watch.problem }, async (gated) => {
        const metrics = await status(gated);
        assert.equal(metrics.status, 200);
        assert.match(metrics.text, /^# HELP /m);
        assert.equal(watch.problem(), null);
      });
    } finally {
      watch.close();
    }
  });
});

Deno.test({
  name: "reload: a file without its TLS section keeps TLS and basic auth on; the problem is said at ERROR",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      const certs = await makeCertificates(dir);
      const path = join(dir, "web.yml");
      const users = `basic_auth_users:\n  alice: ${hash("pw")}\n`;
      await Deno.writeTextFile(
        path,
        `tls_server_config:\n  cert_file: ${certs.certPath}\n  key_file: ${certs.keyPath}\n${users}`,
      );
      const lines: string[] = [];
      const watch = watchWebConfig(await loaded(path), {
        log: createLogger({ sink: (line) => lines.push(line) }),
        intervalMs: 3_600_000,
        onTls: () => {
          throw new Error("the certificate did not change");
        },
      });
      try {
        for (const text of [users, "", `tls_server_config:\n${users}`]) {
          await Deno.writeTextFile(path, text);
          await watch.check();
          assert.equal(watch.problem()?.code, "web_config_protection_off", watch.problem()?.message);
          assert.equal(watch.current().tls?.cert, certs.cert, "TLS is no longer in force");
          assert.equal(watch.current().users.size, 1, "basic auth is no longer in force");
        }
        assert.match(lines.join("\n"), / ERROR .*it has no tls_server_config, so it would turn TLS off/);
      } finally {
        watch.close();
      }
    });
  },
});

Deno.test("reload: a web config replaced by a FIFO is refused without blocking; a later revocation still applies", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "web.yml");
    await Deno.writeTextFile(path, `basic_auth_users:\n  alice: ${hash("old")}\n`);
    const lines: string[] = [];
    const watch = watchWebConfig(await loaded(path), {
      log: createLogger({ sink: (line) => lines.push(line) }),
      intervalMs: 3_600_000,
    });
    try {
      await withGatedExporter({ config: watch.current, problem: watch.problem }, async (gated) => {
        await Deno.remove(path);
        await mkfifo(path);
        for (let i = 0; i < 3; i++) await within("a look at a FIFO", watch.check());
        assert.equal(watch.problem()?.code, "web_config_unreadable");
        assert.match(watch.problem()?.message ?? "", /is a FIFO \(named pipe\), not a regular file$/);
        assert.equal((await status(gated)).status, 401);
        assert.equal((await status(gated, basic("alice", "old"))).status, 200);
        assert.equal(lines.filter((line) => / WARN .*FIFO/.test(line)).length, 1, lines.join("\n"));

        // A regular file again, which revokes the old password: applied at the next look.
        await Deno.remove(path);
        await Deno.writeTextFile(path, `basic_auth_users:\n  alice: ${hash("new")}\n`);
        await within("a look at the regular file", watch.check());
        assert.equal(watch.problem(), null);
        assert.equal((await status(gated, basic("alice", "old"))).status, 401);
        assert.equal((await status(gated, basic("alice", "new"))).status, 200);
      });
    } finally {
      watch.close();
    }
  });
});

Deno.test("the web config, certificate and key must be regular files (or links to them), read in bounded size", async () => {
  await withTempDir(async (dir) => {
    const users = `basic_auth_users:\n  alice: ${hash("pw")}\n`;
    const real = join(dir, "real.yml");
    await Deno.writeTextFile(real, users);
    await Deno.symlink(real, join(dir, "link.yml"));
    assert.equal((await loaded(join(dir, "link.yml"))).users.size, 1, "a link to a regular file was refused");

    await mkfifo(join(dir, "fifo"));
    await Deno.symlink(join(dir, "fifo"), join(dir, "fifo-link.yml"));
    await Deno.mkdir(join(dir, "folder.yml"));
    await Deno.writeTextFile(join(dir, "huge.yml"), `# ${"x".repeat(MAX_WEB_FILE_BYTES)}\n${users}`);
    // The certificate is read first, so the key file need not exist.
    const tls = (cert: string) => `tls_server_config:\n  cert_file: ${cert}\n  key_file: key.pem\n`;
    const cases: Array<[string, string, RegExp]> = [
      [join(dir, "fifo"), "web_config_unreadable", /is a FIFO \(named pipe\), not a regular file$/],
      [join(dir, "fifo-link.yml"), "web_config_unreadable", /is a FIFO \(named pipe\), not a regular file$/],
      [join(dir, "folder.yml"), "web_config_unreadable", /is a directory, not a regular file$/],
      ["/dev/zero", "web_config_unreadable", /is a character device, not a regular file$/],
      [join(dir, "huge.yml"), "web_config_unreadable", /is larger than 1 MiB/],
    ];
    await Deno.writeTextFile(join(dir, "cert-fifo.yml"), tls(join(dir, "fifo")));
    cases.push([join(dir, "cert-fifo.yml"), "web_config_cert_unreadable", /"[^"]*fifo": is a FIFO/]);
    await Deno.writeTextFile(join(dir, "cert-zero.yml"), tls("/dev/zero"));
    cases.push([join(dir, "cert-zero.yml"), "web_config_cert_unreadable", /"\/dev\/zero": is a character device/]);
    for (const [path, code, message] of cases) {
      const result = await within(`loading ${path}`, loadWebConfig(path));
      assert.ok(!result.ok, `${path} was taken`);
      assert.equal(result.error.code, code, result.error.message);
      assert.match(result.error.message, message);
      assert.doesNotMatch(result.error.message, /[\r\n]/);
    }
  });
});

Deno.test("the program: a web config that is a FIFO stops the start in one line, without hanging", async () => {
  await withTempDir(async (dir) => {
    const port = freePort();
    const config = await writeConfig(
      dir,
      configFields({ url: "http://127.0.0.1:9", authUrl: "http://127.0.0.1:9" } as never, port),
    );
    const fifo = join(dir, "web.yml");
    await mkfifo(fifo);
    const main = new URL("../main.ts", import.meta.url).pathname;
    // runWhileProbing kills a start that is still running after 30 s.
    const ended = await runWhileProbing(Deno.execPath(), [
      "run",
      "-A",
      main,
      "--config",
      config,
      "--web.config.file",
      fifo,
    ], port);
    assert.equal(ended.listened, false);
    assert.equal(ended.code, 1, ended.stderrLines.join("\n"));
    assert.deepEqual(ended.stderrLines, [
      `Cannot load web config "${fifo}": is a FIFO (named pipe), not a regular file`,
    ]);
  });
});
