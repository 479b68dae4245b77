import { type Problem, problem } from "../problems.ts";
import type { AccountEntry, StepDefinition } from "./step.ts";

/** How often the account list is read again even when nothing suggests it changed. */
export const REDISCOVER_AFTER_MS = 60 * 60_000;

// Account types that hold no money of their own to export (Monzo answers 403 for their balance).
const SKIPPED_ACCOUNT_TYPES: ReadonlySet<string> = new Set(["uk_monzo_flex_backing_loan"]);

/** What discovery remembers between polls. */
export interface DiscoveryMemory {
  readonly accounts: readonly AccountEntry[];
  /** When the list was last read, epoch ms. */
  readonly discoveredAt: number | null;
  /** The logins it was read for, so a new login reads it again at once. */
  readonly discoveredFor: string | null;
  /** False when some login's list could not be read, so the next poll tries again. */
  readonly complete: boolean;
}

function accountIdProblems(memory: DiscoveryMemory, accountId: string | null): Problem[] {
  if (accountId === null || !memory.complete || memory.discoveredAt === null) return [];
  return memory.accounts.some((account) => account.id === accountId)
    ? []
    : [problem("account_id_not_found", accountId)];
}

/**
 * Discovery: reads `/accounts` for every working login and merges the lists (a joint account once).
 * Accounts of logins that could not be asked are kept from the previous list, so their last values stay.
 */
export const accountsStep: StepDefinition<DiscoveryMemory> = {
  name: "accounts",
  initial: { accounts: [], discoveredAt: null, discoveredFor: null, complete: false },
  accounts: (memory) => memory.accounts,
  families: [
    {
      name: "monzo_account_info",
      type: "gauge",
      help: "Details of each exported account as labels; always 1. From the last account discovery.",
      samples: (memory) =>
        memory.accounts.map((account) => ({
          labels: [
            ["account_id", account.id],
            ["account_type", account.type],
            ["description", account.description],
            ["owners", account.owners.join(", ")],
          ],
          value: 1,
        })),
    },
  ],

  async run(context, memory) {
    const keys = [...context.logins].sort().join(" ");
    const now = context.now();
    const due = !memory.complete || memory.discoveredFor !== keys || memory.discoveredAt === null ||
      now - memory.discoveredAt >= REDISCOVER_AFTER_MS;
    if (!due || context.logins.length === 0) {
      return { memory, problems: accountIdProblems(memory, context.accountId), reads: new Map(), complete: true };
    }
    const found = new Map<string, AccountEntry & { visibleTo: string[] }>();
    const asked = new Set<string>();
    const problems: Problem[] = [];
    let complete = true;
    for (const key of context.logins) {
      const answer = await context.call(key, (token) => context.client.accounts(token, context.signal));
      if (!answer.ok) {
        complete = false;
        if (answer.error.kind === "failed") {
          problems.push(problem("accounts_failed", key, { detail: answer.error.detail }));
        }
        continue;
      }
      asked.add(key);
      for (const account of answer.value) {
        if (account.closed || SKIPPED_ACCOUNT_TYPES.has(account.type)) continue;
        if (context.accountId !== null && account.id !== context.accountId) continue;
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
          created: account.created,
        });
      }
    }
    for (const entry of memory.accounts) {
      if (!found.has(entry.id) && !entry.visibleTo.some((key) => asked.has(key))) {
        found.set(entry.id, { ...entry, visibleTo: [...entry.visibleTo] });
      }
    }
    const accounts = [...found.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const next: DiscoveryMemory = { accounts, discoveredAt: context.now(), discoveredFor: keys, complete };
    return {
      memory: next,
      problems: [...problems, ...accountIdProblems(next, context.accountId)],
      reads: new Map(),
      complete,
    };
  },
};
