import type { MonzoClient, MonzoFailure } from "../monzo/monzo_client.ts";
import type { DeclaredFamily, Family } from "../shared/metric_family.ts";
import type { Problem } from "../shared/problems.ts";
import type { Result } from "../shared/result.ts";
import type { OwnAccount } from "../spending/classify.ts";

/** An account found by discovery (or named by `account_id`). */
export interface AccountEntry {
  readonly id: string;
  readonly type: string;
  readonly description: string;
  /** Owners' preferred names, as Monzo lists them. */
  readonly owners: readonly string[];
  /** Keys of the logins that can read it; a joint account has two. */
  readonly visibleTo: readonly string[];
  /** When it was opened, epoch ms, when Monzo says. */
  readonly created: number | null;
  /** Its currency (ISO 4217), when `/accounts` gives one shaped like a currency code; its transactions' currency. */
  readonly currency?: string;
}

/** Why a call made for a step gave no answer. */
export type CallFailure =
  /** The login stopped working or the poll was halted (rate limit, Monzo unreachable): the poll has said why. */
  | { readonly kind: "skipped"; readonly detail: string }
  /** This request failed: the step says so in its own problem. */
  | { readonly kind: "failed"; readonly failure: MonzoFailure; readonly detail: string };

/** What a step may use during a poll; everything else it needs is its own memory. */
export interface StepContext {
  readonly client: MonzoClient;
  readonly signal: AbortSignal;
  /** The current time, epoch ms. */
  now(): number;
  /** The account named by `account_id` in the config, or null for every open account. */
  readonly accountId: string | null;
  /** Keys of the logins that work in this poll. */
  readonly logins: readonly string[];
  /** The accounts to read: the discovery step's list (empty while discovery itself runs). */
  readonly accounts: readonly AccountEntry[];
  /**
   * Every account discovery has seen in `/accounts`, closed, skipped and unexported ones included: a
   * transfer to or from one is internal to the household.
   */
  readonly ownAccounts: readonly OwnAccount[];
  /** When login `key` was issued through the browser, epoch ms, if this process saw it happen. */
  grantedAt(key: string): number | null;
  /** A login that can read `account` and still works in this poll. */
  readerOf(account: AccountEntry): string | undefined;
  /** Calls Monzo as login `key`, renewing its token after a 401; login and poll-wide failures are recorded by the poll. */
  call<T>(key: string, request: (token: string) => Promise<Result<T, MonzoFailure>>): Promise<Result<T, CallFailure>>;
}

/** How one account fared in a step; a note is shown beside it on the status page. */
export type AccountRead =
  | { readonly ok: true; readonly at: number; readonly note?: string }
  | { readonly ok: false; readonly detail: string };

/** What one run of a step found. */
export interface StepRun<M> {
  /** The step's memory for the next poll and for its metric families. */
  readonly memory: M;
  readonly problems: readonly Problem[];
  /** How each account it read fared. */
  readonly reads: ReadonlyMap<string, AccountRead>;
  /** False when part of its work could not be done, even without a problem of its own (a login failed). */
  readonly complete: boolean;
}

/** A metric family of a step: its description and how its samples come from the step's memory. */
export type StepFamily<M> = DeclaredFamily<M>;

/** A poll step, modelled on node_exporter's collectors: it owns its metric families and problems. */
export interface StepDefinition<M> {
  /** Short name, used in `monzo_poll_step_success{step=…}`. */
  readonly name: string;
  readonly initial: M;
  readonly families: readonly StepFamily<M>[];
  run(context: StepContext, memory: M): Promise<StepRun<M>>;
  /** For the discovery step only: the accounts the other steps read. */
  accounts?(memory: M): readonly AccountEntry[];
  /** For the discovery step only: every account it has seen (see {@link StepContext.ownAccounts}). */
  ownAccounts?(memory: M): readonly OwnAccount[];
  /** What the status page says of the step as a whole rather than of one account (accounts left out). */
  notes?(memory: M): readonly string[];
}

/** What a step publishes after a poll, for the pages and the exposition: no memory, nothing to run. */
export interface StepView {
  readonly name: string;
  /** Null before its first run; then whether the last run did all of its work. */
  readonly ok: boolean | null;
  /** When the last run that did all of its work ended, epoch ms. */
  readonly lastSuccessAt: number | null;
  readonly problems: readonly Problem[];
  readonly reads: ReadonlyMap<string, AccountRead>;
  /** Its metric families with their samples, rendered once per poll. */
  readonly families: readonly Family[];
  /** The accounts the other steps read, from the discovery step. */
  readonly accounts?: readonly AccountEntry[];
  /** Every account the discovery step has seen. */
  readonly ownAccounts?: readonly OwnAccount[];
  /** The step's notes for the status page, besides those on each account's read. */
  readonly notes?: readonly string[];
}

/** A step's state after a poll, its memory sealed inside; only the poller holds it, and the next poll continues from it. */
export interface StepState extends StepView {
  /** Runs the step again from this state. */
  next(context: StepContext): Promise<StepState>;
}

/** Seals a step definition and its memory into a {@link StepState}; the first state has not run. */
export function startStep<M>(definition: StepDefinition<M>): StepState {
  return seal(definition, definition.initial, {
    ok: null,
    lastSuccessAt: null,
    problems: [],
    reads: new Map(),
  });
}

function seal<M>(
  definition: StepDefinition<M>,
  memory: M,
  outcome: Pick<StepState, "ok" | "lastSuccessAt" | "problems" | "reads">,
): StepState {
  return {
    name: definition.name,
    ...outcome,
    families: definition.families.map((family) => ({
      name: family.name,
      type: family.type,
      help: family.help,
      samples: family.samples(memory),
    })),
    accounts: definition.accounts?.(memory),
    ownAccounts: definition.ownAccounts?.(memory),
    notes: definition.notes?.(memory),
    async next(context) {
      const run = await definition.run(context, memory);
      const finishedAt = context.now();
      const ok = run.complete && run.problems.length === 0;
      return seal(definition, run.memory, {
        ok,
        lastSuccessAt: ok ? finishedAt : outcome.lastSuccessAt,
        problems: run.problems,
        reads: run.reads,
      });
    },
  };
}

/** The published part of a step's state, without the memory that {@link StepState.next} closes over. */
export function publishStep(step: StepState): StepView {
  const { name, ok, lastSuccessAt, problems, reads, families, accounts, ownAccounts, notes } = step;
  return { name, ok, lastSuccessAt, problems, reads, families, accounts, ownAccounts, notes };
}
