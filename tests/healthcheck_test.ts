// `--healthcheck [URL]`, run as the real program over real HTTP: a container's HEALTHCHECK depends on
// its exit code alone, so the code is what these tests hold it to.

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseCli } from "../lib/config/cli.ts";
import { healthcheckTarget, probeHealth } from "../lib/run/healthcheck.ts";
import { explainSkip, freePort, get, PROGRAM, ROOT, spawn, waitFor } from "./helpers/e2e.ts";
import { withTempDir } from "./helpers/harness.ts";
import { haveTools, htpasswdHash, makeCertificates } from "./helpers/tls.ts";

const tools = haveTools();
if (!tools) explainSkip("openssl or htpasswd (apache2-utils)", "the health checks over TLS");

/** The program as the start task runs it, usable from any working folder. */
const ANYWHERE: readonly string[] = [
  ...PROGRAM.slice(0, -1),
  "--config",
  join(ROOT, "deno.json"),
  join(ROOT, PROGRAM.at(-1) ?? "main.ts"),
];

/** Runs `main.ts --healthcheck …args` to its end in `cwd` (the project by default). */
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
  const url = async (given: string | null, sources: Partial<Parameters<typeof healthcheckTarget>[1]>) => {
    const result = await healthcheckTarget(given, {
      listen: null,
      configPath: null,
      fallback,
      webConfigFile: null,
      ...sources,
    });
    if (result.ok) assert.deepEqual(result.value.caCerts, [], "no web config, nothing extra to trust");
    return result.ok ? result.value.url : `error: ${result.error}`;
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

/** Writes a self-signed server certificate (not a CA) naming `names` and its key; returns their paths. */
async function selfSigned(dir: string, prefix: string, names: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${prefix}.crt`);
  const key = join(dir, `${prefix}.key`);
  // The README's command, which says CA:FALSE: Deno's TLS client refuses a CA certificate as a server's.
  const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"];
  const made = await new Deno.Command("openssl", {
    args: [
      ...args,
      "-keyout",
      key,
      "-out",
      cert,
      "-subj",
      `/CN=${prefix}`,
      "-addext",
      `subjectAltName=${names}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!made.success) throw new Error(new TextDecoder().decode(made.stderr));
  return { cert, key };
}

/** A web config turning TLS on with `cert`/`key` (and basic auth when `users` is given). */
async function writeWebConfig(path: string, tls: { cert: string; key: string }, users = ""): Promise<string> {
  await Deno.writeTextFile(
    path,
    `tls_server_config:\n  cert_file: ${tls.cert}\n  key_file: ${tls.key}\n${
      users ? `basic_auth_users:\n${users}` : ""
    }`,
  );
  return path;
}

/** The demo behind `webConfig` on 127.0.0.1, once /healthz answers `host` over TLS trusting `ca`, for `body`. */
async function withTlsDemo(
  webConfig: string,
  trust: { ca: string; host: string },
  body: (port: number) => Promise<void>,
): Promise<void> {
  const port = freePort();
  const demo = spawn(Deno.execPath(), [
    ...ANYWHERE,
    "--demo",
    "--web.listen-address",
    `127.0.0.1:${port}`,
    "--web.config.file",
    webConfig,
  ]);
  try {
    using client = Deno.createHttpClient({ caCerts: [trust.ca] });
    await waitFor("the demo to answer /healthz over TLS", async () => {
      const response = await fetch(`https://${trust.host}:${port}/healthz`, { client });
      await response.body?.cancel();
      return response.status === 200;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    await body(port);
  } catch (error) {
    console.error(`The demo's log:\n${demo.stderr.text}`);
    throw error;
  } finally {
    await demo.stop();
  }
}

Deno.test({
  name: "--healthcheck without a URL probes https with the web config's certificate from --web.config.file; http fails",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      // A CA and the server certificate it signs, the chain in cert_file: trusting it trusts the server.
      const certs = await makeCertificates(dir);
      const chain = join(dir, "chain.pem");
      await Deno.writeTextFile(chain, certs.cert + certs.caCert);
      const web = await writeWebConfig(join(dir, "web-config.yml"), { cert: chain, key: certs.keyPath });
      await withTlsDemo(web, { ca: certs.caCert, host: "127.0.0.1" }, async (port) => {
        const byFlag = await healthcheck(["--web.listen-address", `0.0.0.0:${port}`, "--web.config.file", web]);
        assert.equal(byFlag.code, 0, byFlag.stderr);
        // The certificate names 127.0.0.1, which reaches a wildcard listener without a name lookup.
        assert.equal(byFlag.stdout, `Healthy: https://127.0.0.1:${port}/healthz answered 200\n`);

        // A URL given with https trusts the same certificate; here by the name it also carries.
        const byUrl = await healthcheck([`https://localhost:${port}/healthz`, "--web.config.file", web]);
        assert.equal(byUrl.code, 0, byUrl.stderr);

        // The same exporter asked the old way, over plain http, is not healthy.
        assertUnhealthy(await healthcheck([`http://127.0.0.1:${port}/healthz`]), `http://127.0.0.1:${port}/healthz`);

        // With only the server's certificate in cert_file, its CA is unknown: one line says what to add.
        const leafOnly = await writeWebConfig(join(dir, "leaf-only.yml"), { cert: certs.certPath, key: certs.keyPath });
        assertUnhealthy(
          await healthcheck(["--web.listen-address", `127.0.0.1:${port}`, "--web.config.file", leafOnly]),
          "put the CA's certificate after the server's",
        );
      });
    });
  },
});

Deno.test({
  name: "--healthcheck without a URL finds the web config by the config's web_config_file, relative to its folder",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      // A self-signed certificate made as the README says, naming a host and 127.0.0.1.
      await Deno.mkdir(join(dir, "data", "tls"), { recursive: true });
      const tls = await selfSigned(join(dir, "data", "tls"), "exporter", "DNS:monzo.lan,IP:127.0.0.1");
      const web = await writeWebConfig(join(dir, "data", "tls", "web-config.yml"), tls);
      await withTlsDemo(web, { ca: await Deno.readTextFile(tls.cert), host: "127.0.0.1" }, async (port) => {
        // Only server_addr and web_config_file: the probe needs none of the secrets.
        await Deno.writeTextFile(
          join(dir, "data", "config.toml"),
          `server_addr = "0.0.0.0:${port}"\nweb_config_file = "tls/web-config.yml"\n`,
        );
        // Run from another folder, so a path resolved against the working folder would not be found.
        const byConfig = await healthcheck(["--config", join(dir, "data", "config.toml")], dir);
        assert.equal(byConfig.code, 0, byConfig.stderr);
        assert.equal(byConfig.stdout, `Healthy: https://127.0.0.1:${port}/healthz answered 200\n`);

        // --web.config.file wins over web_config_file: a missing one is the web config's own one-line error.
        assertUnhealthy(
          await healthcheck(["--config", join(dir, "data", "config.toml"), "--web.config.file", "missing.yml"], dir),
          `Cannot load web config "${join(dir, "missing.yml")}": file not found`,
        );
      });
    });
  },
});

Deno.test({
  name: "--healthcheck exits 0 over TLS with basic auth configured: /healthz needs no password",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      // Naming only localhost, the name the probe asks a loopback listener by when its address is not named.
      const tls = await selfSigned(dir, "local", "DNS:localhost");
      const ca = await Deno.readTextFile(tls.cert);
      const users = `  prometheus: ${await htpasswdHash("scrape password", 4)}\n`;
      const web = await writeWebConfig(join(dir, "web-config.yml"), tls, users);
      await withTlsDemo(web, { ca, host: "localhost" }, async (port) => {
        using client = Deno.createHttpClient({ caCerts: [ca] });
        const metrics = await fetch(`https://localhost:${port}/metrics`, { client });
        await metrics.body?.cancel();
        assert.equal(metrics.status, 401, "basic auth is on for everything else");

        const probed = await healthcheck(["--web.listen-address", `127.0.0.1:${port}`, "--web.config.file", web]);
        assert.equal(probed.code, 0, probed.stderr);
        assert.equal(probed.stdout, `Healthy: https://localhost:${port}/healthz answered 200\n`);
      });
    });
  },
});

Deno.test({
  name: "--healthcheck exits 1 with one line naming a URL to pass when the certificate does not name the host",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      const tls = await selfSigned(dir, "remote", "DNS:exporter.example");
      const web = await writeWebConfig(join(dir, "web-config.yml"), tls);
      // Nothing needs to listen: the certificate is read before anything is asked.
      const port = freePort();
      const result = await healthcheck(["--web.listen-address", `0.0.0.0:${port}`, "--web.config.file", web]);
      assertUnhealthy(result, `names neither 127.0.0.1 nor localhost (it names exporter.example)`);
      assertUnhealthy(result, `pass --healthcheck https://NAME:${port}/healthz`);
    });
  },
});

Deno.test("--healthcheck exits 1, not 2, with the web config's one-line error when it cannot be read", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "web-config.yml"), "tls_server_config:\n  cert_file: [\n");
    assertUnhealthy(await healthcheck(["--web.config.file", "web-config.yml"], dir), "is not valid YAML");
    // Through the config's key, relative to the config's folder, and for a URL given with https too.
    await Deno.mkdir(join(dir, "etc"));
    await Deno.writeTextFile(
      join(dir, "etc", "config.toml"),
      `server_addr = "127.0.0.1:1"\nweb_config_file = "web.yml"\n`,
    );
    const missing = `Cannot load web config "${join(dir, "etc", "web.yml")}": file not found`;
    assertUnhealthy(await healthcheck(["--config", "etc/config.toml"], dir), missing);
    assertUnhealthy(await healthcheck(["https://127.0.0.1:1/healthz", "--config", "etc/config.toml"], dir), missing);
  });
});

Deno.test("the health check reads the config through lib/config/config.ts: no module but config.ts parses TOML", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const graph: { modules: { specifier: string; dependencies?: { specifier: string }[] }[] } = JSON.parse(
    new TextDecoder().decode(output.stdout),
  );
  const readers = graph.modules
    .filter((module) => module.dependencies?.some((dependency) => dependency.specifier === "smol-toml"))
    .map((module) => module.specifier.replace(new URL("../", import.meta.url).href, ""));
  assert.ok(
    graph.modules.some((module) => module.specifier.endsWith("lib/run/healthcheck.ts")),
    "healthcheck.ts unseen",
  );
  assert.deepEqual(readers, ["lib/config/config.ts"]);
});
