// A poll reads the logins only once they are settled: a start from the original exporter's tokens.json
// exports balances from its first poll, and a poll asked for (at start, on the cron, from the login
// watch, after a login) while a browser login, refresh or identification is in flight waits for it
// instead of saying "log in" to a user who holds a login. Against the fake Monzo over real HTTP, with a real tokens file.

import assert from "node:assert/strict";
import { type FakeMonzo, startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import { createLoginWatch } from "../lib/run/login_watch.ts";
import { createMonzoClient } from "../lib/monzo/monzo_client.ts";
import {
  ALICE,
  ALICE_CURRENT,
  assertNoSecrets,
  AUTH_KEY,
  balance,
  BOB,
  BOB_CURRENT,
  exchangeCode,
  type Harness,
  JOINT,
  logIn,
  metrics,
  MINUTE,
  poll,
  REDIRECT,
  sample,
  storedLogins,
  T0,
  withHarness,
  withTempDir,
} from "./helpers/harness.ts";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  configFields,
  freePort,
  get,
  PROGRAM,
  spawn,
  waitFor,
  writeConfig,
} from "./helpers/e2e.ts";

/** Any line that sends the user to the login link: "No Monzo login yet: log in at …", "log in again at …". */
const LOG_IN = /\blog in\b|\/authorize\?/i;

/** The paths a poll reads an account's figures from (the token exchange and whoami are not among them). */
const DATA_PATHS = ["/accounts", "/balance", "/pots", "/transactions"];

/** A promise and the function that settles it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}

/** The balance of `accountId` in the fake, in pounds, as the exporter should serve it. */
function fakeBalance(fake: FakeMonzo, accountId: string): number {
  const account = fake.data.accounts.find((a) => a.id === accountId);
  assert.ok(account, `no account ${accountId} in the fake`);
  return account.balance / 100;
}

/**
 * Writes what the original exporter leaves behind (its three fields, no user id), for a code Monzo
 * issued to Alice, with the access token expiring `expiresInMs` after the test clock's start.
 */
function originalTokensFile(expiresInMs: number) {
  return async (fake: FakeMonzo, tokensPath: string, seen: Set<string>) => {
    const { status, grant } = await exchangeCode(fake, ALICE, `${REDIRECT}/callback`);
    assert.equal(status, 200);
    fake.approve(ALICE);
    seen.add(grant.access_token);
    seen.add(grant.refresh_token);
    // chrono writes nanoseconds.
    const expiresAt = new Date(T0 + expiresInMs).toISOString().replace(".000Z", ".000000000Z");
    const original = { access_token: grant.access_token, expires_at: expiresAt, refresh_token: grant.refresh_token };
    await Deno.writeTextFile(tokensPath, JSON.stringify(original, null, 2), { mode: 0o600 });
  };
}

/** The exporter's first poll, as main.ts runs it at start; the requests it made. */
async function firstPoll(h: Harness) {
  h.fake.resetRequests();
  await h.exporter.poller.poll();
  return h.fake.requests;
}

/** Asserts that the accounts' balances are served and no line (from line `since` on) told the user to log in. */
async function assertBalancesWithoutLogIn(h: Harness, accountIds: readonly string[], since = 0): Promise<void> {
  const text = await metrics(h);
  for (const accountId of accountIds) {
    assert.equal(sample(text, balance(accountId)), fakeBalance(h.fake, accountId), `no balance of ${accountId}`);
  }
  const told = h.lines.slice(since).filter((line) => LOG_IN.test(line));
  assert.deepEqual(told, [], "the log told a user who holds a login to log in");
}

// ---- The start from the original exporter's tokens.json ----

Deno.test("20 starts from the original tokens.json inside the refresh margin, with account_id, all serve balances from the first poll", async () => {
  for (let start = 1; start <= 20; start++) {
    await withHarness(
      { config: { account_id: ALICE_CURRENT }, prepare: originalTokensFile(20 * MINUTE) },
      async (h) => {
        const requests = await firstPoll(h);
        const paths = requests.map((r) => r.path);
        assert.ok(paths.includes("/oauth2/token"), `start ${start}: the login inside the margin was not refreshed`);
        assert.ok(paths.includes("/accounts"), `start ${start}: the first poll made no /accounts request: ${paths}`);
        await assertBalancesWithoutLogIn(h, [ALICE_CURRENT]);
        assert.ok(h.lines.some((line) => line.includes(`Refreshed the tokens of ${ALICE}`)));
        assert.equal(sample(await metrics(h), "monzo_up"), 1, `start ${start}: the first poll was not a success`);
        assert.deepEqual((await storedLogins(h)).map((login) => login.userId), [ALICE]);
        await assertNoSecrets(h);
      },
    );
  }
});

interface StartCase {
  readonly name: string;
  /** When the stored access token expires, after the test clock's start. */
  readonly expiresInMs: number;
  readonly config?: Record<string, unknown>;
  /** Runs before the first poll (faults to add). */
  readonly before?: (fake: FakeMonzo) => void;
  /** The accounts whose balances the first poll must serve. */
  readonly accounts: readonly string[];
}

const START_CASES: StartCase[] = [
  {
    name: "a token inside the refresh margin without account_id serves every account",
    expiresInMs: 20 * MINUTE,
    accounts: [ALICE_CURRENT, JOINT],
  },
  {
    name: "a token that has already expired is renewed and serves balances",
    expiresInMs: -MINUTE,
    config: { account_id: ALICE_CURRENT },
    accounts: [ALICE_CURRENT],
  },
  {
    name: "a refresh whose answer comes late still serves balances from the poll that asked for it",
    expiresInMs: 20 * MINUTE,
    config: { account_id: ALICE_CURRENT },
    before: (fake) => {
      // Held until it has arrived, then let go: the answer lands after the poll has gone on waiting.
      fake.fault({ path: "/oauth2/token", kind: "hold", times: 1, onHold: () => queueMicrotask(fake.releaseHeld) });
    },
    accounts: [ALICE_CURRENT],
  },
  {
    name: "a login whoami cannot name, renewed after a 401 mid-poll, is still read by the rest of the poll",
    expiresInMs: 20 * 60 * MINUTE,
    before: (fake) => {
      fake.fault({ path: "/ping/whoami", kind: "status", status: 500, times: 1 });
      // Someone used the same OAuth client: the first read answers 401 and the token is renewed, which
      // names the user and stores the login under the id while the poll goes on under "".
      fake.evict(ALICE);
    },
    accounts: [ALICE_CURRENT, JOINT],
  },
];

for (const c of START_CASES) {
  Deno.test(`start from the original tokens.json: ${c.name}, and never asks to log in`, async () => {
    await withHarness({ config: c.config, prepare: originalTokensFile(c.expiresInMs) }, async (h) => {
      c.before?.(h.fake);
      const paths = (await firstPoll(h)).map((r) => r.path);
      assert.ok(paths.includes("/accounts"), `the first poll made no /accounts request: ${paths}`);
      await assertBalancesWithoutLogIn(h, c.accounts);
      assert.deepEqual((await storedLogins(h)).map((login) => login.userId), [ALICE]);
    });
  });
}

Deno.test("the program started from the original tokens.json inside the refresh margin serves balances from its first poll", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  try {
    await withTempDir(async (dir) => {
      const port = freePort();
      const configPath = await writeConfig(dir, { ...configFields(fake, port), account_id: ALICE_CURRENT });
      const { grant } = await exchangeCode(fake, ALICE, `http://127.0.0.1:${port}/callback`);
      fake.approve(ALICE);
      // The original exporter's three fields, 20 minutes before expiry: inside the 30-minute margin.
      const expiresAt = new Date(Date.now() + 20 * MINUTE).toISOString();
      const original = { access_token: grant.access_token, expires_at: expiresAt, refresh_token: grant.refresh_token };
      await Deno.writeTextFile(`${dir}/tokens.json`, JSON.stringify(original, null, 2), { mode: 0o600 });
      fake.resetRequests();
      const program = spawn(Deno.execPath(), [...PROGRAM, "--config", configPath]);
      try {
        const series = balance(ALICE_CURRENT);
        // Until the first poll has shown its result: balances, or a line sending the user to log in.
        await waitFor(
          "the first poll's balances or a line asking to log in",
          async () =>
            program.stderr.text.split("\n").some((line) => LOG_IN.test(line)) ||
            sample((await get(`http://127.0.0.1:${port}/metrics`)).text, series) !== undefined,
          { timeoutMs: 30_000 },
        );
        const told = program.stderr.text.split("\n").filter((line) => LOG_IN.test(line));
        assert.deepEqual(told, [], "the program told a user who holds a login to log in");
        assert.ok(program.stderr.text.includes(`Refreshed the tokens of ${ALICE}`), program.stderr.text);
        const text = (await get(`http://127.0.0.1:${port}/metrics`)).text;
        assert.equal(sample(text, series), fakeBalance(fake, ALICE_CURRENT));
        assert.ok(fake.count("/accounts") >= 1, "no /accounts request");
      } finally {
        await program.stop("SIGTERM");
      }
    });
  } finally {
    await fake.close();
  }
});

// ---- A poll asked for while a login or refresh is in flight waits for it ----

/** Holds the next `/oauth2/token` request; the promise settles once the fake has it. */
function holdTokenRequest(fake: FakeMonzo): Promise<void> {
  const arrived = gate();
  fake.fault({ path: "/oauth2/token", kind: "hold", times: 1, onHold: arrived.open });
  return arrived.promise;
}

Deno.test("a poll asked for while a browser login's code exchange is in flight waits and reads the new login", async () => {
  await withHarness({ fake: { autoApprove: true } }, async (h) => {
    const arrived = holdTokenRequest(h.fake);
    const login = h.exporter.sessions.logIn(h.fake.issueCode(ALICE, h.config.callbackUrl));
    await arrived;
    // The cron (or the poll at start) asks now, while Monzo has not answered the exchange.
    const polled = h.exporter.poller.poll();
    h.fake.releaseHeld();
    assert.ok((await login).ok);
    await polled;
    await assertBalancesWithoutLogIn(h, [ALICE_CURRENT, JOINT]);
    assert.equal(h.exporter.snapshot.state.users.get(ALICE)?.status, "ok");
  });
});

Deno.test("a poll asked for while a refresh Monzo refuses is in flight waits, and uses the ended login for nothing", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    h.fake.evict(ALICE);
    h.fake.revokeRefresh(ALICE);
    const arrived = holdTokenRequest(h.fake);
    // A renewal after a 401 elsewhere (the login watch's probe) is in flight.
    const renewal = h.exporter.sessions.fresh(ALICE, { force: true });
    await arrived;
    h.clock.advance(MINUTE);
    h.fake.resetRequests();
    const polled = h.exporter.poller.poll();
    h.fake.releaseHeld();
    assert.equal((await renewal).ok, false);
    await polled;
    const used = h.fake.requests.filter((r) => DATA_PATHS.includes(r.path)).map((r) => r.path);
    assert.deepEqual(used, [], "the poll read with a login whose refresh was being refused");
    const alice = h.exporter.snapshot.state.users.get(ALICE);
    assert.equal(alice?.status, "logged_out");
    // Told why, not "No Monzo login yet".
    assert.equal(alice.problem.code, "logged_out");
    assert.ok(!h.lines.some((line) => line.includes("No Monzo login yet")), h.lines.join("\n"));
  });
});

Deno.test("the login watch's poll waits for a browser login in flight and reads it too", async () => {
  await withHarness({ fake: { autoApprove: true } }, async (h) => {
    // Bob logged in and has not approved yet: the watch asks until he has, then polls.
    await logIn(h, BOB, { approve: false });
    h.fake.revokeApproval(BOB);
    await poll(h);
    assert.equal(h.exporter.snapshot.state.users.get(BOB)?.status, "awaiting_approval");
    // That poll rightly asked Bob to approve; from here on he holds a working login.
    const since = h.lines.length;
    // Alice's code exchange is in flight when Bob approves.
    const arrived = holdTokenRequest(h.fake);
    const login = h.exporter.sessions.logIn(h.fake.issueCode(ALICE, h.config.callbackUrl));
    await arrived;
    h.fake.approve(BOB);
    const { store, sessions, poller, snapshot } = h.exporter;
    const watchPolled = gate();
    // The real poller; the exchange is let go only once the watch has asked it for a poll.
    const watchedPoller = {
      poll() {
        const polled = poller.poll();
        h.fake.releaseHeld();
        void polled.then(watchPolled.open);
        return polled;
      },
      close: () => poller.close(),
    };
    const client = createMonzoClient({ apiUrl: h.fake.url, timeoutMs: 5_000 });
    const watch = createLoginWatch({
      store,
      sessions,
      client,
      poller: watchedPoller,
      snapshot,
      clock: h.clock,
      intervalMs: 1,
    });
    try {
      watch.start();
      await watchPolled.promise;
      assert.ok((await login).ok);
      await assertBalancesWithoutLogIn(h, [ALICE_CURRENT, BOB_CURRENT, JOINT], since);
    } finally {
      await watch.close();
    }
  });
});

Deno.test("a poll asked for while the stored login's identification is in flight waits and reads it under its user id", async () => {
  await withHarness({ prepare: originalTokensFile(20 * 60 * MINUTE) }, async (h) => {
    const arrived = gate();
    h.fake.fault({ path: "/ping/whoami", kind: "hold", times: 1, onHold: arrived.open });
    h.fake.resetRequests();
    const identified = h.exporter.sessions.identify("");
    await arrived.promise;
    const polled = h.exporter.poller.poll();
    h.fake.releaseHeld();
    assert.ok((await identified).ok);
    await polled;
    assert.equal(h.fake.count("/ping/whoami"), 1, "the poll asked whoami again instead of waiting for the answer");
    assert.deepEqual([...h.exporter.snapshot.state.users.keys()], [ALICE]);
    await assertBalancesWithoutLogIn(h, [ALICE_CURRENT, JOINT]);
  });
});

Deno.test("a login Monzo ends while a poll reads it is reported as ended, not as no login yet", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const arrived = gate();
    // The poll's first read of Alice's figures waits at Monzo while her login is ended elsewhere.
    h.fake.fault({ path: "/balance", kind: "hold", times: 1, onHold: arrived.open });
    h.clock.advance(MINUTE);
    const polled = h.exporter.poller.poll();
    await arrived.promise;
    h.fake.revokeRefresh(ALICE);
    // A renewal the login watch's probe would start after a 401: Monzo refuses it and the login ends.
    assert.equal((await h.exporter.sessions.fresh(ALICE, { force: true })).ok, false);
    h.fake.releaseHeld();
    await polled;
    const alice = h.exporter.snapshot.state.users.get(ALICE);
    assert.equal(alice?.status, "logged_out");
    assert.equal(alice.problem.code, "logged_out", alice.problem.message);
    assert.ok(!h.lines.some((line) => line.includes("No Monzo login yet")), h.lines.join("\n"));
  });
});

Deno.test("the poll a browser login starts waits for another login in flight and reads both", async () => {
  await withHarness({ serve: true, fake: { autoApprove: true } }, async (h) => {
    // Bob's code exchange is in flight when Alice comes back from Monzo to /callback.
    const arrived = holdTokenRequest(h.fake);
    const bobLogin = h.exporter.sessions.logIn(h.fake.issueCode(BOB, h.config.callbackUrl));
    await arrived;
    const authorize = await fetch(`${h.base}/authorize?key=${encodeURIComponent(AUTH_KEY)}`, { redirect: "manual" });
    await authorize.body?.cancel();
    const state = new URL(authorize.headers.get("location") ?? "").searchParams.get("state") ?? "";
    const code = h.fake.issueCode(ALICE, h.config.callbackUrl);
    const callback = await fetch(`${h.base}/callback?${new URLSearchParams({ code, state })}`);
    assert.equal(callback.status, 200, await callback.text());
    // The callback has asked for its poll by now; Bob's login lands only after.
    h.fake.releaseHeld();
    assert.ok((await bobLogin).ok);
    // The first poll to end is the one the callback started (the login watch waits seconds first).
    await waitFor("the poll the login started", () => h.exporter.snapshot.state.lastPoll !== null);
    assert.equal(h.exporter.snapshot.state.users.get(BOB)?.status, "ok", "the login's poll did not wait for Bob's");
    await assertBalancesWithoutLogIn(h, [ALICE_CURRENT, BOB_CURRENT, JOINT]);
  });
});
