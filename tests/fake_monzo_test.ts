import assert from "node:assert/strict";
import type { Clock } from "../lib/clock.ts";
import {
  benchData,
  type FakeMonzo,
  type FakeMonzoOptions,
  type FaultSpec,
  startFakeMonzo,
} from "../lib/fake_monzo/mod.ts";
import { ALICE, ALICE_CURRENT, BOB, BOB_CURRENT, FLEX_LOAN, JOINT } from "./helpers/harness.ts";

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
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(condition(), "condition not met in time");
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
