// Runs the real program, `deno task start` and `deno task demo`, as a subprocess, the way a user does.

import assert from "node:assert/strict";
import { join } from "node:path";
import meta from "../deno.json" with { type: "json" };
import { startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import {
  ALICE,
  ALICE_CURRENT,
  AUTH_KEY,
  bareConfigFields,
  CLIENT_ID,
  CLIENT_SECRET,
  configFields,
  freePort,
  get,
  isListening,
  JOINT,
  programLines,
  runTask,
  runWhileProbing,
  sampleValue,
  spawn,
  waitFor,
  writeConfig,
} from "./helpers/e2e.ts";
import { withTempDir } from "./helpers/harness.ts";
import { taskRunArgs } from "./helpers/tasks.ts";

const FLAGS = [
  "--config",
  "--web.listen-address",
  "--log.level",
  "--check-config",
  "--demo",
  "--healthcheck",
  "--version",
  "--help",
];
const STACK_TRACE = /^\s+at |error: Uncaught|Stack trace/m;
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR) \S/;

/** Every line the program wrote to stderr is one of its log lines: no runtime warnings, no dumps. */
function assertOnlyLogLines(stderr: string): void {
  for (const line of programLines(stderr)) assert.match(line, LOG_LINE, `not a log line on stderr: ${line}`);
}

/** Runs `deno task start …args` to its end while knocking on `port` the whole time. */
async function runStartWhileProbing(args: string[], port: number) {
  return runWhileProbing(Deno.execPath(), [...await taskRunArgs("start"), ...args], port);
}

Deno.test("--version prints the version from deno.json and exits 0", async () => {
  const result = await runTask("start", ["--version"]);
  assert.equal(result.code, 0);
  assert.equal(result.stdout, `monzo-exporter ${meta.version}\n`);
  assert.deepEqual(result.stderrLines, []);
});

Deno.test("--help mentions every flag and exits 0", async () => {
  const result = await runTask("start", ["--help"]);
  assert.equal(result.code, 0);
  for (const flag of FLAGS) assert.ok(result.stdout.includes(flag), `--help does not mention ${flag}`);
  assert.match(result.stdout, /^Usage: monzo-exporter/);
});

Deno.test("--check-config prints a one-line summary without secrets and exits 0 without listening", async () => {
  await withTempDir(async (dir) => {
    const port = freePort();
    const path = await writeConfig(dir, {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      server_addr: `127.0.0.1:${port}`,
      redirect_uri: `http://127.0.0.1:${port}/`,
      auth_key: AUTH_KEY,
      tokens_path: "state/tokens.json",
    });
    // --check-config refuses a tokens folder that does not exist.
    await Deno.mkdir(join(dir, "state"));
    const result = await runStartWhileProbing(["--config", path, "--check-config"], port);
    assert.equal(result.listened, false, "--check-config opened the port");
    assert.equal(result.code, 0, result.stderrLines.join("\n"));
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 1, `expected one line, got:\n${result.stdout}`);
    const [summary] = lines;
    assert.ok(summary.includes(path), summary);
    assert.ok(summary.includes(CLIENT_ID), summary);
    assert.ok(summary.includes(`http://127.0.0.1:${port}/callback`), summary);
    // A relative tokens_path lives beside the config file, not in the working directory.
    assert.ok(summary.includes(join(dir, "state/tokens.json")), summary);
    assert.ok(!summary.includes(CLIENT_SECRET), "the summary shows the client secret");
    assert.ok(!summary.includes(AUTH_KEY), "the summary shows the auth key");
    assert.deepEqual(result.stderrLines, []);
  });
});

// The bad-config contract of the real program, once: tests/config_test.ts covers each kind of bad config
// in-process (a missing file, malformed TOML, the example auth_keys, unknown and missing keys, bad values);
// this checks that such an error reaches the user as the program's whole answer.
Deno.test("bad config: an unknown key is named, in one line on stderr, exit non-zero, nothing listens", async () => {
  await withTempDir(async (dir) => {
    const port = freePort();
    // The file holds the client secret, which the error must not show.
    const path = await writeConfig(dir, { ...bareConfigFields(port), scrape_interval: 5 });
    // --web.listen-address too, so that the port that must stay free is known whatever the config says.
    const result = await runStartWhileProbing(["--config", path, "--web.listen-address", `127.0.0.1:${port}`], port);
    assert.equal(result.listened, false, "the program listened despite the bad config");
    assert.notEqual(result.code, 0);
    assert.equal(result.stdout, "");
    assert.equal(result.stderrLines.length, 1, `expected one line on stderr, got:\n${result.stderrLines.join("\n")}`);
    const [line] = result.stderrLines;
    assert.ok(line.includes('"scrape_interval"'), `the key is missing from: ${line}`);
    assert.doesNotMatch(line, STACK_TRACE);
    assert.ok(!line.includes(CLIENT_SECRET), "the error shows the client secret");
  });
});

Deno.test("deno task start: logs in through /authorize and /callback, serves balances, keeps tokens 0600, stops on SIGTERM", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: true });
  const dir = await Deno.makeTempDir({ prefix: "monzo-main-run-" });
  const port = freePort();
  const unusedPort = freePort();
  // server_addr names another port: --web.listen-address must win.
  const configPath = await writeConfig(dir, { ...configFields(fake, port), server_addr: `127.0.0.1:${unusedPort}` });
  const program = spawn(Deno.execPath(), [
    ...await taskRunArgs("start"),
    "--config",
    configPath,
    "--web.listen-address",
    `127.0.0.1:${port}`,
  ]);
  const base = `http://127.0.0.1:${port}`;
  let code: string | null = null;
  try {
    await waitFor("the exporter to serve /healthz", async () => (await get(`${base}/healthz`)).status === 200, {
      timeoutMs: 20_000,
    });
    assert.equal(await isListening(unusedPort), false, "server_addr was used despite --web.listen-address");

    const before = await get(`${base}/`);
    assert.match(before.text, /Nobody is logged in yet/);
    assert.ok(!(await get(`${base}/metrics`)).text.includes("monzo_balance{"), "balances before any login");

    // The login link: a redirect to Monzo's page with a fresh state, never the key.
    const authorize = await fetch(`${base}/authorize?key=${encodeURIComponent(AUTH_KEY)}`, { redirect: "manual" });
    await authorize.body?.cancel();
    assert.equal(authorize.status, 302);
    const location = new URL(authorize.headers.get("location") ?? "");
    assert.equal(`${location.origin}${location.pathname}`, `${fake.authUrl}/`);
    assert.equal(location.searchParams.get("client_id"), CLIENT_ID);
    assert.equal(location.searchParams.get("redirect_uri"), `${base}/callback`);
    assert.equal(location.searchParams.get("response_type"), "code");
    const state = location.searchParams.get("state") ?? "";
    assert.ok(state.length >= 16, `state "${state}" is too short`);
    assert.ok(!state.includes(AUTH_KEY));

    // The fake Monzo's login page answers the redirect.
    const authPage = await get(location.href);
    assert.equal(authPage.status, 200);
    assert.match(authPage.text, /id="email"/);

    // Monzo sends the browser back with a code.
    code = fake.issueCode(ALICE, `${base}/callback`);
    const callback = await get(`${base}/callback?${new URLSearchParams({ code, state })}`);
    assert.equal(callback.status, 200, callback.text);
    assert.match(callback.text, /approve in the Monzo app/);

    // The login polls at once: the balances appear without waiting for the cron minute.
    const metrics = await waitFor("balances on /metrics after the first poll", async () => {
      const text = (await get(`${base}/metrics`)).text;
      // Balances show as soon as their step is done; monzo_up 1 once the whole poll after the login is.
      const polled = /^monzo_up 1$/m.test(text);
      return sampleValue(text, "monzo_balance", `account_id="${ALICE_CURRENT}",currency="GBP"`) !== undefined &&
        polled && text;
    });
    assert.equal(sampleValue(metrics, "monzo_balance", `account_id="${ALICE_CURRENT}",currency="GBP"`), 1234.56);
    assert.equal(sampleValue(metrics, "monzo_balance", `account_id="${JOINT}",currency="GBP"`), 567.89);
    assert.match(metrics, /^monzo_up 1$/m);

    // The tokens file: beside the config (tokens_path is relative), owner-only, holding the live token.
    const tokensPath = join(dir, "tokens.json");
    const info = await Deno.stat(tokensPath);
    assert.equal((info.mode ?? 0) & 0o777, 0o600, `tokens file mode is ${((info.mode ?? 0) & 0o777).toString(8)}`);
    const stored = JSON.parse(await Deno.readTextFile(tokensPath));
    const issued = fake.tokensOf(ALICE);
    assert.ok(issued);
    assert.equal(stored.access_token, issued.accessToken);
    assert.equal(stored.refresh_token, issued.refreshToken);

    // SIGTERM: a clean exit, quickly.
    const started = performance.now();
    const status = await program.stop("SIGTERM", 10_000);
    const took = performance.now() - started;
    assert.equal(status.code, 0, `exit code ${status.code} after SIGTERM; stderr:\n${program.stderr.text}`);
    assert.ok(took < 5_000, `stopping took ${Math.round(took)} ms`);

    const stderr = program.stderr.text;
    assert.match(stderr, /Received SIGTERM/);
    const secrets: Record<string, string> = {
      "client secret": CLIENT_SECRET,
      "auth key": AUTH_KEY,
      "access token": issued.accessToken,
      "refresh token": issued.refreshToken,
      "authorization code": code,
    };
    for (const [what, secret] of Object.entries(secrets)) {
      assert.ok(!stderr.includes(secret), `stderr shows the ${what}`);
      assert.ok(!program.stdout.text.includes(secret), `stdout shows the ${what}`);
    }
    assert.doesNotMatch(stderr, STACK_TRACE);
    assertOnlyLogLines(stderr);
  } finally {
    await program.stop("SIGKILL");
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The `name="value"` hidden inputs and the form's action in an HTML page. */
function formOf(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
  assert.ok(action, "the page has no form");
  const fields: Record<string, string> = {};
  for (const match of html.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) {
    fields[match[1]] = match[2].replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&#39;", "'");
  }
  return { action: action.replaceAll("&amp;", "&"), fields };
}

/** The sum of every balance and pot sample, to see whether values moved. */
function moneySamples(exposition: string): string[] {
  return exposition.split("\n").filter((line) => /^monzo_(balance|pot_balance|spend_today)\{/.test(line));
}

Deno.test("deno task demo: labelled demo everywhere, serves balances, moves on a poll, stops on SIGINT", async () => {
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const program = spawn(Deno.execPath(), [...await taskRunArgs("demo"), "--web.listen-address", `127.0.0.1:${port}`]);
  try {
    const first = await waitFor("demo balances on /metrics", async () => {
      const text = (await get(`${base}/metrics`)).text;
      // Balances show as soon as their step is done; monzo_up 1 once the whole first poll is.
      return text.includes(`monzo_balance{account_id="${ALICE_CURRENT}"`) && /^monzo_up 1$/m.test(text) && text;
    }, { timeoutMs: 20_000 });
    assert.match(first, new RegExp(`^monzo_exporter_build_info\\{version="${meta.version}",mode="demo"\\} 1$`, "m"));
    assert.ok(moneySamples(first).length >= 8, `few balances:\n${moneySamples(first).join("\n")}`);
    assert.match(first, /^monzo_up 1$/m);

    const landing = await get(`${base}/`);
    assert.equal(landing.status, 200);
    assert.match(landing.text, /Demo mode/);
    assert.match(landing.text, /simulated Monzo/);
    assert.match(program.stderr.text, /DEMO MODE/);

    // The demo's values drift per poll. Logging in through the demo's own login link (as its landing
    // page invites) polls at once, so the movement shows without waiting for the cron minute.
    const loginHref = /id="demo-login" href="([^"]+)"/.exec(landing.text)?.[1]?.replaceAll("&amp;", "&");
    assert.ok(loginHref, "the demo landing page offers no login link");
    const authorize = await fetch(new URL(loginHref, base), { redirect: "manual" });
    await authorize.body?.cancel();
    assert.equal(authorize.status, 302);
    const authPageUrl = authorize.headers.get("location") ?? "";
    const authPage = await get(authPageUrl);
    const form = formOf(authPage.text);
    const loginPage = await get(new URL(form.action, authPageUrl).href, {
      method: "POST",
      body: new URLSearchParams({ ...form.fields, email: "alice@example.com" }),
    });
    const magic = /id="magic-link" href="([^"]+)"/.exec(loginPage.text)?.[1]?.replaceAll("&amp;", "&");
    assert.ok(magic, `no magic link in:\n${loginPage.text}`);
    const back = await fetch(new URL(magic, authPageUrl), { redirect: "manual" });
    await back.body?.cancel();
    assert.equal(back.status, 302);
    const callback = await get(back.headers.get("location") ?? "");
    assert.equal(callback.status, 200, callback.text);

    const before = moneySamples(first).join("\n");
    await waitFor("demo values to move after a poll", async () => {
      return moneySamples((await get(`${base}/metrics`)).text).join("\n") !== before;
    });

    const status = await program.stop("SIGINT", 10_000);
    assert.equal(status.code, 0, `exit code ${status.code} after SIGINT; stderr:\n${program.stderr.text}`);
    assert.match(program.stderr.text, /Received SIGINT/);
    assert.doesNotMatch(program.stderr.text, STACK_TRACE);
    assertOnlyLogLines(program.stderr.text);
  } finally {
    await program.stop("SIGKILL");
  }
});

/** Starts `deno task start` on a config pointed at `fake`, and waits until it serves. */
async function startProgram(fake: Awaited<ReturnType<typeof startFakeMonzo>>, dir: string, extra = {}) {
  const port = freePort();
  const configPath = await writeConfig(dir, { ...configFields(fake, port), ...extra });
  const program = spawn(Deno.execPath(), [...await taskRunArgs("start"), "--config", configPath]);
  const base = `http://127.0.0.1:${port}`;
  await waitFor("the exporter to serve /healthz", async () => (await get(`${base}/healthz`)).status === 200, {
    timeoutMs: 20_000,
  });
  return { program, base, port };
}

Deno.test("SIGTERM during a login whose Monzo request hangs waits for it (request timeout), answers, exits 0", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: true });
  const dir = await Deno.makeTempDir({ prefix: "monzo-main-stop-" });
  // Longer than the 5 s the grace used to be, whatever the request timeout.
  const { program, base } = await startProgram(fake, dir, { request_timeout_seconds: 6 });
  try {
    fake.fault({ path: "/oauth2/token", kind: "hang" });
    const authorize = await fetch(`${base}/authorize?key=${encodeURIComponent(AUTH_KEY)}`, { redirect: "manual" });
    await authorize.body?.cancel();
    const state = new URL(authorize.headers.get("location") ?? "").searchParams.get("state") ?? "";
    const code = fake.issueCode(ALICE, `${base}/callback`);
    const callback = get(`${base}/callback?${new URLSearchParams({ code, state })}`).then(
      (answer) => answer.status,
      (error) => `no answer: ${error}`,
    );
    await waitFor("the code exchange to hang", () => fake.requests.some((r) => r.path === "/oauth2/token"));
    const started = performance.now();
    const status = await program.stop("SIGTERM", 15_000);
    const took = performance.now() - started;
    assert.equal(status.code, 0, program.stderr.text);
    // It waited for the hung request to time out (6 s), not for the whole grace (11 s).
    assert.ok(took > 5_000 && took < 10_000, `stopping took ${Math.round(took)} ms`);
    // The browser got its page rather than a reset connection.
    assert.equal(await callback, 502);
    assert.doesNotMatch(program.stderr.text, STACK_TRACE);
    assertOnlyLogLines(program.stderr.text);
  } finally {
    await program.stop("SIGKILL");
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a shutdown the grace timer has to end exits non-zero, with one log line saying so", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: true });
  const dir = await Deno.makeTempDir({ prefix: "monzo-main-stop-" });
  const { program, port } = await startProgram(fake, dir, { request_timeout_seconds: 1 });
  // A request whose body never finishes keeps the server from draining (Deno.serve waits for it).
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = performance.now();
    const status = await program.stop("SIGTERM", 20_000);
    const took = performance.now() - started;
    assert.equal(status.code, 1, program.stderr.text);
    // The grace is the request timeout (1 s) plus the margin (5 s).
    assert.ok(took > 5_500 && took < 12_000, `stopping took ${Math.round(took)} ms`);
    assert.match(program.stderr.text, / ERROR Shutdown took longer than 6 s; exiting$/m);
    assertOnlyLogLines(program.stderr.text);
  } finally {
    conn.close();
    await program.stop("SIGKILL");
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});
