import type { Balance, Pot } from "./monzo_schemas.ts";
import type { LoginStatus } from "./token_store.ts";

/** What build is running, for `monzo_exporter_build_info`. */
export interface BuildInfo {
  readonly version: string;
  /** `demo` when serving the built-in simulated Monzo. */
  readonly mode: "live" | "demo";
}

/** An account found by discovery (or named by `account_id`). */
export interface AccountEntry {
  readonly id: string;
  readonly type: string;
  readonly description: string;
  /** Owners' preferred names, as Monzo lists them. */
  readonly owners: readonly string[];
  /** Keys of the logins that can read it; a joint account has two. */
  readonly visibleTo: readonly string[];
}

/** The figures read for one account in one poll. */
export interface AccountValues {
  readonly balance: Balance;
  /** Pots that are not deleted. */
  readonly pots: readonly Pot[];
  /** When they were read, epoch ms. */
  readonly at: number;
}

/** How a login fared in the last poll. */
export type UserState =
  | { readonly status: "ok" }
  | { readonly status: "awaiting_approval" | "error" | "logged_out"; readonly message: string };

/** The last poll's timing and any problems, each a sentence saying what to do. */
export interface PollSummary {
  readonly startedAt: number;
  readonly durationSeconds: number;
  readonly problems: readonly string[];
}

/** What one poll found, handed to {@link Snapshot.applyPoll}. */
export interface PollReport {
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly problems: readonly string[];
  /** State per login key. */
  readonly users: ReadonlyMap<string, UserState>;
  /** The complete account list when this poll rediscovered it. */
  readonly accounts?: readonly AccountEntry[];
  /** New figures for the accounts read successfully. */
  readonly values: ReadonlyMap<string, AccountValues>;
  /** Why other accounts could not be read. */
  readonly accountErrors: ReadonlyMap<string, string>;
  /** Set when Monzo asked the exporter to slow down. */
  readonly backoffUntil: number | null;
}

/** Everything the pages and the exposition show; replaced as a whole on every change. */
export interface SnapshotState {
  readonly build: BuildInfo;
  readonly accounts: readonly AccountEntry[];
  readonly discoveredAt: number | null;
  readonly values: ReadonlyMap<string, AccountValues>;
  readonly accountErrors: ReadonlyMap<string, string>;
  readonly users: ReadonlyMap<string, UserState>;
  readonly logins: readonly LoginStatus[];
  /** Why the stored logins could not be read at start. */
  readonly loginsError: string | null;
  readonly lastPoll: PollSummary | null;
  readonly lastSuccessAt: number | null;
  readonly backoffUntil: number | null;
  /** Consecutive polls that met a 429, for growing backoff. */
  readonly rateLimitStreak: number;
  /** Requests made to Monzo, keyed by `endpoint code`. */
  readonly requests: ReadonlyMap<string, number>;
}

/** The exporter's view of Monzo after the last poll; the only state besides the token store. */
export class Snapshot {
  #state: SnapshotState;

  constructor(build: BuildInfo) {
    this.#state = {
      build,
      accounts: [],
      discoveredAt: null,
      values: new Map(),
      accountErrors: new Map(),
      users: new Map(),
      logins: [],
      loginsError: null,
      lastPoll: null,
      lastSuccessAt: null,
      backoffUntil: null,
      rateLimitStreak: 0,
      requests: new Map(),
    };
  }

  /** The current state; a new object after every change, so identity tells change. */
  get state(): SnapshotState {
    return this.#state;
  }

  /** Counts one request to Monzo. */
  countRequest(endpoint: string, code: string): void {
    const key = `${endpoint} ${code}`;
    const requests = new Map(this.#state.requests);
    requests.set(key, (requests.get(key) ?? 0) + 1);
    this.#state = { ...this.#state, requests };
  }

  /** Records the logins as the token store now has them. */
  setLogins(logins: readonly LoginStatus[], loginsError: string | null): void {
    this.#state = { ...this.#state, logins, loginsError };
  }

  /** Folds a poll's findings in: new figures replace old, failed accounts keep their last ones. */
  applyPoll(report: PollReport): void {
    const old = this.#state;
    const accounts = report.accounts ?? old.accounts;
    const listed = new Set(accounts.map((account) => account.id));
    const values = new Map([...old.values].filter(([id]) => listed.has(id)));
    for (const [id, figures] of report.values) values.set(id, figures);
    const rateLimited = report.backoffUntil !== null;
    this.#state = {
      ...old,
      accounts,
      discoveredAt: report.accounts ? report.finishedAt : old.discoveredAt,
      values,
      accountErrors: report.accountErrors,
      users: report.users,
      lastPoll: {
        startedAt: report.startedAt,
        durationSeconds: (report.finishedAt - report.startedAt) / 1000,
        problems: report.problems,
      },
      lastSuccessAt: report.problems.length === 0 ? report.finishedAt : old.lastSuccessAt,
      backoffUntil: report.backoffUntil,
      rateLimitStreak: rateLimited ? old.rateLimitStreak + 1 : 0,
    };
  }
}
