import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { isBadAccessToken, type MonzoClient, type MonzoFailure, needsAppApproval } from "./monzo_client.ts";
import { loginLink } from "./oauth.ts";
import type { Sessions } from "./sessions.ts";
import type { AccountEntry, AccountValues, Snapshot, UserState } from "./snapshot.ts";
import type { StoredLogin } from "./token_file.ts";
import { loginKey, type TokenStore } from "./token_store.ts";

/** Account types that hold no money of their own to export (Monzo answers 403 for their balance). */
export const SKIPPED_ACCOUNT_TYPES: readonly string[] = ["uk_monzo_flex_backing_loan"];

/** How often the account list is read again even when nothing suggests it changed. */
export const REDISCOVER_AFTER_MS = 60 * 60_000;

/** Backoff after a 429 without `Retry-After`: 60 s, doubling per consecutive 429, at most 15 min. */
export function rateLimitBackoffSeconds(retryAfter: number | undefined, streak: number): number {
  if (retryAfter !== undefined) return Math.min(Math.max(retryAfter, 1), 3600);
  return Math.min(60 * 2 ** streak, 900);
}

/** Options of {@link createPoller}. */
export interface PollerOptions {
  readonly config: Pick<Config, "accountId" | "publicUrl">;
  readonly client: MonzoClient;
  readonly sessions: Sessions;
  readonly store: TokenStore;
  readonly snapshot: Snapshot;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Reads Monzo into the snapshot; polls never overlap. */
export interface Poller {
  /** Runs a poll, or joins the one that is queued; never rejects. */
  poll(): Promise<void>;
  /** Cancels a running poll and refuses new ones. */
  close(): Promise<void>;
}

/** Thrown inside a poll to end it early: Monzo cannot be reached or asked us to slow down. */
class PollStop {
  constructor(readonly message: string, readonly backoffUntil: number | null = null) {}
}

/** Creates the poller: one poll at a time, and at most one more queued behind it. */
export function createPoller(options: PollerOptions): Poller {
  const { store, snapshot, clock, log } = options;
  const controller = new AbortController();
  let running: Promise<void> = Promise.resolve();
  let queued: Promise<void> | null = null;
  let discoveredFor: string | null = null;
  let discoveryFailed = false;
  let loggedProblems = new Set<string>();

  async function runPoll(): Promise<void> {
    const startedAt = clock.now();
    const state = snapshot.state;
    if (state.backoffUntil !== null && startedAt < state.backoffUntil) return;
    const run = new PollRun(options, controller.signal, startedAt);
    try {
      await store.flush();
      const usable = await run.prepareLogins();
      const keys = usable.map(loginKey).sort().join(" ");
      const due = discoveryFailed || discoveredFor !== keys || state.discoveredAt === null ||
        startedAt - state.discoveredAt >= REDISCOVER_AFTER_MS;
      let accounts = state.accounts;
      if (due && usable.length > 0) {
        const found = await run.discover(usable, state.accounts);
        accounts = found.accounts;
        discoveryFailed = !found.complete;
        discoveredFor = keys;
        run.accounts = found.accounts;
      }
      await run.readAccounts(accounts);
    } catch (error) {
      if (!(error instanceof PollStop)) throw error;
      run.problems.push(error.message);
      run.backoffUntil = error.backoffUntil;
    }
    if (controller.signal.aborted) return;
    // Checked at the end: a refresh during the poll may have failed to reach the disk.
    if (store.writeError) run.problems.push(store.writeError);
    const report = run.report(clock.now());
    logChanges(state.users, report.users, report.problems);
    snapshot.applyPoll(report);
  }

  // Problems are logged when they appear and when they clear, not every minute.
  function logChanges(
    before: ReadonlyMap<string, UserState>,
    after: ReadonlyMap<string, UserState>,
    problems: readonly string[],
  ) {
    for (const [key, userState] of after) {
      const previous = before.get(key);
      if (userState.status === "ok" && previous && previous.status !== "ok") {
        log.info(`Reading the accounts of ${key || "the stored login"} works again`);
      }
    }
    const current = new Set(problems);
    for (const problem of current) if (!loggedProblems.has(problem)) log.warn(problem);
    if (current.size === 0 && loggedProblems.size > 0) log.info("The poll succeeded again; every problem is cleared");
    loggedProblems = current;
  }

  return {
    poll() {
      if (controller.signal.aborted) return Promise.resolve();
      if (queued) return queued;
      const next = running.then(() => {
        queued = null;
        return runPoll();
      }).catch((error) => {
        // A bug must not stop the schedule; say it loudly instead.
        log.error(`The poll failed unexpectedly: ${error instanceof Error ? error.stack ?? error.message : error}`);
      });
      queued = next;
      running = next;
      return next;
    },
    async close() {
      controller.abort();
      await running;
    },
  };
}

/** The working state of one poll. */
class PollRun {
  readonly problems: string[] = [];
  readonly users = new Map<string, UserState>();
  readonly values = new Map<string, AccountValues>();
  readonly accountErrors = new Map<string, string>();
  accounts: readonly AccountEntry[] | undefined = undefined;
  backoffUntil: number | null = null;

  constructor(
    readonly options: PollerOptions,
    readonly signal: AbortSignal,
    readonly startedAt: number,
  ) {}

  /** Refreshes every login that needs it and learns unknown user ids; returns the usable ones. */
  async prepareLogins(): Promise<StoredLogin[]> {
    const { store, sessions, config } = this.options;
    const usable: StoredLogin[] = [];
    const past = store.statuses().filter((status) => !status.loggedIn);
    for (const status of past) if (!status.loggedIn) this.setUser(status.userId, "logged_out", status.reason);
    if (store.logins().length === 0 && past.length === 0) {
      this.problems.push(`No Monzo login yet: log in at ${loginLink(config)}`);
      return usable;
    }
    for (const stored of store.logins()) {
      const key = loginKey(stored);
      const fresh = await sessions.fresh(key);
      if (!fresh.ok) {
        this.setUser(key, fresh.error.kind === "logged_out" ? "logged_out" : "error", fresh.error.message);
        continue;
      }
      const refreshProblem = sessions.refreshProblem(key);
      if (refreshProblem) this.problems.push(refreshProblem);
      let login = fresh.value;
      if (login.userId === null) {
        let identified = await sessions.identify(key, this.signal);
        if (!identified.ok && isBadAccessToken(identified.error)) {
          // Evicted or expired early: a refresh renews the token and names its user as well.
          const renewed = await sessions.fresh(key, { force: true });
          if (!renewed.ok) {
            this.setUser(key, renewed.error.kind === "logged_out" ? "logged_out" : "error", renewed.error.message);
            continue;
          }
          identified = renewed;
        }
        if (!identified.ok) {
          if (this.handleLoginFailure(key, identified.error)) continue;
          // The token may still read the accounts; the poll is not a full success all the same.
          this.problems.push(
            `Cannot tell which Monzo user the stored login belongs to (${identified.error.detail}); ` +
              `Monzo is asked again at the next poll`,
          );
        } else {
          login = identified.value;
        }
      }
      usable.push(login);
      this.users.set(loginKey(login), { status: "ok" });
    }
    return usable;
  }

  /**
   * Reads `/accounts` for every usable login and merges the lists (a joint account once). Accounts
   * of logins that could not be asked are kept from the previous list, so their last values stay.
   */
  async discover(
    logins: readonly StoredLogin[],
    previous: readonly AccountEntry[],
  ): Promise<{ accounts: AccountEntry[]; complete: boolean }> {
    const { config } = this.options;
    const found = new Map<string, AccountEntry & { visibleTo: string[] }>();
    const asked = new Set<string>();
    let complete = true;
    for (const login of logins) {
      const key = loginKey(login);
      const answer = await this.withLogin(key, (token) => this.options.client.accounts(token, this.signal));
      if (!answer.ok) {
        complete = false;
        // A login problem (approval, dead token) is already the user's message; anything else
        // (a 5xx, a malformed answer) must still fail the poll, or monzo_up says 1 with no accounts.
        if (this.users.get(key)?.status === "ok") {
          this.problems.push(
            `Cannot list the accounts of ${key || "the stored login"}: ${answer.error.detail}; ` +
              `the accounts found before are kept and the next poll tries again`,
          );
        }
        continue;
      }
      asked.add(key);
      for (const account of answer.value) {
        if (account.closed || SKIPPED_ACCOUNT_TYPES.includes(account.type)) continue;
        if (config.accountId !== null && account.id !== config.accountId) continue;
        const seen = found.get(account.id);
        if (seen) {
          if (!seen.visibleTo.includes(key)) seen.visibleTo.push(key);
          continue;
        }
        found.set(account.id, {
          id: account.id,
          type: account.type,
          description: account.description,
          owners: account.owners.map((owner) => owner.preferred_name ?? owner.user_id),
          visibleTo: [key],
        });
      }
    }
    for (const entry of previous) {
      if (!found.has(entry.id) && !entry.visibleTo.some((key) => asked.has(key))) {
        found.set(entry.id, { ...entry, visibleTo: [...entry.visibleTo] });
      }
    }
    if (complete && config.accountId !== null && !found.has(config.accountId)) {
      this.problems.push(
        `account_id ${config.accountId} is not an open account of the logged-in users: ` +
          `fix account_id in the config, or remove it to export every open account`,
      );
    }
    const accounts = [...found.values()];
    accounts.sort((a, b) => a.id.localeCompare(b.id));
    return { accounts, complete };
  }

  /** Reads `/balance` and `/pots` of every account through a login that can see it. */
  async readAccounts(accounts: readonly AccountEntry[]): Promise<void> {
    const { client, clock } = this.options;
    for (const account of accounts) {
      const reader = account.visibleTo.find((key) => this.users.get(key)?.status === "ok");
      if (reader === undefined) {
        this.accountErrors.set(account.id, "no login that can read it is working");
        continue;
      }
      const balance = await this.withLogin(reader, (token) => client.balance(token, account.id, this.signal));
      if (!balance.ok) {
        this.accountFailed(account, balance.error);
        continue;
      }
      const pots = await this.withLogin(reader, (token) => client.pots(token, account.id, this.signal));
      if (!pots.ok) {
        this.accountFailed(account, pots.error);
        continue;
      }
      this.values.set(account.id, {
        balance: balance.value,
        pots: pots.value.filter((pot) => !pot.deleted),
        at: clock.now(),
      });
    }
  }

  /** Calls Monzo with the login's token; after a 401 it renews the token once and tries again. */
  async withLogin<T>(
    key: string,
    call: (token: string) => Promise<{ ok: true; value: T } | { ok: false; error: MonzoFailure }>,
  ): Promise<{ ok: true; value: T } | { ok: false; error: MonzoFailure }> {
    const { store, sessions } = this.options;
    const login = store.get(key);
    if (!login) return { ok: false, error: { kind: "invalid_response", endpoint: "", detail: "login gone" } };
    let answer = await call(login.accessToken);
    if (!answer.ok && isBadAccessToken(answer.error)) {
      // Expired early or evicted: a refresh gives a new token without the user's help.
      const renewed = await sessions.fresh(key, { force: true });
      if (renewed.ok) answer = await call(renewed.value.accessToken);
      else {
        this.setUser(key, renewed.error.kind === "logged_out" ? "logged_out" : "error", renewed.error.message);
        return answer;
      }
    }
    if (!answer.ok) this.handleLoginFailure(key, answer.error);
    return answer;
  }

  /**
   * Records what a failed call means for the login; stops the poll when Monzo is unreachable
   * or rate limiting. True when the login cannot be used for the rest of the poll.
   */
  handleLoginFailure(key: string, failure: MonzoFailure): boolean {
    const { config } = this.options;
    const who = key || "the stored login";
    if (failure.kind === "aborted") throw new PollStop("The poll was cancelled because the exporter is stopping");
    if (failure.status === 429) {
      const streak = this.options.snapshot.state.rateLimitStreak;
      const seconds = rateLimitBackoffSeconds(failure.retryAfterSeconds, streak);
      const until = this.startedAt + seconds * 1000;
      throw new PollStop(
        `Monzo is rate limiting the exporter (HTTP 429 on ${failure.endpoint}); polling pauses until ` +
          `${new Date(until).toISOString()}. Avoid other apps using the same OAuth client`,
        until,
      );
    }
    if (failure.kind === "timeout" || failure.kind === "network") {
      throw new PollStop(`${failure.detail}; the last values are kept and the next poll tries again`);
    }
    if (needsAppApproval(failure)) {
      this.setUser(
        key,
        "awaiting_approval",
        `The login of ${who} is waiting for approval in the Monzo app (or the approval lapsed): open the ` +
          `Monzo app and allow access; if no request shows there, log in again at ${loginLink(config)}`,
      );
      return true;
    }
    if (isBadAccessToken(failure)) {
      this.setUser(
        key,
        "error",
        `Monzo refused the access token of ${who} (${failure.detail}) and it could not be renewed; ` +
          `it is tried again at the next poll; if this persists, log in again at ${loginLink(config)}`,
      );
      return true;
    }
    return false;
  }

  accountFailed(account: AccountEntry, failure: MonzoFailure): void {
    const state = [...account.visibleTo].map((key) => this.users.get(key)?.status);
    // When the login itself stopped working, the user's message says it all.
    if (state.every((status) => status !== "ok")) {
      this.accountErrors.set(account.id, "its login is not working");
      return;
    }
    const message = `Cannot read account ${account.id}: ${failure.detail}; its last values are kept`;
    this.accountErrors.set(account.id, failure.detail);
    this.problems.push(message);
  }

  setUser(key: string, status: Exclude<UserState["status"], "ok">, message: string): void {
    this.users.set(key, { status, message });
  }

  report(finishedAt: number) {
    const userProblems = [...this.users.values()].flatMap((user) => user.status === "ok" ? [] : [user.message]);
    return {
      startedAt: this.startedAt,
      finishedAt,
      problems: [...userProblems, ...this.problems],
      users: this.users,
      accounts: this.accounts,
      values: this.values,
      accountErrors: this.accountErrors,
      backoffUntil: this.backoffUntil,
    };
  }
}
