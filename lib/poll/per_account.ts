import type { MonzoFailure } from "../monzo/monzo_client.ts";
import { type Problem, problem } from "../shared/problems.ts";
import type { Result } from "../shared/result.ts";
import type { AccountEntry, AccountRead, StepContext, StepRun } from "./step.ts";
import { compareText } from "../shared/compare.ts";

/** What a per-account step remembers of one account: the last figures read and when. */
export interface Read<T> {
  readonly value: T;
  /** When it was read, epoch ms. */
  readonly at: number;
}

/** Per-account memory: account id → its last figures. */
export type PerAccount<T> = ReadonlyMap<string, Read<T>>;

/**
 * Runs `request` for every account through a login that can read it. Accounts that fail keep their
 * last figures; accounts no longer listed are dropped.
 */
export async function readEachAccount<T>(
  context: StepContext,
  memory: PerAccount<T>,
  request: (token: string, account: AccountEntry) => Promise<Result<T, MonzoFailure>>,
): Promise<StepRun<PerAccount<T>>> {
  const next = new Map<string, Read<T>>();
  const reads = new Map<string, AccountRead>();
  const problems: Problem[] = [];
  let complete = true;
  for (const account of context.accounts) {
    const previous = memory.get(account.id);
    const reader = context.readerOf(account);
    const answer = reader === undefined
      ? { ok: false as const, error: { kind: "skipped" as const, detail: "no login that can read it is working" } }
      : await context.call(reader, (token) => request(token, account));
    if (answer.ok) {
      const at = context.now();
      next.set(account.id, { value: answer.value, at });
      reads.set(account.id, { ok: true, at });
      continue;
    }
    complete = false;
    if (previous) next.set(account.id, previous);
    reads.set(account.id, { ok: false, detail: answer.error.detail });
    if (answer.error.kind === "failed") {
      problems.push(problem("account_failed", account.id, { detail: answer.error.detail }));
    }
  }
  return { memory: next, problems, reads, complete };
}

/** The remembered figures in account-id order, so the exposition is stable. */
export function inAccountOrder<T>(memory: PerAccount<T>): Array<[string, Read<T>]> {
  return [...memory].sort(([a], [b]) => compareText(a, b));
}
