import assert from "node:assert/strict";
import { isAbsolute, join, relative } from "node:path";
import { Hono } from "hono";
import { parse as parseToml } from "smol-toml";
import {
  type Config,
  configFileSchema,
  configFromObject,
  type Env,
  EXAMPLE_AUTH_KEYS,
  loadConfig,
  loadProbeKeys,
  summarizeConfig,
} from "../lib/config/config.ts";
import { withTempDir } from "./helpers/harness.ts";

/** The original Rust exporter's config.toml, key for key as its README shows it. */
const ORIGINAL_README_CONFIG = `account_id = "acc_xxxxxxxxxxxxxxxxxxxxxx"
client_id = "oauth2client_xxxxxxxxxxxxxxxxxxxxxx"
client_secret = "mnzconf.xxxxxx/xxxxxx/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
server_addr = "0.0.0.0:8080"
redirect_uri = "http://127.0.0.1:8080"
auth_key = "$Kq1wJ@HF18yN^4I"
`;
const README_AUTH_KEY = "$Kq1wJ@HF18yN^4I";
/** A key a user could have chosen: long enough and not published anywhere. */
const OWN_AUTH_KEY = "test-only-auth-key-7f3a9c";

/** The smallest valid config: only the required keys. */
const MINIMAL = `client_id = "oauth2client_test"
client_secret = "test-client-secret"
server_addr = "127.0.0.1:9100"
redirect_uri = "http://127.0.0.1:9100"
auth_key = "${OWN_AUTH_KEY}"
`;

/** Writes `text` as a config file in `dir` and loads it. */
async function loadText(dir: string, text: string, env?: Env, name = "config.toml") {
  const path = join(dir, name);
  await Deno.writeTextFile(path, text);
  return { path, result: await loadConfig(path, { env }) };
}

async function loadOk(dir: string, text: string, env?: Env): Promise<Config> {
  const { result } = await loadText(dir, text, env);
  assert.ok(result.ok, `expected the config to load, got: ${result.ok ? "" : result.error}`);
  return result.value;
}

/** Asserts a one-line error naming the file and every one of `needles`. */
function assertOneLineError(
  result: Awaited<ReturnType<typeof loadConfig>>,
  path: string,
  ...needles: string[]
): string {
  assert.ok(!result.ok, "expected the config to be refused");
  const message = result.error;
  assert.doesNotMatch(message, /[\r\n]/, `error spans several lines: ${JSON.stringify(message)}`);
  assert.doesNotMatch(message, /\bat .+:\d+:\d+/, `error carries a stack trace: ${message}`);
  assert.ok(message.includes(`"${path}"`), `error does not name the file "${path}": ${message}`);
  for (const needle of needles) assert.ok(message.includes(needle), `error does not mention "${needle}": ${message}`);
  return message;
}

/** Replaces (or, with null, removes) the line of `key` in a config text. */
function withKey(text: string, key: string, value: string | null): string {
  const line = new RegExp(`^${key} = .*$\\n?`, "m");
  assert.match(text, line, `the fixture has no ${key} line`);
  return text.replace(line, value === null ? "" : `${key} = ${value}\n`);
}

function envOf(values: Record<string, string>): Env {
  return (name) => values[name];
}

Deno.test("the original exporter's config.toml loads unchanged once its example auth_key is replaced", async () => {
  await withTempDir(async (dir) => {
    const text = ORIGINAL_README_CONFIG.replace(README_AUTH_KEY, OWN_AUTH_KEY);
    const written = parseToml(text);
    assert.deepEqual(Object.keys(written).sort(), [
      "account_id",
      "auth_key",
      "client_id",
      "client_secret",
      "redirect_uri",
      "server_addr",
    ]);
    const config = await loadOk(dir, text);
    assert.equal(config.accountId, written.account_id);
    assert.equal(config.clientId, written.client_id);
    assert.equal(config.clientSecret, written.client_secret);
    assert.equal(`${config.listen.hostname}:${config.listen.port}`, written.server_addr);
    assert.deepEqual(config.listen, { hostname: "0.0.0.0", port: 8080 });
    assert.equal(config.publicUrl, written.redirect_uri);
    // The original appends /callback to redirect_uri; Monzo's client must be registered with that URL.
    assert.equal(config.callbackUrl, "http://127.0.0.1:8080/callback");
    assert.equal(config.authKey, OWN_AUTH_KEY);
    assert.deepEqual(config.fromEnv, []);
  });
});

Deno.test("the original exporter's README config, example auth_key and all, is refused naming auth_key", async () => {
  await withTempDir(async (dir) => {
    const { path, result } = await loadText(dir, ORIGINAL_README_CONFIG);
    assertOneLineError(result, path, "auth_key");
  });
});

Deno.test("optional keys take their defaults and tokens.json sits beside the config", async () => {
  await withTempDir(async (dir) => {
    const config = await loadOk(dir, MINIMAL);
    assert.equal(config.apiUrl, "https://api.monzo.com");
    assert.equal(config.authUrl, "https://auth.monzo.com");
    assert.equal(config.tokensPath, join(dir, "tokens.json"));
    assert.equal(config.pollIntervalMinutes, 1);
    assert.equal(config.requestTimeoutMs, 10_000);
    assert.equal(config.accountId, null, "account_id is optional: without it every account is exported");
    assert.equal(config.path, join(dir, "config.toml"));
  });
});

Deno.test("a relative tokens_path is resolved against the config's folder, not the working directory", async () => {
  await withTempDir(async (dir) => {
    assert.notEqual(Deno.cwd(), dir);
    const config = await loadOk(dir, MINIMAL + `tokens_path = "state/tokens.json"\n`);
    assert.equal(config.tokensPath, join(dir, "state", "tokens.json"));
  });
});

Deno.test("a config given by a relative path reports absolute paths", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "config.toml");
    await Deno.writeTextFile(path, MINIMAL);
    const result = await loadConfig(relative(Deno.cwd(), path));
    assert.ok(result.ok, result.ok ? "" : result.error);
    assert.equal(result.value.path, path);
    assert.equal(result.value.tokensPath, join(dir, "tokens.json"));
  });
});

Deno.test("an absolute tokens_path is kept as written", async () => {
  await withTempDir(async (dir) => {
    const elsewhere = join(dir, "elsewhere", "logins.json");
    assert.ok(isAbsolute(elsewhere));
    const config = await loadOk(dir, MINIMAL + `tokens_path = ${JSON.stringify(elsewhere)}\n`);
    assert.equal(config.tokensPath, elsewhere);
  });
});

Deno.test("optional keys given in the file are used", async () => {
  await withTempDir(async (dir) => {
    const config = await loadOk(
      dir,
      MINIMAL + `account_id = "acc_00009Test"\napi_url = "http://127.0.0.1:4000"\n` +
        `auth_url = "http://127.0.0.1:4001/login"\npoll_interval_minutes = 15\nrequest_timeout_seconds = 30\n`,
    );
    assert.equal(config.accountId, "acc_00009Test");
    assert.equal(config.apiUrl, "http://127.0.0.1:4000");
    assert.equal(config.authUrl, "http://127.0.0.1:4001/login");
    assert.equal(config.pollIntervalMinutes, 15);
    assert.equal(config.requestTimeoutMs, 30_000);
  });
});

Deno.test("a redirect_uri with a trailing slash still gives a single-slash /callback", async () => {
  await withTempDir(async (dir) => {
    for (
      const [written, base] of [
        ["http://127.0.0.1:8080/", "http://127.0.0.1:8080"],
        ["https://monzo.example.org/exporter/", "https://monzo.example.org/exporter"],
        ["https://monzo.example.org/exporter", "https://monzo.example.org/exporter"],
      ]
    ) {
      const config = await loadOk(dir, withKey(MINIMAL, "redirect_uri", JSON.stringify(written)));
      assert.equal(config.publicUrl, base, written);
      assert.equal(config.callbackUrl, `${base}/callback`, written);
    }
  });
});

Deno.test("a missing config file is a one-line error naming its absolute path", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "absent.toml");
    const result = await loadConfig(relative(Deno.cwd(), path));
    assertOneLineError(result, path, "not found");
  });
});

Deno.test("malformed TOML is a one-line error naming the file and the line", async () => {
  await withTempDir(async (dir) => {
    // Line 3 is broken: the value is not quoted.
    const text = MINIMAL.split("\n").map((line, index) => index === 2 ? "server_addr = 127.0.0.1:9100" : line)
      .join("\n");
    const { path, result } = await loadText(dir, text);
    const message = assertOneLineError(result, path, "TOML");
    assert.match(message, /\bline 3\b/);
  });
});

Deno.test("an unknown key is a one-line error naming the key", async () => {
  await withTempDir(async (dir) => {
    const { path, result } = await loadText(dir, MINIMAL + `metrics_path = "/monzo"\n`);
    assertOneLineError(result, path, "metrics_path");
  });
});

Deno.test("each missing required key is named, with the environment variable that can supply it", async () => {
  const required: Record<string, string | null> = {
    client_id: "MONZO_CLIENT_ID",
    client_secret: "MONZO_CLIENT_SECRET",
    auth_key: "MONZO_AUTH_KEY",
    server_addr: null,
    redirect_uri: null,
  };
  await withTempDir(async (dir) => {
    for (const [key, envName] of Object.entries(required)) {
      const { path, result } = await loadText(dir, withKey(MINIMAL, key, null));
      const message = assertOneLineError(result, path, key, "missing", ...(envName ? [envName] : []));
      if (!envName) assert.doesNotMatch(message, /MONZO_/, `${key} has no environment variable: ${message}`);
    }
  });
});

Deno.test("a value of the wrong type is a one-line error naming the key", async () => {
  const cases: Array<[string, string]> = [
    ["client_id", "12345"],
    ["client_secret", "true"],
    ["server_addr", "8080"],
    ["redirect_uri", `["http://127.0.0.1:9100"]`],
    ["auth_key", "1234567"],
    ["account_id", "42"],
    ["api_url", '{ host = "api.monzo.com" }'],
    ["auth_url", "1"],
    ["tokens_path", "false"],
    ["poll_interval_minutes", `"5"`],
    ["request_timeout_seconds", `"10"`],
  ];
  await withTempDir(async (dir) => {
    for (const [key, value] of cases) {
      const text = key in parseToml(MINIMAL) ? withKey(MINIMAL, key, value) : MINIMAL + `${key} = ${value}\n`;
      const { path, result } = await loadText(dir, text);
      assertOneLineError(result, path, key);
    }
  });
});

Deno.test("a server_addr that is not host:port is refused, quoting it", async () => {
  await withTempDir(async (dir) => {
    for (
      const bad of ["8080", "localhost", ":8080", "127.0.0.1:99999", "127.0.0.1:port", "http://127.0.0.1:8080", ""]
    ) {
      const { path, result } = await loadText(dir, withKey(MINIMAL, "server_addr", JSON.stringify(bad)));
      assertOneLineError(result, path, "server_addr", `"${bad}"`);
    }
  });
});

Deno.test("server_addr accepts IPv4, IPv6 in brackets, host names and port 0", async () => {
  await withTempDir(async (dir) => {
    for (
      const [text, hostname, port] of [
        ["0.0.0.0:8080", "0.0.0.0", 8080],
        ["[::]:9100", "::", 9100],
        ["[::1]:1", "::1", 1],
        ["localhost:65535", "localhost", 65535],
        ["127.0.0.1:0", "127.0.0.1", 0],
      ] as const
    ) {
      const config = await loadOk(dir, withKey(MINIMAL, "server_addr", JSON.stringify(text)));
      assert.deepEqual(config.listen, { hostname, port }, text);
    }
  });
});

Deno.test("a redirect_uri that is not a URL, not http(s) or 0.0.0.0 is refused, naming redirect_uri", async () => {
  await withTempDir(async (dir) => {
    for (
      const [bad, reason] of [
        ["127.0.0.1 port 8080", "not a URL"],
        ["", "not a URL"],
        ["ftp://127.0.0.1:8080", "http"],
        ["file:///srv/exporter", "http"],
        ["http://0.0.0.0:8080", "0.0.0.0"],
        ["https://0.0.0.0/", "0.0.0.0"],
        ["http://[::]:8080", "[::]"],
      ]
    ) {
      const { path, result } = await loadText(dir, withKey(MINIMAL, "redirect_uri", JSON.stringify(bad)));
      assertOneLineError(result, path, "redirect_uri", reason);
    }
  });
});

Deno.test("an empty or short auth_key is refused, naming auth_key", async () => {
  await withTempDir(async (dir) => {
    for (const bad of ["", "   ", "a".repeat(15), "fifteen-chars!!"]) {
      const { path, result } = await loadText(dir, withKey(MINIMAL, "auth_key", JSON.stringify(bad)));
      assertOneLineError(result, path, "auth_key");
    }
    // Sixteen characters is the least accepted.
    const config = await loadOk(dir, withKey(MINIMAL, "auth_key", JSON.stringify("b".repeat(16))));
    assert.equal(config.authKey, "b".repeat(16));
  });
});

Deno.test("an auth_key with a character an address bar mangles is refused, naming the character and why", async () => {
  await withTempDir(async (dir) => {
    const cases: Array<[string, RegExp]> = [
      ["#", /does not send/],
      ["&", /another parameter/],
      ["+", /as a space/],
      ["%", /encoded character/],
      [" ", /space/],
      ["\t", /space/],
    ];
    for (const [character, why] of cases) {
      const key = `abcdefgh${character}ijklmnop`;
      const { path, result } = await loadText(dir, withKey(MINIMAL, "auth_key", JSON.stringify(key)));
      const message = assertOneLineError(result, path, "auth_key", JSON.stringify(character));
      assert.match(message, why);
      assert.match(message, /use letters, digits and - _ \. ~/);
    }
  });
});

Deno.test("every auth_key the config accepts arrives at /authorize as written when typed into a browser", () => {
  // What the app does with the key (lib/http/app.ts reads it with c.req.query("key")).
  const app = new Hono();
  app.get("/authorize", (c) => c.text(c.req.query("key") ?? ""));
  const characters = [...Array(0x80).keys()].map((code) => String.fromCharCode(code));
  characters.push("é", "€", "\u00a0", "\u2028", "😀", "%41", "%2B", "%zz");
  let accepted = 0;
  return Promise.all(characters.map(async (character) => {
    const key = `abcdefgh${character}ijklmnop`;
    const config = configFromObject({ ...parseToml(MINIMAL), auth_key: key }, { path: "/tmp/config.toml" });
    if (!config.ok) {
      assert.match(config.error, /^auth_key contains /, config.error);
      return;
    }
    accepted++;
    // The address bar's part: the URL as the browser parses (and percent-encodes) what was typed.
    const typed = new URL(`http://exporter.example/authorize?key=${key}`);
    const arrived = await (await app.request(typed.href)).text();
    assert.equal(arrived, key, `auth_key ${JSON.stringify(key)} arrives as ${JSON.stringify(arrived)}`);
  })).then(() => assert.ok(accepted > 80, `only ${accepted} characters are accepted`));
});

Deno.test("every published example auth_key is refused, the README's and config.example.toml's among them", async () => {
  const example = await Deno.readTextFile(new URL("../config.example.toml", import.meta.url));
  const exampleKey = parseToml(example).auth_key;
  assert.equal(typeof exampleKey, "string");
  assert.ok(EXAMPLE_AUTH_KEYS.includes(exampleKey as string), `config.example.toml's auth_key is not listed`);
  assert.ok(EXAMPLE_AUTH_KEYS.includes(README_AUTH_KEY), "the original README's auth_key is not listed");
  await withTempDir(async (dir) => {
    for (const key of EXAMPLE_AUTH_KEYS) {
      const { path, result } = await loadText(dir, withKey(MINIMAL, "auth_key", JSON.stringify(key)));
      assertOneLineError(result, path, "auth_key");
    }
  });
});

Deno.test("config.example.toml is refused as shipped and loads once a real auth_key is put in", async () => {
  const example = await Deno.readTextFile(new URL("../config.example.toml", import.meta.url));
  await withTempDir(async (dir) => {
    const { path, result } = await loadText(dir, example);
    assertOneLineError(result, path, "auth_key");
    const exampleKey = parseToml(example).auth_key as string;
    const filled = example.replace(JSON.stringify(exampleKey), JSON.stringify(OWN_AUTH_KEY));
    assert.notEqual(filled, example);
    const config = await loadOk(dir, filled);
    assert.equal(config.authKey, OWN_AUTH_KEY);
    // Every optional key is commented out, so the example documents the defaults.
    assert.equal(config.tokensPath, join(dir, "tokens.json"));
    assert.equal(config.pollIntervalMinutes, 1);
    assert.equal(config.requestTimeoutMs, 10_000);
  });
});

Deno.test("poll_interval_minutes must divide an hour", async () => {
  const divisors = Array.from({ length: 60 }, (_, i) => i + 1).filter((n) => 60 % n === 0);
  await withTempDir(async (dir) => {
    for (let minutes = 1; minutes <= 60; minutes++) {
      const text = MINIMAL + `poll_interval_minutes = ${minutes}\n`;
      if (divisors.includes(minutes)) {
        assert.equal((await loadOk(dir, text)).pollIntervalMinutes, minutes);
      } else {
        const { path, result } = await loadText(dir, text);
        assertOneLineError(result, path, "poll_interval_minutes");
      }
    }
    for (const bad of ["0", "-5", "2.5", "90", "120", "nan", "inf"]) {
      const { path, result } = await loadText(dir, MINIMAL + `poll_interval_minutes = ${bad}\n`);
      assertOneLineError(result, path, "poll_interval_minutes");
    }
  });
});

Deno.test("request_timeout_seconds must lie between 1 and 120", async () => {
  await withTempDir(async (dir) => {
    for (const bad of ["0", "-1", "0.5", "121", "3600", "nan", "inf"]) {
      const { path, result } = await loadText(dir, MINIMAL + `request_timeout_seconds = ${bad}\n`);
      assertOneLineError(result, path, "request_timeout_seconds");
    }
    assert.equal((await loadOk(dir, MINIMAL + "request_timeout_seconds = 1\n")).requestTimeoutMs, 1_000);
    assert.equal((await loadOk(dir, MINIMAL + "request_timeout_seconds = 120\n")).requestTimeoutMs, 120_000);
  });
});

Deno.test("a malformed account_id is refused, naming account_id", async () => {
  await withTempDir(async (dir) => {
    for (const bad of ["", "acc_", "acc-00009Test", "00009Test", "acc_0000 9Test", "user_00009Test"]) {
      const { path, result } = await loadText(dir, MINIMAL + `account_id = ${JSON.stringify(bad)}\n`);
      assertOneLineError(result, path, "account_id");
    }
  });
});

Deno.test("values with line breaks in them still give one-line errors", async () => {
  await withTempDir(async (dir) => {
    const cases: Array<[string, string]> = [
      [withKey(MINIMAL, "redirect_uri", `"not a url\\nsecond line"`), "redirect_uri"],
      [withKey(MINIMAL, "redirect_uri", `"ftp://host/\\r\\nx"`), "redirect_uri"],
      [withKey(MINIMAL, "server_addr", `"127.0.0.1\\n:9100"`), "server_addr"],
      [MINIMAL + `"metrics\\npath" = 1\n`, "metrics"],
    ];
    for (const [text, key] of cases) {
      const { path, result } = await loadText(dir, text);
      assertOneLineError(result, path, key);
    }
  });
});

Deno.test("environment variables override the file and are listed in fromEnv", async () => {
  await withTempDir(async (dir) => {
    const env = {
      MONZO_ACCOUNT_ID: "acc_00009FromEnv",
      MONZO_CLIENT_ID: "oauth2client_fromenv",
      MONZO_CLIENT_SECRET: "env-client-secret-value",
      MONZO_AUTH_KEY: "env-auth-key-0123456789",
    };
    const config = await loadOk(dir, MINIMAL + `account_id = "acc_00009FromFile"\n`, envOf(env));
    assert.equal(config.accountId, env.MONZO_ACCOUNT_ID);
    assert.equal(config.clientId, env.MONZO_CLIENT_ID);
    assert.equal(config.clientSecret, env.MONZO_CLIENT_SECRET);
    assert.equal(config.authKey, env.MONZO_AUTH_KEY);
    assert.deepEqual([...config.fromEnv].sort(), Object.keys(env).sort());
  });
});

Deno.test("environment variables fill in required keys the file leaves out", async () => {
  await withTempDir(async (dir) => {
    const text = withKey(withKey(MINIMAL, "client_secret", null), "auth_key", null);
    const config = await loadOk(
      dir,
      text,
      envOf({ MONZO_CLIENT_SECRET: "env-client-secret-value", MONZO_AUTH_KEY: "env-auth-key-0123456789" }),
    );
    assert.equal(config.clientSecret, "env-client-secret-value");
    assert.equal(config.authKey, "env-auth-key-0123456789");
    assert.deepEqual([...config.fromEnv].sort(), ["MONZO_AUTH_KEY", "MONZO_CLIENT_SECRET"]);
  });
});

Deno.test("only the environment variables that were set are listed, and an empty one does not override", async () => {
  await withTempDir(async (dir) => {
    const config = await loadOk(dir, MINIMAL, envOf({ MONZO_CLIENT_ID: "oauth2client_fromenv", MONZO_AUTH_KEY: "" }));
    assert.equal(config.clientId, "oauth2client_fromenv");
    assert.equal(config.authKey, OWN_AUTH_KEY);
    assert.deepEqual(config.fromEnv, ["MONZO_CLIENT_ID"]);
  });
});

Deno.test("values from the environment are validated like the file's", async () => {
  await withTempDir(async (dir) => {
    for (
      const [name, value, key] of [
        ["MONZO_AUTH_KEY", "short", "auth_key"],
        ["MONZO_AUTH_KEY", README_AUTH_KEY, "auth_key"],
        ["MONZO_ACCOUNT_ID", "not-an-account", "account_id"],
        ["MONZO_CLIENT_ID", "   ", "client_id"],
      ]
    ) {
      const { path, result } = await loadText(dir, MINIMAL, envOf({ [name]: value }));
      assertOneLineError(result, path, key);
    }
  });
});

Deno.test("summarizeConfig is one line and contains neither the client secret nor the auth key", async () => {
  await withTempDir(async (dir) => {
    const secret = "mnzconf.summary-test-secret-4b7d";
    const authKey = "summary-test-auth-key-93e1";
    const config = await loadOk(
      dir,
      withKey(MINIMAL, "client_secret", JSON.stringify(secret)) + `account_id = "acc_00009Summary"\n`,
      envOf({ MONZO_AUTH_KEY: authKey }),
    );
    assert.equal(config.clientSecret, secret);
    assert.equal(config.authKey, authKey);
    const summary = summarizeConfig(config);
    assert.ok(!summary.includes(secret), summary);
    assert.ok(!summary.includes(authKey), summary);
    assert.doesNotMatch(summary, /[\r\n]/);
    // It still says what was loaded.
    assert.ok(summary.includes(config.path), summary);
    assert.ok(summary.includes("acc_00009Summary"), summary);
    assert.ok(summary.includes("MONZO_AUTH_KEY"), summary);
  });
});

Deno.test("config.example.toml shows every config key the schema knows", async () => {
  const example = await Deno.readTextFile(new URL("../config.example.toml", import.meta.url));
  const keys = Object.keys(configFileSchema.shape);
  assert.ok(keys.length >= 11, "the schema lists too few keys");
  // Keys written as TOML tables rather than `key = value`.
  const tables: Record<string, string> = { rules: "\\[\\[rules\\]\\]", accounts: "\\[accounts\\.acc_\\w+\\]" };
  for (const key of keys) {
    // Either set or shown commented out with its default.
    const shown = tables[key] ?? `${key} = `;
    assert.match(example, new RegExp(`^#? ?${shown}`, "m"), `config.example.toml does not show ${key}`);
  }
});

Deno.test("the README's config table lists every config key the schema knows", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const keys = Object.keys(configFileSchema.shape);
  assert.ok(keys.length >= 11, "the schema lists too few keys");
  for (const key of keys) {
    assert.match(readme, new RegExp(`^\\| \`${key}\` +\\|`, "m"), `the README's config table lacks ${key}`);
  }
});

Deno.test("loadProbeKeys (--healthcheck's reading) gives loadConfig's server_addr and web_config_file, and its refusals", async () => {
  await withTempDir(async (dir) => {
    const text = `${MINIMAL}web_config_file = "tls/web.yml"\n`;
    const config = await loadOk(dir, text);
    const keys = await loadProbeKeys(join(dir, "config.toml"));
    assert.ok(keys.ok && keys.value, keys.ok ? "no keys" : keys.error);
    assert.deepEqual(keys.value.listen, { ok: true, value: config.listen });
    assert.deepEqual(keys.value.webConfigFile, { ok: true, value: config.webConfigFile });
    assert.equal(keys.value.path, config.path);

    // Only the two keys: a file without the secrets still gives them.
    await Deno.writeTextFile(join(dir, "partial.toml"), `server_addr = "0.0.0.0:9101"\n`);
    const partial = await loadProbeKeys(join(dir, "partial.toml"));
    assert.ok(partial.ok && partial.value);
    assert.deepEqual(partial.value.listen, { ok: true, value: { hostname: "0.0.0.0", port: 9101 } });
    assert.deepEqual(partial.value.webConfigFile, { ok: true, value: null });

    // A bad value is refused with the words loadConfig uses.
    for (const [key, value] of [["server_addr", `"nowhere"`], ["web_config_file", `""`], ["web_config_file", "3"]]) {
      const bad = withKey(`${MINIMAL}web_config_file = "web.yml"\n`, key, value);
      const loaded = await loadText(dir, bad);
      assert.ok(!loaded.result.ok);
      const probed = await loadProbeKeys(loaded.path);
      assert.ok(probed.ok && probed.value);
      const refused = key === "server_addr" ? probed.value.listen : probed.value.webConfigFile;
      assert.ok(!refused.ok, `${key} = ${value} was accepted`);
      assert.ok(loaded.result.error.endsWith(`: ${refused.error}`), `${refused.error} vs ${loaded.result.error}`);
    }
    // The same TOML reader: the same words for a syntax error.
    const broken = await loadText(dir, "server_addr = \n");
    const probed = await loadProbeKeys(broken.path);
    assert.ok(!probed.ok && !broken.result.ok);
    assert.equal(probed.error.replace("Cannot read config", "Cannot load config"), broken.result.error);
    assert.deepEqual(await loadProbeKeys(join(dir, "absent.toml")), { ok: true, value: null });
  });
});
