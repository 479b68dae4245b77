// Shared scaffolding of the tests that run an exporter in this process against the fake Monzo:
// the household's ids, a clock moved by hand, and `withHarness`, which starts both (optionally
// served on a real loopback port), captures the log and cleans up whatever happens.

import type { Gzip } from "../../lib/exposition/exposition.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Clock } from "../../lib/shared/clock.ts";
import { type Config, configFromObject } from "../../lib/config/config.ts";
import { createExporter, type Exporter, type ExporterOptions } from "../../lib/run/exporter.ts";
import {
  type FakeMonzo,
  type FakeMonzoOptions,
  type FakeTransaction,
  householdData,
  startFakeMonzo,
  TEST_HISTORY_DAYS,
} from "../../lib/fake_monzo/mod.ts";
import { makeTransaction, rfc3339 } from "../../lib/fake_monzo/transaction.ts";
import {
  decodeLogins,
  memoryTokens,
  type StoredLogin,
  tokenFile,
  type TokenPersistence,
} from "../../lib/logins/token_file.ts";

/** The OAuth client id the fake accepts and the exporter's config names. */
export const CLIENT_ID = "oauth2client_00009E2eTestClient";
/** The OAuth client secret that goes with {@link CLIENT_ID}. */
export const CLIENT_SECRET = "mnzconf.e2e-client-secret-9f3Kq2Lx";
/** The exporter's `auth_key`, which /authorize asks for. */
export const AUTH_KEY = "e2e-auth-key-7Hq2Lm9WzT4Nc8Pq";
/** The `redirect_uri` of a harness that is not served (nothing listens there). */
export const REDIRECT = "http://127.0.0.1:9100";

// Who and what the fake's householdData() holds.
/** Alice, who owns most of the household's accounts. */
export const ALICE = "user_00009AliceQx7Rk2Lm9WzT";
/** Bob, Alice's partner, who shares the joint account. */
export const BOB = "user_00009BobHj4Nc8Pq3VsYeKd";
/** Alice's current account, with her pots. */
export const ALICE_CURRENT = "acc_00009AliceCurrent7Rk2Lm";
/** The joint account of Alice and Bob. */
export const JOINT = "acc_00009JointHousehold4Tq8";
/** Alice's closed current account (not exported). */
export const ALICE_CLOSED = "acc_00009AliceOldCurrentX2";
/** Alice's Monzo Flex account. */
export const ALICE_FLEX = "acc_00009AliceFlex00009Hq3";
/** The loan account backing Alice's Flex (not exported). */
export const FLEX_LOAN = "acc_00009AliceFlexLoan0Zp1";
/** Bob's current account, overdrawn. */
export const BOB_CURRENT = "acc_00009BobCurrent000Wn5";
/** A deleted pot of Alice's. */
export const DELETED_POT = "pot_00009AliceOldCar0000005";
/** Alice's holiday pot, whose name needs escaping. */
export const HOLIDAY_POT = "pot_00009AliceHoliday000003";
/** Alice's rainy-day pot, whose name holds a newline. */
export const RAINY_POT = "pot_00009AliceRainyDay00004";

/** Days of the household's history unless a test asks for more: see the fake's {@link TEST_HISTORY_DAYS}. */
export { TEST_HISTORY_DAYS };

/** When every {@link TestClock} starts. */
export const T0 = Date.parse("2026-03-02T09:00:00.000Z");
/** One minute in milliseconds. */
export const MINUTE = 60_000;
/** The fake's default token lifetime (30 hours). */
export const TOKEN_LIFETIME = 30 * 60 * MINUTE;

/** A clock the test moves by hand; the fake and the exporter share it. */
export class TestClock implements Clock {
  #now = T0;
  /** The current time in ms since the epoch. */
  now(): number {
    return this.#now;
  }
  /** Moves the clock forward by `ms`. */
  advance(ms: number): void {
    this.#now += ms;
  }
  /** Sets the clock to `ms` since the epoch. */
  set(ms: number): void {
    this.#now = ms;
  }
}

/** What a test body gets from {@link withHarness}. */
export interface Harness {
  readonly fake: FakeMonzo;
  readonly exporter: Exporter;
  readonly clock: TestClock;
  readonly config: Config;
  readonly tokensPath: string;
  /** Every log line, in order. */
  readonly lines: string[];
  /** Every token the fake has handed out so far (old, rotated ones included). */
  readonly seen: Set<string>;
  /** `http://127.0.0.1:PORT` of the real server in front of the exporter, or {@link REDIRECT} if not served. */
  readonly base: string;
  /** Every pause the exporter took between tries of a request, in ms; each moved the clock instead of waiting. */
  readonly pauses: number[];
}

/** How {@link withHarness} sets things up; every field is optional. */
export interface HarnessOptions {
  /** Config keys added to (or replacing) the defaults. */
  readonly config?: Record<string, unknown>;
  /** Days of the household's history; default {@link TEST_HISTORY_DAYS}. */
  readonly historyDays?: number;
  /** Options for the fake Monzo, over the household and the shared clock. */
  readonly fake?: Partial<FakeMonzoOptions>;
  /** The exporter's token store; the tokens file by default. */
  readonly persistence?: (tokensPath: string, fake: FakeMonzo) => TokenPersistence;
  /** Runs before the exporter starts, e.g. to write a tokens file. */
  readonly prepare?: (fake: FakeMonzo, tokensPath: string, seen: Set<string>) => Promise<void>;
  /** Serves the exporter with a real `Deno.serve` on loopback, whose address is the `redirect_uri`. */
  readonly serve?: boolean;
  /** Appended to the `redirect_uri` (to try a trailing slash). */
  readonly redirectSuffix?: string;
  /** The exporter's gzip function (to count its calls). */
  readonly gzip?: Gzip;
  /** Opens the data store (to count the openings, or hand in a store that fails). */
  readonly openKv?: ExporterOptions["openKv"];
}

/** Runs `body` with a fake Monzo and an exporter pointed at it, and closes both whatever happens. */
export async function withHarness(options: HarnessOptions, body: (h: Harness) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "monzo-harness-test-" });
  const clock = new TestClock();
  const fake = await startFakeMonzo({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    data: householdData(clock.now(), { historyDays: options.historyDays ?? TEST_HISTORY_DAYS }),
    clock,
    ...options.fake,
  });
  let handler: (request: Request) => Response | Promise<Response> = () => new Response("starting", { status: 503 });
  const server = options.serve
    ? Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => handler(request))
    : undefined;
  const base = server ? `http://127.0.0.1:${server.addr.port}` : REDIRECT;
  let exporter: Exporter | undefined;
  try {
    const tokensPath = join(dir, "tokens.json");
    const parsed = configFromObject({
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      server_addr: new URL(base).host,
      redirect_uri: base + (options.redirectSuffix ?? ""),
      auth_key: AUTH_KEY,
      api_url: fake.url,
      auth_url: fake.authUrl,
      tokens_path: tokensPath,
      data_path: join(dir, "data.kv"),
      ...options.config,
    }, { path: join(dir, "config.toml") });
    if (!parsed.ok) throw new Error(parsed.error);
    const config = parsed.value;
    const seen = new Set<string>();
    await options.prepare?.(fake, tokensPath, seen);
    const lines: string[] = [];
    const pauses: number[] = [];
    const made = await createExporter({
      config,
      build: { version: "0.0.0-test", mode: "live" },
      clock,
      // No test waits for real: a pause moves the shared clock, as the time would have passed.
      sleep: (ms) => {
        pauses.push(ms);
        clock.advance(ms);
        return Promise.resolve();
      },
      sink: (line) => lines.push(line),
      persistence: options.persistence?.(tokensPath, fake) ?? tokenFile(tokensPath),
      gzip: options.gzip,
      openKv: options.openKv,
    });
    if (!made.ok) throw new Error(made.error);
    exporter = made.value;
    handler = exporter.handler;
    await body({ fake, exporter, clock, config, tokensPath, lines, seen, base, pauses });
  } finally {
    await server?.shutdown();
    await exporter?.close();
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A restart: closes the harness' exporter and starts another on the same config, data store, logins and
 * clock. The caller closes the one returned.
 */
export async function restarted(h: Harness): Promise<Exporter> {
  const logins = h.exporter.store.logins().map((login) => ({ ...login, grantedAt: undefined }));
  await h.exporter.close();
  const again = await createExporter({
    config: h.config,
    build: { version: "0.0.0-test", mode: "live" },
    clock: h.clock,
    sink: (line) => h.lines.push(line),
    sleep: (ms) => {
      h.pauses.push(ms);
      h.clock.advance(ms);
      return Promise.resolve();
    },
    persistence: memoryTokens(logins),
  });
  assert.ok(again.ok, again.ok ? "" : again.error);
  return again.value;
}

/** Remembers the tokens the fake holds now, so later checks can look for every one of them. */
export function track(h: Harness): void {
  for (const user of [ALICE, BOB]) {
    const tokens = h.fake.tokensOf(user);
    if (tokens) {
      h.seen.add(tokens.accessToken);
      h.seen.add(tokens.refreshToken);
    }
  }
}

/** Logs `userId` in as the browser flow would (code from the fake, exchanged by the exporter). */
export async function logIn(h: Harness, userId: string, { approve = true } = {}): Promise<void> {
  const answer = await h.exporter.sessions.logIn(h.fake.issueCode(userId, h.config.callbackUrl));
  assert.ok(answer.ok, answer.ok ? "" : answer.error);
  assert.equal(answer.value.userId, userId);
  assert.ok(answer.value.written.ok, "the login was not written");
  if (approve) h.fake.approve(userId);
  track(h);
}

/** Moves the clock by `advanceMs` (none by default), runs a poll, and tracks the tokens it leaves. */
export async function poll(h: Harness, advanceMs = 0): Promise<void> {
  h.clock.advance(advanceMs);
  await h.exporter.poller.poll();
  track(h);
}

/** A GET through hono in-process that must answer 200; the body. */
export async function get(h: Harness, path: string): Promise<string> {
  const response = await h.exporter.app.request(path);
  const text = await response.text();
  assert.equal(response.status, 200, `${path} answered ${response.status}: ${text}`);
  return text;
}

/** The /metrics exposition. */
export const metrics = (h: Harness): Promise<string> => get(h, "/metrics");
/** The landing page's HTML. */
export const page = (h: Harness): Promise<string> => get(h, "/");

/** The value of the sample whose name and labels are exactly `series`, or undefined. */
export function sample(exposition: string, series: string): number | undefined {
  const line = exposition.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** `count` settled card debits on Alice's current account, one every `stepMs` up to an hour before T0. */
export function debits(count: number, stepMs: number): FakeTransaction[] {
  const last = T0 - 60 * MINUTE;
  return Array.from({ length: count }, (_, i) =>
    makeTransaction(ALICE_CURRENT, ALICE, {
      created: rfc3339(last - (count - 1 - i) * stepMs),
      amount: -(100 + i),
      description: `Shop ${i}`,
      category: "groceries",
    }));
}

/** The pounds `rows` spent. */
export const spentOf = (rows: readonly FakeTransaction[]): number =>
  -rows.reduce((sum, tx) => sum + tx.amount, 0) / 100;

/**
 * Gives Alice's current account exactly `rows` (oldest first); the pounds they spent. An account holds
 * nothing from before its opening, so rows older than the household's history open it a day before them.
 */
export function holdOnly(h: Harness, rows: FakeTransaction[]): number {
  const account = h.fake.data.accounts.find((a) => a.id === ALICE_CURRENT);
  assert.ok(account);
  account.transactions = rows;
  if (rows.length > 0 && Date.parse(rows[0].created) <= Date.parse(account.created)) {
    account.created = new Date(Date.parse(rows[0].created) - 24 * 3_600_000).toISOString();
  }
  return spentOf(rows);
}

/** The `monzo_balance` series of `account`. */
export const balance = (account: string): string => `monzo_balance{account_id="${account}",currency="GBP"}`;
/** The `monzo_logged_in` series of `user`. */
export const loggedIn = (user: string): string => `monzo_logged_in{user_id="${user}"}`;

/** The logins in the tokens file; throws if it does not parse. */
export async function storedLogins(h: Harness): Promise<StoredLogin[]> {
  const decoded = decodeLogins(await Deno.readTextFile(h.tokensPath));
  if (!decoded.ok) throw new Error(`the tokens file does not parse: ${decoded.error}`);
  return decoded.value;
}

/** No token, client secret or auth key in the log, the metrics or the landing page. */
export async function assertNoSecrets(h: Harness): Promise<void> {
  track(h);
  assert.ok(h.seen.size > 0, "no tokens were tracked");
  const shown = { log: h.lines.join("\n"), metrics: await metrics(h), page: await page(h) };
  for (const [where, text] of Object.entries(shown)) {
    for (const secret of [...h.seen, CLIENT_SECRET, AUTH_KEY]) {
      assert.ok(!text.includes(secret), `a secret appears in the ${where}`);
    }
  }
  // The logger masks known secrets; a mask in the log means a message was built with one.
  assert.ok(!shown.log.includes("[redacted]"), "a log message was built with a secret in it");
}

/** What Monzo's /oauth2/token answers to a code exchange. */
export interface Grant {
  readonly access_token: string;
  readonly refresh_token: string;
  readonly expires_in: number;
  readonly user_id: string;
}

/** Exchanges a code the fake issues for `userId` at its /oauth2/token, as the original exporter did. */
export async function exchangeCode(
  fake: FakeMonzo,
  userId: string,
  redirectUri: string,
  client: { clientId: string; clientSecret: string } = { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
): Promise<{ status: number; grant: Grant }> {
  const response = await fetch(`${fake.url}/oauth2/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: client.clientId,
      client_secret: client.clientSecret,
      redirect_uri: redirectUri,
      code: fake.issueCode(userId, redirectUri),
    }),
  });
  return { status: response.status, grant: await response.json() };
}

/** Runs `body` with a new temporary folder, removed afterwards whatever happens (made writable first). */
export async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "monzo-exporter-test-" });
  try {
    await body(dir);
  } finally {
    // A test may have made the folder read-only.
    await Deno.chmod(dir, 0o700).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}
