import type { z } from "zod/v3";
import { type Transaction, transactionSchema } from "./transaction.ts";
import { discardBody, readBounded } from "./bounded_body.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { cleanText } from "../shared/hostile_text.ts";
import type { DeclaredFamily } from "../shared/metric_family.ts";
import {
  type Account,
  accountsSchema,
  type Balance,
  balanceSchema,
  entryIdSchema,
  errorBodySchema,
  type Pot,
  potsSchema,
  type TokenResponse,
  tokenResponseSchema,
  transactionPageSchema,
  type Whoami,
  whoamiSchema,
} from "./monzo_schemas.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { errorMessage, thrownText } from "../shared/error_message.ts";
import { compareText } from "../shared/compare.ts";

// Everything Monzo sends is hostile until checked: the client never follows a redirect, reads at most
// `maxBodyBytes`, bounds numbers from headers, and cleans every piece of Monzo's text before it
// reaches `detail` (no control characters, bounded length, no secret of the request echoed back).

/** What was wrong with an answer that did arrive. */
type AnswerFault = "redirect" | "too_large" | "bad_encoding" | "malformed_json" | "unexpected_shape";

/** Why a call to Monzo did not give a usable answer. */
export interface MonzoFailure {
  /** `http`: Monzo answered with an error status; the others: no usable answer at all. */
  readonly kind: "http" | "timeout" | "network" | "invalid_response" | "aborted";
  /** The API path, e.g. `/balance`. */
  readonly endpoint: string;
  /** The HTTP status, when an answer arrived (a 3xx for a refused redirect). */
  readonly status?: number;
  /** Monzo's error code, e.g. `forbidden.insufficient_permissions` (cleaned, bounded). */
  readonly code?: string;
  /** The OAuth `error` field, e.g. `invalid_grant` (cleaned, bounded). */
  readonly oauthError?: string;
  /** One line for people: no control characters, bounded, never containing a token or the client secret. */
  readonly detail: string;
  /** Seconds to wait (0 to 1 day), from a 429's `Retry-After`. */
  readonly retryAfterSeconds?: number;
  /** What was wrong with the answer: set on `invalid_response`, and on `http` when the body was too large. */
  readonly reason?: AnswerFault;
}

/** Options of {@link createMonzoClient}. */
export interface MonzoClientOptions {
  /** Base URL of the API, e.g. `https://api.monzo.com`. */
  readonly apiUrl: string;
  /** How long one request may take, answer body included. */
  readonly timeoutMs: number;
  /** Told about every request made, with the status code or the failure kind. */
  readonly onRequest?: (endpoint: string, code: string) => void;
  /** Largest answer body read, in bytes; 4 MiB unless given. */
  readonly maxBodyBytes?: number;
  /** Time source for `Retry-After` dates; the system clock unless given. */
  readonly clock?: Clock;
}

/** One page of `GET /transactions`. */
export interface TransactionQuery {
  readonly accountId: string;
  readonly since?: string;
  readonly before?: string;
  readonly limit: number;
}

/** An entry of a transactions page that is not a usable transaction, left out of {@link TransactionPage.transactions}. */
export interface RejectedTransaction {
  /** Its id, when it has a usable one (bounded, no control characters). */
  readonly id: string | null;
  /** Recognises the entry when it comes again: its id, or a digest of the entry when it has no usable id. */
  readonly key: string;
  /** Which field is unusable and why, e.g. `amount is unusable (…)`; cleaned and bounded. */
  readonly reason: string;
}

/** One page of `GET /transactions`, each entry checked on its own. */
export interface TransactionPage {
  /** The usable transactions, in Monzo's order (oldest first). */
  readonly transactions: Transaction[];
  /** The entries left out. */
  readonly rejected: RejectedTransaction[];
  /** How many entries the page held, usable or not: a page shorter than `limit` is the last. */
  readonly size: number;
  /** The usable id of the page's last entry that has one, rejected or not: where the next page starts. */
  readonly lastId: string | null;
}

/** Typed access to the Monzo endpoints the exporter uses. */
export interface MonzoClient {
  /** `GET /ping/whoami`. */
  whoami(token: string, signal?: AbortSignal): Promise<Result<Whoami, MonzoFailure>>;
  /** `GET /accounts`. */
  accounts(token: string, signal?: AbortSignal): Promise<Result<Account[], MonzoFailure>>;
  /** `GET /balance?account_id=…`. */
  balance(token: string, accountId: string, signal?: AbortSignal): Promise<Result<Balance, MonzoFailure>>;
  /** `GET /pots?current_account_id=…`. */
  pots(token: string, accountId: string, signal?: AbortSignal): Promise<Result<Pot[], MonzoFailure>>;
  /**
   * `GET /transactions?account_id=…` for one page, oldest first: `since` is an RFC 3339 time or a
   * transaction id, `before` an RFC 3339 time, `limit` at most 100. An unusable entry is left out of
   * the page and listed in its `rejected`, rather than failing the page.
   */
  transactions(
    token: string,
    query: TransactionQuery,
    signal?: AbortSignal,
  ): Promise<Result<TransactionPage, MonzoFailure>>;
  /** `POST /oauth2/token` with a form. */
  token(form: Record<string, string>, signal?: AbortSignal): Promise<Result<TokenResponse, MonzoFailure>>;
}

/**
 * The biggest real answer is a page of 100 transactions, about 200 KB; 4 MiB leaves room for twenty
 * times that while keeping a hostile or broken answer from costing more than a few megabytes.
 */
const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** A `Retry-After` beyond a day is taken as a day: the poller caps its pause lower still. */
const MAX_RETRY_AFTER_S = 24 * 3600;
/** Longest piece of Monzo's text (a code, a message) kept in a failure. */
const TEXT_LIMIT = 200;
/** Shorter values are not masked: they would mangle ordinary words, and no real secret is that short. */
const MIN_SECRET_LENGTH = 8;
/** Form fields whose values must never appear in a failure. */
const SECRET_FIELDS = ["client_secret", "refresh_token", "code"];

interface Call {
  readonly method: "GET" | "POST";
  readonly endpoint: string;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly form?: Record<string, string>;
  /** Values of this request that must not come back in a failure, even if Monzo echoes them. */
  readonly secrets: readonly string[];
}

interface Answer {
  readonly url: URL;
  readonly status: number;
  readonly headers: Headers;
  /** The body, or "too_large" when it was refused unread; empty for a redirect. */
  readonly body: Uint8Array | "too_large";
}

type Failure = Omit<MonzoFailure, "endpoint">;

/** Creates a client for the API at `options.apiUrl`. */
export function createMonzoClient(options: MonzoClientOptions): MonzoClient {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const clock = options.clock ?? systemClock;

  async function call<S extends z.ZodTypeAny>(
    request: Call,
    schema: S,
    signal: AbortSignal | undefined,
  ): Promise<Result<z.output<S>, MonzoFailure>> {
    const { endpoint, method } = request;
    const tidy = (text: string) => cleanText(redact(text, request.secrets), TEXT_LIMIT);
    const fail = (failure: Failure) => err({ ...failure, endpoint, detail: redact(failure.detail, request.secrets) });
    const exchanged = await exchange(request, signal, tidy);
    if (!exchanged.ok) {
      options.onRequest?.(endpoint, exchanged.error.kind);
      return fail({ ...exchanged.error, detail: `${method} ${endpoint}: ${exchanged.error.detail}` });
    }
    const answer = exchanged.value;
    const { status } = answer;
    options.onRequest?.(endpoint, String(status));
    if (status >= 300 && status < 400) return fail(redirectFailure(request, answer));
    if (status < 200 || status >= 300) return fail(httpFailure(request, answer, clock.now(), tidy));
    const invalid = (reason: AnswerFault, detail: string): Result<never, MonzoFailure> =>
      fail({ kind: "invalid_response", status, reason, detail });
    if (answer.body === "too_large") {
      return invalid("too_large", `Monzo's ${endpoint} answer is larger than ${maxBodyBytes} bytes and was not read`);
    }
    const text = decodeUtf8(answer.body);
    if (text === undefined) return invalid("bad_encoding", `Monzo sent invalid UTF-8 for ${endpoint}`);
    const body = parseJson(text);
    if (!body.ok) return invalid("malformed_json", `Monzo sent malformed JSON for ${endpoint}`);
    const parsed = schema.safeParse(body.value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      // Paths can hold keys Monzo chose (records, unions), and zod quotes received values in messages.
      const field = tidy(issue.path.join(".")) || "(body)";
      return invalid(
        "unexpected_shape",
        `Monzo's ${endpoint} answer has an unusable field ${field}: ${tidy(issue.message)}`,
      );
    }
    return ok(parsed.data);
  }

  /** Sends one request and reads its answer, all under one deadline; never throws. */
  async function exchange(
    request: Call,
    outer: AbortSignal | undefined,
    tidy: (text: string) => string,
  ): Promise<Result<Answer, Failure>> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.timeoutMs);
    const onOuterAbort = () => controller.abort();
    // A signal that is already aborted never fires its event again.
    if (outer?.aborted) controller.abort();
    outer?.addEventListener("abort", onOuterAbort, { once: true });
    const transportFailure = (error: unknown): Result<never, Failure> => {
      if (timedOut) {
        return err({ kind: "timeout", detail: `Monzo did not answer within ${options.timeoutMs / 1000} s` });
      }
      if (outer?.aborted) return err({ kind: "aborted", detail: "cancelled because the exporter is stopping" });
      const reason = thrownText(error);
      return err({ kind: "network", detail: `cannot reach Monzo (${tidy(reason)})` });
    };
    try {
      const url = new URL(options.apiUrl + request.endpoint);
      for (const [key, value] of Object.entries(request.query ?? {})) url.searchParams.set(key, value);
      const response = await fetch(url, {
        method: request.method,
        headers: request.headers,
        body: request.form ? new URLSearchParams(request.form) : undefined,
        // A redirect would carry the form (client secret, refresh token) or the bearer token elsewhere.
        redirect: "manual",
        signal: controller.signal,
      });
      const { status, headers } = response;
      if (status >= 300 && status < 400) {
        await discardBody(response);
        return ok({ url, status, headers, body: new Uint8Array(0) });
      }
      const body = await readBounded(response, maxBodyBytes);
      if (body.ok) return ok({ url, status, headers, body: body.value });
      if (body.error.reason === "too_large") return ok({ url, status, headers, body: "too_large" });
      return transportFailure(body.error.error);
    } catch (error) {
      // fetch throws for an invalid URL or header value, a refused connection, an abort.
      return transportFailure(error);
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onOuterAbort);
    }
  }

  const bearer = (token: string): Pick<Call, "headers" | "secrets"> => ({
    headers: { authorization: `Bearer ${token}` },
    secrets: [token],
  });
  return {
    whoami: (token, signal) =>
      call({ method: "GET", endpoint: "/ping/whoami", ...bearer(token) }, whoamiSchema, signal),
    accounts: async (token, signal) => {
      const answer = await call({ method: "GET", endpoint: "/accounts", ...bearer(token) }, accountsSchema, signal);
      return answer.ok ? ok(answer.value.accounts) : answer;
    },
    balance: (token, accountId, signal) =>
      call(
        { method: "GET", endpoint: "/balance", query: { account_id: accountId }, ...bearer(token) },
        balanceSchema,
        signal,
      ),
    pots: async (token, accountId, signal) => {
      const answer = await call(
        { method: "GET", endpoint: "/pots", query: { current_account_id: accountId }, ...bearer(token) },
        potsSchema,
        signal,
      );
      return answer.ok ? ok(answer.value.pots) : answer;
    },
    transactions: async (token, query, signal) => {
      // The merchant expanded gives its name, which rules match on (issue 18); unexpanded it is an id.
      const params: Record<string, string> = {
        account_id: query.accountId,
        limit: String(query.limit),
        "expand[]": "merchant",
      };
      if (query.since !== undefined) params.since = query.since;
      if (query.before !== undefined) params.before = query.before;
      const answer = await call(
        { method: "GET", endpoint: "/transactions", query: params, ...bearer(token) },
        transactionPageSchema,
        signal,
      );
      return answer.ok ? ok(checkEntries(answer.value.transactions)) : answer;
    },
    token: (form, signal) =>
      call(
        {
          method: "POST",
          endpoint: "/oauth2/token",
          form,
          // Echoed back raw or as sent (form-encoded): both spellings are masked.
          secrets: SECRET_FIELDS.flatMap((field) =>
            form[field] === undefined ? [] : [form[field], new URLSearchParams({ v: form[field] }).toString().slice(2)]
          ),
        },
        tokenResponseSchema,
        signal,
      ),
  };
}

/**
 * Checks each entry of a transactions page on its own: one bad amount or impossible date leaves that
 * transaction out, not the page (and so not the account's whole history).
 */
function checkEntries(entries: readonly unknown[]): TransactionPage {
  const transactions: Transaction[] = [];
  const rejected: RejectedTransaction[] = [];
  let lastId: string | null = null;
  for (const entry of entries) {
    const idOf = entryIdSchema.safeParse(entry);
    const id = idOf.success ? idOf.data.id : null;
    if (id !== null) lastId = id;
    const parsed = transactionSchema.safeParse(entry);
    if (parsed.success) {
      transactions.push(parsed.data);
      continue;
    }
    const issue = parsed.error.issues[0];
    // Paths can hold keys Monzo chose, and zod quotes received values in messages.
    const field = cleanText(issue.path.join("."), TEXT_LIMIT) || "(entry)";
    rejected.push({
      id,
      key: id ?? `#${digest(entry)}`,
      reason: `${field} is unusable (${cleanText(issue.message, TEXT_LIMIT)})`,
    });
  }
  return { transactions, rejected, size: entries.length, lastId };
}

/** Longest part of an entry without a usable id that {@link digest} reads. */
const DIGEST_CHARS = 4096;

/** A short stable digest (FNV-1a) of an entry's JSON, to recognise an entry without a usable id when it comes again. */
function digest(entry: unknown): string {
  const text = (JSON.stringify(entry) ?? String(entry)).slice(0, DIGEST_CHARS);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** A refused redirect: the detail names the target's origin only, since its path or query may hold anything. */
function redirectFailure(request: Call, answer: Answer): Failure {
  const location = answer.headers.get("location");
  const target = location === null ? null : URL.parse(location, answer.url);
  const where = location === null
    ? "without a location"
    : target === null || target.origin === "null"
    ? "to an unreadable address"
    : `to ${cleanText(target.origin, TEXT_LIMIT)}`;
  return {
    kind: "invalid_response",
    status: answer.status,
    reason: "redirect",
    detail: `Monzo answered ${request.method} ${request.endpoint} with a redirect (HTTP ${answer.status}) ${where}; ` +
      `API requests never follow redirects (is api_url right?)`,
  };
}

function httpFailure(request: Call, answer: Answer, now: number, tidy: (text: string) => string): Failure {
  const { endpoint } = request;
  const { status } = answer;
  let fields: z.infer<typeof errorBodySchema> = {};
  if (answer.body !== "too_large") {
    // An error body is read leniently: a proxy's HTML page or odd bytes still leave the status.
    const body = parseJson(new TextDecoder().decode(answer.body));
    const parsed = body.ok ? errorBodySchema.safeParse(body.value) : undefined;
    if (parsed?.success) fields = parsed.data;
  }
  const code = fields.code === undefined ? undefined : tidy(fields.code);
  const oauthError = fields.error === undefined ? undefined : tidy(fields.error);
  const message = fields.message ?? fields.error_description;
  const said = code ?? oauthError;
  const detail = `Monzo answered ${endpoint} with HTTP ${status}` + (said ? ` ${said}` : "") +
    (message ? `: ${tidy(message)}` : "") + (answer.body === "too_large" ? " (its body was too large to read)" : "");
  return {
    kind: "http",
    status,
    code,
    oauthError,
    detail,
    retryAfterSeconds: retryAfterSeconds(answer.headers.get("retry-after"), now),
    ...(answer.body === "too_large" ? { reason: "too_large" as const } : {}),
  };
}

const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const TIME = "\\d{2}:\\d{2}:\\d{2}";
/** The three HTTP-date forms of RFC 9110 §5.6.7; Date.parse alone accepts almost anything ("garbage 12"). */
const IMF_FIXDATE = new RegExp(`^${DAY}, \\d{2} ${MONTH} \\d{4} ${TIME} GMT$`);
const RFC_850 = new RegExp(`^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \\d{2}-${MONTH}-\\d{2} ${TIME} GMT$`);
const ASCTIME = new RegExp(`^${DAY} ${MONTH} [ \\d]\\d ${TIME} \\d{4}$`);

/** `Retry-After` as seconds from now, within 0 to a day; undefined when absent or not an RFC 9110 value. */
function retryAfterSeconds(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Math.min(Number(value), MAX_RETRY_AFTER_S);
  let at: number;
  if (IMF_FIXDATE.test(value) || RFC_850.test(value)) at = Date.parse(value);
  else if (ASCTIME.test(value)) at = Date.parse(`${value} GMT`); // asctime has no zone; RFC 9110 says GMT
  else return undefined;
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, Math.ceil((at - now) / 1000)), MAX_RETRY_AFTER_S);
}

function parseJson(text: string): Result<unknown, string> {
  try {
    return ok(JSON.parse(text));
  } catch (error) {
    return err(errorMessage(error));
  }
}

/** Strict UTF-8: a successful answer with invalid bytes is unusable rather than silently altered. */
function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // The only failure of a fatal decoder is invalid input, reported by the caller as bad_encoding.
    return undefined;
  }
}

function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= MIN_SECRET_LENGTH) out = out.replaceAll(secret, "[redacted]");
  }
  return out;
}

/** True when the login needs approval in the Monzo app (new login or lapsed approval). */
export function needsAppApproval(failure: MonzoFailure): boolean {
  return failure.status === 403 && (failure.code ?? "").startsWith("forbidden.insufficient_permissions");
}

/** True when the access token itself is no longer accepted (expired, evicted). */
export function isBadAccessToken(failure: MonzoFailure): boolean {
  return failure.status === 401;
}

/** Requests made to Monzo, keyed by `endpoint code`, as {@link MonzoClientOptions.onRequest} reports them. */
export type RequestCounts = ReadonlyMap<string, number>;

/** `counts` with one more request to `endpoint` that ended in `code`; a new map, so a published view stays as it was. */
export function countRequest(counts: RequestCounts, endpoint: string, code: string): RequestCounts {
  const key = `${endpoint} ${code}`;
  return new Map(counts).set(key, (counts.get(key) ?? 0) + 1);
}

/** The client's own family: the requests it made, by endpoint and outcome. */
export const REQUEST_FAMILIES: readonly DeclaredFamily<RequestCounts>[] = [{
  name: "monzo_api_requests_total",
  type: "counter",
  help: "Requests made to the Monzo API since start, by endpoint and HTTP status code " +
    "(or timeout, network or invalid_response when there was no usable answer).",
  samples: (counts) =>
    [...counts].sort(([a], [b]) => compareText(a, b)).map(([key, count]) => {
      const [endpoint, code] = key.split(" ");
      return { labels: [["endpoint", endpoint], ["code", code]] as const, value: count };
    }),
}];
