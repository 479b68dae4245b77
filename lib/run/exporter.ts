import type { Hono } from "hono";
import { budgetMonth, paydayHeldFrom } from "../spending/budget_month.ts";
import { type OpenedKv, openKv } from "../store/kv.ts";
import { createLoginWatch } from "./login_watch.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { decodeStoredTransaction } from "../monzo/transaction.ts";
import { TransactionStore } from "../store/transaction_store.ts";
import { createApp } from "../http/app.ts";
import type { WebGate } from "../http/basic_auth.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import type { Config } from "../config/config.ts";
import { createExpositionCache, type Gzip } from "../exposition/exposition.ts";
import { createLogger, type LogSink } from "../shared/log.ts";
import { createLoginStates } from "../logins/login_states.ts";
import { createMonzoClient } from "../monzo/monzo_client.ts";
import { createPoller, type Poller } from "../poll/poller.ts";
import { createSessions, type Sessions } from "../logins/sessions.ts";
import { startSteps } from "../poll/steps.ts";
import { publishStep } from "../poll/step.ts";
import type { Sleep } from "../poll/transactions_step.ts";
import { type BuildInfo, Snapshot } from "../exposition/snapshot.ts";
import { tokenFile, type TokenPersistence } from "../logins/token_file.ts";
import { TokenStore } from "../logins/token_store.ts";

/** Options of {@link createExporter}. */
export interface ExporterOptions {
  readonly config: Config;
  readonly build: BuildInfo;
  readonly clock?: Clock;
  /** The pause between tries of a failed transactions request; a real one unless given (tests move the clock). */
  readonly sleep?: Sleep;
  /** Where log lines go; defaults to standard error. */
  readonly sink?: LogSink;
  /** Where logins are kept; defaults to the file at `config.tokensPath`. */
  readonly persistence?: TokenPersistence;
  /** Writes debug lines too (`--log.level debug`). */
  readonly debug?: boolean;
  /** Gzips the exposition for scrapers that take gzip; `CompressionStream` by default (tests count calls). */
  readonly gzip?: Gzip;
  /** Basic auth and headers from the web config; none by default. */
  readonly gate?: WebGate;
  /** Opens the data store at `config.dataPath`; {@link openKv} by default (tests hand in a store that fails). */
  readonly openKv?: (location: string) => Promise<Result<OpenedKv>>;
}

/** The assembled exporter, ready to be served and polled. */
export interface Exporter {
  readonly app: Hono;
  /** The request handler for `Deno.serve`: the app's own `fetch`. */
  readonly handler: (request: Request) => Response | Promise<Response>;
  readonly poller: Poller;
  readonly sessions: Sessions;
  readonly snapshot: Snapshot;
  readonly store: TokenStore;
  /**
   * Stops polling and waits for a running poll, a login or refresh in flight and its token write:
   * once Monzo has rotated the tokens, only the write keeps the login. Closing again waits for the same.
   */
  close(): Promise<void>;
}

/**
 * Wires config → Monzo client → sessions → poller → snapshot → exposition → HTTP app. The error is
 * one line: the data store cannot be opened.
 */
export async function createExporter(options: ExporterOptions): Promise<Result<Exporter>> {
  const { config, build } = options;
  const clock = options.clock ?? systemClock;
  // The logger is needed to open the store, and must mask the tokens the store then holds.
  const held: { store?: TokenStore } = {};
  const log = createLogger({
    sink: options.sink,
    debug: options.debug,
    now: () => clock.now(),
    secrets: () => [
      config.clientSecret,
      config.authKey,
      ...(held.store?.logins() ?? []).flatMap((login) => [login.accessToken, login.refreshToken ?? ""]),
    ],
  });
  const persistence = options.persistence ?? tokenFile(config.tokensPath);
  const store = await TokenStore.open(persistence, log);
  held.store = store;
  // One handle for the life of the process, closed by close(); a failing store is a poll's problem.
  const opened = await (options.openKv ?? ((location) => openKv(location, () => clock.now())))(config.dataPath);
  if (!opened.ok) return err(opened.error);
  const kv = opened.value.kv;
  if (opened.value.movedAside) {
    log.warn(
      `The data store "${config.dataPath}" was not readable and is kept as "${opened.value.movedAside}"; a new ` +
        "one is filled from Monzo (log in again within 5 minutes to import the full history)",
    );
  }
  const transactions = await TransactionStore.open(kv, {
    decode: decodeStoredTransaction,
    // A pay-day month may start up to five days before its start day: its salary is held from there.
    recentSince: config.paydayMinMinor === null
      ? budgetMonth(clock.now(), config.monthStartDay).start
      : paydayHeldFrom(clock.now(), config.monthStartDay),
    location: config.dataPath,
    clock,
  });
  if (!transactions.ok) {
    kv.close();
    return err(transactions.error);
  }
  if (transactions.value.dropped > 0) {
    log.warn(`${transactions.value.dropped} stored transactions could not be read and are read again from Monzo`);
  }
  for (const account of transactions.value.restarted) {
    log.warn(
      `The data store has no usable counting start for account ${account} (an older store): monzo_spent_total ` +
        "and monzo_received_total start again from 0 now, counting what settles from now on",
    );
  }
  // The poller keeps the steps' states, their memory inside; the snapshot gets only what they publish.
  const steps = startSteps({ config, transactions: transactions.value, log, sleep: options.sleep });
  const snapshot = new Snapshot(build, steps.map(publishStep));
  snapshot.setLogins(store.statuses(), store.loadError);
  store.onChange(() => snapshot.setLogins(store.statuses(), store.loadError));
  const client = createMonzoClient({
    apiUrl: config.apiUrl,
    timeoutMs: config.requestTimeoutMs,
    clock,
    onRequest: (endpoint, code) => snapshot.countRequest(endpoint, code),
  });
  const sessions = createSessions({ config, client, store, clock, log });
  const poller = createPoller({
    config,
    client,
    sessions,
    store,
    snapshot,
    steps,
    clock,
    log,
    storeName: persistence.name,
  });
  let closing: Promise<void> | null = null;
  const watch = createLoginWatch({ store, sessions, client, poller, snapshot, clock });
  const app = createApp({
    config,
    snapshot,
    exposition: createExpositionCache(snapshot, { gzip: options.gzip }),
    states: createLoginStates({ clock }),
    sessions,
    clock,
    log,
    onLogin: () => {
      void poller.poll();
      watch.start();
    },
    version: build.version,
    demo: build.mode === "demo",
    gate: options.gate,
  });
  return ok({
    app,
    handler: (request) => app.fetch(request),
    poller,
    sessions,
    snapshot,
    store,
    close() {
      closing ??= (async () => {
        await watch.close();
        await poller.close();
        await sessions.idle();
        kv.close();
      })();
      return closing;
    },
  });
}
