// The exporter-toolkit web config: what it accepts and refuses (by code and key), basic auth in front
// of the real app (cache, concurrency bound), its headers, and reloading the files while serving.

import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import bcrypt from "bcryptjs";
import { bcryptVerify, type GateConfig, parseBasic, type Verify } from "../lib/http/basic_auth.ts";
import { createLogger } from "../lib/shared/log.ts";
import { serveResilient } from "../lib/http/serve.ts";
import {
  checkPublicUrl,
  loadWebConfig,
  summarizeWebConfig,
  watchWebConfig,
  type WebConfig,
} from "../lib/config/web_config.ts";
import type { WebConfigCode } from "../lib/shared/problems.ts";
import { err, ok } from "../lib/shared/result.ts";
import { raw } from "./helpers/raw_http.ts";
import { withGatedExporter } from "./helpers/gated_app.ts";
import { configFields, freePort, programLines, runWhileProbing, waitFor, writeConfig } from "./helpers/e2e.ts";
import { taskRunArgs } from "./helpers/tasks.ts";
import { TestClock, withTempDir } from "./helpers/harness.ts";
import { type Certificates, haveTools, makeCertificates } from "./helpers/tls.ts";

const tools = haveTools();
if (!tools) console.warn("SKIPPED: openssl or htpasswd is not installed, so the TLS parts of these tests cannot run");

// Cost 4 keeps these tests fast; the cost-10 figures are measured in the bench.
const hash = (password: string) => bcrypt.hashSync(password, 4);
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

async function writeWeb(dir: string, text: string, name = "web.yml"): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, text);
  return path;
}

/** Replaces a file the way editors and config managers do: a new file renamed over the old one. */
async function replaceFile(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

async function refusal(path: string) {
  const loaded = await loadWebConfig(path);
  assert.ok(!loaded.ok, `expected ${path} to be refused`);
  const { message } = loaded.error;
  assert.doesNotMatch(message, /[\r\n]/, `not one line: ${message}`);
  assert.ok(message.includes(path), `the message does not name the file: ${message}`);
  assert.equal(loaded.error.subject, resolve(path), "the subject is the file");
  if (loaded.error.key) assert.ok(message.includes(loaded.error.key), `the message does not name the key: ${message}`);
  return loaded.error;
}

async function loaded(path: string): Promise<WebConfig> {
  const result = await loadWebConfig(path);
  assert.ok(result.ok, result.ok ? "" : result.error.message);
  return result.value;
}

Deno.test("a web config with users and headers loads; an empty file is no TLS and no users", async () => {
  await withTempDir(async (dir) => {
    const aliceHash = hash("alice-password");
    const path = await writeWeb(
      dir,
      `basic_auth_users:\n  alice: ${aliceHash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n` +
        `    X-XSS-Protection: ""\n`,
    );
    const config = await loaded(path);
    assert.equal(config.tls, null);
    assert.deepEqual([...config.users], [["alice", aliceHash]]);
    // A blank header is unset, as in the toolkit.
    assert.deepEqual(config.headers, [["X-Frame-Options", "sameorigin"]]);
    assert.match(summarizeWebConfig(config), /no TLS, basic auth for 1 user, 1 extra header/);
    assert.ok(!summarizeWebConfig(config).includes(aliceHash));

    const empty = await loaded(await writeWeb(dir, "", "empty.yml"));
    assert.equal(empty.tls, null);
    assert.equal(empty.users.size, 0);
  });
});

Deno.test({
  name: "cert_file and key_file are resolved against the web config's folder; inline cert and key work too",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      await Deno.mkdir(join(dir, "etc"));
      const certs = await makeCertificates(dir);
      // From etc/, the files are one folder up; the working directory (the project) has no such files.
      const path = await writeWeb(
        join(dir, "etc"),
        "tls_server_config:\n  cert_file: ../server-cert.pem\n  key_file: ../server-key.pem\n",
      );
      const config = await loaded(path);
      assert.deepEqual(config.tls, { cert: certs.cert, key: certs.key });
      assert.deepEqual(config.files, [path, join(dir, "server-cert.pem"), join(dir, "server-key.pem")]);

      const indent = (pem: string) => pem.trim().split("\n").map((line) => `    ${line}`).join("\n");
      const inline = await loaded(
        await writeWeb(dir, `tls_server_config:\n  cert: |\n${indent(certs.cert)}\n  key: |\n${indent(certs.key)}\n`),
      );
      assert.equal(inline.tls?.cert.trim(), certs.cert.trim());
      assert.equal(inline.tls?.key.trim(), certs.key.trim());
      // Spelling out the toolkit's defaults is accepted: they are what Deno does.
      const defaults = await loaded(
        await writeWeb(
          dir,
          "tls_server_config:\n  cert_file: server-cert.pem\n  key_file: server-key.pem\n  min_version: TLS12\n" +
            "  max_version: TLS13\n  client_auth_type: NoClientCert\nhttp_server_config:\n  http2: true\n",
        ),
      );
      assert.ok(defaults.tls);
    });
  },
});

Deno.test("each bad web config is refused with its code and key, in one line naming the file", async () => {
  await withTempDir(async (dir) => {
    const cases: Array<[string, WebConfigCode, string]> = [
      ["tls_server_config:\n  cert_file: [a,\n", "web_config_yaml_syntax", ""],
      ["basic_auth_user:\n  alice: x\n", "web_config_unknown_key", "basic_auth_user"],
      ["tls_server_config:\n  cert_fil: a.pem\n", "web_config_unknown_key", "tls_server_config.cert_fil"],
      [
        "http_server_config:\n  headers:\n    X-Powered-By: deno\n",
        "web_config_unknown_key",
        "http_server_config.headers.X-Powered-By",
      ],
      // The toolkit's header names are exact.
      [
        "http_server_config:\n  headers:\n    x-frame-options: deny\n",
        "web_config_unknown_key",
        "http_server_config.headers.x-frame-options",
      ],
      [
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        "web_config_invalid_value",
        "http_server_config.headers.X-Frame-Options",
      ],
      [
        "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
        "web_config_invalid_value",
        "http_server_config.headers.X-Content-Type-Options",
      ],
      [
        'http_server_config:\n  headers:\n    Content-Security-Policy: "a\\nb"\n',
        "web_config_invalid_value",
        "http_server_config.headers.Content-Security-Policy",
      ],
      [
        // A typographic quote pasted from a web page: Headers would throw on every answer.
        "http_server_config:\n  headers:\n    Content-Security-Policy: default-src \u2018self\u2019\n",
        "web_config_invalid_value",
        "http_server_config.headers.Content-Security-Policy",
      ],
      ["basic_auth_users:\n  alice: 12\n", "web_config_invalid_value", "basic_auth_users.alice"],
      ["basic_auth_users:\n  alice: not-a-hash\n", "web_config_bad_hash", "basic_auth_users.alice"],
      // A hash cut short by a copy and paste, and one of an unknown variant.
      [`basic_auth_users:\n  bob: ${hash("x").slice(0, 50)}\n`, "web_config_bad_hash", "basic_auth_users.bob"],
      [`basic_auth_users:\n  bob: ${hash("x").replace("$2", "$3")}\n`, "web_config_bad_hash", "basic_auth_users.bob"],
      ["basic_auth_users:\n  a:b: x\n", "web_config_invalid_value", "basic_auth_users.a:b"],
      ["- a\n- b\n", "web_config_invalid_value", ""],
      // An unknown tag, two documents, and aliases that would expand into millions of values.
      ["basic_auth_users:\n  alice: !vault x\n", "web_config_yaml_syntax", ""],
      ["basic_auth_users: {}\n---\nbasic_auth_users: {}\n", "web_config_yaml_syntax", ""],
      [
        "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
        "web_config_yaml_syntax",
        "",
      ],
      ["tls_server_config:\n  cert_file: a.pem\n", "web_config_tls_incomplete", "tls_server_config"],
      [
        "tls_server_config:\n  cert: x\n  cert_file: a.pem\n  key_file: b.pem\n",
        "web_config_tls_twice",
        "tls_server_config.cert",
      ],
      [
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
        "web_config_cert_unreadable",
        "tls_server_config.cert_file",
      ],
    ];
    for (const [text, code, key] of cases) {
      const path = await writeWeb(dir, text);
      const error = await refusal(path);
      assert.equal(error.code, code, `${JSON.stringify(text)}: ${error.message}`);
      assert.equal(error.key, key, `${JSON.stringify(text)}: ${error.message}`);
    }
    // The YAML error says where.
    const yaml = await refusal(await writeWeb(dir, "basic_auth_users:\n  alice: [x,\n"));
    assert.match(yaml.message, /line \d+, column \d+/);
    // A malformed hash is not shown: it is what an attacker would crack.
    const bad = "$2y$10$tooShortToBeAHash";
    const shown = await refusal(await writeWeb(dir, `basic_auth_users:\n  alice: "${bad}"\n`));
    assert.ok(!shown.message.includes(bad), shown.message);

    const missing = await refusal(join(dir, "nope.yml"));
    assert.equal(missing.code, "web_config_unreadable");
    assert.match(missing.message, /file not found/);
  });
});

Deno.test("every toolkit key Deno cannot honour is refused as not supported, naming the key", async () => {
  await withTempDir(async (dir) => {
    const cases: Array<[string, string]> = [
      ["tls_server_config:\n  min_version: TLS13\n", "tls_server_config.min_version"],
      ["tls_server_config:\n  min_version: TLS10\n", "tls_server_config.min_version"],
      ["tls_server_config:\n  max_version: TLS12\n", "tls_server_config.max_version"],
      ["tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n", "tls_server_config.client_auth_type"],
      ["tls_server_config:\n  client_ca_file: ca.pem\n", "tls_server_config.client_ca_file"],
      ["tls_server_config:\n  client_ca: x\n", "tls_server_config.client_ca"],
      ["tls_server_config:\n  client_allowed_sans: [a]\n", "tls_server_config.client_allowed_sans"],
      ["tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "tls_server_config.cipher_suites"],
      ["tls_server_config:\n  curve_preferences: [X25519]\n", "tls_server_config.curve_preferences"],
      ["tls_server_config:\n  prefer_server_cipher_suites: false\n", "tls_server_config.prefer_server_cipher_suites"],
      ["http_server_config:\n  http2: false\n", "http_server_config.http2"],
      ["rate_limit:\n  interval: 1s\n  burst: 10\n", "rate_limit"],
    ];
    for (const [text, key] of cases) {
      const error = await refusal(await writeWeb(dir, text));
      assert.equal(error.code, "web_config_unsupported", error.message);
      assert.equal(error.key, key, error.message);
      assert.match(error.message, /is not supported: /);
    }
  });
});

Deno.test({
  name: "a certificate or key that is missing, malformed or not a pair is refused naming the key",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      const certs = await makeCertificates(dir);
      await Deno.writeTextFile(
        join(dir, "junk.pem"),
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
      );
      await Deno.writeTextFile(join(dir, "text.pem"), "hello\n");
      const tls = (cert: string, key: string) => `tls_server_config:\n  cert_file: ${cert}\n  key_file: ${key}\n`;
      const cases: Array<[string, WebConfigCode, string]> = [
        [tls("gone.pem", certs.keyPath), "web_config_cert_unreadable", "tls_server_config.cert_file"],
        [tls(certs.certPath, "gone.pem"), "web_config_key_unreadable", "tls_server_config.key_file"],
        [tls("junk.pem", certs.keyPath), "web_config_cert_invalid", "tls_server_config.cert_file"],
        [tls("text.pem", certs.keyPath), "web_config_cert_invalid", "tls_server_config.cert_file"],
        [tls(certs.certPath, "text.pem"), "web_config_key_invalid", "tls_server_config.key_file"],
        // A certificate in the key's place is not a key either.
        [tls(certs.certPath, certs.certPath), "web_config_key_invalid", "tls_server_config.key_file"],
        [tls(certs.certPath, certs.otherKeyPath), "web_config_key_mismatch", "tls_server_config.key_file"],
        [
          `tls_server_config:\n  cert: "x"\n  key_file: ${certs.keyPath}\n`,
          "web_config_cert_invalid",
          "tls_server_config.cert",
        ],
      ];
      for (const [text, code, key] of cases) {
        const error = await refusal(await writeWeb(dir, text));
        assert.equal(error.code, code, error.message);
        assert.equal(error.key, key, error.message);
      }
      // Named with the absolute path it was looked for at.
      const gone = await refusal(await writeWeb(dir, tls("gone.pem", certs.keyPath)));
      assert.ok(gone.message.includes(join(dir, "gone.pem")), gone.message);
      // A folder is unreadable as a certificate, with a reason.
      const folder = await refusal(await writeWeb(dir, tls(".", certs.keyPath)));
      assert.equal(folder.code, "web_config_cert_unreadable");
    });
  },
});

function fixed(users: Record<string, string>, headers: Array<[string, string]> = []): () => GateConfig {
  const config = { users: new Map(Object.entries(users)), headers };
  return () => config;
}

Deno.test("over real HTTP the gate reads the path as the router does: no Host header or path trick reaches a guarded route", async () => {
  const password = "correct horse battery staple";
  await withGatedExporter({ config: fixed({ alice: hash(password) }) }, async ({ exporter }) => {
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, exporter.handler);
    try {
      const port = server.addr.port;
      const tricks: Array<[string, string, Record<string, string>]> = [
        // new URL() reads a backslash as a slash and "?" as the start of the query: the host would
        // become the path /healthz, which needs no password.
        ["GET", "/metrics", { host: "x\\healthz?" }],
        ["GET", "/metrics", { host: "x?" }],
        ["GET", "/", { host: "x\\healthz#" }],
        ["HEAD", "/metrics", { host: "x\\healthz?" }],
        // Dot segments and their encodings: the router does not resolve them, nor may the gate.
        ["GET", "/metrics/../healthz", {}],
        ["GET", "/metrics/%2e%2e/healthz", {}],
        ["GET", "/healthz/../metrics", {}],
        ["GET", "//healthz/../metrics", {}],
      ];
      for (const [method, path, headers] of tricks) {
        const answer = await raw(port, method, path, headers);
        const body = new TextDecoder().decode(answer.body);
        assert.ok(
          answer.status === 401 || answer.status === 400,
          `${method} ${path} ${JSON.stringify(headers)} answered ${answer.status}: ${body.slice(0, 80)}`,
        );
        assert.ok(!body.includes("monzo_") && !body.includes("/authorize"), `${method} ${path} leaked: ${body}`);
      }
      // With the password, a hostile Host header is a bad request, not another path.
      const authorization = basic("alice", password);
      const hostile = await raw(port, "GET", "/metrics", { host: "x\\healthz?", authorization });
      assert.equal(hostile.status, 400);
      assert.equal((await raw(port, "GET", "/metrics", { authorization })).status, 200);
      assert.equal((await raw(port, "GET", "/healthz", {})).status, 200);
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test("with users set, every route but /healthz answers 401 with a Basic challenge until the right password", async () => {
  const password = "correct horse battery staple";
  await withGatedExporter({ config: fixed({ alice: hash(password) }) }, async ({ exporter, logs }) => {
    const ask = (path: string, authorization?: string) =>
      exporter.app.request(path, { headers: authorization ? { authorization } : {} });
    for (const path of ["/", "/metrics", "/stats", "/readyz", "/authorize?key=x", "/callback", "/nowhere"]) {
      for (
        const authorization of [
          undefined,
          basic("alice", "tr0ub4dor"),
          basic("mallory", password),
          "Bearer x",
          "Basic !!",
        ]
      ) {
        const response = await ask(path, authorization);
        assert.equal(response.status, 401, `${path} with ${authorization}`);
        assert.equal(response.headers.get("www-authenticate"), 'Basic realm="monzo-exporter", charset="UTF-8"');
        // Nothing about the exporter, its routes or the user: and the usual headers still.
        assert.equal(await response.text(), "Unauthorized\n");
        assert.equal(response.headers.get("x-content-type-options"), "nosniff");
      }
    }
    const healthz = await ask("/healthz");
    assert.equal(healthz.status, 200);
    assert.equal(await healthz.text(), "ok\n");
    const metrics = await ask("/metrics", basic("alice", password));
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^# HELP /m);
    assert.equal((await ask("/", basic("alice", password))).status, 200);
    // Neither the passwords tried nor the header are logged.
    const log = logs.join("\n");
    for (const secret of [password, "tr0ub4dor", btoa(`alice:${password}`), "mallory"]) {
      assert.ok(!log.includes(secret), secret);
    }
    assert.match(log, /Refused a request with a wrong user name or password/);
  });
});

Deno.test("parseBasic takes user:password in UTF-8 with colons in the password; malformed headers are no credentials", () => {
  assert.deepEqual(parseBasic(`Basic ${btoa("u:p:q")}`), { user: "u", password: "p:q" });
  const utf8 = btoa(String.fromCharCode(...new TextEncoder().encode("zoë:pässword")));
  assert.deepEqual(parseBasic(`basic ${utf8}`), { user: "zoë", password: "pässword" });
  for (
    const header of [null, "", "Basic", `Basic ${btoa("no-colon")}`, "Basic a", "Digest x", `Basic ${btoa("a:b")} x`]
  ) {
    assert.equal(parseBasic(header), null, String(header));
  }
});

Deno.test("the configured headers are on every answer, gated or not; a CSP is added beside the pages' own", async () => {
  const headers: Array<[string, string]> = [
    ["Strict-Transport-Security", "max-age=300"],
    ["X-Frame-Options", "sameorigin"],
    ["Content-Security-Policy", "default-src 'self'"],
  ];
  const userSets: Record<string, string>[] = [{}, { alice: hash("pw") }];
  for (const users of userSets) {
    await withGatedExporter({ config: fixed(users, headers) }, async ({ exporter }) => {
      const authorization = basic("alice", "pw");
      for (const [path, status] of [["/metrics", 200], ["/healthz", 200], ["/", 200], ["/nowhere", 404]] as const) {
        const response = await exporter.app.request(path, { headers: { authorization } });
        assert.equal(response.status, status, path);
        assert.equal(response.headers.get("strict-transport-security"), "max-age=300", path);
        // The file's value replaces the built-in DENY, as the user asked.
        assert.equal(response.headers.get("x-frame-options"), "sameorigin", path);
        const csp = response.headers.get("content-security-policy") ?? "";
        assert.ok(csp.includes("default-src 'self'"), `${path}: ${csp}`);
        // A page keeps its own stricter policy too: browsers enforce both.
        if (path === "/") assert.ok(csp.includes("default-src 'none'"), csp);
        await response.body?.cancel();
      }
      // The gate's own refusals carry them too.
      const refused = await exporter.app.request("/metrics", { headers: { authorization: basic("alice", "no") } });
      assert.equal(refused.status, users.alice ? 401 : 200);
      assert.equal(refused.headers.get("strict-transport-security"), "max-age=300");
      assert.equal(refused.headers.get("x-frame-options"), "sameorigin");
      await refused.body?.cancel();
    });
  }
});

Deno.test("a good check is remembered; a changed hash or a new password is verified again", async () => {
  let calls = 0;
  const verify: Verify = (password, stored) => {
    calls++;
    return bcryptVerify(password, stored);
  };
  let users = new Map([["alice", hash("first")]]);
  await withGatedExporter({ config: () => ({ users, headers: [] }), verify }, async ({ exporter, gate }) => {
    const status = async (password: string) => {
      const response = await exporter.app.request("/metrics", { headers: { authorization: basic("alice", password) } });
      await response.body?.cancel();
      return response.status;
    };
    assert.equal(await status("first"), 200);
    assert.equal(calls, 1);
    for (let i = 0; i < 20; i++) assert.equal(await status("first"), 200);
    assert.equal(calls, 1, "a remembered password was verified again");
    // The same password under a new hash (a new salt): checked again, still good.
    users = new Map([["alice", hash("first")]]);
    assert.equal(await status("first"), 200);
    assert.equal(calls, 2);
    // A new password: the old one is refused, after a fresh check, and the new one works.
    users = new Map([["alice", hash("second")]]);
    assert.equal(await status("first"), 401);
    assert.equal(await status("second"), 200);
    assert.equal(calls, 4);
    assert.equal(gate.verifications(), 4);
    // An unknown user is verified too (against a decoy), so it takes as long as a known one.
    const response = await exporter.app.request("/metrics", { headers: { authorization: basic("mallory", "second") } });
    assert.equal(response.status, 401);
    assert.equal(calls, 5);
  });
});

Deno.test("a flood of wrong passwords is remembered too, and cannot push out the good one", async () => {
  let calls = 0;
  const verify: Verify = (password, stored) => {
    calls++;
    return bcryptVerify(password, stored);
  };
  await withGatedExporter({ config: fixed({ alice: hash("right") }), verify, cacheSize: 4 }, async ({ exporter }) => {
    const status = async (password: string) => {
      const response = await exporter.app.request("/metrics", { headers: { authorization: basic("alice", password) } });
      await response.body?.cancel();
      return response.status;
    };
    assert.equal(await status("right"), 200);
    for (let i = 0; i < 12; i++) assert.equal(await status(`guess-${i}`), 401);
    assert.equal(calls, 13);
    // A wrong password tried again costs nothing the second time.
    assert.equal(await status("guess-11"), 401);
    assert.equal(calls, 13);
    // Twelve wrong ones went through a cache of four, and the good one is still remembered.
    assert.equal(await status("right"), 200);
    assert.equal(calls, 13);
  });
});

Deno.test("at most `concurrency` verifications run at once; the queue waits and beyond it is answered 503 at once", async () => {
  let active = 0;
  let most = 0;
  const gates: Array<() => void> = [];
  const verify: Verify = async () => {
    active++;
    most = Math.max(most, active);
    await new Promise<void>((resolve) => gates.push(resolve));
    active--;
    return false;
  };
  await withGatedExporter(
    { config: fixed({ alice: hash("pw") }), verify, concurrency: 1, queue: 2 },
    async ({ exporter }) => {
      const answers = Array.from(
        { length: 6 },
        (_, i) => exporter.app.request("/metrics", { headers: { authorization: basic("alice", `guess-${i}`) } }),
      );
      // Three are taken (one verifying, two waiting); the other three are refused without a verification.
      const refused = await waitFor("three busy answers", async () => {
        const settled = await Promise.all(answers.map((a) => Promise.race([a, Promise.resolve(null)])));
        const busy = settled.filter((r): r is Response => r?.status === 503);
        return busy.length === 3 ? busy : null;
      });
      for (const response of refused) {
        assert.equal(response.headers.get("retry-after"), "1");
        assert.equal(await response.text(), "Busy, try again\n");
      }
      assert.equal(gates.length, 1);
      while (gates.length > 0 || active > 0) {
        gates.shift()?.();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const statuses = (await Promise.all(answers)).map((r) => r.status).sort();
      assert.deepEqual(statuses, [401, 401, 401, 503, 503, 503]);
      assert.equal(most, 1, "more than one verification ran at once");
      for (const response of await Promise.all(answers)) if (!response.bodyUsed) await response.body?.cancel();
    },
  );
});

Deno.test("reload: a new password works without a restart; an invalid file keeps the last good one, said once and on /", async () => {
  await withTempDir(async (dir) => {
    const path = await writeWeb(dir, `basic_auth_users:\n  alice: ${hash("old")}\n`);
    const lines: string[] = [];
    const watch = watchWebConfig(await loaded(path), {
      log: createLogger({ sink: (line) => lines.push(line) }),
      intervalMs: 3_600_000,
    });
    try {
      await withGatedExporter({ config: watch.current, problem: watch.problem }, async ({ exporter }) => {
        const status = async (password: string, route = "/metrics") => {
          const response = await exporter.app.request(route, { headers: { authorization: basic("alice", password) } });
          return { status: response.status, text: await response.text() };
        };
        assert.equal((await status("old")).status, 200);
        await watch.check();
        assert.equal(lines.length, 0, "an unchanged file was reloaded");

        await replaceFile(path, `basic_auth_users:\n  alice: ${hash("new")}\n`);
        await watch.check();
        assert.equal((await status("old")).status, 401);
        assert.equal((await status("new")).status, 200);
        assert.equal(lines.filter((l) => / INFO Reloaded the web config/.test(l)).length, 1, lines.join("\n"));

        // Broken: the last good config stays, the log says so once however often it is looked at.
        await replaceFile(path, "basic_auth_users:\n  alice: [\n");
        for (let i = 0; i < 3; i++) await watch.check();
        assert.equal((await status("new")).status, 200);
        const warnings = lines.filter((l) => / WARN /.test(l));
        assert.equal(warnings.length, 1, lines.join("\n"));
        assert.equal(watch.problem()?.code, "web_config_yaml_syntax");
        assert.equal(watch.problem()?.subject, path);
        assert.match(warnings[0], /not valid YAML.*the last valid web config stays in force/);
        assert.ok(warnings[0].includes(path));
        const landing = await status("new", "/");
        assert.match(landing.text, /<p id="web-config" class="bad">Cannot load web config .*not valid YAML/);

        // Another mistake is said too; then the fix clears the page.
        await replaceFile(path, "basic_auth_users:\n  alice: nope\n");
        await watch.check();
        assert.equal(lines.filter((l) => / WARN /.test(l)).length, 2);
        assert.equal(watch.problem()?.code, "web_config_bad_hash");
        assert.ok(watch.problem()?.message.includes("basic_auth_users.alice"), watch.problem()?.message);
        await replaceFile(path, `basic_auth_users:\n  alice: ${hash("newer")}\n`);
        await watch.check();
        assert.equal(watch.problem(), null);
        assert.equal((await status("newer")).status, 200);
        assert.doesNotMatch((await status("newer", "/")).text, /id="web-config"/);
      });
    } finally {
      watch.close();
    }
  });
});

Deno.test("reload: TLS turned on, or a certificate the server cannot take, is refused by code and the old config stays", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "web.yml");
    await Deno.writeTextFile(path, "changed on disk");
    const config = (cert: string | null): WebConfig => ({
      path,
      tls: cert === null ? null : { cert, key: "key" },
      users: new Map(),
      headers: [],
      files: [path],
      read: "",
    });
    const lines: string[] = [];
    for (
      const [initial, next, code] of [[null, "new", "web_config_needs_restart"], [
        "old",
        "new",
        "web_config_not_applied",
      ]] as const
    ) {
      const watch = watchWebConfig(config(initial), {
        log: createLogger({ sink: (line) => lines.push(line) }),
        intervalMs: 3_600_000,
        load: () => Promise.resolve(ok(config(next))),
        onTls: () => err("the new certificate cannot be served: boom"),
      });
      try {
        await watch.check();
        assert.equal(watch.problem()?.code, code, watch.problem()?.message);
        assert.equal(watch.problem()?.subject, path);
        assert.ok(watch.problem()?.message.includes(`"${path}"`), watch.problem()?.message);
        assert.equal(watch.current().tls?.cert, initial ?? undefined, "the last valid config is not in force");
      } finally {
        watch.close();
      }
    }
    assert.match(lines.join("\n"), /turning TLS on needs a restart/);
    assert.match(lines.join("\n"), /boom; the last valid web config stays in force/);
  });
});

Deno.test("checkPublicUrl refuses an http:// redirect_uri under TLS by code, and takes https:// or plain HTTP", () => {
  const web = (tls: boolean): WebConfig => ({
    path: "/etc/web.yml",
    tls: tls ? { cert: "cert", key: "key" } : null,
    users: new Map(),
    headers: [],
    files: [],
    read: "",
  });
  const refused = checkPublicUrl("http://exporter:9100", web(true));
  assert.ok(!refused.ok);
  assert.equal(refused.error.code, "web_config_needs_https");
  assert.equal(refused.error.subject, "/etc/web.yml");
  assert.ok(refused.error.message.includes('"http://exporter:9100"'), refused.error.message);
  assert.ok(checkPublicUrl("https://exporter:9100", web(true)).ok);
  assert.ok(checkPublicUrl("http://exporter:9100", web(false)).ok);
});

Deno.test("reload runs by itself on the timer, for a file written in place", async () => {
  await withTempDir(async (dir) => {
    const path = await writeWeb(dir, `basic_auth_users:\n  alice: ${hash("old")}\n`);
    const watch = watchWebConfig(await loaded(path), { log: createLogger({ sink: () => {} }), intervalMs: 20 });
    try {
      await Deno.writeTextFile(path, `basic_auth_users:\n  bob: ${hash("pw")}\n`);
      await waitFor("the new user", () => watch.current().users.has("bob"));
      assert.equal(watch.current().users.has("alice"), false);
    } finally {
      watch.close();
    }
  });
});

Deno.test({
  name: "reload: a renewed certificate is served on new connections without a restart; turning TLS off is refused",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      const first = await makeCertificates(dir, "first");
      const second = await makeCertificates(dir, "second");
      await Deno.copyFile(first.certPath, join(dir, "cert.pem"));
      await Deno.copyFile(first.keyPath, join(dir, "key.pem"));
      const path = await writeWeb(dir, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n");
      const initial = await loaded(path);
      const lines: string[] = [];
      const log = createLogger({ sink: (line) => lines.push(line) });
      const server = serveResilient({
        hostname: "127.0.0.1",
        port: 0,
        handler: () => new Response("hello"),
        log,
        clock: new TestClock(),
        tls: initial.tls ?? undefined,
      });
      const watch = watchWebConfig(initial, { log, intervalMs: 3_600_000, onTls: (tls) => server.setTls(tls) });
      const trusting = (ca: Certificates) => Deno.createHttpClient({ caCerts: [ca.caCert] });
      const answers = async (ca: Certificates) => {
        using client = trusting(ca);
        try {
          const response = await fetch(`https://127.0.0.1:${server.addr.port}/`, { client });
          return await response.text() === "hello";
        } catch {
          return false;
        }
      };
      try {
        assert.equal(await answers(first), true);
        assert.equal(await answers(second), false);
        await Deno.copyFile(second.keyPath, join(dir, "key.pem.new"));
        await Deno.copyFile(second.certPath, join(dir, "cert.pem.new"));
        await Deno.rename(join(dir, "key.pem.new"), join(dir, "key.pem"));
        // Half-renewed: the new key with the old certificate is refused and the old pair stays.
        await watch.check();
        assert.equal(watch.problem()?.code, "web_config_key_mismatch", watch.problem()?.message);
        assert.match(watch.problem()?.message ?? "", /key_file is not the private key/);
        assert.equal(await answers(first), true);
        await Deno.rename(join(dir, "cert.pem.new"), join(dir, "cert.pem"));
        await watch.check();
        assert.equal(watch.problem(), null);
        assert.equal(await answers(second), true);
        assert.equal(await answers(first), false);
        assert.match(lines.join("\n"), /Listening again on port \d+ with the new certificate/);

        await replaceFile(path, "");
        await watch.check();
        assert.equal(watch.problem()?.code, "web_config_protection_off", watch.problem()?.message);
        assert.match(watch.problem()?.message ?? "", /turning TLS off needs a restart/);
        assert.equal(await answers(second), true);
      } finally {
        watch.close();
        await server.shutdown();
      }
    });
  },
});

Deno.test({
  name:
    "the program: --check-config reports the web config, and a bad one stops the start in one line before listening",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      const certs = await makeCertificates(dir);
      const port = freePort();
      const fields = {
        ...configFields({ url: "http://127.0.0.1:9", authUrl: "http://127.0.0.1:9" } as never, port),
        redirect_uri: `https://127.0.0.1:${port}`,
        web_config_file: "web.yml",
      };
      const config = await writeConfig(dir, fields);
      await writeWeb(dir, `tls_server_config:\n  cert_file: ${certs.certPath}\n  key_file: ${certs.keyPath}\n`);
      const checked = await runWhileProbing(
        Deno.execPath(),
        [...await taskRunArgs("start"), "--config", config, "--check-config"],
        port,
      );
      assert.equal(checked.code, 0, checked.stderrLines.join("\n"));
      assert.match(checked.stdout, /Web config ".*web\.yml" is valid: TLS, no basic auth, 0 extra headers/);

      // The flag wins over the key: a broken file named on the command line is the one refused.
      const broken = await writeWeb(dir, "tls_server_config:\n  min_version: TLS13\n", "broken.yml");
      for (const extra of [["--check-config"], []]) {
        const ended = await runWhileProbing(
          Deno.execPath(),
          [...await taskRunArgs("start"), "--config", config, "--web.config.file", broken, ...extra],
          port,
        );
        assert.equal(ended.code, 1);
        assert.equal(ended.listened, false);
        assert.deepEqual(ended.stderrLines, [
          `Cannot load web config "${broken}": tls_server_config.min_version is not supported: Deno serves TLS 1.2 ` +
          "and 1.3 and no other range; it cannot refuse TLS 1.2 (only TLS12 is accepted)",
        ]);
      }
      // TLS with an http:// redirect_uri would send the browser back to a port that cannot answer it.
      const plain = await writeConfig(dir, { ...fields, redirect_uri: `http://127.0.0.1:${port}` }, "plain.toml");
      const mismatch = await runWhileProbing(Deno.execPath(), [...await taskRunArgs("start"), "--config", plain], port);
      assert.equal(mismatch.code, 1);
      assert.equal(mismatch.listened, false);
      assert.equal(programLines(mismatch.stderrLines.join("\n")).length, 1);
      assert.match(mismatch.stderrLines[0], /redirect_uri ".*" starts with http:\/\/; use https:\/\//);
    });
  },
});
