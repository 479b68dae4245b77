// The poller against the fake Monzo over real HTTP: what gets discovered and exported, how many
// API calls a poll costs, and how logins are identified and refreshed.

import assert from "node:assert/strict";
import type { FakeMonzo } from "../lib/fake_monzo/mod.ts";
import { REDISCOVER_AFTER_MS } from "../lib/poll/accounts_step.ts";
import { rateLimitBackoffSeconds } from "../lib/poll/poller.ts";
import { tokenFile, type TokenPersistence } from "../lib/logins/token_file.ts";
import {
  ALICE,
  ALICE_CLOSED,
  ALICE_CURRENT,
  ALICE_FLEX,
  assertNoSecrets,
  balance,
  BOB,
  BOB_CURRENT,
  DELETED_POT,
  exchangeCode,
  FLEX_LOAN,
  HOLIDAY_POT,
  JOINT,
  loggedIn,
  logIn,
  metrics,
  MINUTE,
  page,
  poll,
  RAINY_POT,
  REDIRECT,
  sample,
  storedLogins,
  T0,
  TOKEN_LIFETIME,
  track,
  withHarness,
} from "./helpers/harness.ts";

/** The sample lines starting with `prefix`. */
function samples(exposition: string, prefix: string): string[] {
  return exposition.split("\n").filter((line) => line.startsWith(prefix));
}

const spendToday = (account: string) => `monzo_spend_today{account_id="${account}",currency="GBP"}`;

/** The account ids of `monzo_account_info`, sorted. */
function exportedAccounts(exposition: string): string[] {
  return samples(exposition, "monzo_account_info{")
    .map((line) => /account_id="([^"]+)"/.exec(line)?.[1] ?? "?")
    .sort();
}

/** Requests the fake received that named `accountId` in their query. */
/** The `/balance` and `/pots` requests about `accountId`. */
function requestsFor(fake: FakeMonzo, accountId: string) {
  return figureCalls(fake).filter((r) => Object.values(r.query).includes(accountId));
}

/** Every request but `/transactions`, whose costs tests/transactions_test.ts counts. */
function figureCalls(fake: FakeMonzo) {
  return fake.requests.filter((r) => r.path !== "/transactions");
}

// ---- Discovery ----

Deno.test("discovery exports open accounts and skips closed accounts and flex backing loans", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.deepEqual(exportedAccounts(text), [ALICE_CURRENT, ALICE_FLEX, JOINT].sort());
    assert.equal(sample(text, balance(ALICE_CLOSED)), undefined);
    assert.equal(sample(text, balance(FLEX_LOAN)), undefined);
    assert.match(text, /^monzo_account_info\{account_id="acc_00009AliceFlex00009Hq3",account_type="uk_monzo_flex",/m);
    // Skipped accounts are not even asked about: the backing loan would answer 403 and spoil monzo_up.
    assert.deepEqual(requestsFor(h.fake, ALICE_CLOSED), []);
    assert.deepEqual(requestsFor(h.fake, FLEX_LOAN), []);
    assert.equal(sample(text, "monzo_up"), 1);
    const landing = await page(h);
    const listed = [...landing.matchAll(/<code>(acc_[0-9A-Za-z]+)<\/code>/g)].map((m) => m[1]).sort();
    assert.deepEqual(listed, [ALICE_CURRENT, ALICE_FLEX, JOINT].sort());
    await assertNoSecrets(h);
  });
});

Deno.test("a joint account seen by two logged-in users is exported once", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await logIn(h, BOB);
    await poll(h);
    const text = await metrics(h);
    assert.deepEqual(exportedAccounts(text), [ALICE_CURRENT, ALICE_FLEX, BOB_CURRENT, JOINT].sort());
    assert.equal(samples(text, `monzo_balance{account_id="${JOINT}"`).length, 1);
    assert.equal(samples(text, `monzo_pot_balance{account_id="${JOINT}"`).length, 1);
    assert.equal(sample(text, balance(JOINT)), 567.89);
    assert.equal(
      sample(
        text,
        `monzo_account_info{account_id="${JOINT}",account_type="uk_retail_joint",` +
          `description="joint_${ALICE}_${BOB}",owners="Alice Example, Bob Example"}`,
      ),
      1,
    );
    // Read once per poll, through one of the two logins.
    assert.equal(requestsFor(h.fake, JOINT).filter((r) => r.path === "/balance").length, 1);
    assert.equal(requestsFor(h.fake, JOINT).filter((r) => r.path === "/pots").length, 1);
    assert.equal(sample(text, loggedIn(ALICE)), 1);
    assert.equal(sample(text, loggedIn(BOB)), 1);
    assert.equal(sample(text, "monzo_up"), 1);

    // Either owner's login can read it: when one stops working, the other keeps it fresh.
    const joint = h.fake.data.accounts.find((a) => a.id === JOINT);
    assert.ok(joint);
    for (const [stopped, working] of [[ALICE, BOB], [BOB, ALICE]]) {
      h.fake.revokeApproval(stopped);
      joint.balance += 100;
      h.clock.advance(MINUTE);
      h.fake.resetRequests();
      await poll(h);
      assert.equal(sample(await metrics(h), balance(JOINT)), joint.balance / 100, `not read through ${working}`);
      const reads = requestsFor(h.fake, JOINT).filter((r) => r.status === 200);
      assert.deepEqual(reads.map((r) => r.userId), [working, working]);
      h.fake.approve(stopped);
    }
    await assertNoSecrets(h);
  });
});

Deno.test("deleted pots are left out and goals are exported only where set", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.ok(!text.includes(DELETED_POT), "the deleted pot is exported");
    assert.ok(!text.includes("Old car"), "the deleted pot's name is exported");
    const potIds = samples(text, `monzo_pot_balance{account_id="${ALICE_CURRENT}"`)
      .map((line) => /pot_id="([^"]+)"/.exec(line)?.[1]);
    assert.deepEqual(
      potIds.sort(),
      [
        "pot_00009AliceEmergency0001",
        HOLIDAY_POT,
        RAINY_POT,
        "pot_00009AliceSavings000002",
      ].sort(),
    );
    const goals = samples(text, "monzo_pot_goal{").map((line) => /pot_id="([^"]+)"/.exec(line)?.[1]);
    assert.deepEqual(goals.sort(), ["pot_00009AliceEmergency0001", HOLIDAY_POT, "pot_00009JointBills0000001"].sort());
    assert.equal(
      sample(
        text,
        `monzo_pot_goal{account_id="${ALICE_CURRENT}",pot_id="pot_00009AliceEmergency0001",` +
          `pot_name="Emergency fund",currency="GBP"}`,
      ),
      5000,
    );

    // A pot deleted between polls disappears from the next exposition.
    const savings = h.fake.data.accounts[0].pots.find((p) => p.id === "pot_00009AliceSavings000002");
    assert.ok(savings);
    savings.deleted = true;
    h.clock.advance(MINUTE);
    await poll(h);
    assert.ok(!(await metrics(h)).includes("pot_00009AliceSavings000002"), "a pot deleted later is still exported");
  });
});

Deno.test("pot names with quotes, backslashes and newlines are escaped in /metrics", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    const holiday = `monzo_pot_balance{account_id="${ALICE_CURRENT}",pot_id="${HOLIDAY_POT}",` +
      `pot_name="Holiday \\"Lisbon\\" \\\\ 2027",currency="GBP"}`;
    const rainy = `monzo_pot_balance{account_id="${ALICE_CURRENT}",pot_id="${RAINY_POT}",` +
      `pot_name="Rainy\\nday",currency="GBP"}`;
    assert.equal(sample(text, holiday), 420.5);
    assert.equal(sample(text, rainy), 15);
    // A raw newline in a label would start a line that is neither a comment nor a sample.
    for (const line of text.split("\n").filter((l) => l !== "")) {
      assert.match(line, /^(# (HELP|TYPE) monzo_|monzo_[a-z_]+(\{.*\})? -?[0-9.e+]+$)/, `bad line: ${line}`);
    }
    assert.ok(text.endsWith("\n"));
  });
});

Deno.test("negative balances stay negative and spend_today is positive for money spent", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await logIn(h, BOB);
    await poll(h);
    let text = await metrics(h);
    // Bob is overdrawn by £42.10 and spent £8.99 today (Monzo sends spend_today -899).
    assert.equal(sample(text, balance(BOB_CURRENT)), -42.1);
    assert.equal(sample(text, spendToday(BOB_CURRENT)), 8.99);
    assert.equal(sample(text, `monzo_total_balance{account_id="${BOB_CURRENT}",currency="GBP"}`), 77.9);
    assert.equal(sample(text, balance(ALICE_FLEX)), -150);
    assert.equal(sample(text, balance(ALICE_CURRENT)), 1234.56);
    assert.equal(sample(text, spendToday(ALICE_CURRENT)), 23.45);
    // No spend is 0, never "-0".
    assert.ok(text.includes(`${spendToday(ALICE_FLEX)} 0\n`), "zero spend is not written as 0");

    // A refund bigger than the day's spending makes spend_today positive at Monzo, negative here.
    const bob = h.fake.data.accounts.find((a) => a.id === BOB_CURRENT);
    assert.ok(bob);
    bob.spendToday = 1500;
    bob.balance = 250;
    h.clock.advance(MINUTE);
    await poll(h);
    text = await metrics(h);
    assert.equal(sample(text, spendToday(BOB_CURRENT)), -15);
    assert.equal(sample(text, balance(BOB_CURRENT)), 2.5);
  });
});

Deno.test("account_id in the config restricts the export to that account", async () => {
  await withHarness({ config: { account_id: JOINT } }, async (h) => {
    await logIn(h, ALICE);
    await logIn(h, BOB);
    h.fake.resetRequests();
    await poll(h);
    const text = await metrics(h);
    assert.deepEqual(exportedAccounts(text), [JOINT]);
    assert.deepEqual(samples(text, "monzo_balance{"), [`${balance(JOINT)} 567.89`]);
    assert.deepEqual(samples(text, "monzo_pot_balance{").length, 1);
    // Only that account's balance and pots are read.
    const reads = h.fake.requests.filter((r) => r.path === "/balance" || r.path === "/pots");
    assert.deepEqual(reads.map((r) => Object.values(r.query)[0]), [JOINT, JOINT]);
    assert.equal(sample(text, "monzo_up"), 1);
  });
});

Deno.test("account_id naming an account that is not open exports nothing and says what to fix", async () => {
  await withHarness({ config: { account_id: ALICE_CLOSED } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.deepEqual(exportedAccounts(text), []);
    assert.deepEqual(requestsFor(h.fake, ALICE_CLOSED), []);
    assert.equal(sample(text, "monzo_up"), 0);
    const expected = `account_id ${ALICE_CLOSED} is not an open account of the logged-in users`;
    assert.ok((await page(h)).includes(expected), "the landing page does not explain the account_id problem");
    assert.equal(h.lines.filter((line) => line.includes(expected)).length, 1);
  });
});

// ---- API calls per poll ----

Deno.test("a poll costs /accounts per login on discovery, then 2 calls per account for balances and pots", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await logIn(h, BOB);
    h.fake.resetRequests();
    await poll(h);
    assert.equal(h.fake.count("/accounts"), 2, "one /accounts per login");
    assert.equal(h.fake.count("/balance"), 4);
    assert.equal(h.fake.count("/pots"), 4);
    assert.equal(figureCalls(h.fake).length, 2 + 2 * 4, JSON.stringify(figureCalls(h.fake).map((r) => r.path)));
    assert.equal(sample(await metrics(h), "monzo_up"), 1);

    for (let i = 0; i < 3; i++) {
      h.clock.advance(MINUTE);
      h.fake.resetRequests();
      await poll(h);
      assert.equal(h.fake.count("/accounts"), 0, "the account list is read again although nothing changed");
      assert.equal(figureCalls(h.fake).length, 2 * 4, JSON.stringify(figureCalls(h.fake).map((r) => r.path)));
      assert.ok(h.fake.requests.every((r) => r.status === 200));
    }
    assert.equal(sample(await metrics(h), "monzo_up"), 1);

    // Now and then the list is read again anyway, to notice new and closed accounts.
    h.clock.advance(REDISCOVER_AFTER_MS);
    h.fake.resetRequests();
    await poll(h);
    assert.equal(h.fake.count("/accounts"), 2);
    assert.equal(figureCalls(h.fake).length, 2 + 2 * 4);
  });
});

Deno.test("a new login triggers rediscovery and its accounts are exported from the next poll", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    assert.deepEqual(exportedAccounts(await metrics(h)), [ALICE_CURRENT, ALICE_FLEX, JOINT].sort());

    await logIn(h, BOB);
    h.clock.advance(MINUTE);
    h.fake.resetRequests();
    await poll(h);
    const text = await metrics(h);
    assert.ok(h.fake.count("/accounts") >= 1, "the new login's accounts were not listed");
    assert.deepEqual(exportedAccounts(text), [ALICE_CURRENT, ALICE_FLEX, BOB_CURRENT, JOINT].sort());
    assert.equal(sample(text, balance(BOB_CURRENT)), -42.1);
    assert.equal(samples(text, `monzo_balance{account_id="${JOINT}"`).length, 1);
    assert.equal(sample(text, "monzo_up"), 1);

    h.clock.advance(MINUTE);
    h.fake.resetRequests();
    await poll(h);
    assert.equal(h.fake.count("/accounts"), 0);
    assert.equal(figureCalls(h.fake).length, 2 * 4);
  });
});

// ---- Logins ----

/**
 * What the original exporter left behind: a code exchanged at Monzo and the three fields written,
 * nothing else. `grant` receives the tokens.
 */
function originalTokensFile(grant: { accessToken?: string; refreshToken?: string } = {}) {
  return async (fake: FakeMonzo, tokensPath: string, seen: Set<string>) => {
    const { status, grant: body } = await exchangeCode(fake, ALICE, `${REDIRECT}/callback`);
    assert.equal(status, 200);
    fake.approve(ALICE);
    grant.accessToken = body.access_token;
    grant.refreshToken = body.refresh_token;
    seen.add(body.access_token);
    seen.add(body.refresh_token);
    // chrono writes nanoseconds.
    const expiresAt = new Date(T0 + body.expires_in * 1000).toISOString().replace(".000Z", ".000000000Z");
    const original = { access_token: body.access_token, expires_at: expiresAt, refresh_token: body.refresh_token };
    await Deno.writeTextFile(tokensPath, JSON.stringify(original, null, 2), { mode: 0o600 });
  };
}

Deno.test("a login in the original tokens.json format learns its user id from /ping/whoami", async () => {
  const grant: { accessToken?: string } = {};
  const prepare = originalTokensFile(grant);
  await withHarness({ prepare }, async (h) => {
    assert.equal(sample(await metrics(h), `monzo_logged_in{user_id="unknown"}`), 1);
    h.fake.resetRequests();
    await poll(h);
    assert.equal(h.fake.count("/ping/whoami"), 1);
    assert.equal(h.fake.count("/oauth2/token"), 0, "the login was refreshed although it had 30 h left");

    const text = await metrics(h);
    assert.equal(sample(text, loggedIn(ALICE)), 1);
    assert.equal(sample(text, `monzo_logged_in{user_id="unknown"}`), undefined);
    assert.equal(sample(text, balance(ALICE_CURRENT)), 1234.56);
    assert.equal(sample(text, "monzo_up"), 1);

    // Stored under the id, still in the original single-login format, with the same tokens.
    const file = JSON.parse(await Deno.readTextFile(h.tokensPath));
    assert.equal(file.user_id, ALICE);
    assert.equal(file.access_token, grant.accessToken);
    assert.equal(file.logins, undefined);
    assert.equal((await Deno.stat(h.tokensPath)).mode! & 0o777, 0o600);
    assert.ok(h.lines.some((line) => line.includes(`The stored login belongs to ${ALICE}`)));

    h.clock.advance(MINUTE);
    h.fake.resetRequests();
    await poll(h);
    assert.equal(h.fake.count("/ping/whoami"), 0, "whoami is asked again although the id is known");
    assert.equal(figureCalls(h.fake).length, 2 * 3);
    await assertNoSecrets(h);
  });
});

Deno.test("an original-format login whose token was evicted is renewed, which also names its user", async () => {
  const grant: { refreshToken?: string } = {};
  await withHarness({ prepare: originalTokensFile(grant) }, async (h) => {
    // Someone used the same OAuth client meanwhile (the original exporter, the API playground).
    h.fake.evict(ALICE);
    h.fake.resetRequests();
    await poll(h);
    assert.equal(h.fake.count("/oauth2/token"), 1, "the evicted token was not renewed");
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, await page(h));
    assert.equal(sample(text, loggedIn(ALICE)), 1);
    assert.equal(sample(text, `monzo_logged_in{user_id="unknown"}`), undefined);
    assert.equal(sample(text, balance(ALICE_CURRENT)), 1234.56);
    const stored = await storedLogins(h);
    assert.deepEqual(stored.map((login) => login.userId), [ALICE]);
    assert.equal(stored[0].refreshToken, h.fake.tokensOf(ALICE)?.refreshToken);
    assert.ok(!(await Deno.readTextFile(h.tokensPath)).includes(grant.refreshToken ?? "?"));
    await assertNoSecrets(h);
  });
});

Deno.test("an original-format login that /ping/whoami cannot name yet makes the poll not fully successful", async () => {
  await withHarness({ prepare: originalTokensFile() }, async (h) => {
    h.fake.fault({ path: "/ping/whoami", kind: "status", status: 500, times: 1 });
    await poll(h);
    let text = await metrics(h);
    // The token still reads the accounts, but the poll did not do all it should.
    assert.equal(sample(text, balance(ALICE_CURRENT)), 1234.56);
    assert.equal(sample(text, "monzo_up"), 0);
    assert.equal(sample(text, `monzo_logged_in{user_id="unknown"}`), 1);
    const reason = "Cannot tell which Monzo user the stored login belongs to";
    assert.ok((await page(h)).includes(reason));
    assert.equal(h.lines.filter((line) => line.includes(reason)).length, 1);

    h.clock.advance(MINUTE);
    await poll(h);
    text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1);
    assert.equal(sample(text, loggedIn(ALICE)), 1);
    assert.deepEqual((await storedLogins(h)).map((login) => login.userId), [ALICE]);
    await assertNoSecrets(h);
  });
});

Deno.test("tokens are refreshed when under 30 minutes remain and the new pair is stored before use", async () => {
  // The number of requests the fake had received when each write of the tokens file finished.
  const writes: { requestsSoFar: number; text: string }[] = [];
  const persistence = (path: string, fake: FakeMonzo): TokenPersistence => {
    const file = tokenFile(path);
    return {
      name: file.name,
      read: () => file.read(),
      async write(logins) {
        const written = await file.write(logins);
        writes.push({ requestsSoFar: fake.requests.length, text: await Deno.readTextFile(path) });
        return written;
      },
    };
  };
  await withHarness({ persistence }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const before = h.fake.tokensOf(ALICE);
    assert.ok(before);
    const expiresAt = T0 + TOKEN_LIFETIME;
    assert.equal(
      sample(await metrics(h), `monzo_token_expiry_timestamp_seconds{user_id="${ALICE}"}`),
      expiresAt / 1000,
    );

    // 31 minutes left: not yet.
    h.clock.set(expiresAt - 31 * MINUTE);
    h.fake.resetRequests();
    await poll(h);
    assert.equal(h.fake.count("/oauth2/token"), 0, "refreshed with more than 30 minutes left");

    // 29 minutes left: refresh, once, then read with the new token.
    h.clock.set(expiresAt - 29 * MINUTE);
    h.fake.resetRequests();
    writes.length = 0;
    await poll(h);
    assert.equal(h.fake.count("/oauth2/token"), 1);
    const after = h.fake.tokensOf(ALICE);
    assert.ok(after);
    assert.notEqual(after.refreshToken, before.refreshToken);

    const tokenIndex = h.fake.requests.findIndex((r) => r.path === "/oauth2/token");
    const firstUse = h.fake.requests.findIndex((r, i) => i > tokenIndex && r.path !== "/oauth2/token");
    assert.ok(firstUse > tokenIndex, "no request used the new token");
    const persisted = writes.find((w) => w.text.includes(after.refreshToken));
    assert.ok(persisted, "the new refresh token was never written to the tokens file");
    assert.ok(
      persisted.requestsSoFar <= firstUse,
      `the new pair was written after it was first used (${persisted.requestsSoFar} > ${firstUse})`,
    );
    // Every read after the refresh worked: nothing used the revoked old token.
    assert.ok(h.fake.requests.every((r) => r.status === 200), JSON.stringify(h.fake.requests));

    const fileText = await Deno.readTextFile(h.tokensPath);
    assert.ok(fileText.includes(after.refreshToken));
    assert.ok(fileText.includes(after.accessToken));
    assert.ok(!fileText.includes(before.refreshToken), "the old refresh token is still in the file");
    assert.ok(!fileText.includes(before.accessToken), "the old access token is still in the file");
    const stored = await storedLogins(h);
    assert.equal(stored.length, 1);
    assert.equal(stored[0].userId, ALICE);
    assert.equal(stored[0].expiresAt, h.clock.now() + TOKEN_LIFETIME);

    const text = await metrics(h);
    assert.equal(sample(text, `monzo_token_expiry_timestamp_seconds{user_id="${ALICE}"}`), stored[0].expiresAt / 1000);
    assert.equal(sample(text, "monzo_up"), 1);
    assert.ok(h.lines.some((line) => line.includes(`Refreshed the tokens of ${ALICE}`)));
    await assertNoSecrets(h);
  });
});

Deno.test("concurrent sessions.fresh calls for one login share a single refresh", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    const before = h.fake.tokensOf(ALICE);
    assert.ok(before);
    h.clock.set(T0 + TOKEN_LIFETIME - 10 * MINUTE);
    h.fake.resetRequests();
    const answers = await Promise.all(Array.from({ length: 6 }, () => h.exporter.sessions.fresh(ALICE)));
    track(h);
    assert.equal(h.fake.count("/oauth2/token"), 1);
    const after = h.fake.tokensOf(ALICE);
    assert.ok(after);
    for (const answer of answers) {
      assert.ok(answer.ok, answer.ok ? "" : answer.error.problem.message);
      assert.equal(answer.value.login.accessToken, after.accessToken);
    }
    const stored = await storedLogins(h);
    assert.equal(stored[0].refreshToken, after.refreshToken);
    assert.notEqual(after.refreshToken, before.refreshToken);

    // Once fresh, asking again does not refresh again.
    await h.exporter.sessions.fresh(ALICE);
    assert.equal(h.fake.count("/oauth2/token"), 1);
    await assertNoSecrets(h);
  });
});

Deno.test("after a 429 the wait is Retry-After when given, else 60 s doubling per 429 in a row up to 15 min", () => {
  assert.equal(rateLimitBackoffSeconds(120, 0), 120);
  assert.equal(rateLimitBackoffSeconds(0, 3), 1, "a zero Retry-After still waits a moment");
  assert.equal(rateLimitBackoffSeconds(86_400, 0), 3600, "an absurd Retry-After is capped at an hour");
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((streak) => rateLimitBackoffSeconds(undefined, streak)), [
    60,
    120,
    240,
    480,
    900,
    900,
  ]);
});

// ---- Who owns what ----

Deno.test("the poller keeps its own memory: the snapshot holds only what the poll published", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const published = h.exporter.snapshot.state;
    assert.ok(published.steps.length > 0);
    for (const step of published.steps) {
      assert.ok(!("next" in step), `the snapshot holds step ${step.name}'s memory`);
    }
    assert.ok(!("rateLimitStreak" in published), "the snapshot holds the rate-limit streak");

    // A 429 without Retry-After pauses polling; the pause is the poller's, whatever the view says.
    h.fake.fault({ path: "/balance", kind: "status", status: 429, times: 1 });
    await poll(h, MINUTE);
    const limitedAt = h.clock.now();
    const until = h.exporter.snapshot.state.backoffUntil;
    assert.equal(until, limitedAt + 60_000);
    const { lastPoll } = h.exporter.snapshot.state;
    assert.ok(lastPoll);
    // Whatever is published (here: no pause), the poller's own memory decides when Monzo is called again.
    h.exporter.snapshot.applyPoll({
      startedAt: lastPoll.startedAt,
      finishedAt: limitedAt,
      problems: lastPoll.problems,
      users: h.exporter.snapshot.state.users,
      steps: h.exporter.snapshot.state.steps,
      backoffUntil: null,
    });
    h.fake.resetRequests();
    await poll(h, 30_000);
    assert.deepEqual(h.fake.requests, [], "a poll inside the pause called Monzo");

    // The second 429 in a row doubles the pause: the streak is counted by the poller.
    h.clock.set(limitedAt + 60_000);
    h.fake.fault({ path: "/balance", kind: "status", status: 429, times: 1 });
    await poll(h);
    assert.equal(h.exporter.snapshot.state.backoffUntil, h.clock.now() + 120_000);
  });
});
