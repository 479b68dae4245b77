/**
 * A simulated Monzo, served over real HTTP on loopback, used by the tests and by the demo mode.
 * It follows shared/reference/monzo-api.md, including the undocumented fields and the error shapes,
 * so that code which copes with it copes with the real thing.
 * @module
 */

import type { Logger } from "../shared/log.ts";
import { serveResilient } from "../http/serve.ts";
import { Hono } from "hono";
import { type Clock, systemClock } from "../shared/clock.ts";
import { json } from "./bodies.ts";
import { apiRoutes } from "./api_routes.ts";
import { type FakeData, householdData, TEST_HISTORY_DAYS } from "./data.ts";
import { createDrift } from "./drift.ts";
import { Faults, type FaultSpec } from "./faults.ts";
import { Grants } from "./grants.ts";
import { type Env, type FakeRequest, recordRequests } from "./http.ts";
import { type AddedTransaction, Ledger, type Reversal } from "./ledger.ts";
import { oauthPages } from "./oauth_pages.ts";
import type { FakeTransaction } from "./transaction.ts";

export { type AwkwardKind, type AwkwardOptions, awkwardTransactions } from "./awkward.ts";
export {
  benchData,
  type BenchOptions,
  DEMO_HISTORY_DAYS,
  type FakeAccount,
  type FakeData,
  type FakePot,
  householdData,
  type HouseholdOptions,
  manyAccounts,
  manyPots,
  TEST_HISTORY_DAYS,
} from "./data.ts";
export type { FaultSpec } from "./faults.ts";
export { DEMO_MONTH_START_DAY } from "./history.ts";
export { type AddedTransaction, DEFAULT_LIMIT, MAX_LIMIT, type Reversal, WINDOW_MS } from "./ledger.ts";
export type { FakeCounterparty, FakeMerchant, FakeTransaction, NewTransaction } from "./transaction.ts";

/** Options of {@link startFakeMonzo}. */
export interface FakeMonzoOptions {
  /** The only OAuth client the fake accepts. */
  clientId: string;
  clientSecret: string;
  /** Default {@link householdData} up to the wall clock with {@link TEST_HISTORY_DAYS} (the demo passes its own). */
  data?: FakeData;
  /** Used for token and code expiry; default the system clock. */
  clock?: Clock;
  /** When false (the default), every new login answers 403 until {@link FakeMonzo.approve}, like SCA. */
  autoApprove?: boolean;
  /**
   * Every `/balance` and `/pots` read moves the amounts a little, and `/transactions` reads now and then
   * add a small card payment, so a demo dashboard shows lines.
   */
  drift?: boolean;
  /**
   * How long after a login `/transactions` may reach back past 90 days (Monzo: 5 minutes); after that
   * a request starting earlier answers 403 `forbidden.verification_required`. Default 5.
   */
  fullHistoryMinutes?: number;
  /**
   * When that window starts, which Monzo does not document: at the code exchange (the default, the
   * stricter reading) or when the user approves the login in the app. A token refresh never reopens it.
   */
  fullHistoryFrom?: "code_exchange" | "approval";
  /**
   * Where to say that the fake's server failed (out of file descriptors) and listens again; the
   * demo passes the exporter's log. Tests leave it out.
   */
  log?: Pick<Logger, "info" | "warn">;
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
  /** Adds a fault (the kinds are listed at {@link FaultSpec}); throws on a spec that cannot be answered. */
  fault(spec: FaultSpec): void;
  /** Removes all faults, answers hanging requests with 504 and lets held ones go. */
  clearFaults(): void;
  /** Lets the requests a `hold` fault is holding go on to their usual answers; how many there were. */
  releaseHeld(): number;
  /** Adds a transaction (created now unless given) in its place in time, and returns it whole. */
  addTransaction(accountId: string, fields: AddedTransaction): FakeTransaction;
  /** Settles a pending transaction now, optionally for another `amount` (the split and local amount follow). */
  settleTransaction(id: string, amount?: number): FakeTransaction;
  /** Releases a pending authorisation: `declined` gives it a `decline_reason` (default `OTHER`), `removed` drops it. */
  reverseTransaction(id: string, outcome: Reversal, reason?: string): FakeTransaction;
  /** Re-categorises a transaction, as in the app; `categories` defaults to the whole amount in `category`. */
  recategoriseTransaction(id: string, category: string, categories?: Record<string, number> | null): FakeTransaction;
  /** The live transaction with `id` on any account, or null. */
  transaction(id: string): FakeTransaction | null;
  /** The live data; tests may change balances, pots and transactions (kept oldest first) between polls. */
  readonly data: FakeData;
  /** Answers hanging requests, cuts off streaming bodies and stops the server. */
  close(): Promise<void>;
}

// Monzo's documented example says 6 h; 30 h to 48 h have been seen. Clients must use the number given.
const EXPIRES_IN_SECONDS = 30 * 3600;

/** Starts a fake Monzo on a free loopback port. */
export function startFakeMonzo(options: FakeMonzoOptions): Promise<FakeMonzo> {
  const { clientId, clientSecret } = options;
  const data = options.data ?? householdData(Date.now(), { historyDays: TEST_HISTORY_DAYS });
  const clock = options.clock ?? systemClock;
  const grants = new Grants(data, clock, {
    expiresInSeconds: EXPIRES_IN_SECONDS,
    fullHistoryMs: (options.fullHistoryMinutes ?? 5) * 60_000,
    fullHistoryFrom: options.fullHistoryFrom ?? "code_exchange",
  });
  const ledger = new Ledger(data, clock);
  const faults = new Faults({ clientId, data, grants, expiresInSeconds: EXPIRES_IN_SECONDS, clock });
  let requests: FakeRequest[] = [];

  const app = new Hono<Env>();
  app.use(recordRequests(() => requests));
  app.use(faults.middleware());
  app.route("/", oauthPages(clientId, data, grants));
  app.route(
    "/",
    apiRoutes({
      clientId,
      clientSecret,
      data,
      grants,
      expiresInSeconds: EXPIRES_IN_SECONDS,
      autoApprove: options.autoApprove ?? false,
      drift: options.drift ? createDrift(clock) : null,
      ledger,
    }),
  );
  app.notFound((c) => json(404, { code: "not_found", message: `No such endpoint: ${c.req.path}`, params: {} }));

  // The demo runs the fake in the exporter's process: a failure of its server must not end the process.
  const server = serveResilient({
    hostname: "127.0.0.1",
    port: 0,
    handler: app.fetch,
    log: options.log ?? { info() {}, warn() {} },
    clock: systemClock,
  });
  const { port } = server.addr;
  const url = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | null = null;

  function currentGrant(userId: string) {
    const grant = grants.current(userId);
    if (!grant) throw new Error(`fake Monzo: no token was issued to ${userId}`);
    return grant;
  }

  return Promise.resolve({
    url,
    authUrl: `${url}/auth`,
    get requests() {
      return requests;
    },
    count: (path) => requests.filter((r) => r.path === path).length,
    resetRequests() {
      requests = [];
    },
    issueCode: (userId, redirectUri) => grants.issueCode(userId, redirectUri),
    approve(userId) {
      grants.approve(currentGrant(userId));
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
      const grant = grants.current(userId);
      return grant ? { accessToken: grant.accessToken, refreshToken: grant.refreshToken } : null;
    },
    addTransaction: (accountId, fields) => ledger.add(accountId, fields),
    settleTransaction: (id, amount) => ledger.settle(id, amount),
    reverseTransaction: (id, outcome, reason) => ledger.reverse(id, outcome, reason),
    recategoriseTransaction: (id, category, categories) => ledger.recategorise(id, category, categories),
    transaction: (id) => ledger.find(id),
    fault: (spec) => faults.add(spec),
    clearFaults: () => faults.clear(),
    releaseHeld: () => faults.release(),
    data,
    close() {
      // Held answers go first: shutdown waits for every request in flight.
      if (!closing) {
        faults.close();
        closing = server.shutdown();
      }
      return closing;
    },
  });
}
