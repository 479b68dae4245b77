import { type Clock, systemClock } from "./clock.ts";
import { constantTimeEqual, randomToken } from "./secrets.ts";

// A simulated Monzo, served over real HTTP on loopback, used by the tests and by the demo mode.
// It follows shared/reference/monzo-api.md, including the undocumented fields and the error shapes,
// so that code which copes with it copes with the real thing.

/** A Monzo customer. */
export interface FakeUser {
  /** E.g. `user_00009AliceQx7Rk2Lm9WzT`. */
  id: string;
  name: string;
  /** Where the simulated magic link is "sent"; the login page asks for it. */
  email: string;
}

/** An account with its live balance and pots. */
export interface FakeAccount {
  /** E.g. `acc_00009AliceCurrent7Rk2Lm`. */
  id: string;
  /** E.g. `uk_retail`, `uk_retail_joint`, `uk_monzo_flex_backing_loan`. */
  type: string;
  description: string;
  closed: boolean;
  currency: string;
  /** User ids; a joint account has two. */
  owners: string[];
  /** RFC 3339 time. */
  created: string;
  /** Pence, negative when overdrawn. */
  balance: number;
  /** Pence since about 4 am, negative for spend. */
  spendToday: number;
  pots: FakePot[];
}

/** A pot belonging to an account. */
export interface FakePot {
  /** E.g. `pot_00009AliceRainyDay0001`. */
  id: string;
  name: string;
  /** Pence. */
  balance: number;
  /** Pence, or null for a pot without a goal. */
  goalAmount: number | null;
  /** Deleted pots are still listed by `/pots`. */
  deleted: boolean;
  /** `default`, `flexible_savings`, `fixed_savings` or `instant_access`. */
  type: string;
  currency: string;
}

/** Everything the fake knows about its customers. */
export interface FakeData {
  users: FakeUser[];
  accounts: FakeAccount[];
}

/** Options of {@link startFakeMonzo}. */
export interface FakeMonzoOptions {
  /** The only OAuth client the fake accepts. */
  clientId: string;
  clientSecret: string;
  /** Default {@link householdData}. */
  data?: FakeData;
  /** Used for token and code expiry; default the system clock. */
  clock?: Clock;
  /** Access token lifetime; default 30 h (Monzo has been seen giving 6 h to 48 h). */
  expiresInSeconds?: number;
  /** When false (the default), every new login answers 403 until {@link FakeMonzo.approve}, like SCA. */
  autoApprove?: boolean;
  /** Every `/balance` and `/pots` read moves the amounts a little, so a demo dashboard shows lines. */
  drift?: boolean;
  /** Seed of the drift's random walk; default a fixed value so runs repeat. */
  seed?: number;
  /** Default `127.0.0.1`. */
  hostname?: string;
  /** Default 0: any free port. */
  port?: number;
}

/** A misbehaviour to inject, checked before normal handling in the order added. */
export interface FaultSpec {
  /** The endpoint path, e.g. `/balance`, `/pots`, `/accounts`, `/oauth2/token`, `/ping/whoami`. */
  path: string;
  /** How many matching requests it affects; default until {@link FakeMonzo.clearFaults}. */
  times?: number;
  /** Only requests whose `account_id` or `current_account_id` is this. */
  accountId?: string;
  /** `hang` answers only when released; `malformed_json` and `missing_fields` answer 200. */
  kind: "status" | "hang" | "malformed_json" | "missing_fields";
  /** For kind `status`; default 500. */
  status?: number;
  /** JSON body for kind `status`; default a realistic Monzo error body for the status. */
  body?: unknown;
  /** Extra headers for kind `status`, e.g. `{"retry-after": "120"}`. */
  headers?: Record<string, string>;
}

/** One request the fake received; secrets in the query are redacted and tokens never appear. */
export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Whose token or login it was, when known. */
  userId: string | null;
  /** The status answered; 0 for a request that was hung by a fault. */
  status: number;
  /** Clock time of arrival, in milliseconds. */
  at: number;
}

/** A running fake Monzo. */
export interface FakeMonzo {
  /** API base, e.g. `http://127.0.0.1:PORT` (the exporter's `api_url`). */
  readonly url: string;
  /** `${url}/auth` (the exporter's `auth_url`). */
  readonly authUrl: string;
  /** Every request so far, in order of arrival. */
  readonly requests: readonly FakeRequest[];
  /** How many requests went to `path` so far. */
  count(path: string): number;
  /** Forgets the requests recorded so far. */
  resetRequests(): void;
  /** An authorization code as the browser flow would yield it, for tests that skip the browser. */
  issueCode(userId: string, redirectUri: string): string;
  /** The user approves the current token in the app. */
  approve(userId: string): void;
  /** The approval lapses: data calls answer 403 `forbidden.insufficient_permissions` again. */
  revokeApproval(userId: string): void;
  /** Another client logged in: the current access token answers 401 `…evicted`; the refresh token still works. */
  evict(userId: string): void;
  /** The current access token expires now (401 `unauthorized.bad_access_token.expired`). */
  expire(userId: string): void;
  /** The current refresh token stops working (401 `invalid_grant`). */
  revokeRefresh(userId: string): void;
  /** The token pair issued last to the user (possibly spoiled by the calls above), or null if none. */
  tokensOf(userId: string): { accessToken: string; refreshToken: string } | null;
  /** Adds a fault. */
  fault(spec: FaultSpec): void;
  /** Removes all faults and answers hanging requests with 504. */
  clearFaults(): void;
  /** The live data; tests may change balances and pots between polls. */
  data: FakeData;
  /** Answers hanging requests and stops the server. */
  close(): Promise<void>;
}

const ALICE = "user_00009AliceQx7Rk2Lm9WzT";
const BOB = "user_00009BobHj4Nc8Pq3VsYeKd";

/** The awkward household: a joint account, an overdraft, odd pot names, closed and flex accounts. */
export function householdData(): FakeData {
  const pot = (id: string, name: string, balance: number, goal: number | null, type = "default", deleted = false) => ({
    id,
    name,
    balance,
    goalAmount: goal,
    deleted,
    type,
    currency: "GBP",
  });
  return {
    users: [
      { id: ALICE, name: "Alice Example", email: "alice@example.com" },
      { id: BOB, name: "Bob Example", email: "bob@example.com" },
    ],
    accounts: [
      {
        id: "acc_00009AliceCurrent7Rk2Lm",
        type: "uk_retail",
        description: ALICE,
        closed: false,
        currency: "GBP",
        owners: [ALICE],
        created: "2019-03-11T09:12:45.123Z",
        balance: 123456,
        spendToday: -2345,
        pots: [
          pot("pot_00009AliceEmergency0001", "Emergency fund", 250000, 500000),
          pot("pot_00009AliceSavings000002", "Savings", 1000000, null, "flexible_savings"),
          pot("pot_00009AliceHoliday000003", 'Holiday "Lisbon" \\ 2027', 42050, 150000),
          pot("pot_00009AliceRainyDay00004", "Rainy\nday", 1500, null),
          pot("pot_00009AliceOldCar0000005", "Old car", 0, 300000, "default", true),
        ],
      },
      {
        id: "acc_00009JointHousehold4Tq8",
        type: "uk_retail_joint",
        description: `joint_${ALICE}_${BOB}`,
        closed: false,
        currency: "GBP",
        owners: [ALICE, BOB],
        created: "2020-07-01T18:30:00.000Z",
        balance: 56789,
        spendToday: -1200,
        pots: [pot("pot_00009JointBills0000001", "Bills", 30000, 60000)],
      },
      {
        id: "acc_00009AliceOldCurrentX2",
        type: "uk_retail",
        description: ALICE,
        closed: true,
        currency: "GBP",
        owners: [ALICE],
        created: "2017-01-20T10:00:00.000Z",
        balance: 0,
        spendToday: 0,
        pots: [],
      },
      {
        id: "acc_00009AliceFlex00009Hq3",
        type: "uk_monzo_flex",
        description: ALICE,
        closed: false,
        currency: "GBP",
        owners: [ALICE],
        created: "2022-02-14T12:00:00.000Z",
        balance: -15000,
        spendToday: 0,
        pots: [],
      },
      {
        id: "acc_00009AliceFlexLoan0Zp1",
        type: "uk_monzo_flex_backing_loan",
        description: ALICE,
        closed: false,
        currency: "GBP",
        owners: [ALICE],
        created: "2022-02-14T12:00:01.000Z",
        balance: 0,
        spendToday: 0,
        pots: [],
      },
      {
        id: "acc_00009BobCurrent000Wn5",
        type: "uk_retail",
        description: BOB,
        closed: false,
        currency: "GBP",
        owners: [BOB],
        created: "2018-11-05T08:45:10.500Z",
        balance: -4210,
        spendToday: -899,
        pots: [pot("pot_00009BobGigTickets0001", "Gig tickets", 12000, 20000)],
      },
    ],
  };
}

/** One user with `accounts` current accounts of `potsPerAccount` goal pots each, for load tests. */
export function benchData(accounts: number, potsPerAccount: number): FakeData {
  const userId = "user_00009BenchUser0000001";
  const pad = (n: number) => String(n).padStart(6, "0");
  return {
    users: [{ id: userId, name: "Bench User", email: "bench@example.com" }],
    accounts: Array.from({ length: accounts }, (_, a) => ({
      id: `acc_00009Bench${pad(a)}`,
      type: "uk_retail",
      description: userId,
      closed: false,
      currency: "GBP",
      owners: [userId],
      created: "2021-01-01T00:00:00.000Z",
      balance: 100000 + a * 137,
      spendToday: -(a % 50) * 10,
      pots: Array.from({ length: potsPerAccount }, (_, p) => ({
        id: `pot_00009Bench${pad(a)}x${pad(p)}`,
        name: `Pot ${p + 1} of account ${a + 1}`,
        balance: 1000 + p * 250,
        goalAmount: 50000 + p * 1000,
        deleted: false,
        type: "default",
        currency: "GBP",
      })),
    })),
  };
}

interface Grant {
  userId: string;
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
  approved: boolean;
  /** `revoked`: rotated by a refresh or logged out, so Monzo no longer knows it as anyone's current token. */
  access: "active" | "evicted" | "revoked";
  refresh: "valid" | "used" | "revoked";
  forcedExpiry: boolean;
}

interface IssuedCode {
  userId: string;
  redirectUri: string;
  expiresAt: number;
}

interface MagicLink {
  userId: string;
  clientId: string;
  redirectUri: string;
  state: string;
  expiresAt: number;
}

interface ActiveFault {
  spec: FaultSpec;
  remaining: number;
}

interface Recorded extends FakeRequest {
  status: number;
}

type Handler = (request: Request, url: URL, record: Recorded) => Response | Promise<Response>;

// Authorization codes and magic links are short-lived at Monzo too.
const CODE_LIFETIME_MS = 10 * 60_000;
// Query keys whose values are secrets (the magic link's token, a code someone put in a URL).
const SECRET_KEYS = /token|code|secret|password/i;

/** Starts a fake Monzo on loopback. */
export async function startFakeMonzo(options: FakeMonzoOptions): Promise<FakeMonzo> {
  const clock = options.clock ?? systemClock;
  const expiresIn = options.expiresInSeconds ?? 30 * 3600;
  const random = mulberry32(options.seed ?? 0x4d6f6e7a);
  let data = options.data ?? householdData();
  let requests: Recorded[] = [];
  let faults: ActiveFault[] = [];
  const hanging = new Set<() => void>();
  const codes = new Map<string, IssuedCode>();
  const magicLinks = new Map<string, MagicLink>();
  const byAccess = new Map<string, Grant>();
  const byRefresh = new Map<string, Grant>();
  const current = new Map<string, Grant>();

  function user(userId: string): FakeUser | undefined {
    return data.users.find((u) => u.id === userId);
  }

  function currentGrant(userId: string): Grant {
    const grant = current.get(userId);
    if (!grant) throw new Error(`fake Monzo: no token was issued to ${userId}`);
    return grant;
  }

  function issueCode(userId: string, redirectUri: string): string {
    if (!user(userId)) throw new Error(`fake Monzo: unknown user ${userId}`);
    const code = randomToken();
    codes.set(code, { userId, redirectUri, expiresAt: clock.now() + CODE_LIFETIME_MS });
    return code;
  }

  // One active access token per user per client: a new grant evicts the previous one.
  function issueGrant(userId: string, approved: boolean): Grant {
    const previous = current.get(userId);
    if (previous?.access === "active") previous.access = "evicted";
    const grant: Grant = {
      userId,
      accessToken: randomToken() + randomToken(),
      refreshToken: randomToken() + randomToken(),
      expiresAt: clock.now() + expiresIn * 1000,
      approved,
      access: "active",
      refresh: "valid",
      forcedExpiry: false,
    };
    byAccess.set(grant.accessToken, grant);
    byRefresh.set(grant.refreshToken, grant);
    current.set(userId, grant);
    return grant;
  }

  function releaseHanging(): void {
    for (const release of [...hanging]) release();
    hanging.clear();
  }

  // ---- OAuth browser flow ----

  function authPage(_request: Request, url: URL): Response {
    const q = url.searchParams;
    const clientId = q.get("client_id") ?? "";
    const redirectUri = q.get("redirect_uri") ?? "";
    if (clientId !== options.clientId) {
      return html(400, "Unknown client", `<p>The client <code>${escapeHtml(clientId)}</code> is not known.</p>`);
    }
    if (q.get("response_type") !== "code") {
      return html(400, "Bad request", `<p>Only <code>response_type=code</code> is supported.</p>`);
    }
    if (!isWebUrl(redirectUri)) {
      return html(400, "Bad request", `<p>The redirect URI <code>${escapeHtml(redirectUri)}</code> is not valid.</p>`);
    }
    const email = data.users[0]?.email ?? "";
    const hidden = hiddenInputs({ client_id: clientId, redirect_uri: redirectUri, state: q.get("state") ?? "" });
    return html(
      200,
      "Log in to Monzo (simulated)",
      `<p>This is a simulated Monzo. Enter the email of a fake customer to get a magic link.</p>
<form method="post" action="/auth/login">
  ${hidden}
  <label for="email">Email</label>
  <input id="email" name="email" type="email" value="${escapeHtml(email)}" required>
  <button id="submit" type="submit">Email me a magic link</button>
</form>`,
    );
  }

  async function login(request: Request, _url: URL, record: Recorded): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    const email = (form.get("email") ?? "").trim().toLowerCase();
    const clientId = form.get("client_id") ?? "";
    const redirectUri = form.get("redirect_uri") ?? "";
    if (clientId !== options.clientId || !isWebUrl(redirectUri)) {
      return html(400, "Bad request", "<p>The login form lost its client or redirect URI: start again.</p>");
    }
    const found = data.users.find((u) => u.email.toLowerCase() === email);
    if (!found) {
      return html(
        400,
        "Unknown email",
        `<p>No Monzo customer has the email <code>${
          escapeHtml(email)
        }</code>.</p><p><a href="javascript:history.back()">Back</a></p>`,
      );
    }
    record.userId = found.id;
    const token = randomToken();
    magicLinks.set(token, {
      userId: found.id,
      clientId,
      redirectUri,
      state: form.get("state") ?? "",
      expiresAt: clock.now() + CODE_LIFETIME_MS,
    });
    const link = `/auth/magic?${new URLSearchParams({ token })}`;
    return html(
      200,
      "Check your email",
      `<p>We sent a magic link to <strong>${escapeHtml(found.email)}</strong>.</p>
<p>Since this Monzo is simulated, here it is:</p>
<p><a id="magic-link" href="${escapeHtml(link)}">Log in as ${escapeHtml(found.name)}</a></p>`,
    );
  }

  function magic(_request: Request, url: URL, record: Recorded): Response {
    const token = url.searchParams.get("token") ?? "";
    const link = magicLinks.get(token);
    magicLinks.delete(token);
    if (!link || link.expiresAt <= clock.now()) {
      return html(400, "Link expired", "<p>This magic link has been used or has expired: log in again.</p>");
    }
    record.userId = link.userId;
    const target = new URL(link.redirectUri);
    target.searchParams.set("code", issueCode(link.userId, link.redirectUri));
    target.searchParams.set("state", link.state);
    return new Response(null, { status: 302, headers: { location: target.href } });
  }

  // ---- OAuth token endpoint ----

  async function token(request: Request, _url: URL, record: Recorded): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    const clientOk = await constantTimeEqual(form.get("client_id") ?? "", options.clientId) &&
      await constantTimeEqual(form.get("client_secret") ?? "", options.clientSecret);
    if (!clientOk) {
      return json(401, { error: "invalid_client", error_description: "Client authentication failed" });
    }
    const grantType = form.get("grant_type");
    if (grantType === "authorization_code") {
      const code = form.get("code") ?? "";
      const issued = codes.get(code);
      // Single use: a code is gone after the first attempt, right or wrong.
      codes.delete(code);
      if (!issued || issued.expiresAt <= clock.now()) {
        return json(400, invalidGrant("Authorization code is invalid, expired or already used"));
      }
      if (issued.redirectUri !== form.get("redirect_uri")) {
        return json(400, invalidGrant("redirect_uri does not match the one the code was issued for"));
      }
      record.userId = issued.userId;
      return json(200, tokenBody(issueGrant(issued.userId, options.autoApprove ?? false)));
    }
    if (grantType === "refresh_token") {
      const old = byRefresh.get(form.get("refresh_token") ?? "");
      if (!old || old.refresh !== "valid") {
        return json(401, invalidGrant("Could not refresh access token: the refresh token is not valid"));
      }
      record.userId = old.userId;
      // Rotation: the old pair dies at once; the app approval carries over to the new token.
      old.refresh = "used";
      old.access = "revoked";
      return json(200, tokenBody(issueGrant(old.userId, old.approved)));
    }
    return json(400, {
      error: "unsupported_grant_type",
      error_description: `grant_type ${JSON.stringify(grantType ?? "")} is not supported`,
    });
  }

  function tokenBody(grant: Grant): Record<string, unknown> {
    return {
      access_token: grant.accessToken,
      client_id: options.clientId,
      expires_in: expiresIn,
      refresh_token: grant.refreshToken,
      token_type: "Bearer",
      user_id: grant.userId,
    };
  }

  function logout(request: Request, _url: URL, record: Recorded): Response {
    const grant = byAccess.get(bearer(request) ?? "");
    if (!grant || grant.access !== "active") return json(401, badToken("unauthorized.bad_access_token"));
    record.userId = grant.userId;
    grant.access = "revoked";
    grant.refresh = "revoked";
    return json(200, {});
  }

  // ---- Data endpoints ----

  /** The user behind a usable token, or the error answer. */
  function authenticate(request: Request, record: Recorded, needsApproval: boolean): Grant | Response {
    const grant = byAccess.get(bearer(request) ?? "");
    if (!grant) return json(401, badToken("unauthorized.bad_access_token"));
    record.userId = grant.userId;
    if (grant.access === "revoked") return json(401, badToken("unauthorized.bad_access_token"));
    if (grant.access === "evicted") return json(401, badToken("unauthorized.bad_access_token.evicted"));
    if (grant.forcedExpiry || grant.expiresAt <= clock.now()) {
      return json(401, badToken("unauthorized.bad_access_token.expired"));
    }
    if (needsApproval && !grant.approved) return json(403, insufficientPermissions(grant.userId));
    return grant;
  }

  function whoami(request: Request, _url: URL, record: Recorded): Response {
    const grant = authenticate(request, record, false);
    if (grant instanceof Response) return grant;
    return json(200, { authenticated: true, client_id: options.clientId, user_id: grant.userId });
  }

  function accounts(request: Request, url: URL, record: Recorded): Response {
    const grant = authenticate(request, record, true);
    if (grant instanceof Response) return grant;
    return json(200, accountsBody(grant.userId, url.searchParams.get("account_type")));
  }

  function accountsBody(userId: string | null, accountType: string | null): { accounts: Record<string, unknown>[] } {
    const visible = data.accounts.filter((a) =>
      (userId === null || a.owners.includes(userId)) && (accountType === null || a.type === accountType)
    );
    return { accounts: visible.map(renderAccount) };
  }

  function renderAccount(account: FakeAccount): Record<string, unknown> {
    const body: Record<string, unknown> = {
      id: account.id,
      closed: account.closed,
      created: account.created,
      description: account.description,
      type: account.type,
      currency: account.currency,
      country_code: "GB",
      owners: account.owners.map((id) => {
        const name = user(id)?.name ?? id;
        return { user_id: id, preferred_name: name, preferred_first_name: name.split(" ")[0] };
      }),
      // Not documented; here so that clients must tolerate fields they do not know.
      legal_entity: "monzo_uk",
      payment_details: null,
    };
    // Flex accounts have no UK bank details.
    if (!account.type.startsWith("uk_monzo_flex")) {
      const digits = String(hash(account.id)).padStart(14, "0");
      body.account_number = digits.slice(0, 8);
      body.sort_code = "04" + digits.slice(8, 12);
      body.payment_details = {
        locale_uk: { account_number: body.account_number, sort_code: body.sort_code },
      };
    }
    return body;
  }

  /** The account `accountId` if the grant's user may see it, or the error answer. */
  function visibleAccount(url: URL, param: string, grant: Grant): FakeAccount | Response {
    const accountId = url.searchParams.get(param);
    if (!accountId) {
      return json(400, {
        code: "bad_request.missing_param",
        message: `Missing required parameter: ${param}`,
        params: { [param]: "" },
        retryable: {},
      });
    }
    const account = data.accounts.find((a) => a.id === accountId && a.owners.includes(grant.userId));
    return account ?? json(403, insufficientPermissions(grant.userId));
  }

  function balance(request: Request, url: URL, record: Recorded): Response {
    const grant = authenticate(request, record, true);
    if (grant instanceof Response) return grant;
    const account = visibleAccount(url, "account_id", grant);
    if (account instanceof Response) return account;
    if (account.type === "uk_monzo_flex_backing_loan") return json(403, insufficientPermissions(grant.userId));
    if (options.drift) driftBalance(account);
    return json(200, balanceBody(account));
  }

  function balanceBody(account: FakeAccount): Record<string, unknown> {
    const live = account.pots.filter((p) => !p.deleted);
    const flexible = live.filter((p) => p.type === "flexible_savings");
    return {
      balance: account.balance,
      total_balance: account.balance + sum(live.map((p) => p.balance)),
      balance_including_flexible_savings: account.balance + sum(flexible.map((p) => p.balance)),
      currency: account.currency,
      spend_today: account.spendToday,
      local_currency: "",
      local_exchange_rate: 1.1723,
      local_spend: account.spendToday === 0 ? [] : [{ spend_today: account.spendToday, currency: account.currency }],
    };
  }

  function pots(request: Request, url: URL, record: Recorded): Response {
    const grant = authenticate(request, record, true);
    if (grant instanceof Response) return grant;
    const account = visibleAccount(url, "current_account_id", grant);
    if (account instanceof Response) return account;
    if (options.drift) driftPots(account);
    return json(200, potsBody(account));
  }

  function potsBody(account: FakeAccount): { pots: Record<string, unknown>[] } {
    return { pots: account.pots.map((pot, index) => renderPot(account, pot, index)) };
  }

  function renderPot(account: FakeAccount, pot: FakePot, index: number): Record<string, unknown> {
    const styles = ["beach_ball", "piggy_bank", "yellow", "blue", "raspberry", "teal"];
    const body: Record<string, unknown> = {
      id: pot.id,
      name: pot.name,
      style: styles[index % styles.length],
      balance: pot.balance,
      currency: pot.currency,
      type: pot.type,
      product_id: pot.type === "default" ? "default" : `${pot.type}_product`,
      current_account_id: account.id,
      cover_image_url: `https://images.example.invalid/pots/${styles[index % styles.length]}.png`,
      round_up: false,
      round_up_multiplier: null,
      isa_wrapper: "",
      locked: pot.type === "fixed_savings",
      created: account.created,
      updated: "2025-11-02T07:15:00.000Z",
      deleted: pot.deleted,
      // Not documented; here so that clients must tolerate fields they do not know.
      available_for_bills: pot.type === "default",
      charity_id: "",
      has_virtual_cards: false,
    };
    // Monzo both omits goal_amount and sends null for pots without a goal.
    if (pot.goalAmount !== null) body.goal_amount = pot.goalAmount;
    else if (pot.type === "default") body.goal_amount = null;
    return body;
  }

  function driftBalance(account: FakeAccount): void {
    account.balance += Math.round((random() * 2 - 1) * 500);
    if (random() < 0.6) account.spendToday -= Math.floor(random() * 300);
    // Now and then a new day starts.
    if (random() < 0.02) account.spendToday = 0;
    account.spendToday = Math.min(0, account.spendToday);
  }

  function driftPots(account: FakeAccount): void {
    for (const pot of account.pots) {
      if (!pot.deleted) pot.balance = Math.max(0, pot.balance + Math.round((random() * 2 - 1) * 200));
    }
  }

  // ---- Faults ----

  function matchingFault(path: string, url: URL): FaultSpec | null {
    const accountId = url.searchParams.get("account_id") ?? url.searchParams.get("current_account_id");
    const index = faults.findIndex((f) =>
      f.spec.path === path && (f.spec.accountId === undefined || f.spec.accountId === accountId)
    );
    if (index < 0) return null;
    const found = faults[index];
    found.remaining -= 1;
    if (found.remaining <= 0) faults.splice(index, 1);
    return found.spec;
  }

  function faultAnswer(spec: FaultSpec, url: URL): Response | Promise<Response> {
    switch (spec.kind) {
      case "status": {
        const status = spec.status ?? 500;
        return json(status, spec.body ?? defaultErrorBody(status, url.pathname), spec.headers);
      }
      case "malformed_json": {
        const text = JSON.stringify(sampleBody(url));
        return new Response(text.slice(0, Math.max(1, Math.floor(text.length / 2))), {
          status: 200,
          headers: { "content-type": "application/json; charset=utf-8" },
        });
      }
      case "missing_fields":
        return json(200, withoutRequiredField(url.pathname, sampleBody(url)));
      case "hang":
        // Not tied to request.signal: Deno warns about its legacy abort-on-success, and a server
        // does not learn of a client giving up anyway. clearFaults() and close() answer these.
        return new Promise<Response>((resolve) => {
          const release = () => {
            hanging.delete(release);
            resolve(json(504, { code: "gateway_timeout", message: "The request was released by the test" }));
          };
          hanging.add(release);
        });
    }
  }

  /** A realistic success body for the path, regardless of tokens, to be broken by a fault. */
  function sampleBody(url: URL): unknown {
    const accountId = url.searchParams.get("account_id") ?? url.searchParams.get("current_account_id");
    const account = data.accounts.find((a) => a.id === accountId) ?? data.accounts[0];
    switch (url.pathname) {
      case "/accounts":
        return accountsBody(null, url.searchParams.get("account_type"));
      case "/balance":
        return account ? balanceBody(account) : {};
      case "/pots":
        return account ? potsBody(account) : { pots: [] };
      case "/ping/whoami":
        return { authenticated: true, client_id: options.clientId, user_id: data.users[0]?.id ?? "" };
      case "/oauth2/token":
        return {
          access_token: randomToken(),
          client_id: options.clientId,
          expires_in: expiresIn,
          refresh_token: randomToken(),
          token_type: "Bearer",
          user_id: data.users[0]?.id ?? "",
        };
      default:
        return {};
    }
  }

  // ---- Routing ----

  const routes: Record<string, Record<string, Handler>> = {
    "/auth": { GET: authPage },
    "/auth/": { GET: authPage },
    "/auth/login": { POST: login },
    "/auth/magic": { GET: magic },
    "/oauth2/token": { POST: token },
    "/oauth2/logout": { POST: logout },
    "/ping/whoami": { GET: whoami },
    "/accounts": { GET: accounts },
    "/balance": { GET: balance },
    "/pots": { GET: pots },
  };

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const query: Record<string, string> = {};
    for (const [key, value] of url.searchParams) query[key] = SECRET_KEYS.test(key) ? "[redacted]" : value;
    const record: Recorded = {
      method: request.method,
      path: url.pathname,
      query,
      userId: null,
      status: 0,
      at: clock.now(),
    };
    requests.push(record);
    const fault = matchingFault(url.pathname, url);
    if (fault) {
      if (fault.kind === "hang") {
        record.userId = byAccess.get(bearer(request) ?? "")?.userId ?? null;
        return faultAnswer(fault, url);
      }
      const response = await faultAnswer(fault, url);
      record.status = response.status;
      return response;
    }
    const route = routes[url.pathname];
    let response: Response;
    if (!route) {
      response = json(404, { code: "not_found", message: `No such endpoint: ${url.pathname}`, params: {} });
    } else if (!route[request.method]) {
      response = json(405, { code: "method_not_allowed", message: `Method ${request.method} not allowed` }, {
        allow: Object.keys(route).join(", "),
      });
    } else {
      response = await route[request.method](request, url, record);
    }
    record.status = response.status;
    return response;
  }

  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    onListen: (addr) => listening.resolve(addr),
  }, handle);
  const address = await listening.promise;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  const base = `http://${host}:${address.port}`;
  let closing: Promise<void> | null = null;

  return {
    url: base,
    authUrl: `${base}/auth`,
    get requests() {
      return requests;
    },
    count: (path) => requests.filter((r) => r.path === path).length,
    resetRequests() {
      requests = [];
    },
    issueCode,
    approve(userId) {
      currentGrant(userId).approved = true;
    },
    revokeApproval(userId) {
      currentGrant(userId).approved = false;
    },
    evict(userId) {
      const grant = currentGrant(userId);
      if (grant.access === "active") grant.access = "evicted";
    },
    expire(userId) {
      currentGrant(userId).forcedExpiry = true;
    },
    revokeRefresh(userId) {
      const grant = currentGrant(userId);
      if (grant.refresh === "valid") grant.refresh = "revoked";
    },
    tokensOf(userId) {
      const grant = current.get(userId);
      return grant ? { accessToken: grant.accessToken, refreshToken: grant.refreshToken } : null;
    },
    fault(spec) {
      faults.push({ spec, remaining: spec.times ?? Infinity });
    },
    clearFaults() {
      faults = [];
      releaseHanging();
    },
    get data() {
      return data;
    },
    set data(value: FakeData) {
      data = value;
    },
    close() {
      // Hanging answers go first: shutdown waits for every request in flight.
      closing ??= (async () => {
        faults = [];
        releaseHanging();
        await server.shutdown();
      })();
      return closing;
    },
  };
}

// ---- Helpers ----

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

function badToken(code: string): Record<string, unknown> {
  const messages: Record<string, string> = {
    "unauthorized.bad_access_token": "Access token is not valid",
    "unauthorized.bad_access_token.evicted": "Access token has been evicted by another token",
    "unauthorized.bad_access_token.expired": "Access token has expired",
  };
  return { code, message: messages[code] ?? "Unauthorized", error: "invalid_token" };
}

function insufficientPermissions(userId: string | null): Record<string, unknown> {
  return {
    code: "forbidden.insufficient_permissions",
    message: "Access forbidden due to insufficient permissions",
    params: userId ? { user_id: userId } : {},
    retryable: {},
  };
}

function invalidGrant(description: string): Record<string, unknown> {
  return { error: "invalid_grant", error_description: description };
}

/** The body Monzo would send with `status` on `path`. */
function defaultErrorBody(status: number, path: string): unknown {
  if (path === "/oauth2/token" && (status === 400 || status === 401)) {
    return invalidGrant("The refresh token or code is not valid");
  }
  switch (status) {
    case 400:
      return { code: "bad_request", message: "Bad request", params: {} };
    case 401:
      return badToken("unauthorized.bad_access_token");
    case 403:
      return insufficientPermissions(null);
    case 404:
      return { code: "not_found", message: "Not found" };
    case 405:
      return { code: "method_not_allowed", message: "Method not allowed" };
    case 429:
      return { code: "too_many_requests", message: "Too many requests" };
    case 500:
      return { code: "internal_service_error", message: "An internal error occurred, please try again later" };
    case 503:
      return { code: "service_unavailable", message: "The service is temporarily unavailable" };
    case 504:
      return { code: "gateway_timeout", message: "The upstream service did not answer in time" };
    default:
      return { code: "unknown_error", message: `HTTP ${status}` };
  }
}

/** The sample body with one field a client depends on taken out. */
function withoutRequiredField(path: string, body: unknown): unknown {
  if (!isRecord(body)) return {};
  const strip = (entry: unknown, field: string) => {
    if (!isRecord(entry)) return entry;
    const { [field]: _removed, ...rest } = entry;
    return rest;
  };
  switch (path) {
    case "/balance":
      return strip(body, "balance");
    case "/pots":
      return { ...body, pots: Array.isArray(body.pots) ? body.pots.map((p) => strip(p, "id")) : [] };
    case "/accounts":
      return { ...body, accounts: Array.isArray(body.accounts) ? body.accounts.map((a) => strip(a, "id")) : [] };
    case "/ping/whoami":
      return strip(body, "user_id");
    case "/oauth2/token":
      return strip(body, "access_token");
    default:
      return {};
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bearer(request: Request): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
  return match ? match[1] : null;
}

function isWebUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** A stable 32-bit hash (FNV-1a), for made-up account numbers. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A small seeded PRNG, so demo drift repeats from run to run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hiddenInputs(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join("\n  ");
}

function html(status: number, title: string, body: string): Response {
  const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; background: #14233c; color: #14233c; margin: 0; }
  main { max-width: 26rem; margin: 4rem auto; background: #fff; border-radius: 12px; padding: 2rem; }
  h1 { font-size: 1.4rem; margin-top: 0; }
  label { display: block; font-weight: 600; margin-bottom: .3rem; }
  input[type=email] { width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1rem; margin-bottom: 1rem; }
  button, a#magic-link { background: #ff4f40; color: #fff; border: 0; border-radius: 8px; padding: .7rem 1.2rem;
    font-size: 1rem; text-decoration: none; display: inline-block; cursor: pointer; }
  code { background: #eef; padding: 0 .2rem; }
  .note { color: #667; font-size: .85rem; }
</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
<p class="note">Simulated Monzo for testing and demos: no real bank is involved.</p>
</main>
</body>
</html>
`;
  return new Response(page, { status, headers: { "content-type": "text/html; charset=utf-8" } });
}

// The exporter's pages escape through hono/html; the fake's own pages keep this until they move to it too.
function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}
