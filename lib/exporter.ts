import type { Hono } from "hono";
import { createApp } from "./app.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Config } from "./config.ts";
import { createExpositionCache } from "./exposition.ts";
import { createLogger, type LogSink } from "./log.ts";
import { createLoginStates } from "./login_states.ts";
import { createMonzoClient } from "./monzo_client.ts";
import { createPoller, type Poller } from "./poller.ts";
import { createSessions, type Sessions } from "./sessions.ts";
import { type BuildInfo, Snapshot } from "./snapshot.ts";
import { tokenFile, type TokenPersistence } from "./token_file.ts";
import { TokenStore } from "./token_store.ts";

/** Options of {@link createExporter}. */
export interface ExporterOptions {
  readonly config: Config;
  readonly build: BuildInfo;
  readonly clock?: Clock;
  /** Where log lines go; defaults to standard error. */
  readonly sink?: LogSink;
  /** Where logins are kept; defaults to the file at `config.tokensPath`. */
  readonly persistence?: TokenPersistence;
  /** Writes debug lines too (`--log.level debug`). */
  readonly debug?: boolean;
}

/** The assembled exporter, ready to be served and polled. */
export interface Exporter {
  readonly app: Hono;
  /** The request handler for `Deno.serve`. */
  readonly handler: (request: Request) => Response | Promise<Response>;
  readonly poller: Poller;
  readonly sessions: Sessions;
  readonly snapshot: Snapshot;
  readonly store: TokenStore;
  /** Stops polling and waits for a running poll to end. */
  close(): Promise<void>;
}

/** Wires config → Monzo client → sessions → poller → snapshot → exposition → HTTP app. */
export async function createExporter(options: ExporterOptions): Promise<Exporter> {
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
  const store = await TokenStore.open(options.persistence ?? tokenFile(config.tokensPath), log);
  held.store = store;
  const snapshot = new Snapshot(build);
  snapshot.setLogins(store.statuses(), store.loadError);
  store.onChange(() => snapshot.setLogins(store.statuses(), store.loadError));
  const client = createMonzoClient({
    apiUrl: config.apiUrl,
    timeoutMs: config.requestTimeoutMs,
    onRequest: (endpoint, code) => snapshot.countRequest(endpoint, code),
  });
  const sessions = createSessions({ config, client, store, clock, log });
  const poller = createPoller({ config, client, sessions, store, snapshot, clock, log });
  const app = createApp({
    config,
    snapshot,
    exposition: createExpositionCache(snapshot),
    states: createLoginStates({ clock }),
    sessions,
    clock,
    log,
    onLogin: () => void poller.poll(),
    version: build.version,
    demo: build.mode === "demo",
  });
  return {
    app,
    handler: (request) => app.fetch(request),
    poller,
    sessions,
    snapshot,
    store,
    close: () => poller.close(),
  };
}
