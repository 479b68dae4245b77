import type { Clock } from "../shared/clock.ts";
import type { MonzoClient } from "../monzo/monzo_client.ts";
import { FULL_HISTORY_MS } from "../poll/transactions_step.ts";
import type { Poller } from "../poll/poller.ts";
import type { Sessions } from "../logins/sessions.ts";
import type { Snapshot } from "../exposition/snapshot.ts";
import { loginKey, type TokenStore } from "../logins/token_store.ts";

/** Watches new logins until they are approved in the Monzo app. */
export interface LoginWatch {
  /** Starts watching (again) after a browser login; does nothing while a watch is running. */
  start(): void;
  /** Stops watching and waits for a probe or poll it started. */
  close(): Promise<void>;
}

/** Options of {@link createLoginWatch}. */
export interface LoginWatchOptions {
  readonly store: TokenStore;
  readonly sessions: Sessions;
  readonly client: MonzoClient;
  readonly poller: Poller;
  readonly snapshot: Snapshot;
  readonly clock: Clock;
  /** Time between two questions to Monzo; a few seconds by default. */
  readonly intervalMs?: number;
}

/**
 * After a browser login, asks Monzo every few seconds (one `/accounts` request per new login) whether
 * the user has approved the login in the app, and polls as soon as they have. The user approves after
 * the callback, and the full history can only be imported in the 5 minutes after the login, so
 * waiting for the next minute's poll could waste most of them. A whole poll every few seconds would
 * cost ten times the requests and invite Monzo's rate limit.
 */
export function createLoginWatch(options: LoginWatchOptions): LoginWatch {
  const { store, sessions, client, poller, snapshot, clock } = options;
  const intervalMs = options.intervalMs ?? 5_000;
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | null = null;

  /** Logins issued less than 5 minutes ago that the last poll could not read yet. */
  function waiting(): string[] {
    const now = clock.now();
    return store.logins().filter((login) =>
      login.grantedAt !== undefined && now < login.grantedAt + FULL_HISTORY_MS &&
      snapshot.state.users.get(loginKey(login))?.status !== "ok"
    ).map(loginKey);
  }

  async function tick(): Promise<void> {
    timer = undefined;
    const keys = waiting();
    if (keys.length === 0 || controller.signal.aborted) return;
    for (const key of keys) {
      const probe = await sessions.call(key, (token) => client.accounts(token, controller.signal));
      if (probe.ok) {
        await poller.poll();
        break;
      }
    }
    if (!controller.signal.aborted && waiting().length > 0) timer = setTimeout(run, intervalMs);
  }

  function run(): void {
    running = tick().finally(() => running = null);
  }

  return {
    start() {
      if (controller.signal.aborted || running !== null || timer !== undefined) return;
      timer = setTimeout(run, intervalMs);
    },
    async close() {
      controller.abort();
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
