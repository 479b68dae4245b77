// The fake Monzo misbehaves during polls (issue 3, "Faults"). Each test asserts what a user sees:
// /metrics keeps the last good values with monzo_up 0, the landing page and the log say what is
// wrong, the tokens file stays whole, and the next poll after the fault clears recovers by itself.

import assert from "node:assert/strict";
import {
  ALICE,
  ALICE_CURRENT,
  ALICE_FLEX,
  assertNoSecrets,
  AUTH_KEY,
  balance,
  BOB,
  BOB_CURRENT,
  get,
  type Harness,
  JOINT,
  loggedIn,
  logIn,
  metrics,
  MINUTE,
  page,
  poll,
  REDIRECT,
  sample,
  storedLogins,
  T0,
  TOKEN_LIFETIME,
  withHarness,
} from "./helpers/harness.ts";
import { type Problem, problem, type ProblemCode } from "../lib/shared/problems.ts";
import { err } from "../lib/shared/result.ts";
import { tokenFile, type TokenPersistence } from "../lib/logins/token_file.ts";

const LOGIN_LINK = `${REDIRECT}/authorize?key=YOUR_AUTH_KEY`;

/** The household's figures after the first good poll, as /metrics shows them. */
const GOOD: Readonly<Record<string, number>> = {
  [ALICE_CURRENT]: 1234.56,
  [JOINT]: 567.89,
  [ALICE_FLEX]: -150,
  [BOB_CURRENT]: -42.1,
};
/** New figures the fake gives after the first poll, so a fresh read is told from a kept one. */
const NEXT: Readonly<Record<string, number>> = {
  [ALICE_CURRENT]: 2000.01,
  [JOINT]: 600.02,
  [ALICE_FLEX]: -175.03,
  [BOB_CURRENT]: 9.04,
};

const readAt = (account: string) => `monzo_account_last_successful_poll_timestamp_seconds{account_id="${account}"}`;

/** Alice and Bob logged in and approved, one good poll done. */
async function household(h: Harness): Promise<void> {
  await logIn(h, ALICE);
  await logIn(h, BOB);
  await poll(h, MINUTE);
  const text = await metrics(h);
  assert.equal(sample(text, "monzo_up"), 1);
  for (const [account, value] of Object.entries(GOOD)) assert.equal(sample(text, balance(account)), value);
}

/** Makes the fake answer the {@link NEXT} figures from now on. */
function moveBalances(h: Harness): void {
  for (const [account, value] of Object.entries(NEXT)) {
    const found = h.fake.data.accounts.find((a) => a.id === account);
    assert.ok(found);
    found.balance = Math.round(value * 100);
  }
}

/** The balances /metrics shows, by account. */
async function balances(h: Harness): Promise<Record<string, number | undefined>> {
  const text = await metrics(h);
  return Object.fromEntries(Object.keys(GOOD).map((account) => [account, sample(text, balance(account))]));
}

/** Items of the landing page's problem list, unescaped enough to compare plain text. */
async function problems(h: Harness): Promise<string[]> {
  const html = await page(h);
  const list = /<ul id="problems">(.*?)<\/ul>/s.exec(html)?.[1] ?? "";
  return [...list.matchAll(/<li>(.*?)<\/li>/gs)].map((m) =>
    m[1].replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">")
      .replaceAll("&amp;", "&")
  );
}

/**
 * The last poll's problem with `code` about `subject`, which the page must show; fails, naming the
 * problems there are, when there is none. Tests find problems by code, so rewording a sentence in
 * lib/shared/problems.ts breaks no test.
 */
async function reported(h: Harness, code: ProblemCode, subject: string): Promise<Problem> {
  const all = h.exporter.snapshot.state.lastPoll?.problems ?? [];
  const found = all.find((p) => p.code === code && p.subject === subject);
  assert.ok(found, `no ${code} problem about "${subject}" in ${JSON.stringify(all.map((p) => [p.code, p.subject]))}`);
  assert.ok((await problems(h)).includes(found.message), "the page does not show the problem");
  return found;
}

/**
 * What must hold through every fault: /metrics serves (with the given values), the tokens file
 * parses and holds `users`, and no secret shows in the log, the metrics or the page.
 */
async function invariants(
  h: Harness,
  expected: Record<string, number | undefined>,
  users: readonly string[],
): Promise<void> {
  assert.deepEqual(await balances(h), expected);
  for (const path of ["/stats", "/monzo", "/healthz"]) await get(h, path);
  const stored = await storedLogins(h);
  assert.deepEqual(stored.map((login) => login.userId).sort(), [...users].sort());
  await assertNoSecrets(h);
}

/** Log lines at `level` that contain `text`. */
function logged(h: Harness, level: "INFO" | "WARN" | "ERROR", text: string): string[] {
  return h.lines.filter((line) => line.includes(` ${level} `) && line.includes(text));
}

/** Clears the faults, polls, and checks the exporter is fully well again with the NEXT figures. */
async function recovers(
  h: Harness,
  users: readonly string[] = [ALICE, BOB],
  expected: Record<string, number | undefined> = NEXT,
): Promise<void> {
  h.fake.clearFaults();
  await poll(h, MINUTE);
  const text = await metrics(h);
  assert.equal(sample(text, "monzo_up"), 1, `still failing: ${JSON.stringify(await problems(h))}`);
  assert.equal(sample(text, "monzo_last_successful_poll_timestamp_seconds"), h.clock.now() / 1000);
  assert.deepEqual(await problems(h), []);
  assert.match(await page(h), /The last poll succeeded\./);
  const readyz = await h.exporter.app.request("/readyz");
  await readyz.body?.cancel();
  assert.equal(readyz.status, 200);
  await invariants(h, expected, users);
}

// ---- 500 ----

Deno.test("a 500 on one account's /balance keeps its last values while the others stay fresh", async () => {
  await withHarness({}, async (h) => {
    await household(h);
    const goodAt = h.clock.now() / 1000;
    moveBalances(h);
    h.fake.fault({ path: "/balance", kind: "status", status: 500, accountId: BOB_CURRENT });
    await poll(h, MINUTE);

    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 0);
    assert.equal(sample(text, "monzo_last_successful_poll_timestamp_seconds"), goodAt);
    assert.equal(sample(text, readAt(BOB_CURRENT)), goodAt);
    assert.equal(sample(text, readAt(ALICE_CURRENT)), h.clock.now() / 1000);
    assert.equal(sample(text, `monzo_api_requests_total{endpoint="/balance",code="500"}`), 1);
    const reason = (await reported(h, "account_failed", BOB_CURRENT)).message;
    assert.match(reason, /HTTP 500 internal_service_error/);
    assert.match(await page(h), /The last poll had problems; the metrics keep the last good values/);
    assert.equal(logged(h, "WARN", reason).length, 1);
    const readyz = await h.exporter.app.request("/readyz");
    assert.match(await readyz.text(), /HTTP 500/);
    assert.equal(readyz.status, 503);
    await invariants(h, { ...NEXT, [BOB_CURRENT]: GOOD[BOB_CURRENT] }, [ALICE, BOB]);

    await recovers(h);
    assert.equal(logged(h, "INFO", "The poll succeeded again").length, 1);
  });
});

Deno.test("a failing /accounts fails the poll instead of reporting success with no accounts", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    h.fake.fault({ path: "/accounts", kind: "status", status: 500 });
    await poll(h, MINUTE);

    let text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 0, "monzo_up says 1 although no account could be listed");
    assert.equal(sample(text, "monzo_last_successful_poll_timestamp_seconds"), undefined);
    const reason = (await reported(h, "accounts_failed", ALICE)).message;
    assert.match(reason, /HTTP 500/);
    assert.equal(logged(h, "WARN", reason).length, 1);
    const readyz = await h.exporter.app.request("/readyz");
    await readyz.body?.cancel();
    assert.equal(readyz.status, 503);
    const none = { [ALICE_CURRENT]: undefined, [JOINT]: undefined, [ALICE_FLEX]: undefined, [BOB_CURRENT]: undefined };
    await invariants(h, none, [ALICE]);

    h.fake.clearFaults();
    await poll(h, MINUTE);
    const aliceGood = { ...GOOD, [BOB_CURRENT]: undefined };
    assert.equal(sample(await metrics(h), "monzo_up"), 1, JSON.stringify(await problems(h)));
    await invariants(h, aliceGood, [ALICE]);

    // At the hourly rediscovery: the accounts found before are still read, but the poll is not a success.
    moveBalances(h);
    h.fake.fault({ path: "/accounts", kind: "malformed_json" });
    h.clock.advance(2 * 60 * MINUTE);
    await poll(h, MINUTE);
    text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 0);
    assert.match((await reported(h, "accounts_failed", ALICE)).message, /malformed JSON/);
    await invariants(h, { ...NEXT, [BOB_CURRENT]: undefined }, [ALICE]);

    h.fake.resetRequests();
    await recovers(h, [ALICE], { ...NEXT, [BOB_CURRENT]: undefined });
    assert.equal(h.fake.count("/accounts"), 1, "the failed discovery is not retried at the next poll");
  });
});

// ---- 429 ----

Deno.test("a 429 with Retry-After pauses polling until then, says so, and polling resumes after", async () => {
  await withHarness({}, async (h) => {
    await household(h);
    moveBalances(h);
    h.fake.fault({ path: "/balance", kind: "status", status: 429, headers: { "retry-after": "120" }, times: 1 });
    await poll(h, MINUTE);
    const limitedAt = h.clock.now();
    const until = new Date(limitedAt + 120_000).toISOString();

    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 0);
    assert.equal(sample(text, `monzo_api_requests_total{endpoint="/balance",code="429"}`), 1);
    const reason = (await reported(h, "rate_limited", "/balance")).message;
    assert.ok(reason.includes(until), reason);
    assert.ok((await page(h)).includes("Polling is paused until " + until.replace(".000Z", "Z")));
    assert.equal(logged(h, "WARN", reason).length, 1);
    await invariants(h, GOOD, [ALICE, BOB]);

    // Polls inside the window do not touch Monzo at all.
    h.fake.resetRequests();
    for (const at of [limitedAt + 60_000, limitedAt + 119_000]) {
      h.clock.set(at);
      await h.exporter.poller.poll();
      assert.deepEqual(h.fake.requests, [], `a poll at +${(at - limitedAt) / 1000} s called Monzo`);
    }
    assert.equal(sample(await metrics(h), "monzo_up"), 0);
    await invariants(h, GOOD, [ALICE, BOB]);

    h.clock.set(limitedAt + 120_000 - MINUTE);
    await recovers(h);
    assert.ok(h.fake.requests.length > 0);
    assert.ok(!(await page(h)).includes("Polling is paused"));
  });
});

// ---- No answer ----

Deno.test("a request that never answers ends the poll at request_timeout and the next poll still runs", async () => {
  await withHarness({ config: { request_timeout_seconds: 1 } }, async (h) => {
    await household(h);
    moveBalances(h);
    h.fake.fault({ path: "/balance", kind: "hang" });

    for (let attempt = 1; attempt <= 2; attempt++) {
      const before = h.fake.count("/balance");
      const started = performance.now();
      await poll(h, MINUTE);
      const took = performance.now() - started;
      assert.ok(took >= 900 && took < 5000, `poll ${attempt} took ${took} ms with a 1 s timeout`);
      assert.equal(h.fake.count("/balance"), before + 1, `poll ${attempt} did not reach Monzo`);
      const text = await metrics(h);
      assert.equal(sample(text, "monzo_up"), 0);
      assert.equal(sample(text, `monzo_api_requests_total{endpoint="/balance",code="timeout"}`), attempt);
      const reason = (await reported(h, "unreachable", "/balance")).message;
      assert.match(reason, /within 1 s/);
      // Logged when it appears, not again while it lasts.
      assert.equal(logged(h, "WARN", reason).length, 1);
      await invariants(h, GOOD, [ALICE, BOB]);
    }

    await recovers(h);
  });
});

// ---- Malformed answers ----

Deno.test("malformed JSON from /pots keeps that account's last values and names the endpoint", async () => {
  await withHarness({}, async (h) => {
    await household(h);
    moveBalances(h);
    h.fake.fault({ path: "/pots", kind: "malformed_json", accountId: ALICE_CURRENT });
    await poll(h, MINUTE);

    assert.equal(sample(await metrics(h), "monzo_up"), 0);
    const reason = (await reported(h, "account_failed", ALICE_CURRENT)).message;
    assert.match(reason, /malformed JSON for \/pots/);
    assert.equal(logged(h, "WARN", reason).length, 1);
    // Balances and pots are separate steps: the balance read fine and is fresh, the pots keep their last values.
    await invariants(h, NEXT, [ALICE, BOB]);
    const text = await metrics(h);
    assert.equal(sample(text, 'monzo_poll_step_success{step="balances"}'), 1);
    assert.equal(sample(text, 'monzo_poll_step_success{step="pots"}'), 0);

    await recovers(h);
  });
});

Deno.test("an answer missing a required field keeps that account's last values and names the field", async () => {
  await withHarness({}, async (h) => {
    await household(h);
    moveBalances(h);
    h.fake.fault({ path: "/balance", kind: "missing_fields", accountId: JOINT });
    await poll(h, MINUTE);

    assert.equal(sample(await metrics(h), "monzo_up"), 0);
    const reason = (await reported(h, "account_failed", JOINT)).message;
    assert.match(reason, /\/balance answer has an unusable field balance/);
    assert.equal(logged(h, "WARN", reason).length, 1);
    await invariants(h, { ...NEXT, [JOINT]: GOOD[JOINT] }, [ALICE, BOB]);

    await recovers(h);
  });
});

// ---- 401 ----

Deno.test("a 401 for an evicted token is healed by a refresh within the same poll", async () => {
  await withHarness({}, async (h) => {
    await household(h);
    const before = h.fake.tokensOf(ALICE);
    assert.ok(before);
    moveBalances(h);
    h.fake.evict(ALICE);
    h.fake.resetRequests();
    await poll(h, MINUTE);

    assert.ok(
      h.fake.requests.some((r) => r.status === 401 && r.userId === ALICE),
      "the fake never answered 401: the test did not exercise eviction",
    );
    assert.equal(h.fake.count("/oauth2/token"), 1);
    const after = h.fake.tokensOf(ALICE);
    assert.ok(after);
    const stored = (await storedLogins(h)).find((login) => login.userId === ALICE);
    assert.equal(stored?.accessToken, after.accessToken);
    assert.equal(stored?.refreshToken, after.refreshToken);
    const file = await Deno.readTextFile(h.tokensPath);
    assert.ok(!file.includes(before.refreshToken), "the used refresh token is still stored");

    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, JSON.stringify(await problems(h)));
    assert.equal(sample(text, loggedIn(ALICE)), 1);
    assert.deepEqual(await problems(h), []);
    assert.equal(logged(h, "INFO", `Refreshed the tokens of ${ALICE}`).length, 1);
    await invariants(h, NEXT, [ALICE, BOB]);

    await recovers(h);
    assert.equal(h.fake.count("/oauth2/token"), 1, "refreshed again although the new token works");
  });
});

// ---- 403 ----

Deno.test("a login awaiting approval says so once, on the page and in the log, until it is approved", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE, { approve: false });
    for (let i = 0; i < 4; i++) {
      await poll(h, MINUTE);
      const text = await metrics(h);
      assert.equal(sample(text, "monzo_up"), 0);
      assert.equal(sample(text, loggedIn(ALICE)), 1);
      assert.equal(sample(text, balance(ALICE_CURRENT)), undefined);
      const html = await page(h);
      assert.match(html, /waiting for approval in the Monzo app/);
      await reported(h, "awaiting_approval", ALICE);
    }
    assert.ok(h.fake.count("/accounts") >= 4, "the polls did not ask Monzo");
    const approvalLines = h.lines.filter((line) => /approv/i.test(line));
    assert.equal(approvalLines.length, 1, `logged ${approvalLines.length} times: ${approvalLines.join("\n")}`);
    assert.match(approvalLines[0], / WARN .*waiting for approval in the Monzo app/);

    h.fake.approve(ALICE);
    await poll(h, MINUTE);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, JSON.stringify(await problems(h)));
    assert.equal(sample(text, balance(ALICE_CURRENT)), GOOD[ALICE_CURRENT]);
    assert.equal(sample(text, balance(JOINT)), GOOD[JOINT]);
    assert.match(await page(h), /logged in, polling/);
    assert.doesNotMatch(await page(h), /waiting for approval/);
    assert.equal(logged(h, "INFO", `Reading the accounts of ${ALICE} works again`).length, 1);
    assert.deepEqual((await storedLogins(h)).map((login) => login.userId), [ALICE]);
  });
});

Deno.test("a lapsed approval keeps the user's last values while a joint account is read through the other login", async () => {
  await withHarness({}, async (h) => {
    await household(h);
    moveBalances(h);
    h.fake.revokeApproval(ALICE);
    await poll(h, MINUTE);
    await poll(h, MINUTE);

    assert.equal(sample(await metrics(h), "monzo_up"), 0);
    assert.match(await page(h), /waiting for approval in the Monzo app/);
    assert.equal(logged(h, "WARN", "waiting for approval in the Monzo app").length, 1);
    // Alice's own accounts keep their values; the joint one is fresh through Bob.
    await invariants(h, { ...NEXT, [ALICE_CURRENT]: GOOD[ALICE_CURRENT], [ALICE_FLEX]: GOOD[ALICE_FLEX] }, [
      ALICE,
      BOB,
    ]);

    h.fake.approve(ALICE);
    await recovers(h);
  });
});

// ---- Refresh failures ----

Deno.test("the refresh endpoint being down keeps the stored tokens, says so, and recovers", async () => {
  await withHarness({}, async (h) => {
    await household(h);
    const fileBefore = await Deno.readTextFile(h.tokensPath);
    moveBalances(h);
    h.fake.fault({ path: "/oauth2/token", kind: "status", status: 500 });

    // 20 minutes left: the refresh fails, but the current token still reads the accounts.
    h.clock.set(T0 + TOKEN_LIFETIME - 21 * MINUTE);
    h.fake.resetRequests();
    await poll(h, MINUTE);
    assert.equal(h.fake.count("/oauth2/token"), 2, "a refresh per login was not attempted");
    assert.equal(await Deno.readTextFile(h.tokensPath), fileBefore, "the stored tokens changed");
    let text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 0);
    assert.equal(sample(text, loggedIn(ALICE)), 1);
    const reason = (await reported(h, "refresh_failed", ALICE)).message;
    assert.match(reason, /\/oauth2\/token with HTTP 500/);
    assert.equal(logged(h, "WARN", reason).length, 1);
    await invariants(h, NEXT, [ALICE, BOB]);

    // Past expiry and still down: no data, last values kept, tokens still kept, still logged in.
    const stale = h.fake.data.accounts.find((a) => a.id === BOB_CURRENT);
    assert.ok(stale);
    stale.balance = 1;
    h.clock.set(T0 + TOKEN_LIFETIME + 10 * MINUTE);
    await poll(h, MINUTE);
    assert.equal(await Deno.readTextFile(h.tokensPath), fileBefore, "the stored tokens changed");
    text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 0);
    assert.equal(sample(text, loggedIn(ALICE)), 1);
    assert.equal(sample(text, loggedIn(BOB)), 1);
    assert.equal((await reported(h, "refresh_failed", ALICE)).message, reason);
    await invariants(h, NEXT, [ALICE, BOB]);
    stale.balance = Math.round(NEXT[BOB_CURRENT] * 100);

    await recovers(h);
    assert.notEqual(await Deno.readTextFile(h.tokensPath), fileBefore);
    const stored = await storedLogins(h);
    for (const user of [ALICE, BOB]) {
      assert.equal(stored.find((login) => login.userId === user)?.refreshToken, h.fake.tokensOf(user)?.refreshToken);
    }
  });
});

Deno.test("a rejected refresh logs the user out, shows the login link without the key, keeps the values", async () => {
  await withHarness({}, async (h) => {
    await household(h);
    moveBalances(h);
    h.fake.revokeRefresh(ALICE);
    h.fake.expire(ALICE);
    await poll(h, MINUTE);
    await poll(h, MINUTE);

    const text = await metrics(h);
    assert.equal(sample(text, loggedIn(ALICE)), 0);
    assert.equal(sample(text, loggedIn(BOB)), 1);
    assert.equal(sample(text, "monzo_up"), 0);
    // Alice's own accounts keep their last values; Bob's and the joint one stay fresh.
    await invariants(h, { ...NEXT, [ALICE_CURRENT]: GOOD[ALICE_CURRENT], [ALICE_FLEX]: GOOD[ALICE_FLEX] }, [BOB]);

    const html = await page(h);
    assert.match(html, /logged out/);
    assert.ok(html.includes(LOGIN_LINK), "the page does not show the login link");
    const lines = logged(h, "WARN", (await reported(h, "logged_out", ALICE)).message);
    assert.equal(lines.length, 1, h.lines.join("\n"));
    assert.ok(lines[0].includes(LOGIN_LINK), lines[0]);
    for (const shown of [html, h.lines.join("\n"), text]) assert.ok(!shown.includes(AUTH_KEY));

    // Logging in again brings everything back.
    await logIn(h, ALICE);
    await recovers(h);
    const after = (await metrics(h)).split("\n").filter((line) => line.startsWith(loggedIn(ALICE)));
    assert.deepEqual(after, [`${loggedIn(ALICE)} 1`], "the old logged-out entry is still listed");
    assert.doesNotMatch(await page(h), /logged out/);
  });
});

/** A tokens file whose writes fail with `reason` while `broken` is set, as on a full or lost disk. */
function breakable(reason: string, broken: boolean) {
  const state = {
    broken,
    persistence: (path: string): TokenPersistence => {
      const file = tokenFile(path);
      return {
        name: file.name,
        read: () => file.read(),
        write: (logins) =>
          state.broken ? Promise.resolve(err(`Cannot write tokens file "${path}": ${reason}`)) : file.write(logins),
      };
    },
  };
  return state;
}

// ---- Tokens file ----

Deno.test("a tokens file that cannot be written keeps the rotated login in memory, says so, and is written later", async () => {
  const tokens = breakable("disk full", false);
  const persistence = tokens.persistence;
  await withHarness({ persistence }, async (h) => {
    await household(h);
    const before = await Deno.readTextFile(h.tokensPath);
    tokens.broken = true;
    moveBalances(h);
    // Near expiry Alice's tokens are refreshed: Monzo rotates them, so the new pair must not be lost.
    h.clock.set(T0 + TOKEN_LIFETIME - 20 * MINUTE);
    await poll(h);

    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 0);
    assert.equal(sample(text, balance(ALICE_CURRENT)), NEXT[ALICE_CURRENT], "the rotated tokens are used");
    assert.equal(await Deno.readTextFile(h.tokensPath), before, "the file is untouched");
    const reason = (await reported(h, "tokens_unwritable", h.tokensPath)).message;
    assert.match(reason, /disk full/);
    await poll(h, MINUTE);
    assert.equal(logged(h, "WARN", reason).length, 1, "logged once, not every poll");

    tokens.broken = false;
    await recovers(h);
    const stored = await storedLogins(h);
    const alice = stored.find((login) => login.userId === ALICE);
    assert.equal(alice?.refreshToken, h.fake.tokensOf(ALICE)?.refreshToken, "the rotated pair reached the file");
  });
});

Deno.test("once a failed write succeeds, the page stops saying the tokens file is unreadable or unwritable", async () => {
  const tokens = breakable("disk full", false);
  const persistence = tokens.persistence;
  const prepare = (_fake: unknown, path: string) => Deno.writeTextFile(path, "this is not JSON", { mode: 0o600 });
  await withHarness({ persistence, prepare }, async (h) => {
    assert.ok(h.exporter.snapshot.state.loginsError, "the unreadable file is not reported");
    tokens.broken = true;
    const loggedIn = await h.exporter.sessions.logIn(h.fake.issueCode(ALICE, h.config.callbackUrl));
    assert.ok(loggedIn.ok && !loggedIn.value.written.ok);
    h.fake.approve(ALICE);
    await poll(h, MINUTE);
    await reported(h, "tokens_unwritable", h.tokensPath);
    assert.ok(h.exporter.snapshot.state.loginsError, "the file was never replaced, so it is still unreadable");

    // The next poll flushes first; the page must follow the store at once, not a poll later.
    tokens.broken = false;
    assert.ok((await h.exporter.store.flush()).ok);
    assert.equal(h.exporter.snapshot.state.loginsError, null, "the snapshot still says the file is unreadable");
    assert.ok(!(await page(h)).includes("this is not JSON") && !(await page(h)).includes("Cannot read tokens file"));
    await poll(h, MINUTE);
    assert.deepEqual(h.exporter.snapshot.state.lastPoll?.problems, []);
    assert.deepEqual((await storedLogins(h)).map((login) => login.userId), [ALICE]);
    assert.ok(h.lines.some((line) => line.includes(`kept as "${h.tokensPath}.unreadable"`)), h.lines.join("\n"));
  });
});

Deno.test("a login whose tokens cannot be written says so on the callback page, not just 'Logged in'", async () => {
  const tokens = breakable("its folder does not exist", true);
  const persistence = tokens.persistence;
  await withHarness({ persistence }, async (h) => {
    const authorize = await h.exporter.app.request(`/authorize?key=${encodeURIComponent(AUTH_KEY)}`);
    await authorize.body?.cancel();
    const state = new URL(authorize.headers.get("location") ?? "").searchParams.get("state") ?? "";
    const code = h.fake.issueCode(ALICE, h.config.callbackUrl);
    const callback = await h.exporter.app.request(`/callback?${new URLSearchParams({ code, state })}`);
    const html = await callback.text();
    assert.equal(callback.status, 200);
    const detail = `Cannot write tokens file "${h.tokensPath}": its folder does not exist`;
    const text = html.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&amp;", "&");
    assert.ok(text.includes("not saved"), html);
    assert.ok(text.includes(problem("tokens_unwritable", "", { detail }).message), html);

    // Once it can be written, the next poll writes it and the login was never lost.
    tokens.broken = false;
    h.fake.approve(ALICE);
    await poll(h, MINUTE);
    assert.deepEqual((await storedLogins(h)).map((login) => login.userId), [ALICE]);
  });
});
