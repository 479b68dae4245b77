import type { MiddlewareHandler } from "hono";
import type { Clock } from "../shared/clock.ts";
import { randomToken } from "../shared/secrets.ts";
import { accountsBody, balanceBody, defaultErrorBody, json, potsBody, tokenBody } from "./bodies.ts";
import type { FakeData } from "./data.ts";
import type { Grants } from "./grants.ts";
import { bearer, type Env } from "./http.ts";
import { MAX_LIMIT, render } from "./ledger.ts";
import { hash, mulberry32, objectId } from "./random.ts";
import { type FakeTransaction, makeTransaction, rfc3339 } from "./transaction.ts";

/**
 * A misbehaviour to inject, checked before normal handling in the order added. Every kind takes `path`,
 * `times` and `accountId`; the kinds are:
 * - `status`: answers `status` (default 500) with the JSON `body` (default Monzo's error body for that
 *   status and path), or with the raw `text` sent as `contentType` (default `text/plain; charset=utf-8`),
 *   e.g. a proxy's HTML error page; `headers` are added, e.g. `{"retry-after": "120"}`.
 * - `hang`: answers only when `clearFaults()` or `close()` releases it, with a 504.
 * - `hold`: waits until `releaseHeld()`, `clearFaults()` or `close()`, then is answered as usual, so a
 *   test can fix the order of two requests (a refresh answered only after a poll has begun); `onHold`
 *   is called once the request is held.
 * - `malformed_json`: answers 200 with the first half of a realistic body for the path.
 * - `missing_fields`: answers 200 with a realistic body lacking a field clients need (`balance`,
 *   a pot's, account's or transaction's `id`, `user_id`, `access_token`).
 * - `redirect`: answers `status` (301, 302, 303, 307 or 308; default 307) with `Location: location`,
 *   which may name another origin, and no body.
 * - `huge_body`: answers 200 `application/json` with a JSON-looking body of exactly `bytes` bytes,
 *   streamed in chunks without a `content-length`, so the fake never holds it whole.
 * - `same_page` (`/transactions`): answers 200 with the same full page (`limit` rows, default 100) of
 *   made-up transactions whatever `since` says: the same ids for ever.
 * - `endless_pages` (`/transactions`): answers 200 with a full page of transactions never given before,
 *   each newer than the last: ever-new ids for ever.
 * - `flaky`: answers `status` (default 500, Monzo's error body, `headers` added) to each matching
 *   request with `probability`, drawn from a PRNG seeded with `seed`, so a run is repeatable; other
 *   requests are answered normally. `times` counts the failures.
 * - `edit_rows` (`/transactions`): the normal answer with its rows passed through `edit` (to repeat,
 *   drop or spoil rows); error answers are left as they are.
 */
export type FaultSpec =
  & FaultTarget
  & (
    | StatusFault
    | HangFault
    | HoldFault
    | MalformedJsonFault
    | MissingFieldsFault
    | RedirectFault
    | HugeBodyFault
    | SamePageFault
    | EndlessPagesFault
    | FlakyFault
    | EditRowsFault
  );

/** Which requests a fault affects. */
interface FaultTarget {
  /** The endpoint path, e.g. `/balance`, `/pots`, `/transactions`, `/accounts`, `/oauth2/token`, `/ping/whoami`. */
  path: string;
  /** How many matching requests it affects; default until it is cleared. */
  times?: number;
  /** Only requests whose `account_id` or `current_account_id` is this. */
  accountId?: string;
}

/** An error status with a JSON or raw text body. */
interface StatusFault {
  kind: "status";
  /** Default 500. */
  status?: number;
  /** JSON body; default a realistic Monzo error body for the status. Not with `text`. */
  body?: unknown;
  /** A raw body instead of JSON, e.g. an HTML page from a proxy. Not with `body`. */
  text?: string;
  /** Content type of `text`; default `text/plain; charset=utf-8`. */
  contentType?: string;
  /** Extra headers, e.g. `{"retry-after": "120"}`. */
  headers?: Record<string, string>;
}

/** No answer until released. */
interface HangFault {
  kind: "hang";
}

/** The usual answer, late. */
interface HoldFault {
  kind: "hold";
  /** Called once the request is held, to learn that it has arrived. */
  onHold?: () => void;
}

/** A 200 whose JSON is cut in half. */
interface MalformedJsonFault {
  kind: "malformed_json";
}

/** A 200 whose JSON lacks a field clients need. */
interface MissingFieldsFault {
  kind: "missing_fields";
}

/** A redirect, e.g. to another origin. */
interface RedirectFault {
  kind: "redirect";
  /** Default 307. */
  status?: RedirectStatus;
  /** The `Location` header, absolute or relative. */
  location: string;
}

/** A 200 body too big to read whole. */
interface HugeBodyFault {
  kind: "huge_body";
  /** Exact body length. */
  bytes: number;
}

/** The same full page of transactions for ever. */
interface SamePageFault {
  kind: "same_page";
}

/** Full pages of new transactions for ever. */
interface EndlessPagesFault {
  kind: "endless_pages";
}

/** Server errors at random, repeatably. */
interface FlakyFault {
  kind: "flaky";
  /** Chance that a matching request fails, 0 to 1. */
  probability: number;
  /** Seed of the PRNG that decides. */
  seed: number;
  /** Default 500. */
  status?: number;
  /** Extra headers, e.g. `{"retry-after": "3"}`. */
  headers?: Record<string, string>;
}

/** The normal rows, changed. */
interface EditRowsFault {
  kind: "edit_rows";
  /** Given the rows of the normal answer (Monzo's JSON) and the request's query; returns the rows to send. */
  edit: (rows: Record<string, unknown>[], query: URLSearchParams) => unknown[];
}

/** The redirect statuses a `redirect` fault may answer. */
type RedirectStatus = 301 | 302 | 303 | 307 | 308;

const REDIRECT_STATUSES: readonly number[] = [301, 302, 303, 307, 308];
// Statuses whose responses cannot carry a body.
const NULL_BODY_STATUSES: readonly number[] = [204, 205, 304];
const CHUNK_BYTES = 64 * 1024;
const encoder = new TextEncoder();

/** What {@link Faults} builds its realistic bodies from. */
export interface FaultOptions {
  readonly clientId: string;
  readonly data: FakeData;
  readonly grants: Grants;
  readonly expiresInSeconds: number;
  /** Times of made-up transactions. */
  readonly clock: Clock;
}

/** An active fault and what it keeps between answers. */
interface Active {
  readonly spec: FaultSpec;
  remaining: number;
  /** How many answers it has made up (`endless_pages`), or the page it repeats (`same_page`). */
  served: number;
  page: FakeTransaction[] | null;
  /** The seeded draw of a `flaky` fault. */
  readonly random: () => number;
}

/** The faults to inject, and the requests they hold open. */
export class Faults {
  readonly #options: FaultOptions;
  #active: Active[] = [];
  readonly #hanging = new Set<() => void>();
  readonly #held = new Set<() => void>();
  readonly #streaming = new Set<ReadableStreamDefaultController<Uint8Array>>();

  /** Faults answering with bodies built from `options`. */
  constructor(options: FaultOptions) {
    this.#options = options;
  }

  /** Adds a fault; throws on a spec no test could mean. */
  add(spec: FaultSpec): void {
    const problem = specProblem(spec);
    if (problem) throw new Error(`fake Monzo: bad fault for ${spec.path}: ${problem}`);
    const seed = spec.kind === "flaky" ? spec.seed : 0;
    this.#active.push({ spec, remaining: spec.times ?? Infinity, served: 0, page: null, random: mulberry32(seed) });
  }

  /** Lets every held request go on to its usual answer; how many there were. */
  release(): number {
    const held = [...this.#held];
    this.#held.clear();
    for (const release of held) release();
    return held.length;
  }

  /** Removes every fault, answers hanging requests with 504 and lets held ones go. */
  clear(): void {
    this.#active = [];
    this.release();
    for (const release of [...this.#hanging]) release();
    this.#hanging.clear();
  }

  /** Clears, and ends huge bodies still streaming early, so that the server can shut down. */
  close(): void {
    this.clear();
    // Closing rather than erroring the stream: Deno's server would print the error, and the test is over.
    for (const controller of this.#streaming) controller.close();
    this.#streaming.clear();
  }

  /** Answers a request a fault matches, before any route sees it. */
  middleware(): MiddlewareHandler<Env> {
    return async (c, next) => {
      const url = new URL(c.req.url);
      const active = this.#take(url);
      if (!active) return await next();
      const { spec } = active;
      if (spec.kind === "hold") {
        await new Promise<void>((resolve) => {
          this.#held.add(resolve);
          spec.onHold?.();
        });
        return await next();
      }
      if (spec.kind === "edit_rows") {
        await next();
        c.res = await editRows(c.res, spec, url.searchParams);
        return;
      }
      if (spec.kind === "same_page" || spec.kind === "endless_pages") return json(200, this.#madeUp(active, url));
      if (spec.kind === "hang") {
        c.set("hung", true);
        c.get("record").userId = this.#options.grants.ownerOf(bearer(c.req.header("authorization")));
      }
      return this.#answer(spec, url);
    };
  }

  #take(url: URL): Active | null {
    const accountId = url.searchParams.get("account_id") ?? url.searchParams.get("current_account_id");
    // A flaky fault that does not fire this time lets the next fault (or the route) answer.
    const index = this.#active.findIndex(({ spec, random }) =>
      spec.path === url.pathname && (spec.accountId === undefined || spec.accountId === accountId) &&
      (spec.kind !== "flaky" || random() < spec.probability)
    );
    if (index < 0) return null;
    const found = this.#active[index];
    found.remaining -= 1;
    if (found.remaining <= 0) this.#active.splice(index, 1);
    return found;
  }

  /** A full page of made-up transactions: the same one each time, or new ones each time. */
  #madeUp(active: Active, url: URL): unknown {
    const { clock, data } = this.#options;
    const accountId = url.searchParams.get("account_id") ?? "";
    const userId = data.accounts.find((a) => a.id === accountId)?.owners[0] ?? "";
    const size = Math.min(Number(url.searchParams.get("limit") ?? MAX_LIMIT) || MAX_LIMIT, MAX_LIMIT);
    const make = (n: number, base: number) =>
      makeTransaction(accountId, userId, {
        id: objectId("tx", `${active.spec.kind}|${accountId}|${n}`),
        created: rfc3339(base + n * 1000),
        amount: -100 - (hash(String(n)) % 900),
        description: `Made-up ${n}`,
        category: "general",
      });
    const base = clock.now() - 24 * 3_600_000;
    if (active.spec.kind === "same_page") {
      active.page ??= Array.from({ length: size }, (_, n) => make(n, base));
      return { transactions: active.page.map((t) => render(t, false)) };
    }
    const first = active.served;
    active.served += size;
    return { transactions: Array.from({ length: size }, (_, i) => render(make(first + i, base), false)) };
  }

  #answer(spec: Exclude<FaultSpec, HoldFault>, url: URL): Response | Promise<Response> {
    switch (spec.kind) {
      case "flaky":
        return json(spec.status ?? 500, defaultErrorBody(spec.status ?? 500, url.pathname), spec.headers);
      case "same_page":
      case "endless_pages":
      case "edit_rows":
        // Answered in the middleware, which needs the route's answer or the fault's state.
        throw new Error(`fake Monzo: ${spec.kind} is not answered here`);
      case "status":
        return statusAnswer(spec, url.pathname);
      case "malformed_json": {
        const text = JSON.stringify(this.#sample(url));
        return new Response(text.slice(0, Math.max(1, Math.floor(text.length / 2))), {
          status: 200,
          headers: { "content-type": "application/json; charset=utf-8" },
        });
      }
      case "missing_fields":
        return json(200, withoutRequiredField(url.pathname, this.#sample(url)));
      case "redirect":
        return new Response(null, { status: spec.status ?? 307, headers: { location: spec.location } });
      case "huge_body":
        return new Response(this.#hugeBody(spec.bytes), {
          status: 200,
          headers: { "content-type": "application/json; charset=utf-8" },
        });
      case "hang":
        // Not tied to request.signal: Deno warns about its legacy abort-on-success, and a server
        // does not learn of a client giving up anyway. clear() and close() answer these.
        return new Promise<Response>((resolve) => {
          const release = () => {
            this.#hanging.delete(release);
            resolve(json(504, { code: "gateway_timeout", message: "The request was released by the test" }));
          };
          this.#hanging.add(release);
        });
    }
  }

  /** `{"padding":"xxx…"}` cut or padded to `bytes`, produced a chunk at a time as the client reads. */
  #hugeBody(bytes: number): ReadableStream<Uint8Array> {
    const head = encoder.encode('{"padding":"');
    const tail = encoder.encode('"}');
    const streaming = this.#streaming;
    let sent = 0;
    let self: ReadableStreamDefaultController<Uint8Array>;
    return new ReadableStream<Uint8Array>({
      start(controller) {
        self = controller;
        streaming.add(controller);
      },
      pull(controller) {
        const remaining = bytes - sent;
        if (remaining <= 0) {
          streaming.delete(controller);
          controller.close();
          return;
        }
        const chunk = sent === 0
          ? head.slice(0, remaining)
          : remaining <= tail.length
          ? tail.slice(tail.length - remaining)
          : new Uint8Array(Math.min(CHUNK_BYTES, remaining - tail.length)).fill(0x78);
        sent += chunk.length;
        controller.enqueue(chunk);
      },
      cancel() {
        streaming.delete(self);
      },
    });
  }

  /** A realistic success body for the path, regardless of tokens, to be broken by a fault. */
  #sample(url: URL): unknown {
    const { clientId, data } = this.#options;
    const accountId = url.searchParams.get("account_id") ?? url.searchParams.get("current_account_id");
    const account = data.accounts.find((a) => a.id === accountId) ?? data.accounts[0];
    const userId = data.users[0]?.id ?? "";
    switch (url.pathname) {
      case "/accounts":
        return accountsBody(data, null, url.searchParams.get("account_type"));
      case "/balance":
        return account ? balanceBody(account) : {};
      case "/pots":
        return account ? potsBody(account) : { pots: [] };
      case "/transactions":
        return { transactions: (account?.transactions ?? []).slice(-3).map((t) => render(t, false)) };
      case "/ping/whoami":
        return { authenticated: true, client_id: clientId, user_id: userId };
      case "/oauth2/token":
        return tokenBody(
          { accessToken: randomToken(), refreshToken: randomToken(), userId },
          clientId,
          this.#options.expiresInSeconds,
        );
      default:
        return {};
    }
  }
}

/** Why `spec` cannot be answered, or null if it can. */
function specProblem(spec: FaultSpec): string | null {
  switch (spec.kind) {
    case "status": {
      const status = spec.status ?? 500;
      if (!Number.isInteger(status) || status < 200 || status > 599) return `status ${status} is not 200 to 599`;
      if (spec.body !== undefined && spec.text !== undefined) return "give body or text, not both";
      return null;
    }
    case "redirect":
      if (!REDIRECT_STATUSES.includes(spec.status ?? 307)) return `status ${spec.status} is not a redirect`;
      return spec.location ? null : "location is empty";
    case "huge_body":
      return Number.isSafeInteger(spec.bytes) && spec.bytes >= 0 ? null : `bytes ${spec.bytes} is not a size`;
    case "flaky": {
      const status = spec.status ?? 500;
      if (!(spec.probability >= 0 && spec.probability <= 1)) return `probability ${spec.probability} is not 0 to 1`;
      return Number.isInteger(status) && status >= 400 && status <= 599 ? null : `status ${status} is not an error`;
    }
    case "same_page":
    case "endless_pages":
    case "edit_rows":
      return spec.path === "/transactions" ? null : `${spec.kind} is only for /transactions`;
    default:
      return null;
  }
}

function statusAnswer(spec: StatusFault, path: string): Response {
  const status = spec.status ?? 500;
  if (NULL_BODY_STATUSES.includes(status)) return new Response(null, { status, headers: spec.headers });
  if (spec.text !== undefined) {
    return new Response(spec.text, {
      status,
      headers: { "content-type": spec.contentType ?? "text/plain; charset=utf-8", ...spec.headers },
    });
  }
  return json(status, spec.body ?? defaultErrorBody(status, path), spec.headers);
}

/** `response` with its rows passed through the fault's `edit`, when it is a 200 with rows. */
async function editRows(response: Response, spec: EditRowsFault, query: URLSearchParams): Promise<Response> {
  if (response.status !== 200) return response;
  const body: unknown = await response.json();
  if (!isRecord(body) || !Array.isArray(body.transactions)) return json(200, body);
  return json(200, { ...body, transactions: spec.edit(body.transactions.filter(isRecord), query) });
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
    case "/transactions":
      return {
        ...body,
        transactions: Array.isArray(body.transactions) ? body.transactions.map((t) => strip(t, "id")) : [],
      };
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
