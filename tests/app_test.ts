// The exporter's HTTP routes: metrics paths, the login flow (/authorize, /callback) over a real
// socket, health checks, and what the pages show and must never show.

import type { StepView } from "../lib/poll/step.ts";
import assert from "node:assert/strict";
import { AUTHORIZE_ATTEMPTS, AUTHORIZE_WINDOW_MS, createApp } from "../lib/http/app.ts";
import type { ExpositionSource } from "../lib/exposition/exposition.ts";
import { createLogger } from "../lib/shared/log.ts";
import { createLoginStates } from "../lib/logins/login_states.ts";
import type { Sessions } from "../lib/logins/sessions.ts";
import { Snapshot } from "../lib/exposition/snapshot.ts";
import {
  ALICE,
  ALICE_CURRENT,
  assertNoSecrets,
  AUTH_KEY,
  BOB,
  CLIENT_ID,
  type Harness,
  MINUTE,
  poll,
  sample,
  storedLogins,
  T0,
  TestClock,
  track,
  withHarness,
} from "./helpers/harness.ts";
import { waitFor } from "./helpers/e2e.ts";

const EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8";

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** A GET over the real socket, redirects not followed, body read. */
async function fetchText(url: string): Promise<Answer> {
  const response = await fetch(url, { redirect: "manual" });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A GET through hono in-process. */
async function request(h: Harness, path: string): Promise<Answer> {
  const response = await h.exporter.app.request(path);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** `/authorize` with the right key: the state from the redirect. */
async function authorize(h: Harness): Promise<{ location: URL; state: string }> {
  const answer = await fetchText(`${h.base}/authorize?key=${encodeURIComponent(AUTH_KEY)}`);
  assert.equal(answer.status, 302, answer.text);
  const location = new URL(answer.headers.get("location") ?? "");
  return { location, state: location.searchParams.get("state") ?? "" };
}

/** The whole login as a browser does it: /authorize, Monzo's redirect back to /callback. */
async function browserLogin(h: Harness, userId: string): Promise<Answer> {
  const { location, state } = await authorize(h);
  const code = h.fake.issueCode(userId, location.searchParams.get("redirect_uri") ?? "");
  const answer = await fetchText(`${h.base}/callback?${new URLSearchParams({ code, state })}`);
  track(h);
  return answer;
}

/** Waits for the first poll, the one a login starts by itself, without triggering one. */
async function waitForPoll(h: Harness): Promise<void> {
  await waitFor("the poll the login starts", () => h.exporter.snapshot.state.lastPoll !== null, {
    timeoutMs: 5_000,
    intervalMs: 10,
  });
}

/** An HTML page for a person: not JSON, no stack trace, with the page security headers. */
function assertPersonPage(answer: Answer): void {
  assert.equal(answer.headers.get("content-type"), "text/html; charset=utf-8");
  assert.match(answer.text, /^<!doctype html>/i);
  assert.throws(() => JSON.parse(answer.text));
  assert.doesNotMatch(answer.text, /\bat .*\.ts:\d+|Error:|TypeError|stack/i);
  assertPageHeaders(answer.headers);
}

/** The headers every answer carries, `/metrics` and redirects included. */
function assertSecurityHeaders(headers: Headers, what: string): void {
  assert.equal(headers.get("x-content-type-options"), "nosniff", what);
  assert.equal(headers.get("referrer-policy"), "no-referrer", what);
  assert.equal(headers.get("x-frame-options"), "DENY", what);
}

function assertPageHeaders(headers: Headers): void {
  assertSecurityHeaders(headers, "a page");
  assert.equal(headers.get("cache-control"), "no-store");
  const csp = headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /script-src/);
}

/** Logs in through the browser flow, approves, and polls until the exporter is well. */
async function loggedInAndPolled(h: Harness, users: readonly string[]): Promise<void> {
  for (const user of users) {
    const answer = await browserLogin(h, user);
    assert.equal(answer.status, 200, answer.text);
    h.fake.approve(user);
  }
  await poll(h, MINUTE);
  assert.equal(sample((await request(h, "/metrics")).text, "monzo_up"), 1);
}

// ---- Metrics ----

Deno.test("/metrics, /stats and /monzo serve the same exposition as text format 0.0.4", async () => {
  await withHarness({ serve: true }, async (h) => {
    await loggedInAndPolled(h, [ALICE]);
    const answers = await Promise.all(["/metrics", "/stats", "/monzo"].map((path) => fetchText(h.base + path)));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get("content-type"), EXPOSITION_TYPE);
      assert.equal(answer.text, answers[0].text);
    }
    assert.equal(sample(answers[0].text, `monzo_balance{account_id="${ALICE_CURRENT}",currency="GBP"}`), 1234.56);
    assert.match(answers[0].text, /^# HELP monzo_balance .*last poll/m);
    assert.match(answers[0].text, /^monzo_exporter_build_info\{version="0\.0\.0-test",mode="live"\} 1$/m);
    await assertNoSecrets(h);
  });
});

Deno.test("scrapes never call Monzo", async () => {
  await withHarness({ serve: true }, async (h) => {
    await loggedInAndPolled(h, [ALICE, BOB]);
    const before = h.fake.requests.length;
    const exposition = (await request(h, "/metrics")).text;
    for (let i = 0; i < 50; i++) {
      const path = ["/metrics", "/stats", "/monzo", "/", "/readyz"][i % 5];
      const answer = i % 2 === 0 ? await request(h, path) : await fetchText(h.base + path);
      assert.equal(answer.status, 200, `${path}: ${answer.text}`);
    }
    assert.equal(h.fake.requests.length, before, "a scrape made a request to Monzo");
    assert.equal((await request(h, "/metrics")).text, exposition);
  });
});

// ---- /authorize ----

Deno.test("/authorize with a wrong or missing key answers a 401 page and issues no state", async () => {
  await withHarness({ serve: true }, async (h) => {
    // A state issued first must survive many refused attempts: refused ones must not fill the store.
    const { state } = await authorize(h);
    const wrong = ["", "?key=", "?key=nope", `?key=${AUTH_KEY}x`, `?key=${AUTH_KEY.slice(0, -1)}`, "?KEY=" + AUTH_KEY];
    for (let i = 0; i < 80; i++) {
      // A new window every AUTHORIZE_ATTEMPTS tries, so each is answered 401 rather than 429.
      if (i > 0 && i % AUTHORIZE_ATTEMPTS === 0) h.clock.advance(AUTHORIZE_WINDOW_MS);
      const answer = await fetchText(`${h.base}/authorize${wrong[i % wrong.length]}`);
      assert.equal(answer.status, 401);
      assert.equal(answer.headers.get("location"), null);
      assert.doesNotMatch(answer.text, /state=/);
      assertPersonPage(answer);
      assert.match(answer.text, /Wrong or missing key/);
      assert.match(answer.text, /\/authorize\?key=YOUR_AUTH_KEY/);
      assert.ok(!answer.text.includes(AUTH_KEY));
    }
    assert.ok(h.lines.some((line) => / WARN .*wrong or missing key/.test(line)));
    assert.equal(h.fake.count("/oauth2/token"), 0);

    const code = h.fake.issueCode(ALICE, h.config.callbackUrl);
    const callback = await fetchText(`${h.base}/callback?${new URLSearchParams({ code, state })}`);
    assert.equal(callback.status, 200, "a state issued before refused attempts was lost");
    track(h);
    await waitForPoll(h);
    await assertNoSecrets(h);
  });
});

Deno.test("/authorize with the right key redirects to Monzo with a fresh state that is not the key", async () => {
  await withHarness({ serve: true }, async (h) => {
    const states = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const answer = await fetchText(`${h.base}/authorize?key=${encodeURIComponent(AUTH_KEY)}`);
      assert.equal(answer.status, 302);
      assert.equal(answer.headers.get("cache-control"), "no-store");
      assert.equal(answer.headers.get("referrer-policy"), "no-referrer");
      const location = answer.headers.get("location") ?? "";
      assert.ok(location.startsWith(`${h.fake.authUrl}/?client_id=`), location);
      const url = new URL(location);
      assert.deepEqual([...url.searchParams.keys()], ["client_id", "redirect_uri", "response_type", "state"]);
      assert.equal(url.searchParams.get("client_id"), CLIENT_ID);
      assert.equal(url.searchParams.get("redirect_uri"), `${h.base}/callback`);
      assert.equal(url.searchParams.get("response_type"), "code");
      const state = url.searchParams.get("state") ?? "";
      assert.ok(state.length >= 16, `state "${state}" is too short to be unguessable`);
      assert.ok(!state.includes(AUTH_KEY) && !AUTH_KEY.includes(state), "the state carries the key");
      assert.ok(!location.includes(AUTH_KEY), "the redirect carries the key");
      states.add(state);
    }
    assert.equal(states.size, 3, "a state was reused");

    // The fake Monzo's login page accepts the redirect as it is.
    const { location } = await authorize(h);
    const monzoPage = await fetchText(location.href);
    assert.equal(monzoPage.status, 200, monzoPage.text);
  });
});

Deno.test("a redirect_uri written with a trailing slash still gives /callback", async () => {
  await withHarness({ serve: true, redirectSuffix: "/" }, async (h) => {
    const { location } = await authorize(h);
    assert.equal(location.searchParams.get("redirect_uri"), `${h.base}/callback`);
    const answer = await browserLogin(h, ALICE);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual((await storedLogins(h)).map((login) => login.userId), [ALICE]);
    await waitForPoll(h);
  });
});

// ---- /callback ----

Deno.test("/callback with an unknown, reused or expired state answers 400 and exchanges no code", async () => {
  await withHarness({ serve: true }, async (h) => {
    const callback = (code: string, state: string | null) =>
      fetchText(`${h.base}/callback?${new URLSearchParams(state === null ? { code } : { code, state })}`);
    const refused = (answer: Answer, why: string) => {
      assert.equal(answer.status, 400, `${why}: ${answer.text}`);
      assertPersonPage(answer);
      assert.match(answer.text, /not valid/);
      assert.equal(h.fake.count("/oauth2/token"), 0, `${why}: a code was exchanged`);
    };

    refused(await callback(h.fake.issueCode(ALICE, h.config.callbackUrl), "forged-state-value"), "unknown");
    refused(await callback(h.fake.issueCode(ALICE, h.config.callbackUrl), null), "missing");
    refused(await callback(h.fake.issueCode(ALICE, h.config.callbackUrl), AUTH_KEY), "the key as state");

    // Expired: issued 11 minutes ago.
    const old = await authorize(h);
    h.clock.advance(11 * MINUTE);
    refused(await callback(h.fake.issueCode(ALICE, h.config.callbackUrl), old.state), "expired");

    // Reused: the first use logs in, the second does nothing.
    const { state } = await authorize(h);
    const first = await callback(h.fake.issueCode(ALICE, h.config.callbackUrl), state);
    assert.equal(first.status, 200, first.text);
    await waitForPoll(h);
    const exchanges = h.fake.count("/oauth2/token");
    assert.equal(exchanges, 1);
    const again = await callback(h.fake.issueCode(ALICE, h.config.callbackUrl), state);
    assert.equal(again.status, 400);
    assertPersonPage(again);
    assert.equal(h.fake.count("/oauth2/token"), exchanges, "a reused state exchanged a code");
    track(h);
    await assertNoSecrets(h);
  });
});

Deno.test("a valid callback stores the tokens (mode 600), polls at once and asks for app approval", async () => {
  await withHarness({ serve: true }, async (h) => {
    const answer = await browserLogin(h, ALICE);
    assert.equal(answer.status, 200, answer.text);
    assertPersonPage(answer);
    assert.match(answer.text, /approve in the Monzo app/i);
    assert.ok(answer.text.includes(ALICE));

    const tokens = h.fake.tokensOf(ALICE);
    assert.ok(tokens);
    const stored = await storedLogins(h);
    assert.equal(stored.length, 1);
    assert.equal(stored[0].userId, ALICE);
    assert.equal(stored[0].accessToken, tokens.accessToken);
    assert.equal(stored[0].refreshToken, tokens.refreshToken);
    assert.equal((await Deno.stat(h.tokensPath)).mode! & 0o777, 0o600);
    // The original exporter's format while there is one login.
    const file = JSON.parse(await Deno.readTextFile(h.tokensPath));
    assert.equal(typeof file.access_token, "string");
    assert.equal(typeof file.expires_at, "string");

    // The poll the login started by itself meets the 403 of an unapproved login.
    await waitForPoll(h);
    assert.ok(h.fake.count("/accounts") >= 1);
    const landing = await request(h, "/");
    assert.match(landing.text, /waiting for approval in the Monzo app/);
    assert.equal(sample((await request(h, "/metrics")).text, `monzo_logged_in{user_id="${ALICE}"}`), 1);

    h.fake.approve(ALICE);
    await poll(h, MINUTE);
    assert.match((await request(h, "/")).text, /logged in, polling/);
    await assertNoSecrets(h);
  });
});

Deno.test("a second user's login keeps both, and the same user logging in again replaces the old login", async () => {
  await withHarness({ serve: true }, async (h) => {
    assert.equal((await browserLogin(h, ALICE)).status, 200);
    await waitForPoll(h);
    const aliceFirst = h.fake.tokensOf(ALICE);
    assert.ok(aliceFirst);
    assert.equal((await browserLogin(h, BOB)).status, 200);

    let file = JSON.parse(await Deno.readTextFile(h.tokensPath));
    assert.deepEqual(Object.keys(file.logins ?? {}).sort(), [ALICE, BOB].sort());
    assert.equal(file.logins[ALICE].access_token, aliceFirst.accessToken);
    assert.equal(file.logins[BOB].access_token, h.fake.tokensOf(BOB)?.accessToken);
    assert.equal((await Deno.stat(h.tokensPath)).mode! & 0o777, 0o600);

    // Alice again (Monzo keeps one token per user): her entry is replaced, Bob's kept.
    assert.equal((await browserLogin(h, ALICE)).status, 200);
    const aliceSecond = h.fake.tokensOf(ALICE);
    assert.ok(aliceSecond && aliceSecond.accessToken !== aliceFirst.accessToken);
    file = JSON.parse(await Deno.readTextFile(h.tokensPath));
    assert.deepEqual(Object.keys(file.logins ?? {}).sort(), [ALICE, BOB].sort());
    assert.equal(file.logins[ALICE].access_token, aliceSecond.accessToken);
    assert.equal(file.logins[ALICE].refresh_token, aliceSecond.refreshToken);
    const text = await Deno.readTextFile(h.tokensPath);
    assert.ok(!text.includes(aliceFirst.accessToken) && !text.includes(aliceFirst.refreshToken));

    h.fake.approve(ALICE);
    h.fake.approve(BOB);
    await poll(h, MINUTE);
    const metrics = (await request(h, "/metrics")).text;
    assert.equal(metrics.split("\n").filter((l) => l.startsWith("monzo_logged_in{")).length, 2);
    assert.equal(sample(metrics, "monzo_up"), 1);
    const table = /<table id="logins">(.*?)<\/table>/s.exec((await request(h, "/")).text)?.[1] ?? "";
    const rows = [...table.matchAll(/<tr><td><code>([^<]*)<\/code>/g)].map((m) => m[1]);
    assert.deepEqual(rows.sort(), [ALICE, BOB].sort(), "each login is listed once");
    await assertNoSecrets(h);
  });
});

Deno.test("the same user logging in again with a single login keeps the original file format", async () => {
  await withHarness({ serve: true }, async (h) => {
    assert.equal((await browserLogin(h, ALICE)).status, 200);
    await waitForPoll(h);
    const first = h.fake.tokensOf(ALICE);
    assert.equal((await browserLogin(h, ALICE)).status, 200);
    const second = h.fake.tokensOf(ALICE);
    assert.ok(first && second && first.accessToken !== second.accessToken);
    const file = JSON.parse(await Deno.readTextFile(h.tokensPath));
    assert.equal(file.logins, undefined, "one login must stay in the original format");
    assert.equal(file.access_token, second.accessToken);
    assert.equal(file.refresh_token, second.refreshToken);
    assert.equal(file.user_id, ALICE);
    assert.equal((await storedLogins(h)).length, 1);
  });
});

// ---- Health ----

Deno.test("/healthz is 200 while serving; /readyz is 503 until logged in with a good poll", async () => {
  await withHarness({ serve: true }, async (h) => {
    const health = await fetchText(`${h.base}/healthz`);
    assert.equal(health.status, 200);
    let ready = await fetchText(`${h.base}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(ready.text, /no Monzo login/);

    // Logged in but not yet approved: still not ready.
    assert.equal((await browserLogin(h, ALICE)).status, 200);
    await waitForPoll(h);
    ready = await fetchText(`${h.base}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(ready.text, /approval/);

    h.fake.approve(ALICE);
    await poll(h, MINUTE);
    ready = await fetchText(`${h.base}/readyz`);
    assert.equal(ready.status, 200, ready.text);

    // A failing poll makes it unready again; /healthz does not care.
    h.fake.fault({ path: "/balance", kind: "status", status: 500 });
    await poll(h, MINUTE);
    assert.equal((await fetchText(`${h.base}/readyz`)).status, 503);
    assert.equal((await fetchText(`${h.base}/healthz`)).status, 200);
  });
});

// ---- What pages show ----

Deno.test("the landing page shows no balances and no secrets, and escapes text from Monzo", async () => {
  await withHarness({ serve: true }, async (h) => {
    // Owners' names come from Monzo and are shown on the page.
    const owner = h.fake.data.users.find((u) => u.id === ALICE);
    assert.ok(owner);
    owner.name = `<script>alert("owned")</script>`;
    await loggedInAndPolled(h, [ALICE, BOB]);

    let landing = await request(h, "/");
    assert.equal(landing.status, 200);
    assertPersonPage(landing);
    assert.ok(landing.text.includes("&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;"), landing.text);
    assert.ok(!landing.text.includes("<script"), "an account description is not escaped");
    // The household's figures in every shape they could take.
    for (
      const figure of ["1234.56", "1,234.56", "123456", "567.89", "56789", "42.1", "4210", "420.5", "42050", "8.99"]
    ) {
      assert.ok(!landing.text.includes(figure), `the landing page shows the figure ${figure}`);
    }
    assert.ok(landing.text.includes(ALICE) && landing.text.includes(BOB));
    assert.match(landing.text, /href="\/metrics"/);

    // Error text from Monzo is shown, escaped.
    h.fake.fault({
      path: "/balance",
      kind: "status",
      status: 500,
      body: { code: "internal_service_error", message: `<img src=x onerror="alert(1)">` },
    });
    await poll(h, MINUTE);
    landing = await request(h, "/");
    assert.ok(landing.text.includes("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"), landing.text);
    assert.ok(!landing.text.includes("<img"), "an error message from Monzo is not escaped");

    // So is the error a browser brings back to /callback.
    const { state } = await authorize(h);
    const denied = await fetchText(`${h.base}/callback?${new URLSearchParams({ state, error: "<b>denied</b>" })}`);
    assert.equal(denied.status, 400);
    assertPersonPage(denied);
    assert.ok(denied.text.includes("&lt;b&gt;denied&lt;/b&gt;"), denied.text);
    assert.ok(!denied.text.includes("<b>"));
    await assertNoSecrets(h);
  });
});

Deno.test("every HTML page carries no-referrer, a CSP and no-store", async () => {
  await withHarness({ serve: true }, async (h) => {
    const pages: Array<[string, number]> = [
      ["/", 200],
      ["/authorize", 401],
      ["/authorize?key=wrong", 401],
      ["/callback?code=x&state=y", 400],
      ["/no-such-page", 404],
    ];
    for (const [path, status] of pages) {
      const answer = await fetchText(h.base + path);
      assert.equal(answer.status, status, path);
      assertPersonPage(answer);
    }
    const login = await browserLogin(h, ALICE);
    assert.equal(login.status, 200);
    assertPersonPage(login);
    await waitForPoll(h);
    assertPersonPage(await fetchText(`${h.base}/`));
  });
});

// ---- Hostile values, floods and odd requests: nothing from outside crashes a page ----

/** Sessions that are never reached by the routes these tests call. */
const UNUSED_SESSIONS: Sessions = {
  logIn: () => Promise.resolve({ ok: false, error: "not in this test" }),
  fresh: () => Promise.reject(new Error("not in this test")),
  identify: () => Promise.reject(new Error("not in this test")),
  call: () => Promise.reject(new Error("not in this test")),
  idle: () => Promise.resolve(),
};

/** What a step publishes after a poll, written by hand: only what the pages read. */
function stepState(name: string, fields: Partial<StepView>): StepView {
  return {
    name,
    ok: false,
    lastSuccessAt: null,
    problems: [],
    reads: new Map(),
    families: [],
    ...fields,
  };
}

/** An app on its own, without Monzo: a snapshot to fill by hand, its log lines, a clock to move. */
function bareApp(options: { exposition?: ExpositionSource; debug?: boolean } = {}) {
  const clock = new TestClock();
  const lines: string[] = [];
  const snapshot = new Snapshot({ version: "0.0.0-test", mode: "live" }, []);
  const app = createApp({
    config: {
      authKey: AUTH_KEY,
      authUrl: "http://127.0.0.1:9/auth",
      clientId: CLIENT_ID,
      clientSecret: "test-only-client-secret",
      callbackUrl: "http://127.0.0.1:9100/callback",
      publicUrl: "http://127.0.0.1:9100",
      pollIntervalMinutes: 1,
    },
    snapshot,
    exposition: options.exposition ??
      (() => ({ body: "# an exposition\n", headers: { "content-type": EXPOSITION_TYPE } })),
    states: createLoginStates({ clock }),
    sessions: UNUSED_SESSIONS,
    clock,
    log: createLogger({ sink: (line) => lines.push(line), now: () => clock.now(), debug: options.debug }),
    onLogin: () => {},
    version: "0.0.0-test",
    demo: false,
  });
  return { app, clock, lines, snapshot };
}

async function get(app: ReturnType<typeof bareApp>["app"], path: string, init?: RequestInit): Promise<Answer> {
  const response = await app.request(path, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

Deno.test("the landing page stays 200 with hostile account types, absurd times and markup from Monzo", async () => {
  const { app, snapshot } = bareApp();
  const hostile = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "<b>bold</b>"];
  snapshot.setLogins([
    { userId: "user_<i>far</i>", loggedIn: true, expiresAt: 1e20 },
    { userId: "user_nan", loggedIn: true, expiresAt: Number.NaN },
    { userId: "user_past", loggedIn: true, expiresAt: -1e20 },
    {
      userId: "user_out",
      loggedIn: false,
      reason: `<script>alert("reason")</script>`,
      problem: { code: "logged_out", subject: "user_out", message: `<script>alert("reason")</script>` },
    },
  ], `<img src=x onerror="alert('loginsError')">`);
  snapshot.applyPoll({
    startedAt: T0,
    finishedAt: T0 + 1500,
    problems: [{ code: "unreachable", subject: "", message: `<script>alert("problem")</script>` }],
    users: new Map([["user_<i>far</i>", {
      status: "error",
      problem: { code: "token_refused", subject: "user_<i>far</i>", message: "<u>status</u> \x1b[31mred" },
    }]]),
    steps: [
      stepState("accounts", {
        accounts: hostile.map((type, i) => ({
          id: `acc_${i}<x>`,
          type,
          description: "",
          owners: [`<o>${type}</o>`],
          visibleTo: [],
          created: null,
        })),
      }),
      stepState("balances", { reads: new Map([["acc_0<x>", { ok: false, detail: `<e>"error"</e>` }]]) }),
    ],
    backoffUntil: 8.64e15 + 1, // one ms past the last time a Date can hold
  });
  const landing = await get(app, "/");
  assert.equal(landing.status, 200, landing.text);
  assertPersonPage(landing);
  for (const type of hostile) {
    assert.ok(landing.text.includes(`<td>${type.replaceAll("<", "&lt;").replaceAll(">", "&gt;")}<br>`), type);
  }
  assert.ok(landing.text.includes("a time out of range"), "the absurd expiry is not shown as out of range");
  assert.equal(landing.text.match(/a time out of range/g)?.length, 4, "expiry ×3 and the backoff end");
  for (
    const escaped of [
      "user_&lt;i&gt;far&lt;/i&gt;",
      "&lt;script&gt;alert(&quot;reason&quot;)&lt;/script&gt;",
      "&lt;img src=x onerror=&quot;alert(&#39;loginsError&#39;)&quot;&gt;",
      "&lt;script&gt;alert(&quot;problem&quot;)&lt;/script&gt;",
      "&lt;u&gt;status&lt;/u&gt;",
      "&lt;e&gt;&quot;error&quot;&lt;/e&gt;",
      "&lt;o&gt;__proto__&lt;/o&gt;",
      "acc_0&lt;x&gt;",
    ]
  ) assert.ok(landing.text.includes(escaped), `${escaped} missing from:\n${landing.text}`);
  assert.doesNotMatch(landing.text, /<(script|img|u|e|o|i|x)\b/);
});

Deno.test("security headers are on every answer: /metrics, redirects, health, 404, 429 and 500 too", async () => {
  const { app, clock } = bareApp();
  const answers: Array<[string, Answer]> = [];
  for (const path of ["/", "/metrics", "/stats", "/monzo", "/healthz", "/readyz", "/nope", "/callback?state=x"]) {
    answers.push([path, await get(app, path)]);
  }
  answers.push(["right key", await get(app, `/authorize?key=${encodeURIComponent(AUTH_KEY)}`)]);
  for (let i = 0; i < AUTHORIZE_ATTEMPTS; i++) answers.push(["wrong key", await get(app, "/authorize?key=x")]);
  answers.push(["paused", await get(app, "/authorize?key=x")]);
  clock.advance(AUTHORIZE_WINDOW_MS);
  const broken = bareApp({ exposition: () => JSON.parse("{") });
  answers.push(["500", await get(broken.app, "/metrics")]);
  const statuses = new Set(answers.map(([, answer]) => answer.status));
  assert.deepEqual([...statuses].sort(), [200, 302, 400, 401, 404, 429, 500, 503]);
  for (const [what, answer] of answers) {
    assertSecurityHeaders(answer.headers, what);
    if (answer.headers.get("content-type")?.startsWith("text/html")) assertPersonPage(answer);
  }
  // The exposition keeps its own content type; pages-only headers stay off it.
  const metrics = answers.find(([what]) => what === "/metrics")?.[1];
  assert.equal(metrics?.headers.get("content-type"), EXPOSITION_TYPE);
  assert.equal(metrics?.headers.get("content-security-policy"), null);
});

Deno.test("a failed request logs one ERROR line with the message; the stack only at debug level", async () => {
  for (const debug of [false, true]) {
    const { app, lines } = bareApp({ debug, exposition: () => JSON.parse("{") });
    const answer = await get(app, "/metrics");
    assert.equal(answer.status, 500);
    assertPersonPage(answer);
    const errors = lines.filter((line) => / ERROR /.test(line));
    assert.equal(errors.length, 1, lines.join("\n"));
    assert.match(errors[0], /ERROR A request failed: .*JSON/);
    assert.doesNotMatch(errors[0], /\bat .*:\d+:\d+/, "the ERROR line carries the stack");
    const stacks = lines.filter((line) => / DEBUG /.test(line));
    if (debug) {
      assert.equal(stacks.length, 1, lines.join("\n"));
      assert.match(stacks[0], /DEBUG The failed request's stack: .*\bat .*app_test\.ts:\d+:\d+/);
    } else {
      assert.deepEqual(stacks, []);
    }
    assert.equal(lines.length, debug ? 2 : 1, lines.join("\n"));
  }
});

Deno.test("the 404 page lists every route the app serves, and each listed route is served", async () => {
  const { app } = bareApp();
  const answer = await get(app, "/no-such-page");
  assert.equal(answer.status, 404);
  assertPersonPage(answer);
  const listed = /This exporter serves (.*)\.<\/p>/.exec(answer.text)?.[1].split(/, | and /) ?? [];
  // --help names the pages a person uses; the list holds all of them and more.
  for (const path of ["/", "/metrics", "/stats", "/monzo", "/authorize", "/callback", "/healthz", "/readyz"]) {
    assert.ok(listed.includes(path), `${path} is not listed: ${listed.join(" ")}`);
  }
  for (const path of listed) assert.notEqual((await get(app, path)).status, 404, `${path} is listed but not served`);
});

Deno.test("a flood of 1,000 wrong keys writes a few log lines and is paused with 429 and Retry-After", async () => {
  const { app, clock, lines } = bareApp();
  const statuses: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const answer = await get(app, `/authorize?key=guess-${i}`);
    statuses.push(answer.status);
    if (answer.status === 429) {
      const retry = Number(answer.headers.get("retry-after"));
      assert.ok(retry >= 1 && retry <= AUTHORIZE_WINDOW_MS / 1000, `Retry-After ${retry}`);
      assertPersonPage(answer);
    }
    clock.advance(10); // 1,000 attempts within ten seconds
  }
  assert.equal(statuses.filter((s) => s === 401).length, AUTHORIZE_ATTEMPTS);
  assert.deepEqual(statuses.slice(0, AUTHORIZE_ATTEMPTS), Array(AUTHORIZE_ATTEMPTS).fill(401));
  assert.equal(statuses.filter((s) => s === 429).length, 1000 - AUTHORIZE_ATTEMPTS);
  assert.ok(lines.length >= 1 && lines.length <= 2, `${lines.length} log lines:\n${lines.join("\n")}`);

  // While paused even the right key is refused unchecked, so guessing cannot be sped up.
  const paused = await get(app, `/authorize?key=${encodeURIComponent(AUTH_KEY)}`);
  assert.equal(paused.status, 429);
  assert.equal(paused.headers.get("location"), null);

  // After the window the right key works, and the next line says how many were not logged.
  clock.set(T0 + AUTHORIZE_WINDOW_MS + 1);
  const after = await get(app, `/authorize?key=${encodeURIComponent(AUTH_KEY)}`);
  assert.equal(after.status, 302, after.text);
  await get(app, "/authorize?key=wrong-again");
  const summary = lines.at(-1) ?? "";
  const held = Number(/\((\d+) more since .* not logged\)/.exec(summary)?.[1]);
  // 1,000 attempts, the paused right key and this last wrong one: each is logged or counted.
  assert.equal(held + lines.length, 1002, `the count does not add up:\n${lines.join("\n")}`);
  assert.match(lines[0], /WARN Refused a login attempt with a wrong or missing key$/);
});

Deno.test("odd requests at the HTTP edge get an answer, never a 500 or a stack trace", async () => {
  await withHarness({ serve: true }, async (h) => {
    const paths = [
      "/callback?state=%ZZ",
      "/callback?code=%E0%A4%A&state=%",
      "/authorize?key=%E0%A4%A",
      "/authorize?key=%",
      "/authorize?key=%00%0d%0a",
      "/callback?__proto__=x&constructor=y&state=z",
      "/%ZZ",
      "/..%2f..%2fetc/passwd",
      "//metrics",
      `/${"a".repeat(60_000)}`,
      `/callback?state=${"s".repeat(60_000)}`,
    ];
    for (const path of paths) {
      const answer = await fetchText(h.base + path);
      assert.ok([400, 401, 404, 414, 429].includes(answer.status), `${path.slice(0, 60)}: ${answer.status}`);
      assert.doesNotMatch(answer.text, /\bat .*\.ts:\d+|TypeError|RangeError/, path.slice(0, 60));
    }
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "FOO"]) {
      const response = await fetch(`${h.base}/metrics`, { method, body: method === "POST" ? "x".repeat(1e5) : null });
      await response.body?.cancel();
      assert.ok(response.status >= 400 && response.status < 500, `${method}: ${response.status}`);
    }
    const head = await fetch(`${h.base}/metrics`, { method: "HEAD" });
    assert.equal(head.status, 200);
    // A header far larger than any browser sends is refused by the server, not by a crash.
    const huge = await fetch(`${h.base}/`, { headers: { "x-huge": "h".repeat(200_000) } }).then(
      async (response) => (await response.body?.cancel(), response.status),
      () => "closed",
    );
    assert.ok(huge === 400 || huge === 431 || huge === "closed", `huge header: ${huge}`);
    assert.equal((await fetchText(`${h.base}/healthz`)).status, 200, "the server stopped answering");
    assert.deepEqual(h.lines.filter((line) => / ERROR /.test(line)), []);
    assert.ok(h.lines.length <= 3, h.lines.join("\n"));
  });
});
