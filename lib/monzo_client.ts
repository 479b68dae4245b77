import type { z } from "zod";
import {
  type Account,
  accountsSchema,
  type Balance,
  balanceSchema,
  errorBodySchema,
  type Pot,
  potsSchema,
  type TokenResponse,
  tokenResponseSchema,
  type Whoami,
  whoamiSchema,
} from "./monzo_schemas.ts";
import { err, ok, type Result } from "./result.ts";

/** Why a call to Monzo did not give a usable answer. */
export interface MonzoFailure {
  /** `http`: Monzo answered with an error status; the others: no usable answer at all. */
  readonly kind: "http" | "timeout" | "network" | "invalid_response" | "aborted";
  /** The API path, e.g. `/balance`. */
  readonly endpoint: string;
  readonly status?: number;
  /** Monzo's error code, e.g. `forbidden.insufficient_permissions`. */
  readonly code?: string;
  /** The OAuth `error` field, e.g. `invalid_grant`. */
  readonly oauthError?: string;
  /** Human-readable detail, never containing a token. */
  readonly detail: string;
  /** Seconds to wait, from a 429's `Retry-After`. */
  readonly retryAfterSeconds?: number;
}

/** Options of {@link createMonzoClient}. */
export interface MonzoClientOptions {
  /** Base URL of the API, e.g. `https://api.monzo.com`. */
  readonly apiUrl: string;
  /** How long one request may take, answer body included. */
  readonly timeoutMs: number;
  /** Told about every request made, with the status code or the failure kind. */
  readonly onRequest?: (endpoint: string, code: string) => void;
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
  /** `POST /oauth2/token` with a form. */
  token(form: Record<string, string>, signal?: AbortSignal): Promise<Result<TokenResponse, MonzoFailure>>;
}

/** Creates a client for the API at `options.apiUrl`. */
export function createMonzoClient(options: MonzoClientOptions): MonzoClient {
  async function call<S extends z.ZodTypeAny>(
    endpoint: string,
    init: RequestInit & { query?: Record<string, string> },
    schema: S,
    signal: AbortSignal | undefined,
  ): Promise<Result<z.output<S>, MonzoFailure>> {
    const url = new URL(options.apiUrl + endpoint);
    for (const [key, value] of Object.entries(init.query ?? {})) url.searchParams.set(key, value);
    const answer = await fetchText(url, init, options.timeoutMs, signal);
    if (!answer.ok) {
      options.onRequest?.(endpoint, answer.error.kind);
      return err({ ...answer.error, endpoint, detail: `${init.method ?? "GET"} ${endpoint}: ${answer.error.detail}` });
    }
    const { status, text, retryAfter } = answer.value;
    options.onRequest?.(endpoint, String(status));
    if (status < 200 || status >= 300) {
      return err(httpFailure(endpoint, status, text, retryAfter));
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return err({ kind: "invalid_response", endpoint, detail: `Monzo sent malformed JSON for ${endpoint}` });
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.join(".") || "(body)";
      return err({
        kind: "invalid_response",
        endpoint,
        detail: `Monzo's ${endpoint} answer has an unusable field ${field}: ${issue.message}`,
      });
    }
    return ok(parsed.data);
  }

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  return {
    whoami: (token, signal) => call("/ping/whoami", { headers: bearer(token) }, whoamiSchema, signal),
    accounts: async (token, signal) => {
      const answer = await call("/accounts", { headers: bearer(token) }, accountsSchema, signal);
      return answer.ok ? ok(answer.value.accounts) : answer;
    },
    balance: (token, accountId, signal) =>
      call("/balance", { headers: bearer(token), query: { account_id: accountId } }, balanceSchema, signal),
    pots: async (token, accountId, signal) => {
      const answer = await call(
        "/pots",
        { headers: bearer(token), query: { current_account_id: accountId } },
        potsSchema,
        signal,
      );
      return answer.ok ? ok(answer.value.pots) : answer;
    },
    token: (form, signal) =>
      call("/oauth2/token", { method: "POST", body: new URLSearchParams(form) }, tokenResponseSchema, signal),
  };
}

interface RawAnswer {
  status: number;
  text: string;
  retryAfter: string | null;
}

type TransportFailure = Omit<MonzoFailure, "endpoint"> & { kind: "timeout" | "network" | "aborted" };

async function fetchText(
  url: URL,
  init: RequestInit,
  timeoutMs: number,
  outer: AbortSignal | undefined,
): Promise<Result<RawAnswer, TransportFailure>> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onOuterAbort = () => controller.abort();
  outer?.addEventListener("abort", onOuterAbort, { once: true });
  try {
    const response = await fetch(url, { ...init, signal: controller.signal });
    // The body is read under the same deadline: a stalled body is as bad as no answer.
    const text = await response.text();
    return ok({ status: response.status, text, retryAfter: response.headers.get("retry-after") });
  } catch (error) {
    if (timedOut) {
      return err({ kind: "timeout", detail: `Monzo did not answer within ${timeoutMs / 1000} s` });
    }
    if (outer?.aborted) return err({ kind: "aborted", detail: "cancelled because the exporter is stopping" });
    const reason = error instanceof Error ? error.message : String(error);
    return err({ kind: "network", detail: `cannot reach Monzo (${reason})` });
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener("abort", onOuterAbort);
  }
}

function httpFailure(endpoint: string, status: number, text: string, retryAfter: string | null): MonzoFailure {
  let body: z.infer<typeof errorBodySchema> = {};
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(text));
    if (parsed.success) body = parsed.data;
  } catch {
    // Not JSON (a proxy's HTML page, say): the status alone has to do.
  }
  const code = body.code ?? body.error;
  const message = body.message ?? body.error_description;
  const detail = `Monzo answered ${endpoint} with HTTP ${status}` + (code ? ` ${code}` : "") +
    (message ? `: ${message}` : "");
  return {
    kind: "http",
    endpoint,
    status,
    code: body.code,
    oauthError: body.error,
    detail,
    retryAfterSeconds: parseRetryAfter(retryAfter),
  };
}

/** Reads `Retry-After` as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** True when the login needs approval in the Monzo app (new login or lapsed approval). */
export function needsAppApproval(failure: MonzoFailure): boolean {
  return failure.status === 403 && (failure.code ?? "").startsWith("forbidden.insufficient_permissions");
}

/** True when the access token itself is no longer accepted (expired, evicted). */
export function isBadAccessToken(failure: MonzoFailure): boolean {
  return failure.status === 401;
}
