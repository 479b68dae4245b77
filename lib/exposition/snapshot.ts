import type { AccountEntry, StepView } from "../poll/step.ts";
import type { DeclaredFamily } from "../shared/metric_family.ts";
import { countRequest, type RequestCounts } from "../monzo/monzo_client.ts";
import type { LoginStatus } from "../logins/token_store.ts";
import type { PollReport, PollSink, PollSummary, PublishedPoll, UserState } from "../poll/report.ts";

export type { AccountEntry } from "../poll/step.ts";
export { isHealthy } from "../poll/report.ts";

/** What build is running, for `monzo_exporter_build_info`. */
export interface BuildInfo {
  readonly version: string;
  /** `demo` when serving the built-in simulated Monzo. */
  readonly mode: "live" | "demo";
}

/** The build's family, filled from the {@link BuildInfo} the snapshot is made with. */
export const BUILD_FAMILIES: readonly DeclaredFamily<BuildInfo>[] = [{
  name: "monzo_exporter_build_info",
  type: "gauge",
  help: "Version of the exporter, and mode demo when it serves a simulated Monzo; always 1.",
  samples: (build) => [{ labels: [["version", build.version], ["mode", build.mode]], value: 1 }],
}];

/** Everything the pages and the exposition show; replaced as a whole on every change. */
export interface SnapshotState extends PublishedPoll {
  readonly build: BuildInfo;
  /** What the poll's steps published after the last poll; their memory stays with the poller. */
  readonly steps: readonly StepView[];
  /** The exported accounts, from the discovery step. */
  readonly accounts: readonly AccountEntry[];
  readonly users: ReadonlyMap<string, UserState>;
  readonly logins: readonly LoginStatus[];
  /** Why the stored logins could not be read at start. */
  readonly loginsError: string | null;
  readonly lastPoll: PollSummary | null;
  readonly lastSuccessAt: number | null;
  /** Until when polling is paused at Monzo's request, as the poller published it; the poller keeps its own. */
  readonly backoffUntil: number | null;
  /** Requests made to Monzo, keyed by `endpoint code`. */
  readonly requests: RequestCounts;
}

/** How the last poll fared for one account: the first step's error, and when every step last read it. */
export interface AccountStatus {
  readonly error: string | null;
  /** The oldest of the steps' last successful reads, epoch ms; null before every step has read it. */
  readonly readAt: number | null;
  /** What the steps have to say about it (how far back its transaction history goes, say). */
  readonly notes: readonly string[];
}

/** The status of account `id` across the steps that read accounts. */
export function accountStatus(state: SnapshotState, id: string): AccountStatus {
  let error: string | null = null;
  let readAt: number | null = null;
  let reads = 0;
  const notes: string[] = [];
  for (const step of state.steps) {
    const read = step.reads.get(id);
    if (!read) continue;
    reads++;
    if (!read.ok) error ??= `${step.name}: ${read.detail}`;
    else {
      readAt = readAt === null ? read.at : Math.min(readAt, read.at);
      if (read.note) notes.push(read.note);
    }
  }
  return { error, readAt: reads > 0 && error === null ? readAt : null, notes };
}

/**
 * The published view of Monzo and of the poll that the pages and the exposition read; replaced as a
 * whole on each change. Its writers: the poller (poll results), the token store's changes (logins)
 * and the Monzo client's request count. It holds no memory the poll reads back.
 */
export class Snapshot implements PollSink {
  #state: SnapshotState;

  constructor(build: BuildInfo, steps: readonly StepView[]) {
    this.#state = {
      build,
      steps,
      accounts: [],
      users: new Map(),
      logins: [],
      loginsError: null,
      lastPoll: null,
      lastSuccessAt: null,
      backoffUntil: null,
      requests: new Map(),
    };
  }

  /** The current state; a new object after every change, so identity tells change. */
  get state(): SnapshotState {
    return this.#state;
  }

  /** Counts one request to Monzo. */
  countRequest(endpoint: string, code: string): void {
    this.#state = { ...this.#state, requests: countRequest(this.#state.requests, endpoint, code) };
  }

  /** Records the logins as the token store now has them. */
  setLogins(logins: readonly LoginStatus[], loginsError: string | null): void {
    this.#state = { ...this.#state, logins, loginsError };
  }

  /**
   * Shows a running poll's steps as they finish (`steps`: those done, then the rest as they were), so a
   * slow step (a long transactions import) holds back no other step's figures; the poll's outcome
   * comes with {@link applyPoll}.
   */
  showSteps(steps: readonly StepView[]): void {
    const accounts = steps.find((step) => step.accounts !== undefined)?.accounts ?? this.#state.accounts;
    this.#state = { ...this.#state, steps, accounts };
  }

  /** Folds a poll's findings in; each step has kept the last figures of what it could not read. */
  applyPoll(report: PollReport): void {
    const old = this.#state;
    this.#state = {
      ...old,
      steps: report.steps,
      accounts: report.steps.find((step) => step.accounts !== undefined)?.accounts ?? old.accounts,
      users: report.users,
      lastPoll: {
        startedAt: report.startedAt,
        durationSeconds: (report.finishedAt - report.startedAt) / 1000,
        problems: report.problems,
      },
      lastSuccessAt: report.problems.length === 0 ? report.finishedAt : old.lastSuccessAt,
      backoffUntil: report.backoffUntil,
    };
  }
}
