/**
 * Basic auth against the web config's bcrypt hashes, and its extra headers, as hono middleware: the
 * guard is in front of every route registered after it (all but `/healthz`), and decides nothing from
 * the request's path itself, so it cannot read a path other than the one the router serves. Verifying a cost-10 bcrypt hash takes about a tenth of a second of CPU in pure
 * JavaScript, so, as in exporter-toolkit, each outcome is remembered (keyed by a hash of the user, the
 * password and the stored hash, so a changed password or hash is verified again), and at most a few
 * verifications run at once: a flood of wrong passwords waits in a short queue, and beyond it is
 * answered 503 with Retry-After at once, costing no CPU.
 *
 * bcryptjs is imported when the first verification runs, so an exporter without users never loads it.
 */

import type { Clock } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import type { Problem } from "../shared/problems.ts";
import { createLogThrottle } from "./rate_limit.ts";
import type { MiddlewareHandler } from "hono";
import { randomToken } from "../shared/secrets.ts";
import { errorMessage } from "../shared/error_message.ts";

/** The realm browsers show in their login prompt. */
const REALM = "monzo-exporter";

/** Checks a password against a bcrypt hash (bcryptjs by default; tests count the calls). */
export type Verify = (password: string, hash: string) => Promise<boolean>;

/** What the gate reads from the web config in force at each request. */
export interface GateConfig {
  readonly users: ReadonlyMap<string, string>;
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** Options of {@link createWebGate}. */
export interface WebGateOptions {
  /** The web config in force; read at every request so a reload applies to the next one. */
  readonly config: () => GateConfig;
  /** Why the web config on disk is not in force, for the status page; null when it is. */
  readonly problem?: () => Problem | null;
  readonly log: Pick<Logger, "warn">;
  readonly clock: Clock;
  readonly verify?: Verify;
  /** Verifications run at once; 1 by default, as exporter-toolkit's mutex. */
  readonly concurrency?: number;
  /** Verifications waiting for a turn before more are answered 503; 8 by default. */
  readonly queue?: number;
  /** Good and bad outcomes remembered, each; the oldest is forgotten first. 256 by default. */
  readonly cacheSize?: number;
}

/** What the web config asks of every request: credentials checked, headers added. */
export interface WebGate {
  /**
   * Basic auth (when users are set) for the routes registered after it: a refusal (401, 503) is the
   * answer, otherwise the next handler's. It reads no path: the router chose the route.
   */
  readonly guard: MiddlewareHandler;
  /** Adds the configured headers to every answer, the guard's refusals included: register it first. */
  readonly headers: MiddlewareHandler;
  /** Why the web config on disk is not in force; null when it is. */
  problem(): Problem | null;
  /** bcrypt verifications run so far (for the bench and tests). */
  verifications(): number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Builds the gate; nothing is loaded until a verification is needed. */
export function createWebGate(options: WebGateOptions): WebGate {
  const concurrency = options.concurrency ?? 1;
  const queueLimit = options.queue ?? 8;
  const cacheSize = options.cacheSize ?? 256;
  const verify = options.verify ?? bcryptVerify;
  const refusals = createLogThrottle({ clock: options.clock, windowMs: 60_000 });
  // Outcomes by SHA-256 of (user, password, stored hash): the password itself is never kept. Apart, so
  // that a flood of wrong passwords pushes out only other wrong ones, never Prometheus' good one.
  const outcomes = { good: new Set<string>(), bad: new Set<string>() };
  const waiting: Array<() => void> = [];
  let active = 0;
  let verified = 0;
  // A decoy hash per cost, so an unknown user costs what a known one does and names cannot be probed;
  // the cheaper ones pad a check against a cheaper user's hash.
  const decoys = new Map<number, Promise<string>>();

  async function admitted(request: Request, users: ReadonlyMap<string, string>): Promise<Response | null> {
    const credentials = parseBasic(request.headers.get("authorization"));
    if (credentials === null) return challenge();
    const stored = users.get(credentials.user);
    const top = decoyCost(users.values());
    const hash = stored ?? await decoy(top);
    const key = await digest(credentials.user, credentials.password, hash);
    let good = outcomes.good.has(key) ? true : outcomes.bad.has(key) ? false : undefined;
    if (good === undefined) {
      if (!await acquire()) {
        refusals.note(options.log.warn, "Basic auth is busy verifying passwords; answered 503 to a request");
        return new Response("Busy, try again\n", {
          status: 503,
          headers: { "content-type": "text/plain; charset=utf-8", "retry-after": "1" },
        });
      }
      try {
        // Verified even for an unknown user (against the decoy), so both take the same time.
        const matches = await check(credentials.password, hash);
        // A known user whose hash is cheaper than the dearest pays the difference in decoys of costs
        // c … top-1 (2^c + 2^c + 2^(c+1) + … + 2^(top-1) = 2^top): every check costs what the dearest does.
        if (stored !== undefined) {
          for (let cost = costOf(stored); cost < top; cost++) await check(randomToken(), await decoy(cost));
        }
        good = stored !== undefined && matches;
      } finally {
        release();
      }
      remember(good ? outcomes.good : outcomes.bad, key);
    }
    if (good) return null;
    // Neither the user name nor the password is logged: a mistyped password is often in either.
    refusals.note(options.log.warn, "Refused a request with a wrong user name or password (basic auth)");
    return challenge();
  }

  /** A turn to verify, or false when the queue is full; a waiter is handed the turn of the one before. */
  async function acquire(): Promise<boolean> {
    if (active < concurrency) {
      active++;
      return true;
    }
    if (waiting.length >= queueLimit) return false;
    await new Promise<void>((resolve) => waiting.push(resolve));
    return true;
  }

  function release(): void {
    const next = waiting.shift();
    if (next) next();
    else active--;
  }

  function remember(seen: Set<string>, key: string): void {
    // The oldest is forgotten first (a Set keeps its order of insertion).
    if (seen.size >= cacheSize) seen.delete(seen.values().next().value as string);
    seen.add(key);
  }

  async function check(password: string, hash: string): Promise<boolean> {
    verified++;
    try {
      return await verify(password, hash);
    } catch (error) {
      // bcryptjs's message is outside text: one cleaned, bounded line of it.
      options.log.warn(
        `A password could not be verified: ${errorMessage(error)}`,
      );
      return false;
    }
  }

  function decoy(cost: number): Promise<string> {
    let made = decoys.get(cost);
    if (!made) {
      made = import("bcryptjs").then(({ default: bcrypt }) => bcrypt.hash(randomToken(), cost));
      decoys.set(cost, made);
    }
    return made;
  }

  return {
    async guard(c, next) {
      const users = options.config().users;
      const refusal = users.size === 0 ? null : await admitted(c.req.raw, users);
      if (refusal) return refusal;
      await next();
    },
    async headers(c, next) {
      await next();
      // Read after the answer, so a reload during a slow answer applies its headers to it.
      addHeaders(c.res, options.config().headers);
    },
    problem: () => options.problem?.() ?? null,
    verifications: () => verified,
  };
}

function challenge(): Response {
  return new Response("Unauthorized\n", {
    status: 401,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "www-authenticate": `Basic realm="${REALM}", charset="UTF-8"`,
    },
  });
}

function addHeaders(answer: Response, headers: ReadonlyArray<readonly [string, string]>): void {
  for (const [name, value] of headers) {
    // A configured policy is enforced beside the page's own (browsers apply every one), so it can
    // only narrow what the page allows, never widen it.
    if (name === "Content-Security-Policy") answer.headers.append(name, value);
    else answer.headers.set(name, value);
  }
}

/**
 * The bcrypt cost of the decoy that an unknown user is checked against: the highest among the users'
 * hashes (10 without any), so an unknown name never answers faster than any known one.
 */
export function decoyCost(hashes: Iterable<string>): number {
  let highest = 0;
  for (const hash of hashes) highest = Math.max(highest, costOf(hash));
  return highest || 10;
}

/** The cost of a bcrypt hash, `$2y$10$…`: the web config accepts only hashes of this shape (cost 04–31). */
function costOf(hash: string): number {
  return Number(hash.slice(4, 6)) || 0;
}

/** The user and password of an `Authorization: Basic …` header, or null when it is absent or malformed. */
export function parseBasic(header: string | null): { user: string; password: string } | null {
  const match = header === null ? null : /^basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header);
  if (!match) return null;
  let text: string;
  try {
    text = decoder.decode(Uint8Array.from(atob(match[1]), (c) => c.charCodeAt(0)));
  } catch {
    // Not base64 after all (a length no encoder writes): the same as no credentials.
    return null;
  }
  const colon = text.indexOf(":");
  return colon < 0 ? null : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

async function digest(user: string, password: string, hash: string): Promise<string> {
  // JSON keeps the three apart whatever they contain.
  const bytes = await crypto.subtle.digest("SHA-256", encoder.encode(JSON.stringify([user, password, hash])));
  return String.fromCharCode(...new Uint8Array(bytes));
}

/** bcryptjs' verification; it compares the hashes in constant time. */
export async function bcryptVerify(password: string, hash: string): Promise<boolean> {
  const { default: bcrypt } = await import("bcryptjs");
  return await bcrypt.compare(password, hash);
}
