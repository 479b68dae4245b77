import type { Clock } from "../shared/clock.ts";
import type { Config } from "../config/config.ts";
import type { Logger } from "../shared/log.ts";
import type { DeclaredFamily } from "../shared/metric_family.ts";
import { isBadAccessToken, type MonzoClient, type MonzoFailure, needsAppApproval } from "../monzo/monzo_client.ts";
import { loginLink } from "../monzo/oauth.ts";
import { type AccountEntry, type CallFailure, publishStep, type StepContext, type StepState } from "./step.ts";
import type { OwnAccount } from "../spending/classify.ts";
import { type Problem, problem } from "../shared/problems.ts";
import { err, type Result } from "../shared/result.ts";
import type { SessionFailure, Sessions } from "../logins/sessions.ts";
import { isHealthy, type PollReport, type PollSink, type PublishedPoll, type UserState } from "./report.ts";
import { loginKey, type TokenStore } from "../logins/token_store.ts";
import { errorMessage } from "../shared/error_message.ts";

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
  /** Where each poll publishes what it found; the poller never reads its memory back from it. */
  readonly snapshot: PollSink;
  /** The steps before their first run; from then on their states are the poller's own memory. */
  readonly steps: readonly StepState[];
  readonly clock: Clock;
  readonly log: Logger;
  /** What the tokens store is called in messages (its file path). */
  readonly storeName: string;
}

/** Reads Monzo into the snapshot; polls never overlap. */
export interface Poller {
  /** Runs a poll, or joins the one that is queued; never rejects. */
  poll(): Promise<void>;
  /** Cancels a running poll and refuses new ones. */
  close(): Promise<void>;
}

/** What the poller alone remembers from one poll to the next; the snapshot gets only a published copy. */
interface PollMemory {
  /** Each step's state, its own memory sealed inside. */
  readonly steps: readonly StepState[];
  /** The discovery step's accounts, for the steps that read accounts. */
  readonly accounts: readonly AccountEntry[];
  /** Every account the discovery step has seen, for recognising internal transfers. */
  readonly ownAccounts: readonly OwnAccount[];
  /** No poll calls Monzo before this time, epoch ms; set when Monzo asked the exporter to slow down. */
  readonly backoffUntil: number | null;
  /** Consecutive polls that met a 429, for growing backoff. */
  readonly rateLimitStreak: number;
  /** The last poll's report, to log problems when they appear and when they clear. */
  readonly last: PollReport | null;
}

/** Creates the poller: one poll at a time, and at most one more queued behind it. */
export function createPoller(options: PollerOptions): Poller {
  const { snapshot, log } = options;
  const controller = new AbortController();
  let memory: PollMemory = {
    steps: options.steps,
    accounts: [],
    ownAccounts: [],
    backoffUntil: null,
    rateLimitStreak: 0,
    last: null,
  };
  let running: Promise<void> = Promise.resolve();
  let queued: Promise<void> | null = null;

  return {
    poll() {
      if (controller.signal.aborted) return Promise.resolve();
      if (queued) return queued;
      const next = running.then(async () => {
        queued = null;
        const before = memory;
        const outcome = await runPoll(options, before, controller.signal);
        if (outcome === null || controller.signal.aborted) return;
        memory = outcome;
        snapshot.applyPoll(outcome.last);
        logChanges(log, before.last, outcome.last);
      }).catch((error) => {
        // A bug must not stop the schedule; one line says so (the stack is for a debugger, not the log).
        log.error(`The poll failed unexpectedly: ${errorMessage(error)}`);
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

interface Halt {
  readonly detail: string;
  readonly backoffUntil: number | null;
}

function isSessionFailure(failure: MonzoFailure | SessionFailure): failure is SessionFailure {
  return failure.kind === "logged_out" || failure.kind === "unavailable";
}

function problemKey(p: Problem): string {
  return `${p.code} ${p.subject} ${p.message}`;
}

// Problems are logged when they appear and when they clear, not every minute.
function logChanges(log: Logger, before: PollReport | null, after: PollReport): void {
  for (const [key, user] of after.users) {
    const previous = before?.users.get(key);
    if (user.status === "ok" && previous && previous.status !== "ok") {
      log.info(`Reading the accounts of ${key || "the stored login"} works again`);
    }
  }
  const earlier = new Set((before?.problems ?? []).map(problemKey));
  const now = after.problems;
  for (const p of now) if (!earlier.has(problemKey(p))) log.warn(p.message);
  if (now.length === 0 && earlier.size > 0) log.info("The poll succeeded again; every problem is cleared");
}

/** One poll: prepares the logins, runs every step from the memory before, and returns the next; null when skipped. */
async function runPoll(
  options: PollerOptions,
  before: PollMemory,
  signal: AbortSignal,
): Promise<PollMemory & { readonly last: PollReport } | null> {
  const { store, sessions, clock, config, client } = options;
  const startedAt = clock.now();
  if (before.backoffUntil !== null && startedAt < before.backoffUntil) return null;
  const link = loginLink(config);
  const users = new Map<string, UserState>();
  const pollProblems: Problem[] = [];
  // Set when the rest of the poll must not call Monzo (rate limited, unreachable, stopping).
  const halted: { now: Halt | null } = { now: null };

  const setUser = (key: string, status: Exclude<UserState["status"], "ok">, p: Problem) =>
    users.set(key, { status, problem: p });

  /** Records what a failure means for the login or the whole poll; true when it was recorded so. */
  function recordFailure(key: string, failure: MonzoFailure | SessionFailure): boolean {
    if (isSessionFailure(failure)) {
      setUser(key, failure.kind === "logged_out" ? "logged_out" : "error", failure.problem);
      return true;
    }
    if (failure.kind === "aborted") {
      halted.now = { detail: "the exporter is stopping", backoffUntil: null };
      return true;
    }
    if (failure.status === 429) {
      const seconds = rateLimitBackoffSeconds(failure.retryAfterSeconds, before.rateLimitStreak);
      const until = startedAt + seconds * 1000;
      halted.now = { detail: "Monzo asked the exporter to slow down", backoffUntil: until };
      pollProblems.push(problem("rate_limited", failure.endpoint, { until }));
      return true;
    }
    if (failure.kind === "timeout" || failure.kind === "network") {
      halted.now = { detail: "Monzo could not be reached", backoffUntil: null };
      pollProblems.push(problem("unreachable", failure.endpoint, { detail: failure.detail }));
      return true;
    }
    if (needsAppApproval(failure)) {
      setUser(key, "awaiting_approval", problem("awaiting_approval", key, { loginLink: link }));
      return true;
    }
    if (isBadAccessToken(failure)) {
      setUser(key, "error", problem("token_refused", key, { detail: failure.detail, loginLink: link }));
      return true;
    }
    return false;
  }

  // A function, not a property read, so the compiler does not assume it unchanged across awaits.
  const haltDetail = (): string | undefined => halted.now?.detail;
  const works = (key: string) => users.get(key)?.status === "ok";

  async function call<T>(
    key: string,
    request: (token: string) => Promise<Result<T, MonzoFailure>>,
  ): Promise<Result<T, CallFailure>> {
    if (halted.now) return err({ kind: "skipped", detail: halted.now.detail });
    if (!works(key)) return err({ kind: "skipped", detail: "its login is not working" });
    const answer = await sessions.call(key, request);
    if (answer.ok) return answer;
    const failure = answer.error;
    if (recordFailure(key, failure) || isSessionFailure(failure)) {
      return err({ kind: "skipped", detail: haltDetail() ?? "its login is not working" });
    }
    return err({ kind: "failed", failure, detail: failure.detail });
  }

  // The logins are read only once no browser login, refresh or identification is in flight: one
  // that lands mid-poll would change the set under it (a login the poll calls "no login yet", a
  // login moved under its user id while the poll asks for it under "").
  await sessions.idle();
  if (signal.aborted) return null;
  // Flushed first: a write that failed in an earlier poll is retried before anything new.
  await store.flush();

  // Logins: those Monzo ended, then every stored one refreshed if due and identified if needed.
  for (const status of store.statuses()) {
    if (!status.loggedIn) setUser(status.userId, "logged_out", status.problem);
  }
  if (store.logins().length === 0 && users.size === 0) pollProblems.push(problem("no_login", "", { loginLink: link }));
  const usable: string[] = [];
  for (const stored of store.logins()) {
    if (halted.now) break;
    let key = loginKey(stored);
    const fresh = await sessions.fresh(key);
    if (!fresh.ok) {
      recordFailure(key, fresh.error);
      continue;
    }
    // A refresh names the user of a login from the original exporter's file and stores it under that id.
    key = loginKey(fresh.value.login);
    if (fresh.value.problem) pollProblems.push(fresh.value.problem);
    if (fresh.value.login.userId === null) {
      const identified = await sessions.identify(key, signal);
      if (identified.ok) key = loginKey(identified.value);
      else if (recordFailure(key, identified.error) || isSessionFailure(identified.error)) continue;
      // The token may still read the accounts; the poll is not a full success all the same.
      else pollProblems.push(problem("identify_failed", key, { detail: identified.error.detail }));
    }
    users.set(key, { status: "ok" });
    // Two stored logins can turn out to be one user's (an original-format one and a browser login).
    if (!usable.includes(key)) usable.push(key);
  }

  let accounts: readonly AccountEntry[] = before.accounts;
  let ownAccounts: readonly OwnAccount[] = before.ownAccounts;
  const steps: StepState[] = [];
  for (const step of before.steps) {
    const context: StepContext = {
      client,
      signal,
      now: () => clock.now(),
      accountId: config.accountId,
      logins: usable.filter(works),
      accounts,
      ownAccounts,
      readerOf: (account) => account.visibleTo.find(works),
      grantedAt: (key) => store.get(key)?.grantedAt ?? null,
      call,
    };
    const next = await step.next(context);
    if (next.accounts) accounts = next.accounts;
    if (next.ownAccounts) ownAccounts = next.ownAccounts;
    steps.push(next);
    // Shown at once: balances and pots are exported while the transactions step may still be importing.
    if (!signal.aborted) options.snapshot.showSteps([...steps, ...before.steps.slice(steps.length)].map(publishStep));
  }

  const userProblems = [...users.values()].flatMap((user) => user.status === "ok" ? [] : [user.problem]);
  const stepProblems = steps.flatMap((step) => step.problems);
  // Checked at the end: a refresh during the poll may have failed to reach the disk.
  const writeError = store.writeError;
  const storeProblems = writeError ? [problem("tokens_unwritable", options.storeName, { detail: writeError })] : [];
  const backoffUntil = halted.now?.backoffUntil ?? null;
  return {
    steps,
    accounts,
    ownAccounts,
    backoffUntil,
    rateLimitStreak: backoffUntil !== null ? before.rateLimitStreak + 1 : 0,
    last: {
      startedAt,
      finishedAt: clock.now(),
      problems: [...userProblems, ...pollProblems, ...stepProblems, ...storeProblems],
      users,
      steps: steps.map(publishStep),
      backoffUntil,
    },
  };
}

/** The poll's own families, from what it published: whether it succeeded, when, how long it took, and each step's outcome. */
export const POLL_FAMILIES: readonly DeclaredFamily<PublishedPoll>[] = [
  {
    name: "monzo_up",
    type: "gauge",
    help: "1 when the last poll of Monzo fully succeeded, 0 when it did not (the figures then come " +
      "from earlier polls; see the exporter's page for the reason).",
    samples: (state) => [{ labels: [], value: isHealthy(state) ? 1 : 0 }],
  },
  {
    name: "monzo_last_successful_poll_timestamp_seconds",
    type: "gauge",
    help: "Unix time at which the last fully successful poll of Monzo ended.",
    samples: (state) => state.lastSuccessAt === null ? [] : [{ labels: [], value: state.lastSuccessAt / 1000 }],
  },
  {
    name: "monzo_poll_duration_seconds",
    type: "gauge",
    help: "How long the last poll of Monzo took, in seconds.",
    samples: (state) => state.lastPoll === null ? [] : [{ labels: [], value: state.lastPoll.durationSeconds }],
  },
  {
    name: "monzo_poll_step_success",
    type: "gauge",
    help: "1 when the step did all of its work in the last poll, 0 when part of it failed (its figures " +
      "then come from earlier polls).",
    samples: (state) =>
      state.steps.filter((step) => step.ok !== null).map((step) => ({
        labels: [["step", step.name]] as const,
        value: step.ok ? 1 : 0,
      })),
  },
  {
    name: "monzo_poll_step_last_success_timestamp_seconds",
    type: "gauge",
    help: "Unix time at which the step last did all of its work.",
    samples: (state) =>
      state.steps.flatMap((step) =>
        step.lastSuccessAt === null
          ? []
          : [{ labels: [["step", step.name]] as const, value: step.lastSuccessAt / 1000 }]
      ),
  },
];

/** The poll's family of logins waiting for approval in the Monzo app, as the last poll found them. */
export const APPROVAL_FAMILIES: readonly DeclaredFamily<PublishedPoll>[] = [{
  name: "monzo_login_awaiting_approval",
  type: "gauge",
  help: "1 when the last poll found the user's login waiting for approval in the Monzo app (or the approval " +
    "lapsed), 0 otherwise.",
  samples: (state) =>
    state.logins.flatMap((login) =>
      login.loggedIn
        ? [{
          labels: [["user_id", login.userId ?? "unknown"]] as const,
          value: state.users.get(login.userId ?? "")?.status === "awaiting_approval" ? 1 : 0,
        }]
        : []
    ),
}];
