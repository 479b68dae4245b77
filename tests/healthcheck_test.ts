// `--healthcheck [URL]`, run as the real program over real HTTP: a container's HEALTHCHECK depends on
// its exit code alone, so the code is what these tests hold it to.

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseCli } from "../lib/cli.ts";
import { healthcheckUrl, probeHealth } from "../lib/healthcheck.ts";
import { freePort, get, PROGRAM, ROOT, spawn, waitFor } from "./helpers/e2e.ts";
import { withTempDir } from "./helpers/harness.ts";

/** The program as the start task runs it, usable from any working folder. */
const ANYWHERE: readonly string[] = [
  ...PROGRAM.slice(0, -1),
  "--config",
  join(ROOT, "deno.json"),
  join(ROOT, PROGRAM.at(-1) ?? "main.ts"),
];

/** Runs `main.ts --healthcheck …args` to its end in `cwd`. */
async function healthcheck(args: readonly string[], cwd = ROOT) {
  const running = spawn(Deno.execPath(), [...ANYWHERE, "--healthcheck", ...args], { cwd });
  const timer = setTimeout(() => running.child.kill("SIGKILL"), 30_000);
  await running.status.finally(() => clearTimeout(timer));
  const { code } = await running.stop();
  return { code, stdout: running.stdout.text, stderr: running.stderr.text };
}

/** Asserts a failed check: exit 1 (never Docker's reserved 2), one line on stderr naming `needle`. */
function assertUnhealthy(result: { code: number; stdout: string; stderr: string }, needle: string): void {
  assert.equal(result.code, 1, `exit ${result.code}: ${result.stderr}`);
  assert.equal(result.stdout, "");
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${result.stderr}`);
  assert.ok(lines[0].includes(needle), `"${needle}" not in: ${lines[0]}`);
}

/** Serves `handler` on a free loopback port for the length of `body`. */
async function withServer(
  handler: (request: Request) => Response | Promise<Response>,
  body: (url: string) => Promise<void>,
): Promise<void> {
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: (addr) => listening.resolve(addr) }, handler);
  try {
    await body(`http://127.0.0.1:${(await listening.promise).port}`);
  } finally {
    await server.shutdown();
  }
}

Deno.test("--healthcheck exits 0 against a running demo: by URL, by --web.listen-address, by the config's server_addr", async () => {
  const port = freePort();
  const demo = spawn(Deno.execPath(), [...ANYWHERE, "--demo", "--web.listen-address", `127.0.0.1:${port}`]);
  try {
    await waitFor(
      "the demo to answer /healthz",
      async () => (await get(`http://127.0.0.1:${port}/healthz`)).status === 200,
    );

    const byUrl = await healthcheck([`http://127.0.0.1:${port}/healthz`]);
    assert.equal(byUrl.code, 0, byUrl.stderr);
    assert.equal(byUrl.stdout, `Healthy: http://127.0.0.1:${port}/healthz answered 200\n`);
    assert.equal(byUrl.stderr, "");

    const byFlag = await healthcheck(["--web.listen-address", `127.0.0.1:${port}`]);
    assert.equal(byFlag.code, 0, byFlag.stderr);

    // As the container runs it: no arguments, config.toml in the working folder, bound to every address
    // and so reached through loopback; the secrets the file lacks do not matter to the probe.
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(join(dir, "config.toml"), `server_addr = "0.0.0.0:${port}"\n`);
      const byConfig = await healthcheck([], dir);
      assert.equal(byConfig.code, 0, byConfig.stderr);
      assert.ok(byConfig.stdout.includes(`http://127.0.0.1:${port}/healthz`), byConfig.stdout);
    });
  } finally {
    await demo.stop();
  }
});

Deno.test("--healthcheck exits 1 with one line when nothing listens", async () => {
  const port = freePort();
  assertUnhealthy(await healthcheck([`http://127.0.0.1:${port}/healthz`]), "connection refused");
  // The default address comes from the config in the working folder.
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "config.toml"), `server_addr = "127.0.0.1:${port}"\n`);
    assertUnhealthy(await healthcheck([], dir), `http://127.0.0.1:${port}/healthz`);
  });
});

Deno.test("--healthcheck exits 1 when /healthz answers 503, or redirects", async () => {
  await withServer((request) => {
    if (new URL(request.url).pathname === "/moved") {
      return new Response(null, { status: 302, headers: { location: "/healthz" } });
    }
    return new Response("starting\n", { status: 503 });
  }, async (base) => {
    assertUnhealthy(await healthcheck([`${base}/healthz`]), "503");
    // A bare address gets /healthz, which here answers 503 too.
    assertUnhealthy(await healthcheck([base]), `${base}/healthz answered 503`);
    assertUnhealthy(await healthcheck([`${base}/moved`]), "302");
  });
});

Deno.test("--healthcheck exits 1, not Docker's reserved 2, for a URL it cannot use or a config without server_addr", async () => {
  assertUnhealthy(await healthcheck(["ftp://127.0.0.1/healthz"]), "http://");
  assertUnhealthy(await healthcheck(["not-a-url"]), "not a URL");
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "config.toml"), `client_id = "x"\n`);
    assertUnhealthy(await healthcheck([], dir), "server_addr");
  });
});

Deno.test("probeHealth gives up on a server that accepts and never answers, within its timeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const connection of listener) held.push(connection);
  })();
  try {
    const started = performance.now();
    const probed = await probeHealth(`http://127.0.0.1:${listener.addr.port}/healthz`, { timeoutMs: 300 });
    const took = performance.now() - started;
    assert.ok(!probed.ok);
    assert.ok(probed.error.includes("did not answer within 0.3 s"), probed.error);
    assert.ok(took < 3_000, `took ${Math.round(took)} ms`);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const connection of held) connection.close();
  }
});

Deno.test("the default URL: /healthz on the flag's address, the config's server_addr, else the fallback", async () => {
  const fallback = { hostname: "127.0.0.1", port: 8080 };
  const url = async (given: string | null, sources: Partial<Parameters<typeof healthcheckUrl>[1]>) => {
    const result = await healthcheckUrl(given, { listen: null, configPath: null, fallback, ...sources });
    return result.ok ? result.value : `error: ${result.error}`;
  };
  assert.equal(await url(null, {}), "http://127.0.0.1:8080/healthz");
  assert.equal(await url(null, { listen: { hostname: "::", port: 9100 } }), "http://[::1]:9100/healthz");
  assert.equal(await url("http://exporter:9100/", {}), "http://exporter:9100/healthz");
  assert.equal(await url("https://exporter/custom/health", {}), "https://exporter/custom/health");
  await withTempDir(async (dir) => {
    const configPath = join(dir, "config.toml");
    assert.equal(await url(null, { configPath }), "http://127.0.0.1:8080/healthz", "a missing config falls back");
    await Deno.writeTextFile(configPath, `server_addr = "0.0.0.0:9201"\n`);
    assert.equal(await url(null, { configPath }), "http://127.0.0.1:9201/healthz");
    assert.equal(
      await url(null, { configPath, listen: { hostname: "127.0.0.2", port: 9300 } }),
      "http://127.0.0.2:9300/healthz",
      "--web.listen-address wins over the config",
    );
    await Deno.writeTextFile(configPath, `server_addr = \n`);
    assert.match(await url(null, { configPath }), /^error: .*invalid TOML at line 1/);
  });
});

Deno.test("--healthcheck takes an optional URL, as a next word or after =, beside other options", () => {
  const parsed = (args: string[]) => {
    const result = parseCli(args);
    assert.ok(result.ok, result.ok ? "" : result.error);
    return result.value;
  };
  assert.equal(parsed([]).healthcheck, null);
  assert.deepEqual(parsed(["--healthcheck"]).healthcheck, { url: null });
  assert.deepEqual(parsed(["--healthcheck", "http://h:1/healthz"]).healthcheck, { url: "http://h:1/healthz" });
  assert.deepEqual(parsed(["--healthcheck=http://h:1/x"]).healthcheck, { url: "http://h:1/x" });
  const withConfig = parsed(["--healthcheck", "--config", "/data/config.toml"]);
  assert.deepEqual(withConfig.healthcheck, { url: null });
  assert.equal(withConfig.configPath, "/data/config.toml");
  assert.ok(!parseCli(["--healthcheck", "--healthcheck"]).ok, "given twice");
  assert.ok(!parseCli(["--healthcheck="]).ok, "an empty URL");
});
