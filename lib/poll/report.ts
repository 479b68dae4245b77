import type { Problem } from "../shared/problems.ts";
import type { LoginStatus } from "../logins/token_store.ts";
import type { StepView } from "./step.ts";

/** How a login fared in the last poll. */
export type UserState =
  | { readonly status: "ok" }
  | { readonly status: "awaiting_approval" | "error" | "logged_out"; readonly problem: Problem };

/** The last poll's timing and its problems. */
export interface PollSummary {
  readonly startedAt: number;
  readonly durationSeconds: number;
  readonly problems: readonly Problem[];
}

/** What one poll found, as the poller publishes it. */
export interface PollReport {
  readonly startedAt: number;
  readonly finishedAt: number;
  /** Every problem of the poll: the logins', the poll's own and each step's. */
  readonly problems: readonly Problem[];
  /** State per login key. */
  readonly users: ReadonlyMap<string, UserState>;
  /** The steps after this poll, in order, as they publish themselves (their memory stays with the poller). */
  readonly steps: readonly StepView[];
  /** Until when polling is paused because Monzo asked the exporter to slow down; shown on the page. */
  readonly backoffUntil: number | null;
}

/**
 * Where the poller publishes (the snapshot). Declared here, in the poll's own terms, so the poll
 * never imports the later stages that read what it publishes.
 */
export interface PollSink {
  /** A running poll's steps as they finish: those done, then the rest as they were. */
  showSteps(steps: readonly StepView[]): void;
  /** A finished poll's findings. */
  applyPoll(report: PollReport): void;
}

/** The published poll as the poll's own families read it; the snapshot's state is one. */
export interface PublishedPoll {
  readonly steps: readonly StepView[];
  readonly users: ReadonlyMap<string, UserState>;
  readonly logins: readonly LoginStatus[];
  readonly lastPoll: PollSummary | null;
  readonly lastSuccessAt: number | null;
}

/** True when the last poll did all of its work without a problem: `monzo_up`, `/readyz` and the page agree. */
export function isHealthy(state: Pick<PublishedPoll, "lastPoll">): boolean {
  return state.lastPoll !== null && state.lastPoll.problems.length === 0;
}
