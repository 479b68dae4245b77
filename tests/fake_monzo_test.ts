import { MONZO_VIEW } from "../lib/spending/classify.ts";
import assert from "node:assert/strict";
import type { Clock } from "../lib/shared/clock.ts";
import {
  type AwkwardKind,
  awkwardTransactions,
  benchData,
  type FakeData,
  type FakeMonzo,
  type FakeMonzoOptions,
  type FakeTransaction,
  type FaultSpec,
  householdData,
  startFakeMonzo,
} from "../lib/fake_monzo/mod.ts";
import { compareTransactions } from "../lib/fake_monzo/transaction.ts";
import { startDemo } from "../lib/run/demo.ts";
import { createExporter } from "../lib/run/exporter.ts";
import { memoryTokens } from "../lib/logins/token_file.ts";
import { FULL_HISTORY_MS } from "../lib/poll/transactions_step.ts";
import {
  ALICE,
  ALICE_CLOSED,
  ALICE_CURRENT,
  BOB,
  BOB_CURRENT,
  FLEX_LOAN,
  JOINT,
  MINUTE,
  sample,
  T0,
  TestClock,
} from "./helpers/harness.ts";
import { AWKWARD_INSTANTS } from "./helpers/dates.ts";
import { DEMO_HISTORY_DAYS, DEMO_MONTH_START_DAY } from "../lib/fake_monzo/mod.ts";
import { budgetMonth } from "../lib/spending/budget_month.ts";
import { budget } from "../lib/spending/rules.ts";
import { toStored, transactionSchema } from "../lib/monzo/transaction.ts";
import { waitFor as waitUntil } from "./helpers/e2e.ts";

const CLIENT_ID = "oauth2client_00009TestClient";
const CLIENT_SECRET = "mnzconf.test-secret";
const REDIRECT = "http://127.0.0.1:9999/callback";

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: unknown;
}

/** Runs `body` against a fresh fake, closing it whatever happens. */
async function withFake(
  body: (fake: FakeMonzo) => Promise<void>,
  options: Partial<FakeMonzoOptions> = {},
): Promise<void> {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, ...options });
  try {
    await body(fake);
  } finally {
    await fake.close();
  }
}

async function read(response: Response): Promise<Answer> {
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // HTML pages and malformed JSON keep only the text.
  }
  return { status: response.status, headers: response.headers, text, body };
}

function get(fake: FakeMonzo, path: string, token?: string, query: Record<string, string> = {}): Promise<Answer> {
  const url = new URL(fake.url + path);
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  return fetch(url, { headers }).then(read);
}

function postForm(url: string, form: Record<string, string>): Promise<Answer> {
  return fetch(url, { method: "POST", body: new URLSearchParams(form), redirect: "manual" }).then(read);
}

function exchange(fake: FakeMonzo, code: string, overrides: Record<string, string> = {}): Promise<Answer> {
  return postForm(`${fake.url}/oauth2/token`, {
    grant_type: "authorization_code",
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uri: REDIRECT,
    code,
    ...overrides,
  });
}

function refresh(fake: FakeMonzo, refreshToken: string): Promise<Answer> {
  return postForm(`${fake.url}/oauth2/token`, {
    grant_type: "refresh_token",
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    refresh_token: refreshToken,
  });
}

function field(value: unknown, ...path: (string | number)[]): unknown {
  let here = value;
  for (const key of path) {
    if (typeof here !== "object" || here === null) return undefined;
    here = (here as Record<string | number, unknown>)[key];
  }
  return here;
}

function str(value: unknown, ...path: (string | number)[]): string {
  const found = field(value, ...path);
  assert.equal(typeof found, "string", `expected a string at ${path.join(".")}`);
  return found as string;
}

function list(value: unknown, ...path: (string | number)[]): unknown[] {
  const found = field(value, ...path);
  assert.ok(Array.isArray(found), `expected an array at ${path.join(".")}`);
  return found;
}

async function logIn(fake: FakeMonzo, userId: string): Promise<{ access: string; refresh: string }> {
  const answer = await exchange(fake, fake.issueCode(userId, REDIRECT));
  assert.equal(answer.status, 200, answer.text);
  return { access: str(answer.body, "access_token"), refresh: str(answer.body, "refresh_token") };
}

async function waitFor(condition: () => boolean): Promise<void> {
  await waitUntil("the fake to be asked", condition, { timeoutMs: 2_000, intervalMs: 5 });
}

Deno.test("code exchange answers Monzo's token shape and a code works only once", async () => {
  await withFake(async (fake) => {
    const code = fake.issueCode(ALICE, REDIRECT);
    const first = await exchange(fake, code);
    assert.equal(first.status, 200);
    assert.deepEqual(Object.keys(first.body as object).sort(), [
      "access_token",
      "client_id",
      "expires_in",
      "refresh_token",
      "token_type",
      "user_id",
    ]);
    assert.equal(field(first.body, "token_type"), "Bearer");
    assert.equal(field(first.body, "user_id"), ALICE);
    assert.equal(field(first.body, "client_id"), CLIENT_ID);
    assert.equal(field(first.body, "expires_in"), 30 * 3600);
    assert.ok(str(first.body, "access_token").length >= 40);
    assert.deepEqual(fake.tokensOf(ALICE), {
      accessToken: str(first.body, "access_token"),
      refreshToken: str(first.body, "refresh_token"),
    });

    const again = await exchange(fake, code);
    assert.equal(again.status, 400);
    assert.equal(field(again.body, "error"), "invalid_grant");
    assert.equal(typeof field(again.body, "error_description"), "string");
  });
});

Deno.test("code exchange rejects a wrong secret, a wrong redirect URI and an unknown grant type", async () => {
  await withFake(async (fake) => {
    const badSecret = await exchange(fake, fake.issueCode(ALICE, REDIRECT), { client_secret: "nope" });
    assert.equal(badSecret.status, 401);
    assert.equal(field(badSecret.body, "error"), "invalid_client");

    const badRedirect = await exchange(fake, fake.issueCode(ALICE, REDIRECT), { redirect_uri: "http://evil/cb" });
    assert.equal(badRedirect.status, 400);
    assert.equal(field(badRedirect.body, "error"), "invalid_grant");

    const badGrant = await exchange(fake, "x", { grant_type: "password" });
    assert.equal(badGrant.status, 400);
    assert.equal(field(badGrant.body, "error"), "unsupported_grant_type");
  });
});

Deno.test("refresh rotates: the old pair stops working at once and approval carries over", async () => {
  await withFake(async (fake) => {
    const old = await logIn(fake, ALICE);
    fake.approve(ALICE);
    assert.equal((await get(fake, "/accounts", old.access)).status, 200);

    const rotated = await refresh(fake, old.refresh);
    assert.equal(rotated.status, 200);
    const access = str(rotated.body, "access_token");
    const refreshToken = str(rotated.body, "refresh_token");
    assert.notEqual(access, old.access);
    assert.notEqual(refreshToken, old.refresh);
    assert.deepEqual(fake.tokensOf(ALICE), { accessToken: access, refreshToken });

    const reused = await refresh(fake, old.refresh);
    assert.equal(reused.status, 401);
    assert.equal(field(reused.body, "error"), "invalid_grant");

    const oldAccess = await get(fake, "/accounts", old.access);
    assert.equal(oldAccess.status, 401);
    assert.match(str(oldAccess.body, "code"), /^unauthorized\.bad_access_token/);
    assert.equal(field(oldAccess.body, "error"), "invalid_token");

    assert.equal((await get(fake, "/accounts", access)).status, 200);
  });
});

Deno.test("a second login evicts the first access token and needs approval again", async () => {
  await withFake(async (fake) => {
    const first = await logIn(fake, ALICE);
    fake.approve(ALICE);
    const second = await logIn(fake, ALICE);

    const evicted = await get(fake, "/balance", first.access, { account_id: ALICE_CURRENT });
    assert.equal(evicted.status, 401);
    assert.equal(field(evicted.body, "code"), "unauthorized.bad_access_token.evicted");

    const fresh = await get(fake, "/balance", second.access, { account_id: ALICE_CURRENT });
    assert.equal(fresh.status, 403);
    assert.equal(field(fresh.body, "code"), "forbidden.insufficient_permissions");
    assert.equal(fake.tokensOf(ALICE)?.accessToken, second.access);
  });
});

Deno.test("approval gates data: 403 before, 200 after, 403 again when it lapses; whoami works throughout", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);

    const whoami = await get(fake, "/ping/whoami", access);
    assert.equal(whoami.status, 200);
    assert.deepEqual(whoami.body, { authenticated: true, client_id: CLIENT_ID, user_id: ALICE });

    const before = await get(fake, "/accounts", access);
    assert.equal(before.status, 403);
    assert.equal(field(before.body, "code"), "forbidden.insufficient_permissions");
    assert.equal(field(before.body, "message"), "Access forbidden due to insufficient permissions");
    assert.deepEqual(field(before.body, "retryable"), {});
    assert.equal(typeof field(before.body, "params"), "object");

    fake.approve(ALICE);
    assert.equal((await get(fake, "/accounts", access)).status, 200);

    fake.revokeApproval(ALICE);
    assert.equal((await get(fake, "/accounts", access)).status, 403);
    assert.equal((await get(fake, "/ping/whoami", access)).status, 200);
  });
});

Deno.test("autoApprove skips the app approval", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, BOB);
    assert.equal((await get(fake, "/accounts", access)).status, 200);
  }, { autoApprove: true });
});

Deno.test("missing, unknown, evicted and expired tokens answer 401 with Monzo's codes", async () => {
  let now = 1_700_000_000_000;
  const clock: Clock = { now: () => now };
  await withFake(async (fake) => {
    const none = await get(fake, "/accounts");
    assert.equal(none.status, 401);
    assert.equal(field(none.body, "code"), "unauthorized.bad_access_token");
    assert.equal(field(none.body, "error"), "invalid_token");
    assert.equal((await get(fake, "/accounts", "made-up")).status, 401);

    const a = await logIn(fake, ALICE);
    // Access tokens last the 30 h of the expires_in the fake sends.
    now += 30 * 3600 * 1000 - 1;
    assert.equal((await get(fake, "/ping/whoami", a.access)).status, 200);
    now += 1;
    const expired = await get(fake, "/ping/whoami", a.access);
    assert.equal(expired.status, 401);
    assert.equal(field(expired.body, "code"), "unauthorized.bad_access_token.expired");

    const b = await logIn(fake, ALICE);
    fake.expire(ALICE);
    assert.equal(
      field((await get(fake, "/ping/whoami", b.access)).body, "code"),
      "unauthorized.bad_access_token.expired",
    );
    // An expired token can still be refreshed.
    const c = await refresh(fake, b.refresh);
    assert.equal(c.status, 200);

    fake.evict(ALICE);
    const evicted = await get(fake, "/ping/whoami", str(c.body, "access_token"));
    assert.equal(field(evicted.body, "code"), "unauthorized.bad_access_token.evicted");
    // Eviction leaves the refresh token usable.
    const d = await refresh(fake, str(c.body, "refresh_token"));
    assert.equal(d.status, 200);

    fake.revokeRefresh(ALICE);
    const revoked = await refresh(fake, str(d.body, "refresh_token"));
    assert.equal(revoked.status, 401);
    assert.equal(field(revoked.body, "error"), "invalid_grant");
  }, { clock });
});

Deno.test("accounts: owners see their own and joint accounts with all the reference fields", async () => {
  await withFake(async (fake) => {
    const alice = await get(fake, "/accounts", (await logIn(fake, ALICE)).access);
    const bob = await get(fake, "/accounts", (await logIn(fake, BOB)).access);
    const ids = (answer: Answer) => list(answer.body, "accounts").map((a) => str(a, "id"));
    assert.equal(ids(alice).length, 5);
    assert.ok(ids(alice).includes(JOINT));
    assert.deepEqual(ids(bob).sort(), [BOB_CURRENT, JOINT].sort());

    const joint = list(alice.body, "accounts").find((a) => field(a, "id") === JOINT);
    for (
      const key of [
        "id",
        "description",
        "created",
        "closed",
        "type",
        "currency",
        "country_code",
        "owners",
        "account_number",
        "sort_code",
      ]
    ) {
      assert.ok(field(joint, key) !== undefined, `joint account lacks ${key}`);
    }
    assert.ok(Object.keys(joint as object).length > 10, "expected some undocumented extra field");
    assert.deepEqual(list(joint, "owners").map((o) => str(o, "user_id")), [ALICE, BOB]);
    assert.equal(str(joint, "owners", 0, "preferred_first_name"), "Alice");
    assert.equal(list(alice.body, "accounts").filter((a) => field(a, "closed") === true).length, 1);

    const filtered = await get(fake, "/accounts", fake.tokensOf(ALICE)!.accessToken, {
      account_type: "uk_retail_joint",
    });
    assert.deepEqual(ids(filtered), [JOINT]);
  }, { autoApprove: true });
});

Deno.test("balance: total_balance counts live pots, Bob is overdrawn, bad accounts answer 400/403", async () => {
  await withFake(async (fake) => {
    const alice = (await logIn(fake, ALICE)).access;
    const account = fake.data.accounts.find((a) => a.id === ALICE_CURRENT)!;
    const deleted = account.pots.find((p) => p.deleted);
    assert.ok(deleted, "household has a deleted pot");
    // A leftover balance in a deleted pot must not count, so make one.
    deleted.balance = 777;
    const balance = await get(fake, "/balance", alice, { account_id: ALICE_CURRENT });
    assert.equal(balance.status, 200);
    const live = account.pots.filter((p) => !p.deleted);
    const flexible = live.filter((p) => p.type === "flexible_savings");
    assert.equal(field(balance.body, "balance"), 123456);
    assert.equal(field(balance.body, "total_balance"), 123456 + live.reduce((t, p) => t + p.balance, 0));
    assert.equal(
      field(balance.body, "balance_including_flexible_savings"),
      123456 + flexible.reduce((t, p) => t + p.balance, 0),
    );
    assert.ok((field(balance.body, "spend_today") as number) < 0);
    assert.equal(field(balance.body, "currency"), "GBP");
    assert.equal(field(balance.body, "local_currency"), "");
    assert.equal(field(balance.body, "local_exchange_rate"), 1.1723);
    assert.ok(Array.isArray(field(balance.body, "local_spend")));

    // Tests may change the live data between polls.
    account.balance = 1;
    const changed = await get(fake, "/balance", alice, { account_id: ALICE_CURRENT });
    assert.equal(field(changed.body, "balance"), 1);

    const bob = (await logIn(fake, BOB)).access;
    const overdrawn = await get(fake, "/balance", bob, { account_id: BOB_CURRENT });
    assert.ok((field(overdrawn.body, "balance") as number) < 0);
    assert.ok((field(overdrawn.body, "spend_today") as number) < 0);

    const missing = await get(fake, "/balance", alice);
    assert.equal(missing.status, 400);
    assert.equal(field(missing.body, "code"), "bad_request.missing_param");
    assert.equal((await get(fake, "/balance", bob, { account_id: ALICE_CURRENT })).status, 403);
    assert.equal((await get(fake, "/balance", alice, { account_id: FLEX_LOAN })).status, 403);
  }, { autoApprove: true });
});

Deno.test("pots: deleted pots are returned, awkward names survive, goals are numbers, null or absent", async () => {
  await withFake(async (fake) => {
    const alice = (await logIn(fake, ALICE)).access;
    const answer = await get(fake, "/pots", alice, { current_account_id: ALICE_CURRENT });
    assert.equal(answer.status, 200);
    const pots = list(answer.body, "pots");
    assert.equal(pots.length, 5);
    assert.equal(pots.filter((p) => field(p, "deleted") === true).length, 1);
    const names = pots.map((p) => str(p, "name"));
    assert.ok(names.includes('Holiday "Lisbon" \\ 2027'));
    assert.ok(names.includes("Rainy\nday"));
    for (const pot of pots) {
      for (
        const key of [
          "id",
          "name",
          "style",
          "balance",
          "currency",
          "created",
          "updated",
          "deleted",
          "type",
          "current_account_id",
          "locked",
          "round_up",
          "isa_wrapper",
        ]
      ) {
        assert.ok(field(pot, key) !== undefined, `pot lacks ${key}`);
      }
      assert.equal(field(pot, "current_account_id"), ALICE_CURRENT);
    }
    const goals = pots.map((p) => field(p, "goal_amount"));
    assert.ok(goals.includes(500000));
    assert.ok(goals.includes(null));
    assert.ok(goals.includes(undefined));
    assert.ok(pots.some((p) => field(p, "type") === "flexible_savings"));

    const joint = await get(fake, "/pots", alice, { current_account_id: JOINT });
    assert.equal(list(joint.body, "pots").length, 1);
    assert.equal((await get(fake, "/pots", alice)).status, 400);
  }, { autoApprove: true });
});

Deno.test("fault status: default Monzo body, headers such as retry-after, and times", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);
    fake.fault({ path: "/balance", kind: "status", status: 429, headers: { "retry-after": "120" }, times: 2 });
    for (let i = 0; i < 2; i++) {
      const limited = await get(fake, "/balance", access, { account_id: ALICE_CURRENT });
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get("retry-after"), "120");
      assert.deepEqual(limited.body, { code: "too_many_requests", message: "Too many requests" });
    }
    assert.equal((await get(fake, "/balance", access, { account_id: ALICE_CURRENT })).status, 200);

    fake.fault({ path: "/pots", kind: "status", status: 500, accountId: JOINT });
    assert.equal((await get(fake, "/pots", access, { current_account_id: ALICE_CURRENT })).status, 200);
    const broken = await get(fake, "/pots", access, { current_account_id: JOINT });
    assert.equal(broken.status, 500);
    assert.equal(field(broken.body, "code"), "internal_service_error");

    fake.fault({ path: "/oauth2/token", kind: "status", status: 503, body: { custom: true } });
    const custom = await refresh(fake, fake.tokensOf(ALICE)!.refreshToken);
    assert.equal(custom.status, 503);
    assert.deepEqual(custom.body, { custom: true });
    fake.clearFaults();
    assert.equal((await refresh(fake, fake.tokensOf(ALICE)!.refreshToken)).status, 200);
  }, { autoApprove: true });
});

Deno.test("fault malformed_json and missing_fields answer 200 with unusable bodies", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);
    fake.fault({ path: "/accounts", kind: "malformed_json", times: 1 });
    const malformed = await get(fake, "/accounts", access);
    assert.equal(malformed.status, 200);
    assert.ok(malformed.text.length > 0);
    assert.throws(() => JSON.parse(malformed.text), SyntaxError);

    fake.fault({ path: "/balance", kind: "missing_fields", times: 1 });
    const balance = await get(fake, "/balance", access, { account_id: ALICE_CURRENT });
    assert.equal(balance.status, 200);
    assert.equal(field(balance.body, "balance"), undefined);
    assert.equal(typeof field(balance.body, "total_balance"), "number");

    fake.fault({ path: "/pots", kind: "missing_fields", times: 1 });
    const pots = await get(fake, "/pots", access, { current_account_id: ALICE_CURRENT });
    assert.ok(list(pots.body, "pots").length > 0);
    assert.ok(list(pots.body, "pots").every((p) => field(p, "id") === undefined && field(p, "name") !== undefined));

    fake.fault({ path: "/accounts", kind: "missing_fields", times: 1 });
    const accounts = await get(fake, "/accounts", access);
    assert.ok(list(accounts.body, "accounts").every((a) => field(a, "id") === undefined));

    assert.equal(field((await get(fake, "/accounts", access)).body, "accounts", 0, "id") !== undefined, true);
  }, { autoApprove: true });
});

Deno.test("fault hang answers only when clearFaults releases it", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);
    fake.fault({ path: "/balance", kind: "hang" });
    let settled = false;
    const pending = get(fake, "/balance", access, { account_id: ALICE_CURRENT }).finally(() => settled = true);
    await waitFor(() => fake.count("/balance") === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(settled, false);
    assert.equal(fake.requests.at(-1)?.status, 0);
    fake.clearFaults();
    const answer = await pending;
    assert.equal(answer.status, 504);
    assert.equal((await get(fake, "/balance", access, { account_id: ALICE_CURRENT })).status, 200);
  }, { autoApprove: true });
});

Deno.test("fault hold answers as usual, only once releaseHeld lets it go, and says when it arrived", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);
    let arrived = () => {};
    const held = new Promise<void>((resolve) => arrived = resolve);
    fake.fault({ path: "/balance", kind: "hold", times: 1, onHold: () => arrived() });
    let settled = false;
    const pending = get(fake, "/balance", access, { account_id: ALICE_CURRENT }).finally(() => settled = true);
    await held;
    // Another path is not held meanwhile.
    assert.equal((await get(fake, "/pots", access, { current_account_id: ALICE_CURRENT })).status, 200);
    assert.equal(settled, false, "a held request was answered before it was let go");
    assert.equal(fake.releaseHeld(), 1);
    const answer = await pending;
    assert.equal(answer.status, 200);
    assert.equal(field(answer.body, "balance"), fake.data.accounts.find((a) => a.id === ALICE_CURRENT)?.balance);
    // times: 1, so the next one is not held; with nothing held, releasing lets nothing go.
    assert.equal((await get(fake, "/balance", access, { account_id: ALICE_CURRENT })).status, 200);
    assert.equal(fake.releaseHeld(), 0);
  }, { autoApprove: true });
});

Deno.test("clearFaults and close let held requests go on to their usual answers", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  let arrived = () => {};
  const held = new Promise<void>((resolve) => arrived = resolve);
  fake.fault({ path: "/ping/whoami", kind: "hold", onHold: () => arrived() });
  const pending = fetch(`${fake.url}/ping/whoami`).then(read);
  await held;
  fake.clearFaults();
  // Without a token, whoami's usual answer is a 401: the request went on to the route.
  assert.equal((await pending).status, 401);
  fake.fault({ path: "/ping/whoami", kind: "hold" });
  const second = fetch(`${fake.url}/ping/whoami`).then(read, (error: unknown) => error);
  await waitFor(() => fake.count("/ping/whoami") === 2);
  await fake.close();
  const outcome = await second;
  if (!(outcome instanceof Error)) assert.equal((outcome as Answer).status, 401);
});

Deno.test("close releases hanging requests instead of waiting for them", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  fake.fault({ path: "/ping/whoami", kind: "hang" });
  const pending = fetch(`${fake.url}/ping/whoami`).then(read, (error: unknown) => error);
  await waitFor(() => fake.count("/ping/whoami") === 1);
  await fake.close();
  const outcome = await pending;
  // Either the released 504 arrives or the connection is closed: what matters is nothing hangs.
  if (!(outcome instanceof Error)) assert.equal((outcome as Answer).status, 504);
});

Deno.test("a hung request whose client gave up does not stop close", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  fake.fault({ path: "/accounts", kind: "hang" });
  const controller = new AbortController();
  const pending = fetch(`${fake.url}/accounts`, { signal: controller.signal });
  await waitFor(() => fake.count("/accounts") === 1);
  controller.abort();
  await assert.rejects(pending);
  await fake.close();
});

Deno.test("browser flow: login page, magic link, 302 back with code and the state unchanged", async () => {
  await withFake(async (fake) => {
    const state = `st<>&"'${crypto.randomUUID()}`;
    const query = new URLSearchParams({ client_id: CLIENT_ID, redirect_uri: REDIRECT, response_type: "code", state });
    const page = await fetch(`${fake.authUrl}/?${query}`).then(read);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(page.text, /Log in to Monzo \(simulated\)/);
    assert.match(page.text, /id="email"[^>]*value="alice@example\.com"/);
    assert.match(page.text, /id="submit"/);
    assert.ok(!page.text.includes(state), "state must be HTML-escaped");

    // Read the hidden fields back the way a browser would submit them.
    const form: Record<string, string> = {};
    const unescape = (s: string) =>
      s.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">")
        .replaceAll("&amp;", "&");
    for (const match of page.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
      form[match[1]] = unescape(match[2]);
    }
    assert.deepEqual(form, { client_id: CLIENT_ID, redirect_uri: REDIRECT, state });

    const unknown = await postForm(`${fake.authUrl}/login`, { ...form, email: "<mallory>@example.com" });
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /&lt;mallory&gt;@example\.com/);

    const sent = await postForm(`${fake.authUrl}/login`, { ...form, email: "bob@example.com" });
    assert.equal(sent.status, 200);
    assert.match(sent.text, /Check your email/);
    const href = /<a id="magic-link" href="([^"]+)"/.exec(sent.text)?.[1];
    assert.ok(href);

    const magicUrl = new URL(unescape(href), fake.url);
    const redirected = await fetch(magicUrl, { redirect: "manual" }).then(read);
    assert.equal(redirected.status, 302);
    const location = new URL(redirected.headers.get("location") ?? "");
    assert.equal(location.origin + location.pathname, REDIRECT);
    assert.equal(location.searchParams.get("state"), state);
    const code = location.searchParams.get("code") ?? "";

    const used = await fetch(magicUrl, { redirect: "manual" }).then(read);
    assert.equal(used.status, 400);

    const token = await exchange(fake, code);
    assert.equal(token.status, 200);
    assert.equal(field(token.body, "user_id"), BOB);

    const badClient = await fetch(`${fake.authUrl}/?${new URLSearchParams({ ...form, client_id: "<x>" })}`).then(read);
    assert.equal(badClient.status, 400);
    assert.match(badClient.text, /&lt;x&gt;/);
  });
});

Deno.test("requests are recorded in order, with users and statuses but never tokens", async () => {
  await withFake(async (fake) => {
    const { access, refresh: refreshToken } = await logIn(fake, ALICE);
    await get(fake, "/accounts", access);
    await get(fake, "/nope", access);
    const wrongMethod = await postForm(`${fake.url}/balance`, {});
    assert.equal(wrongMethod.status, 405);
    assert.equal(field((await get(fake, "/nope")).body, "code"), "not_found");

    assert.deepEqual(fake.requests.map((r) => [r.method, r.path, r.status, r.userId]), [
      ["POST", "/oauth2/token", 200, ALICE],
      ["GET", "/accounts", 403, ALICE],
      ["GET", "/nope", 404, null],
      ["POST", "/balance", 405, null],
      ["GET", "/nope", 404, null],
    ]);
    assert.equal(fake.count("/nope"), 2);
    const recorded = JSON.stringify(fake.requests);
    assert.ok(!recorded.includes(access) && !recorded.includes(refreshToken));
    fake.resetRequests();
    assert.equal(fake.requests.length, 0);
    assert.equal(fake.count("/nope"), 0);
  });
});

Deno.test("drift moves amounts by small whole-pence steps, deterministically", async () => {
  async function run(): Promise<number[]> {
    const seen: number[] = [];
    await withFake(async (fake) => {
      const { access } = await logIn(fake, ALICE);
      let previous = 123456;
      for (let i = 0; i < 20; i++) {
        const body = (await get(fake, "/balance", access, { account_id: ALICE_CURRENT })).body;
        const balance = field(body, "balance") as number;
        const spend = field(body, "spend_today") as number;
        assert.ok(Number.isInteger(balance) && Number.isInteger(spend));
        assert.ok(Math.abs(balance - previous) <= 500);
        assert.ok(spend <= 0);
        previous = balance;
        seen.push(balance);
      }
      const pots = list((await get(fake, "/pots", access, { current_account_id: ALICE_CURRENT })).body, "pots");
      assert.ok(pots.every((p) => Number.isInteger(field(p, "balance"))));
    }, { autoApprove: true, drift: true });
    return seen;
  }
  const first = await run();
  assert.ok(new Set(first).size > 1, "balance should move");
  assert.deepEqual(await run(), first);
});

Deno.test("benchData builds one user with the requested accounts and goal pots", async () => {
  const data = benchData(3, 4);
  assert.equal(data.users.length, 1);
  assert.equal(data.accounts.length, 3);
  assert.ok(data.accounts.every((a) => a.type === "uk_retail" && a.pots.length === 4));
  assert.ok(data.accounts.every((a) => a.pots.every((p) => p.goalAmount !== null)));
  assert.equal(new Set(data.accounts.flatMap((a) => a.pots.map((p) => p.id))).size, 12);
  await withFake(async (fake) => {
    const { access } = await logIn(fake, data.users[0].id);
    assert.equal(list((await get(fake, "/accounts", access)).body, "accounts").length, 3);
  }, { data, autoApprove: true });
});

Deno.test("fault status with text: a raw body in its own content type, e.g. a proxy's HTML page", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);
    const page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    fake.fault({ path: "/accounts", kind: "status", status: 502, text: page, contentType: "text/html", times: 1 });
    const proxied = await get(fake, "/accounts", access);
    assert.equal(proxied.status, 502);
    assert.equal(proxied.headers.get("content-type"), "text/html");
    assert.equal(proxied.text, page);

    fake.fault({ path: "/accounts", kind: "status", status: 503, text: "busy", headers: { "retry-after": "5" } });
    const plain = await get(fake, "/accounts", access);
    assert.equal(plain.status, 503);
    assert.equal(plain.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(plain.headers.get("retry-after"), "5");
    assert.equal(plain.text, "busy");

    assert.throws(() => fake.fault({ path: "/pots", kind: "status", body: {}, text: "both" }), /not both/);
  }, { autoApprove: true });
});

Deno.test("fault redirect: 307 by default, any redirect status, Location as given, no body", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);
    const elsewhere = "http://127.0.0.2:1/balance?account_id=x";
    fake.fault({ path: "/balance", kind: "redirect", location: elsewhere, times: 1 });
    const headers = { authorization: `Bearer ${access}` };
    const moved = await fetch(`${fake.url}/balance?account_id=${ALICE_CURRENT}`, { headers, redirect: "manual" })
      .then(read);
    assert.equal(moved.status, 307);
    assert.equal(moved.headers.get("location"), elsewhere);
    assert.equal(moved.text, "");
    assert.equal(fake.requests.at(-1)?.status, 307);

    for (const status of [301, 302, 303, 308] as const) {
      fake.fault({ path: "/pots", kind: "redirect", status, location: "/elsewhere", times: 1 });
      const answer = await fetch(`${fake.url}/pots`, { redirect: "manual" }).then(read);
      assert.equal(answer.status, status);
      assert.equal(answer.headers.get("location"), "/elsewhere");
    }
    assert.equal((await get(fake, "/balance", access, { account_id: ALICE_CURRENT })).status, 200);

    // A typed spec cannot say 300, but a computed one can.
    const notRedirect = { path: "/pots", kind: "redirect", status: 300, location: "/x" } as unknown as FaultSpec;
    assert.throws(() => fake.fault(notRedirect), /not a redirect/);
  }, { autoApprove: true });
});

/** Reads a body a chunk at a time, up to `limit` bytes, then cancels it. */
async function readUpTo(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let length = 0;
  while (length < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    length += value.length;
  }
  await reader.cancel();
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

Deno.test("fault huge_body: exactly `bytes` of JSON-looking body, without a length", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);
    const size = 3 * 1024 * 1024 + 7;
    fake.fault({ path: "/accounts", kind: "huge_body", bytes: size, times: 1 });
    const response = await fetch(`${fake.url}/accounts`, { headers: { authorization: `Bearer ${access}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(response.headers.get("content-length"), null);
    const bytes = await readUpTo(response.body!, Infinity);
    assert.equal(bytes.length, size);
    const parsed = JSON.parse(new TextDecoder().decode(bytes));
    assert.equal(typeof field(parsed, "padding"), "string");

    fake.fault({ path: "/accounts", kind: "huge_body", bytes: 5, times: 1 });
    assert.equal((await get(fake, "/accounts", access)).text, '{"pad');
    assert.equal(list((await get(fake, "/accounts", access)).body, "accounts").length, 5);
    assert.throws(() => fake.fault({ path: "/pots", kind: "huge_body", bytes: -1 }), /not a size/);
  }, { autoApprove: true });
});

Deno.test("fault huge_body: a terabyte body starts at once, and a client may stop reading it", async () => {
  await withFake(async (fake) => {
    // Far more than any machine could build in memory: only a stream can answer this.
    fake.fault({ path: "/balance", kind: "huge_body", bytes: 2 ** 40 });
    const response = await fetch(`${fake.url}/balance`);
    assert.equal(response.status, 200);
    const bytes = await readUpTo(response.body!, 1024 * 1024);
    assert.ok(bytes.length >= 1024 * 1024);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 14)), '{"padding":"xx');
    // The fake still answers other requests.
    assert.equal((await get(fake, "/ping/whoami")).status, 401);
  });
});

Deno.test("close cuts off a huge body whose client stopped reading", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  fake.fault({ path: "/pots", kind: "huge_body", bytes: 2 ** 40 });
  const response = await fetch(`${fake.url}/pots`);
  const reader = response.body!.getReader();
  assert.ok(!(await reader.read()).done);
  // The client reads nothing more, so the server's writes back up; close must not wait for them.
  await fake.close();
  await reader.cancel();
});

// ---- /transactions ----

const DAY = 24 * 60 * MINUTE;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The household with no transactions anywhere, for tests that add exactly the rows they need. */
function quietHousehold(now: number): FakeData {
  const data = householdData(now);
  for (const account of data.accounts) account.transactions = [];
  return data;
}

interface Ledger {
  fake: FakeMonzo;
  clock: TestClock;
  /** Alice's tokens from a code exchange at the clock's start. */
  alice: { access: string; refresh: string };
}

/** Runs `body` against an auto-approving fake on a test clock, over `data` made for the clock's start, with Alice logged in. */
async function withLedger(
  body: (ledger: Ledger) => Promise<void>,
  options: { data?: (now: number) => FakeData; fake?: Partial<FakeMonzoOptions> } = {},
): Promise<void> {
  const clock = new TestClock();
  const data = (options.data ?? householdData)(clock.now());
  await withFake(async (fake) => {
    const alice = await logIn(fake, ALICE);
    await body({ fake, clock, alice });
  }, { data, clock, autoApprove: true, ...options.fake });
}

function getTransactions(fake: FakeMonzo, token: string, query: Record<string, string | string[]>): Promise<Answer> {
  const url = new URL(`${fake.url}/transactions`);
  for (const [key, value] of Object.entries(query)) {
    for (const one of [value].flat()) url.searchParams.append(key, one);
  }
  return fetch(url, { headers: { authorization: `Bearer ${token}` } }).then(read);
}

/** The transaction ids of a 200 answer. */
function ids(answer: Answer): string[] {
  assert.equal(answer.status, 200, answer.text);
  return list(answer.body, "transactions").map((t) => str(t, "id"));
}

/** Adds `count` card payments to `accountId`, `stepMs` apart from `firstAt`; returns them oldest first. */
function addRows(fake: FakeMonzo, accountId: string, count: number, firstAt: number, stepMs: number) {
  return Array.from({ length: count }, (_, i) =>
    fake.addTransaction(accountId, {
      created: iso(firstAt + i * stepMs),
      amount: -(100 + i),
      description: `SHOP ${i}`,
      category: "groceries",
    }));
}

function assertCode(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.equal(field(answer.body, "code"), code);
  assert.equal(typeof field(answer.body, "message"), "string");
}

Deno.test("transactions: limit defaults to 30 and may be 1 to 100; over 100, 0, negative or not a whole number is a 400", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const rows = addRows(fake, ALICE_CURRENT, 150, clock.now() - 30 * DAY, 10 * MINUTE);
    const base = { account_id: ALICE_CURRENT, since: iso(clock.now() - 31 * DAY) };
    assert.deepEqual(ids(await getTransactions(fake, alice.access, base)), rows.slice(0, 30).map((r) => r.id));
    assert.deepEqual(
      ids(await getTransactions(fake, alice.access, { ...base, limit: "100" })),
      rows.slice(0, 100).map((r) => r.id),
    );
    assert.deepEqual(ids(await getTransactions(fake, alice.access, { ...base, limit: "1" })), [rows[0].id]);
    for (const limit of ["101", "1000", "0", "-1", "1.5", "abc", "", "1e2"]) {
      assertCode(await getTransactions(fake, alice.access, { ...base, limit }), 400, "bad_request.bad_param");
    }
  }, { data: quietHousehold });
});

Deno.test("transactions: oldest first by created time, a back-dated row in its place, same-instant rows by id", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const now = clock.now();
    const row = (created: number, id?: string) =>
      fake.addTransaction(ALICE_CURRENT, {
        id,
        created: iso(created),
        amount: -100,
        description: "X",
        category: "general",
      });
    const late = row(now - DAY);
    const early = row(now - 3 * DAY);
    const tieB = row(now - 2 * DAY, "tx_00009TieBbbbbbbbbbbbbbbb");
    const tieA = row(now - 2 * DAY, "tx_00009TieAaaaaaaaaaaaaaaa");
    assert.deepEqual(
      ids(await getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since: iso(now - 4 * DAY) })),
      [early.id, tieA.id, tieB.id, late.id],
    );
    // The same-instant pair is also a page boundary: since=<first of them> must still return the second.
    assert.deepEqual(
      ids(await getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since: tieA.id })),
      [tieB.id, late.id],
    );
  }, { data: quietHousehold });
});

Deno.test("transactions: since as an RFC 3339 time returns rows created strictly after it; bad or foreign since is a 400", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const [a, b, c] = addRows(fake, ALICE_CURRENT, 3, clock.now() - 3 * DAY, DAY);
    const [bobs] = addRows(fake, BOB_CURRENT, 1, clock.now() - DAY, 0);
    const since = (value: string) => getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since: value });
    assert.deepEqual(ids(await since(b.created)), [c.id]);
    assert.deepEqual(ids(await since(iso(Date.parse(b.created) - 1))), [b.id, c.id]);
    assert.deepEqual(ids(await since(iso(Date.parse(a.created) - DAY))), [a.id, b.id, c.id]);
    // The same instant as b, written with an offset.
    const offset = iso(Date.parse(b.created) + 3_600_000).replace("Z", "+01:00");
    assert.deepEqual(ids(await since(offset)), [c.id]);
    for (const bad of ["yesterday", "2026-02-28", "2026-02-28T10:00:00", "tx_00009NoSuchTransaction0", bobs.id]) {
      assertCode(await since(bad), 400, "bad_request.bad_param");
    }
  }, { data: quietHousehold });
});

Deno.test("transactions: since as a transaction id returns the rows after it, even once that row was removed", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const [, b, c, d] = addRows(fake, ALICE_CURRENT, 4, clock.now() - 4 * DAY, DAY);
    const since = (value: string) => getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since: value });
    assert.deepEqual(ids(await since(b.id)), [c.id, d.id]);
    assert.deepEqual(ids(await since(d.id)), []);
    const pending = fake.addTransaction(ALICE_CURRENT, {
      created: iso(Date.parse(c.created) + MINUTE),
      amount: -500,
      description: "HOLD",
      category: "general",
      settled: "",
    });
    assert.deepEqual(ids(await since(c.id)), [pending.id, d.id]);
    fake.reverseTransaction(pending.id, "removed");
    assert.deepEqual(ids(await since(c.id)), [d.id]);
    assert.deepEqual(ids(await since(pending.id)), [d.id]);
  }, { data: quietHousehold });
});

Deno.test("transactions: before returns rows created strictly before it; a bad before is a 400", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const [a, b, c] = addRows(fake, ALICE_CURRENT, 3, clock.now() - 3 * DAY, DAY);
    const query = (extra: Record<string, string>) =>
      getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since: iso(clock.now() - 10 * DAY), ...extra });
    assert.deepEqual(ids(await query({ before: c.created })), [a.id, b.id]);
    assert.deepEqual(ids(await query({ before: iso(Date.parse(c.created) + 1) })), [a.id, b.id, c.id]);
    assert.deepEqual(ids(await query({ since: a.created, before: c.created })), [b.id]);
    assert.deepEqual(ids(await query({ since: a.id, before: c.created })), [b.id]);
    assertCode(await query({ before: "tomorrow" }), 400, "bad_request.bad_param");
    assertCode(await query({ before: b.id }), 400, "bad_request.bad_param");
  }, { data: quietHousehold });
});

Deno.test("transactions: paging with since=<last id> and limit=100 returns every row once and ends on a short page", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const rows = addRows(fake, ALICE_CURRENT, 250, clock.now() - 60 * DAY, 3 * 60 * MINUTE);
    let since = iso(clock.now() - 61 * DAY);
    const pages: string[][] = [];
    for (;;) {
      const page = ids(await getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since, limit: "100" }));
      pages.push(page);
      if (page.length < 100) break;
      since = page[page.length - 1];
    }
    assert.deepEqual(pages.map((p) => p.length), [100, 100, 50]);
    assert.deepEqual(pages.flat(), rows.map((r) => r.id));
  }, { data: quietHousehold });

  // The same over the demo's generated history: the last 89 days of Alice's account.
  await withLedger(async ({ fake, clock, alice }) => {
    const start = clock.now() - 89 * DAY;
    const account = fake.data.accounts.find((a) => a.id === ALICE_CURRENT)!;
    const expected = account.transactions.filter((t) => Date.parse(t.created) > start).map((t) => t.id);
    assert.ok(expected.length > 100, `expected more than a page, got ${expected.length}`);
    let since = iso(start);
    const seen: unknown[] = [];
    for (let page = 0; page < 10; page++) {
      const answer = await getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since, limit: "100" });
      const rows = list(answer.body, "transactions");
      seen.push(...rows);
      if (rows.length < 100) break;
      since = str(rows[rows.length - 1], "id");
    }
    assert.deepEqual(seen.map((t) => str(t, "id")), expected);
    const times = seen.map((t) => Date.parse(str(t, "created")));
    assert.ok(times.every((t, i) => i === 0 || times[i - 1] <= t), "rows come oldest first");
  });
});

Deno.test("transactions: a since..before window wider than 90 days is a 400; without since there is no window", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const now = clock.now();
    const query = (extra: Record<string, string>) =>
      getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, ...extra });
    assertCode(await query({ since: iso(now - 91 * DAY) }), 400, "bad_request.time_range_too_large");
    assert.equal((await query({ since: iso(now - 89 * DAY) })).status, 200);
    assert.equal((await query({ since: iso(now - 180 * DAY), before: iso(now - 91 * DAY) })).status, 200);
    assert.equal((await query({ since: iso(now - 180 * DAY), before: iso(now - 90 * DAY) })).status, 200);
    assertCode(
      await query({ since: iso(now - 180 * DAY), before: iso(now - 90 * DAY + 1) }),
      400,
      "bad_request.time_range_too_large",
    );
    // A since id stands for its row's time: paging from a 100-day-old row needs a before.
    const account = fake.data.accounts.find((a) => a.id === ALICE_CURRENT)!;
    const old = account.transactions.find((t) => Date.parse(t.created) < now - 100 * DAY)!;
    assertCode(await query({ since: old.id }), 400, "bad_request.time_range_too_large");
    assert.equal((await query({ since: old.id, before: iso(Date.parse(old.created) + 89 * DAY) })).status, 200);
    // Monzo's own example asks with account_id alone: the oldest rows come back.
    const first = await query({});
    assert.deepEqual(ids(first), account.transactions.slice(0, 30).map((t) => t.id));
  });
});

Deno.test("transactions: full history is readable for 5 minutes after a code exchange, then older than 90 days is a 403", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const query = (extra: Record<string, string>) =>
      getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, ...extra });
    const old = () => ({ since: iso(clock.now() - 200 * DAY), before: iso(clock.now() - 120 * DAY) });
    clock.advance(5 * MINUTE - 1);
    assert.ok(ids(await query(old())).length > 0, "an old window has rows");
    assert.equal((await query({})).status, 200);

    clock.advance(1);
    assertCode(await query(old()), 403, "forbidden.verification_required");
    assertCode(await query({}), 403, "forbidden.verification_required");
    assertCode(
      await query({ since: iso(clock.now() - 90 * DAY - 1), before: iso(clock.now() - 80 * DAY) }),
      403,
      "forbidden.verification_required",
    );
    const account = fake.data.accounts.find((a) => a.id === ALICE_CURRENT)!;
    const oldRow = account.transactions.findLast((t) => Date.parse(t.created) < clock.now() - 95 * DAY)!;
    assertCode(
      await query({ since: oldRow.id, before: iso(clock.now() - 80 * DAY) }),
      403,
      "forbidden.verification_required",
    );
    assert.equal((await query({ since: iso(clock.now() - 90 * DAY) })).status, 200);
    assert.ok(ids(await query({ since: iso(clock.now() - 89 * DAY), limit: "100" })).length > 0);

    // An account younger than 90 days has nothing older, so asking without since stays allowed.
    account.created = iso(clock.now() - 30 * DAY);
    account.transactions = account.transactions.filter((t) => t.created >= account.created);
    assert.equal((await query({})).status, 200);
  });
});

Deno.test("transactions: a token refresh does not reopen the full-history window; a new login does", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const old = (token: string) =>
      getTransactions(fake, token, {
        account_id: ALICE_CURRENT,
        since: iso(clock.now() - 200 * DAY),
        before: iso(clock.now() - 120 * DAY),
      });
    clock.advance(4 * MINUTE);
    const first = await refresh(fake, alice.refresh);
    assert.equal(first.status, 200);
    assert.equal((await old(str(first.body, "access_token"))).status, 200);

    clock.advance(MINUTE);
    assertCode(await old(str(first.body, "access_token")), 403, "forbidden.verification_required");
    const second = await refresh(fake, str(first.body, "refresh_token"));
    assert.equal(second.status, 200);
    assertCode(await old(str(second.body, "access_token")), 403, "forbidden.verification_required");

    const again = await logIn(fake, ALICE);
    assert.equal((await old(again.access)).status, 200);
  });
});

Deno.test("transactions: fullHistoryMinutes sets the window; fullHistoryFrom approval starts it at approval", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const old = () =>
      getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, before: iso(clock.now() - 100 * DAY) });
    clock.advance(MINUTE - 1);
    assert.equal((await old()).status, 200);
    clock.advance(1);
    assertCode(await old(), 403, "forbidden.verification_required");
  }, { fake: { fullHistoryMinutes: 1 } });

  // By default the window runs from the code exchange, however late the user approves.
  await withLedger(async ({ fake, clock, alice }) => {
    const old = () =>
      getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, before: iso(clock.now() - 100 * DAY) });
    assertCode(await old(), 403, "forbidden.insufficient_permissions");
    clock.advance(4 * MINUTE);
    fake.approve(ALICE);
    assert.equal((await old()).status, 200);
    clock.advance(MINUTE);
    assertCode(await old(), 403, "forbidden.verification_required");
  }, { fake: { autoApprove: false } });

  await withLedger(async ({ fake, clock, alice }) => {
    const old = () =>
      getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, before: iso(clock.now() - 100 * DAY) });
    clock.advance(10 * MINUTE);
    fake.approve(ALICE);
    clock.advance(5 * MINUTE - 1);
    assert.equal((await old()).status, 200);
    clock.advance(1);
    assertCode(await old(), 403, "forbidden.verification_required");
    // Approving again after a lapse is not a new login.
    fake.revokeApproval(ALICE);
    fake.approve(ALICE);
    assertCode(await old(), 403, "forbidden.verification_required");
  }, { fake: { autoApprove: false, fullHistoryFrom: "approval" } });
});

Deno.test("transactions: the joint account is seen by both owners; another user's account, the flex loan and no account_id are refused", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const bob = await logIn(fake, BOB);
    const since = iso(clock.now() - 30 * DAY);
    const fromAlice = ids(await getTransactions(fake, alice.access, { account_id: JOINT, since }));
    assert.ok(fromAlice.length > 0);
    assert.deepEqual(ids(await getTransactions(fake, bob.access, { account_id: JOINT, since })), fromAlice);
    assertCode(
      await getTransactions(fake, bob.access, { account_id: ALICE_CURRENT, since }),
      403,
      "forbidden.insufficient_permissions",
    );
    assertCode(
      await getTransactions(fake, alice.access, { account_id: BOB_CURRENT, since }),
      403,
      "forbidden.insufficient_permissions",
    );
    assertCode(
      await getTransactions(fake, alice.access, { account_id: FLEX_LOAN, since }),
      403,
      "forbidden.insufficient_permissions",
    );
    assertCode(await getTransactions(fake, alice.access, { since }), 400, "bad_request.missing_param");
    assert.deepEqual(ids(await getTransactions(fake, alice.access, { account_id: ALICE_CLOSED })), []);
    const wrongMethod = await postForm(`${fake.url}/transactions?account_id=${JOINT}`, {});
    assert.equal(wrongMethod.status, 405);
  });
});

Deno.test("transactions: merchants are ids unless expand[]=merchant asks for the objects", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const query = { account_id: ALICE_CURRENT, since: iso(clock.now() - 30 * DAY), limit: "100" };
    const plain = list((await getTransactions(fake, alice.access, query)).body, "transactions");
    const other = list(
      (await getTransactions(fake, alice.access, { ...query, "expand[]": "account" })).body,
      "transactions",
    );
    const expanded = list(
      (await getTransactions(fake, alice.access, { ...query, "expand[]": ["account", "merchant"] })).body,
      "transactions",
    );
    assert.equal(expanded.length, plain.length);
    assert.deepEqual(other, plain);
    const cards = plain.filter((t) => field(t, "scheme") === "mastercard");
    assert.ok(cards.length > 10 && cards.length < plain.length, "both card and other rows");
    for (const [i, row] of plain.entries()) {
      const merchant = field(row, "merchant");
      const full = field(expanded[i], "merchant");
      if (merchant === null) {
        assert.equal(full, null);
        continue;
      }
      assert.match(merchant as string, /^merch_/);
      assert.equal(field(full, "id"), merchant);
      assert.equal(typeof field(full, "name"), "string");
      assert.equal(typeof field(full, "category"), "string");
      assert.equal(typeof field(full, "online"), "boolean");
      assert.equal(typeof field(full, "atm"), "boolean");
      assert.equal(typeof field(full, "logo"), "string");
    }
  });
});

Deno.test("transactions: added rows appear after the newest id; settling, reversing and re-categorising show in the next read", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const [first] = addRows(fake, ALICE_CURRENT, 1, clock.now() - DAY, 0);
    const read = async (id: string) => {
      const rows = list(
        (await getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since: iso(clock.now() - 10 * DAY) }))
          .body,
        "transactions",
      );
      return rows.find((t) => field(t, "id") === id);
    };
    const tip = fake.addTransaction(ALICE_CURRENT, {
      amount: -1850,
      description: "DISHOOM",
      category: "eating_out",
      categories: { eating_out: -1500, entertainment: -350 },
      settled: "",
    });
    assert.equal(tip.created, iso(clock.now()));
    assert.equal(tip.amount_is_pending, true);
    assert.deepEqual(ids(await getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since: first.id })), [
      tip.id,
    ]);

    clock.advance(DAY);
    fake.settleTransaction(tip.id, -2100);
    const settled = await read(tip.id);
    assert.equal(field(settled, "settled"), iso(clock.now()));
    assert.equal(field(settled, "updated"), iso(clock.now()));
    assert.equal(field(settled, "amount"), -2100);
    assert.equal(field(settled, "local_amount"), -2100);
    assert.equal(field(settled, "amount_is_pending"), false);
    assert.deepEqual(field(settled, "categories"), { eating_out: -1750, entertainment: -350 });
    assert.throws(() => fake.settleTransaction(tip.id), /not pending/);

    const hold = fake.addTransaction(ALICE_CURRENT, {
      amount: -20000,
      description: "HOTEL",
      category: "holidays",
      settled: "",
    });
    const released = fake.addTransaction(ALICE_CURRENT, {
      amount: -5000,
      description: "FUEL",
      category: "transport",
      settled: "",
    });
    fake.reverseTransaction(hold.id, "declined", "INSUFFICIENT_FUNDS");
    fake.reverseTransaction(released.id, "removed");
    assert.equal(field(await read(hold.id), "decline_reason"), "INSUFFICIENT_FUNDS");
    assert.equal(field(await read(hold.id), "amount_is_pending"), false);
    assert.equal(field(await read(hold.id), "settled"), "");
    assert.equal(await read(released.id), undefined);
    assert.equal(fake.transaction(released.id), null);
    assert.throws(() => fake.reverseTransaction(tip.id, "declined"), /not pending/);

    fake.recategoriseTransaction(first.id, "dog");
    assert.equal(field(await read(first.id), "category"), "dog");
    assert.deepEqual(field(await read(first.id), "categories"), { dog: first.amount });
    fake.recategoriseTransaction(tip.id, "bills", { bills: -2000, groceries: -100 });
    assert.deepEqual(field(await read(tip.id), "categories"), { bills: -2000, groceries: -100 });
    fake.recategoriseTransaction(tip.id, "general", null);
    assert.equal(field(await read(tip.id), "categories"), null);
    assert.throws(() => fake.recategoriseTransaction(tip.id, "bills", { bills: -1 }), /add up/);

    assert.throws(
      () => fake.addTransaction("acc_nope", { amount: 1, description: "x", category: "x" }),
      /unknown account/,
    );
    assert.throws(
      () => fake.addTransaction(ALICE_CURRENT, { id: tip.id, amount: 1, description: "x", category: "x" }),
      /already exists/,
    );
    assert.throws(
      () => fake.addTransaction(ALICE_CURRENT, { amount: -3, description: "x", category: "x", categories: { x: -2 } }),
      /add up/,
    );
  }, { data: quietHousehold });
});

Deno.test("transactions: the request log records since, before, limit and expand[], and refused reads with their status", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    fake.resetRequests();
    const query = {
      account_id: JOINT,
      since: iso(clock.now() - 10 * DAY),
      before: iso(clock.now()),
      limit: "100",
      "expand[]": "merchant",
    };
    await getTransactions(fake, alice.access, query);
    await getTransactions(fake, alice.access, { ...query, limit: "101" });
    assert.deepEqual(fake.requests.map((r) => [r.path, r.status, r.userId]), [
      ["/transactions", 200, ALICE],
      ["/transactions", 400, ALICE],
    ]);
    assert.deepEqual(fake.requests[0].query, query);
    assert.equal(fake.requests[1].query.limit, "101");
    assert.equal(fake.count("/transactions"), 2);
  });
});

Deno.test("transactions: faults apply to /transactions, missing_fields takes the rows' ids out", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    fake.fault({ path: "/transactions", kind: "missing_fields", times: 1 });
    const since = iso(clock.now() - 10 * DAY);
    const broken = await getTransactions(fake, alice.access, { account_id: JOINT, since });
    assert.equal(broken.status, 200);
    const rows = list(broken.body, "transactions");
    assert.ok(rows.length > 0 && rows.every((t) => field(t, "id") === undefined && field(t, "amount") !== undefined));
    assert.ok(ids(await getTransactions(fake, alice.access, { account_id: JOINT, since })).length > 0);
  });
});

const KINDS: readonly AwkwardKind[] = [
  "settled_debit",
  "pending_debit",
  "declined",
  "pot_out",
  "pot_in",
  "refund",
  "split",
  "fx",
  "salary",
  "transfer_in",
  "transfer_out",
  "custom_category",
  "no_include_in_spending",
  "top_up",
  "old_pending",
  "old_settled",
];

/** The issue's counting rules, applied to `rows`: a reference for the figures awkwardTransactions documents. */
function figures(rows: readonly FakeTransaction[], monthStart: number) {
  const counted = rows.filter((t) =>
    t.decline_reason === undefined && t.scheme !== "uk_retail_pot" && !t.metadata.pot_id
  );
  const settled = counted.filter((t) => t.settled !== "");
  const sum = (list: FakeTransaction[]) => list.reduce((total, t) => total + t.amount, 0);
  const spentTotal = -sum(settled.filter((t) => t.amount < 0 && t.include_in_spending !== false));
  const receivedTotal = sum(settled.filter((t) => t.amount > 0));
  const spending: Record<string, number> = {};
  const received: Record<string, number> = {};
  for (const t of counted.filter((t) => Date.parse(t.created) >= monthStart)) {
    const parts = t.categories ? Object.entries(t.categories) : [[t.category, t.amount] as const];
    for (const [category, part] of parts) {
      if (t.amount < 0 && t.include_in_spending !== false) spending[category] = (spending[category] ?? 0) - part;
      else if (t.amount > 0 && t.include_in_spending === true) spending[category] = (spending[category] ?? 0) - part;
      else if (t.amount > 0) received[category] = (received[category] ?? 0) + part;
    }
  }
  return { spentTotal, receivedTotal, spending, received };
}

Deno.test("awkwardTransactions: one row of each kind, oldest first, dated from now, with the figures its comment states", () => {
  const now = Date.parse("2026-03-02T09:00:00.000Z");
  const rows = awkwardTransactions(now);
  assert.deepEqual(rows.map((t) => t.notes).sort(), [...KINDS].sort());
  const times = rows.map((t) => Date.parse(t.created));
  assert.ok(times.every((t, i) => i === 0 || times[i - 1] < t), "oldest first");
  const byKind = (kind: AwkwardKind) => rows.find((t) => t.notes === kind)!;
  for (const t of rows.filter((t) => !t.notes.startsWith("old_"))) {
    const age = now - Date.parse(t.created);
    assert.ok(age > 0 && age <= 8 * 60 * MINUTE, `${t.notes} lies in the last 8 hours`);
  }
  assert.equal(now - Date.parse(byKind("old_pending").created), 20 * DAY);
  assert.equal(now - Date.parse(byKind("old_settled").created), 40 * DAY);

  assert.equal(byKind("pending_debit").settled, "");
  assert.equal(byKind("pending_debit").amount_is_pending, true);
  assert.equal(byKind("declined").decline_reason, "INSUFFICIENT_FUNDS");
  assert.equal(byKind("pot_out").metadata.pot_id, "pot_00009AliceEmergency0001");
  assert.deepEqual(byKind("split").categories, { groceries: -2000, bills: -5000 });
  assert.deepEqual([byKind("fx").local_amount, byKind("fx").local_currency], [-3000, "EUR"]);
  assert.equal(byKind("transfer_in").scheme, "payport_faster_pajments");
  assert.equal(byKind("custom_category").categories, null);
  assert.equal(byKind("top_up").is_load, true);
  for (const key of ["include_in_spending", "categories", "amount_is_pending"]) {
    assert.ok(!(key in byKind("no_include_in_spending")), `no_include_in_spending has no ${key}`);
  }

  const result = figures(rows, now - DAY);
  assert.equal(result.spentTotal, 18724);
  assert.equal(result.receivedTotal, 264500);
  assert.deepEqual(result.spending, {
    shopping: 2500,
    eating_out: 1850,
    groceries: 2000,
    bills: 5000,
    holidays: 2575,
    dog: 1299,
    transport: 850,
  });
  assert.deepEqual(result.received, { income: 250000, transfers: 3000, mondo: 10000 });

  const joint = awkwardTransactions(now, { accountId: JOINT, userId: BOB, potId: "pot_00009JointBills0000001" });
  assert.ok(joint.every((t) => t.account_id === JOINT && t.user_id === BOB));
  assert.equal(joint.find((t) => t.notes === "pot_in")!.metadata.pot_id, "pot_00009JointBills0000001");
  assert.equal(new Set([...rows, ...joint].map((t) => t.id)).size, rows.length * 2, "ids differ per account");
});

Deno.test("awkwardTransactions served: absent fields stay absent and the pending row settles for another amount", async () => {
  await withLedger(async ({ fake, clock, alice }) => {
    const account = fake.data.accounts.find((a) => a.id === ALICE_CURRENT)!;
    account.transactions = awkwardTransactions(clock.now());
    const rows = list(
      (await getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since: iso(clock.now() - 89 * DAY) }))
        .body,
      "transactions",
    );
    assert.equal(rows.length, KINDS.length);
    const byKind = (kind: string) => rows.find((t) => field(t, "notes") === kind) as Record<string, unknown>;
    assert.ok(!("include_in_spending" in byKind("no_include_in_spending")));
    assert.ok(!("categories" in byKind("no_include_in_spending")));
    assert.ok(!("decline_reason" in byKind("settled_debit")));
    assert.equal(byKind("custom_category").categories, null);
    const pending = str(byKind("pending_debit"), "id");
    fake.settleTransaction(pending, -2100);
    assert.deepEqual(fake.transaction(pending)?.categories, { eating_out: -2100 });
  }, { data: quietHousehold });
});

Deno.test("householdData: three years of history from the current accounts' opening, with every kind a backfill needs", () => {
  const now = Date.parse("2026-03-02T09:00:00.000Z");
  const data = householdData(now);
  assert.equal(JSON.stringify(householdData(now)), JSON.stringify(data), "the same now gives the same data");
  const all = data.accounts.flatMap((a) => a.transactions);
  assert.equal(new Set(all.map((t) => t.id)).size, all.length, "ids are unique");
  const firstDay = Math.floor(now / DAY) * DAY - DEMO_HISTORY_DAYS * DAY;
  assert.ok(DEMO_HISTORY_DAYS >= 3 * 365, "about three years");
  for (const account of data.accounts) {
    const rows = account.transactions;
    const opened = Date.parse(account.created);
    if ([ALICE_CURRENT, JOINT, BOB_CURRENT].includes(account.id)) {
      assert.ok(opened >= firstDay && opened < firstDay + DAY, `${account.id} opened on the history's first day`);
      assert.ok(Date.parse(rows[0].created) < opened + 7 * DAY, `${account.id}: history from its opening`);
    } else {
      assert.equal(rows.length, 0, account.id);
    }
    for (const [i, t] of rows.entries()) {
      const at = Date.parse(t.created);
      assert.ok(at >= opened && at <= now, `${t.id} lies between the opening and now`);
      assert.ok(i === 0 || Date.parse(rows[i - 1].created) <= at, "oldest first");
      assert.equal(t.account_id, account.id);
      assert.ok(account.owners.includes(t.user_id));
      if (t.categories) assert.equal(Object.values(t.categories).reduce((s, v) => s + v, 0), t.amount, t.id);
      if (t.metadata.pot_id) assert.ok(account.pots.some((p) => p.id === t.metadata.pot_id), t.id);
    }
  }
  const rowsOf = (id: string) => data.accounts.find((a) => a.id === id)!.transactions;
  const monthCategories = new Map<string, Set<string>>();
  for (const id of [ALICE_CURRENT, JOINT, BOB_CURRENT]) {
    const rows = rowsOf(id);
    assert.ok(rows.some((t) => t.scheme === "uk_retail_pot" && t.amount < 0), `${id}: pot moves`);
    assert.ok(rows.some((t) => t.amount > 0 && t.include_in_spending === true), `${id}: refunds`);
    assert.ok(rows.some((t) => !("include_in_spending" in t)), `${id}: old rows without include_in_spending`);
    // Every whole month between the opening and now: money in, and spending in several categories
    // whose mix is not the same from month to month.
    const months = new Map<string, FakeTransaction[]>();
    for (const t of rows) months.set(t.created.slice(0, 7), [...months.get(t.created.slice(0, 7)) ?? [], t]);
    const whole = [...months.keys()].slice(1, -1);
    assert.ok(whole.length >= 34, `${id}: ${whole.length} whole months`);
    const mixes = new Set<string>();
    for (const month of whole) {
      const inMonth = months.get(month)!.filter((t) => t.decline_reason === undefined);
      assert.ok(inMonth.some((t) => t.amount > 0 && t.include_in_spending !== true), `${id}: money in, ${month}`);
      const spent = new Map<string, number>();
      for (const t of inMonth) {
        if (t.amount < 0 && t.include_in_spending !== false && t.scheme !== "uk_retail_pot") {
          spent.set(t.category, (spent.get(t.category) ?? 0) - t.amount);
        }
      }
      assert.ok(spent.size >= 2, `${id}: spending in ${spent.size} categories in ${month}`);
      for (const category of spent.keys()) {
        monthCategories.set(month, monthCategories.get(month)?.add(category) ?? new Set([category]));
      }
      mixes.add(JSON.stringify([...spent].sort()));
    }
    assert.equal(mixes.size, whole.length, `${id}: every month's spending differs`);
  }
  for (const [month, spentIn] of monthCategories) {
    assert.ok(spentIn.size >= 6, `the household spent in ${spentIn.size} categories in ${month}`);
  }
  const salaryMonths = (id: string, from: string) =>
    new Set(rowsOf(id).filter((t) => t.description === from && t.amount > 0).map((t) => t.created.slice(0, 7)));
  const monthsSince = (id: string) => new Set(rowsOf(id).map((t) => t.created.slice(0, 7))).size;
  assert.ok(salaryMonths(ALICE_CURRENT, "ACME LTD").size >= monthsSince(ALICE_CURRENT) - 2, "Alice's salary monthly");
  assert.ok(salaryMonths(BOB_CURRENT, "GLOBEX PLC").size >= monthsSince(BOB_CURRENT) - 2, "Bob's salary monthly");
  const alice = rowsOf(ALICE_CURRENT);
  const categories = new Set(all.map((t) => t.category));
  for (
    const category of ["groceries", "eating_out", "transport", "bills", "shopping", "entertainment", "transfers", "dog"]
  ) {
    assert.ok(categories.has(category), category);
  }
  assert.ok(all.some((t) => t.decline_reason !== undefined), "declines");
  assert.ok(
    all.some((t) => t.settled === "" && t.decline_reason === undefined && now - Date.parse(t.created) < 2 * DAY),
    "pending at the end",
  );
  const euroYears = new Set(
    alice.filter((t) => t.local_currency === "EUR" && t.local_amount < 0 && t.amount < 0).map((t) =>
      Math.floor((now - Date.parse(t.created)) / (365 * DAY))
    ),
  );
  assert.deepEqual([...euroYears].sort(), [0, 1, 2], "card payments in euros every year");
  assert.ok(alice.some((t) => t.is_load), "top-ups");
  assert.ok(
    rowsOf(JOINT).some((t) => t.categories && Object.keys(t.categories).length > 1),
    "splits on the joint account",
  );
  assert.equal(new Set(rowsOf(JOINT).map((t) => t.user_id)).size, 2, "both owners pay from the joint account");
});

Deno.test("householdData: a shorter history is the three years' rows over its days, opened that many days back", () => {
  const now = Date.parse("2026-03-02T09:00:00.000Z");
  const long = householdData(now);
  const short = householdData(now, { historyDays: 40 });
  for (const account of short.accounts) {
    const longer = long.accounts.find((a) => a.id === account.id)!;
    if (account.transactions.length === 0) {
      assert.equal(account.created, longer.created, `${account.id} has no history, and its opening stays`);
      continue;
    }
    const opened = Date.parse(account.created);
    assert.ok(opened >= Math.floor(now / DAY) * DAY - 40 * DAY && opened < now - 39 * DAY, account.id);
    const longIds = new Set(longer.transactions.map((t) => JSON.stringify(t)));
    for (const t of account.transactions) assert.ok(longIds.has(JSON.stringify(t)), `${t.id} as in the demo's`);
    assert.ok(account.transactions.length < longer.transactions.length / 10, account.id);
  }
});

Deno.test("householdData: three years ending on 1 March 2028 and on UK clock-change days: valid times in the paging order, whole pence", () => {
  const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
  // The days from `from` to the day before `now` the UK clocks change (the last Sundays of March and October), and 29 February.
  const awkwardDays = (from: number, now: number) => {
    const days: string[] = [];
    for (let at = Math.floor(from / DAY) * DAY + DAY; at < Math.floor(now / DAY) * DAY; at += DAY) {
      const date = new Date(at);
      const lastSunday = date.getUTCDay() === 0 && new Date(at + 7 * DAY).getUTCMonth() !== date.getUTCMonth();
      if (
        (lastSunday && [2, 9].includes(date.getUTCMonth())) || (date.getUTCMonth() === 1 && date.getUTCDate() === 29)
      ) {
        days.push(date.toISOString().slice(0, 10));
      }
    }
    return days;
  };
  // Ending the day after 29 February, and on the days the clocks go forward and back.
  for (const end of ["2028-03-01T00:30:00Z", "2027-03-28T01:30:00Z", "2027-10-31T01:30:00Z"]) {
    const now = Date.parse(end);
    const data = householdData(now);
    // From a week after the opening (the joint account's first rows may take a few days) to the day before now.
    const covers = awkwardDays(Date.parse(data.accounts[0].created) + 7 * DAY, now);
    assert.ok(covers.length >= 5, `${end}: ${covers.join(", ")}`);
    const days = new Set<string>();
    for (const account of data.accounts) {
      const opened = Date.parse(account.created);
      const rows = account.transactions;
      for (const [i, t] of rows.entries()) {
        const where = `${end}: ${t.id}`;
        assert.match(t.created, RFC3339_MS, where);
        const at = Date.parse(t.created);
        assert.equal(new Date(at).toISOString(), t.created, `${where}: a real instant`);
        assert.ok(at >= opened && at <= now, where);
        if (t.settled !== "") {
          assert.match(t.settled, RFC3339_MS, where);
          assert.equal(new Date(Date.parse(t.settled)).toISOString(), t.settled, where);
          assert.ok(Date.parse(t.settled) >= at && Date.parse(t.settled) <= now, `${where}: settled after created`);
        }
        // The fake pages by `created`, then id: each row strictly after the one before.
        assert.ok(i === 0 || compareTransactions(rows[i - 1], t) < 0, `${where}: in paging order`);
        assert.ok(Number.isSafeInteger(t.amount) && t.amount !== 0, `${where}: whole pence`);
        assert.ok(Number.isSafeInteger(t.local_amount), where);
        for (const part of Object.values(t.categories ?? {})) assert.ok(Number.isSafeInteger(part), where);
        days.add(t.created.slice(0, 10));
      }
    }
    for (const day of covers) {
      // A clock change is a Sunday that may happen to have no rows; the history runs across it either way.
      for (const account of data.accounts.filter((a) => a.transactions.length > 0)) {
        assert.ok(account.transactions[0].created < day, `${end}: ${account.id} has history before ${day}`);
        assert.ok(account.transactions.at(-1)!.created > `${day}T24`, `${end}: ${account.id} has history after ${day}`);
      }
    }
    for (const day of covers.filter((day) => day.endsWith("-02-29"))) {
      assert.ok(days.has(day), `${end}: rows on ${day}`);
    }
  }
});

Deno.test("the demo: its login imports its three years of history whole, back to each account's opening, inside the 5 minutes", async () => {
  const clock = new TestClock();
  const demo = await startDemo({ hostname: "127.0.0.1", port: 0 }, { info() {}, warn() {} }, { clock });
  const lines: string[] = [];
  const made = await createExporter({
    config: demo.config,
    build: { version: "0.0.0-test", mode: "demo" },
    clock,
    sink: (line) => lines.push(line),
    persistence: memoryTokens(),
  });
  if (!made.ok) {
    await demo.close();
    throw new Error(made.error);
  }
  const exporter = made.value;
  try {
    await demo.logInEveryone(exporter.sessions);
    await exporter.poller.poll();
    const text = await (await exporter.handler(new Request("http://127.0.0.1/metrics"))).text();
    const withHistory = demo.fake.data.accounts.filter((account) => account.transactions.length > 0);
    assert.equal(withHistory.length, 3);
    for (const account of withHistory) {
      const oldest = Date.parse(account.transactions[0].created);
      assert.ok(
        oldest < T0 - 3 * 365 * DAY + 7 * DAY,
        `${account.id}: the demo's history starts ${account.transactions[0].created}`,
      );
      const stored = `monzo_transactions_stored{account_id="${account.id}"}`;
      // The demo's drift may add a card payment at this very instant: the next poll brings it.
      const before = account.transactions.filter((t) => Date.parse(t.created) < clock.now()).length;
      assert.equal(sample(text, stored), before, `${account.id}: every transaction stored`);
      const start = `monzo_transactions_history_start_timestamp_seconds{account_id="${account.id}"}`;
      assert.equal(sample(text, start), Date.parse(account.created) / 1000, `${account.id}: back to its opening`);
    }
    assert.ok(clock.now() < T0 + FULL_HISTORY_MS, "inside the 5 minutes after the login");
    assert.deepEqual(lines.filter((line) => / (WARN|ERROR) /.test(line)), []);
  } finally {
    await exporter.close();
    await demo.close();
  }
});

/** Money in and money out of `accountId` in the budget month up to `now`, as the exporter counts them. */
function monthFlow(data: FakeData, accountId: string, now: number): { inMinor: number; outMinor: number } {
  const rows = data.accounts.find((a) => a.id === accountId)!.transactions
    .map((t) => toStored(transactionSchema.parse(t), accountId));
  const counted = budget(rows, budgetMonth(now, DEMO_MONTH_START_DAY), MONZO_VIEW);
  return {
    inMinor: counted.reduce((sum, row) => sum + row.receivedMinor, 0),
    outMinor: counted.reduce((sum, row) => sum + row.spentMinor, 0),
  };
}

Deno.test("householdData: money in and money out in every budget month of the current accounts from its first minute", () => {
  const instants = [
    ...AWKWARD_INSTANTS.map((instant) => ({ name: instant.name, at: Date.parse(instant.utc) })),
    // The first minute of every budget month of a year, in summer time and out of it.
    ...Array.from({ length: 12 }, (_, month) => {
      const start = budgetMonth(Date.UTC(2027, month, 15), DEMO_MONTH_START_DAY).start;
      return {
        name: `a minute into the budget month of ${new Date(start + DAY).toISOString().slice(0, 7)}`,
        at: start + MINUTE,
      };
    }),
  ];
  for (const { name, at } of instants) {
    // Only the budget month matters here: a few weeks of history are enough, and quicker to make.
    const data = householdData(at, { historyDays: 40 });
    for (const id of [ALICE_CURRENT, JOINT, BOB_CURRENT]) {
      const flow = monthFlow(data, id, at);
      assert.ok(flow.inMinor > 0, `${id} has no money in at ${name}`);
      assert.ok(flow.outMinor > 0, `${id} has no money out at ${name}`);
    }
  }
});

Deno.test("benchData: transactions per account spread over three years, oldest first, ids unique", () => {
  const now = Date.parse("2026-03-02T09:00:00.000Z");
  const data = benchData(3, 2, { transactions: 3300, now });
  const all = data.accounts.flatMap((a) => a.transactions);
  assert.equal(all.length, 9900);
  assert.equal(new Set(all.map((t) => t.id)).size, 9900);
  for (const account of data.accounts) {
    const times = account.transactions.map((t) => Date.parse(t.created));
    assert.ok(times.every((t, i) => i === 0 || times[i - 1] < t), "oldest first");
    assert.ok(times[0] >= now - 3 * 365 * DAY && times[0] < now - 3 * 365 * DAY + 2 * DAY, "three years back");
    assert.ok(times[times.length - 1] < now);
    assert.ok(times[0] > Date.parse(account.created));
  }
  assert.ok(benchData(2, 1).accounts.every((a) => a.transactions.length === 0));
});

Deno.test("drift adds small pending card payments now and then, deterministically, and settles them later", async () => {
  async function run(): Promise<{ id: string; amount: number; settled: string }[]> {
    let seen: { id: string; amount: number; settled: string }[] = [];
    await withLedger(async ({ fake, clock, alice }) => {
      const since = iso(clock.now() - DAY);
      for (let i = 0; i < 40; i++) {
        clock.advance(6 * MINUTE);
        assert.deepEqual(ids(await getTransactions(fake, alice.access, { account_id: ALICE_CLOSED, since })), []);
        const rows = list(
          (await getTransactions(fake, alice.access, { account_id: ALICE_CURRENT, since, limit: "100" })).body,
          "transactions",
        );
        seen = rows.map((t) => ({
          id: str(t, "id"),
          amount: field(t, "amount") as number,
          settled: str(t, "settled"),
        }));
      }
      const account = fake.data.accounts.find((a) => a.id === ALICE_CURRENT)!;
      assert.equal(account.balance, 123456 + seen.reduce((total, t) => total + t.amount, 0));
      const latest = Date.parse(account.transactions[account.transactions.length - 1].created);
      for (const t of account.transactions) {
        const young = clock.now() - Date.parse(t.created) < 2 * 60 * MINUTE;
        assert.equal(t.settled === "", young, `${t.id} is pending exactly while younger than 2 hours`);
      }
      assert.ok(latest <= clock.now());
    }, { data: quietHousehold, fake: { drift: true } });
    return seen;
  }
  const first = await run();
  assert.ok(first.length >= 3, `expected a few new transactions, got ${first.length}`);
  assert.ok(first.every((t) => t.amount < 0 && t.amount >= -1500));
  assert.deepEqual(await run(), first);
});

Deno.test("faults same_page and endless_pages answer full pages for ever: the same ids, or ever-new ones", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);
    const page = async (since?: string) =>
      list(
        (await get(fake, "/transactions", access, {
          account_id: ALICE_CURRENT,
          limit: "100",
          ...(since ? { since } : {}),
        })).body,
        "transactions",
      ).map((tx) => str(tx, "id"));

    fake.fault({ path: "/transactions", kind: "same_page", accountId: ALICE_CURRENT });
    const first = await page();
    assert.equal(first.length, 100);
    assert.equal(new Set(first).size, 100);
    assert.deepEqual(await page(first[99]), first);
    fake.clearFaults();

    fake.fault({ path: "/transactions", kind: "endless_pages", accountId: ALICE_CURRENT });
    const seen = new Set<string>();
    let since: string | undefined;
    for (let i = 0; i < 5; i++) {
      const ids = await page(since);
      assert.equal(ids.length, 100);
      for (const id of ids) {
        assert.ok(!seen.has(id), `${id} given twice`);
        seen.add(id);
      }
      since = ids[99];
    }
    assert.throws(() => fake.fault({ path: "/balance", kind: "same_page" }), /only for \/transactions/);
  }, { autoApprove: true });
});

Deno.test("fault flaky fails a share of requests, the same ones for the same seed", async () => {
  const run = async (seed: number) => {
    const statuses: number[] = [];
    await withFake(async (fake) => {
      const { access } = await logIn(fake, ALICE);
      fake.fault({ path: "/balance", kind: "flaky", probability: 0.3, seed });
      for (let i = 0; i < 200; i++) {
        statuses.push((await get(fake, "/balance", access, { account_id: ALICE_CURRENT })).status);
      }
    }, { autoApprove: true });
    return statuses;
  };
  const first = await run(15);
  const failed = first.filter((status) => status === 500).length;
  assert.ok(failed > 30 && failed < 90, `${failed} of 200 failed`);
  assert.ok(first.every((status) => status === 200 || status === 500));
  assert.deepEqual(await run(15), first);
  assert.notDeepEqual(await run(16), first);
  await withFake((fake) => {
    assert.throws(() => fake.fault({ path: "/balance", kind: "flaky", probability: 2, seed: 1 }), /probability/);
    return Promise.resolve();
  });
});

Deno.test("fault edit_rows passes the normal rows through the test's edit", async () => {
  await withFake(async (fake) => {
    const { access } = await logIn(fake, ALICE);
    const normal = await get(fake, "/transactions", access, { account_id: ALICE_CURRENT, limit: "5" });
    const rows = list(normal.body, "transactions");
    assert.equal(rows.length, 5);
    fake.fault({
      path: "/transactions",
      kind: "edit_rows",
      times: 1,
      edit: (page) => [page[0], ...page, { ...page[1], amount: 2e12 }],
    });
    const edited = list(
      (await get(fake, "/transactions", access, { account_id: ALICE_CURRENT, limit: "5" })).body,
      "transactions",
    );
    assert.deepEqual(edited.map((tx) => str(tx, "id")), [0, 0, 1, 2, 3, 4, 1].map((i) => str(rows[i], "id")));
    assert.equal(field(edited[6], "amount"), 2e12);
    // Error answers are not edited, and the fault was used up.
    assert.equal((await get(fake, "/transactions", access, {})).status, 400);
    assert.deepEqual(
      list((await get(fake, "/transactions", access, { account_id: ALICE_CURRENT, limit: "5" })).body, "transactions"),
      rows,
    );
  }, { autoApprove: true });
});
