// monzo_login_timestamp_seconds (when the user last authorised in the browser, for the 90-day
// re-authorisation alert) and monzo_login_awaiting_approval, read over real HTTP: set by a browser
// login, kept through refreshes and restarts (it is in the tokens file), absent for old files.

import assert from "node:assert/strict";
import { createExporter } from "../lib/run/exporter.ts";
import { encodeLogins, tokenFile } from "../lib/logins/token_file.ts";
import {
  ALICE,
  AUTH_KEY,
  exchangeCode,
  type Harness,
  MINUTE,
  poll,
  REDIRECT,
  sample,
  storedLogins,
  T0,
  TOKEN_LIFETIME,
  track,
  withHarness,
} from "./helpers/harness.ts";

const granted = (user: string) => `monzo_login_timestamp_seconds{user_id="${user}"}`;
const awaiting = (user: string) => `monzo_login_awaiting_approval{user_id="${user}"}`;
const expiry = (user: string) => `monzo_token_expiry_timestamp_seconds{user_id="${user}"}`;

async function fetchText(url: string): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(url, { redirect: "manual" });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** /metrics over the real socket of `base`. */
async function scrape(base: string): Promise<string> {
  const answer = await fetchText(`${base}/metrics`);
  assert.equal(answer.status, 200, answer.text);
  return answer.text;
}

/** The whole login as a browser does it: /authorize, then Monzo's redirect back to /callback. */
async function browserLogin(h: Harness, userId: string): Promise<void> {
  const authorized = await fetchText(`${h.base}/authorize?key=${encodeURIComponent(AUTH_KEY)}`);
  assert.equal(authorized.status, 302, authorized.text);
  const location = new URL(authorized.headers.get("location") ?? "");
  const code = h.fake.issueCode(userId, location.searchParams.get("redirect_uri") ?? "");
  const state = location.searchParams.get("state") ?? "";
  const callback = await fetchText(`${h.base}/callback?${new URLSearchParams({ code, state })}`);
  assert.equal(callback.status, 200, callback.text);
  track(h);
}

/** Runs `body` against a second exporter on the harness' tokens file and clock, served on loopback: a restart. */
async function withRestarted(h: Harness, body: (base: string, pollAgain: () => Promise<void>) => Promise<void>) {
  await h.exporter.close();
  const made = await createExporter({
    config: h.config,
    build: { version: "0.0.0-test", mode: "live" },
    clock: h.clock,
    sink: () => {},
    persistence: tokenFile(h.tokensPath),
  });
  assert.ok(made.ok, made.ok ? "" : made.error);
  const exporter = made.value;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, exporter.handler);
  try {
    await body(`http://127.0.0.1:${server.addr.port}`, () => exporter.poller.poll());
  } finally {
    await server.shutdown();
    await exporter.close();
  }
}

Deno.test("a browser login sets monzo_login_timestamp_seconds; a refresh and a restart keep it", async () => {
  await withHarness({ serve: true }, async (h) => {
    await browserLogin(h, ALICE);
    h.fake.approve(ALICE);
    await poll(h);
    const first = await scrape(h.base);
    assert.match(first, /^monzo_up 1$/m, first);
    assert.equal(sample(first, granted(ALICE)), T0 / 1000);
    assert.equal((await storedLogins(h))[0].grantedAt, T0, "the tokens file does not keep when the login was granted");

    // Past the refresh point: the tokens are renewed, the authorisation time is not.
    await poll(h, TOKEN_LIFETIME);
    const refreshed = await scrape(h.base);
    assert.match(refreshed, /^monzo_up 1$/m, refreshed);
    assert.notEqual(sample(refreshed, expiry(ALICE)), sample(first, expiry(ALICE)), "no refresh happened");
    assert.equal(sample(refreshed, granted(ALICE)), T0 / 1000);

    // A restart reads it back from the tokens file, before any poll and after one that refreshes again.
    await withRestarted(h, async (base, pollAgain) => {
      assert.equal(sample(await scrape(base), granted(ALICE)), T0 / 1000);
      h.clock.advance(TOKEN_LIFETIME);
      await pollAgain();
      const after = await scrape(base);
      assert.match(after, /^monzo_up 1$/m, after);
      assert.equal(sample(after, expiry(ALICE)), (h.clock.now() + TOKEN_LIFETIME) / 1000, "no refresh after restart");
      assert.equal(sample(after, granted(ALICE)), T0 / 1000);
    });
  });
});

Deno.test("a login from a tokens file written before granted_at existed has no login timestamp", async () => {
  await withHarness({
    serve: true,
    async prepare(fake, tokensPath) {
      // The original exporter's file: the tokens of an approved login, and no granted_at.
      const { status, grant } = await exchangeFor(fake);
      assert.equal(status, 200);
      await Deno.writeTextFile(
        tokensPath,
        encodeLogins([{
          userId: null,
          accessToken: grant.access_token,
          refreshToken: grant.refresh_token,
          expiresAt: T0 + grant.expires_in * 1000,
        }]),
      );
    },
  }, async (h) => {
    await poll(h, MINUTE);
    const text = await scrape(h.base);
    assert.match(text, /^monzo_up 1$/m, text);
    assert.equal(sample(text, `monzo_logged_in{user_id="${ALICE}"}`), 1);
    assert.ok(!text.includes("monzo_login_timestamp_seconds"), "a login without granted_at got a timestamp");
    // Logging in again in the browser gives it one.
    await browserLogin(h, ALICE);
    h.fake.approve(ALICE);
    await poll(h);
    assert.equal(sample(await scrape(h.base), granted(ALICE)), h.clock.now() / 1000);
  });
});

Deno.test("monzo_login_awaiting_approval is 1 until the user approves the login in the app", async () => {
  await withHarness({ serve: true }, async (h) => {
    await browserLogin(h, ALICE);
    await poll(h);
    const waiting = await scrape(h.base);
    assert.equal(sample(waiting, awaiting(ALICE)), 1, waiting);
    assert.equal(sample(waiting, granted(ALICE)), T0 / 1000);
    h.fake.approve(ALICE);
    await poll(h, MINUTE);
    const approved = await scrape(h.base);
    assert.match(approved, /^monzo_up 1$/m, approved);
    assert.equal(sample(approved, awaiting(ALICE)), 0);
  });
});

/** A code exchange at the fake for Alice, approved at once, as a login the original exporter stored. */
async function exchangeFor(fake: Harness["fake"]) {
  const answer = await exchangeCode(fake, ALICE, `${REDIRECT}/callback`);
  fake.approve(ALICE);
  return answer;
}
