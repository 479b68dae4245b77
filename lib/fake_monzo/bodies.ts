import type { FakeAccount, FakeData, FakePot } from "./data.ts";
import { ukBankDetails } from "./transaction.ts";

// The JSON Monzo answers, success and error alike, as shared/reference/monzo-api.md describes it.
// Undocumented fields are included on purpose, so that clients must tolerate fields they do not know.

/** A JSON answer with the content type Monzo sends. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** The token endpoint's success body. */
export function tokenBody(
  grant: { accessToken: string; refreshToken: string; userId: string },
  clientId: string,
  expiresIn: number,
): Record<string, unknown> {
  return {
    access_token: grant.accessToken,
    client_id: clientId,
    expires_in: expiresIn,
    refresh_token: grant.refreshToken,
    token_type: "Bearer",
    user_id: grant.userId,
  };
}

/** `/accounts` for `userId` (every account when null), optionally of one `account_type`. */
export function accountsBody(
  data: FakeData,
  userId: string | null,
  accountType: string | null,
): { accounts: Record<string, unknown>[] } {
  const visible = data.accounts.filter((a) =>
    (userId === null || a.owners.includes(userId)) && (accountType === null || a.type === accountType)
  );
  return { accounts: visible.map((account) => renderAccount(data, account)) };
}

function renderAccount(data: FakeData, account: FakeAccount): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: account.id,
    closed: account.closed,
    created: account.created,
    description: account.description,
    type: account.type,
    currency: account.currency,
    country_code: "GB",
    owners: account.owners.map((id) => {
      const name = data.users.find((u) => u.id === id)?.name ?? id;
      return { user_id: id, preferred_name: name, preferred_first_name: name.split(" ")[0] };
    }),
    legal_entity: "monzo_uk",
    payment_details: null,
  };
  // Flex accounts have no UK bank details.
  if (!account.type.startsWith("uk_monzo_flex")) {
    const details = ukBankDetails(account.id);
    body.account_number = details.account_number;
    body.sort_code = details.sort_code;
    body.payment_details = {
      locale_uk: { account_number: body.account_number, sort_code: body.sort_code },
    };
  }
  return body;
}

/** `/balance` of `account`: `total_balance` counts live pots only. */
export function balanceBody(account: FakeAccount): Record<string, unknown> {
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

/** `/pots` of `account`, deleted pots included as Monzo does. */
export function potsBody(account: FakeAccount): { pots: Record<string, unknown>[] } {
  return { pots: account.pots.map((pot, index) => renderPot(account, pot, index)) };
}

function renderPot(account: FakeAccount, pot: FakePot, index: number): Record<string, unknown> {
  const styles = ["beach_ball", "piggy_bank", "yellow", "blue", "raspberry", "teal"];
  const style = styles[index % styles.length];
  const body: Record<string, unknown> = {
    id: pot.id,
    name: pot.name,
    style,
    balance: pot.balance,
    currency: pot.currency,
    type: pot.type,
    product_id: pot.type === "default" ? "default" : `${pot.type}_product`,
    current_account_id: account.id,
    cover_image_url: `https://images.example.invalid/pots/${style}.png`,
    round_up: false,
    round_up_multiplier: null,
    isa_wrapper: "",
    locked: pot.type === "fixed_savings",
    created: account.created,
    updated: "2025-11-02T07:15:00.000Z",
    deleted: pot.deleted,
    available_for_bills: pot.type === "default",
    charity_id: "",
    has_virtual_cards: false,
  };
  // Monzo both omits goal_amount and sends null for pots without a goal.
  if (pot.goalAmount !== null) body.goal_amount = pot.goalAmount;
  else if (pot.type === "default") body.goal_amount = null;
  return body;
}

/** A 401 for an access token Monzo does not accept, with one of its `unauthorized.bad_access_token…` codes. */
export function badToken(code: string): Record<string, unknown> {
  const messages: Record<string, string> = {
    "unauthorized.bad_access_token": "Access token is not valid",
    "unauthorized.bad_access_token.evicted": "Access token has been evicted by another token",
    "unauthorized.bad_access_token.expired": "Access token has expired",
  };
  return { code, message: messages[code] ?? "Unauthorized", error: "invalid_token" };
}

/** The 403 of a token the user has not approved in the app, or of an account not theirs. */
export function insufficientPermissions(userId: string | null): Record<string, unknown> {
  return {
    code: "forbidden.insufficient_permissions",
    message: "Access forbidden due to insufficient permissions",
    params: userId ? { user_id: userId } : {},
    retryable: {},
  };
}

/** The OAuth error of a code or refresh token that does not work. */
export function invalidGrant(description: string): Record<string, unknown> {
  return { error: "invalid_grant", error_description: description };
}

/** The 400 of a data call without its required parameter. */
export function missingParam(param: string): Record<string, unknown> {
  return {
    code: "bad_request.missing_param",
    message: `Missing required parameter: ${param}`,
    params: { [param]: "" },
    retryable: {},
  };
}

// The codes of the three answers below are Monzo's where reported (`forbidden.verification_required`)
// and made up in Monzo's style where not: clients should go by the status.

/** The 400 of a query parameter Monzo cannot read, e.g. `limit=101`. */
export function badParam(param: string, value: string, message: string): Record<string, unknown> {
  return {
    code: "bad_request.bad_param",
    message: `Invalid ${param}: ${message}`,
    params: { [param]: value },
    retryable: {},
  };
}

/** The 400 of a `since`..`before` window wider than 90 days. */
export function timeRangeTooLarge(since: string, before: string | null): Record<string, unknown> {
  return {
    code: "bad_request.time_range_too_large",
    message: "The time range between since and before must not exceed 90 days",
    params: { since, before: before ?? "" },
    retryable: {},
  };
}

/** The 403 of a request reaching further back than 90 days once the full-history window has closed. */
export function verificationRequired(): Record<string, unknown> {
  return {
    code: "forbidden.verification_required",
    message: "Verification required to access transactions older than 90 days",
    params: {},
    retryable: {},
  };
}

/** The body Monzo would send with `status` on `path`. */
export function defaultErrorBody(status: number, path: string): unknown {
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

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
