import { cutText } from "../shared/hostile_text.ts";
import type { Logger } from "../shared/log.ts";
import { type Problem, problem } from "../shared/problems.ts";
import { isCurrencyCode } from "../monzo/transaction.ts";
import type { AccountEntry, StepDefinition } from "./step.ts";
import type { OwnAccount } from "../spending/classify.ts";
import { compareText } from "../shared/compare.ts";

/** How often the account list is read again even when nothing suggests it changed. */
export const REDISCOVER_AFTER_MS = 60 * 60_000;

/**
 * Most accounts exported. A Monzo customer has a handful (current, joint, Flex, a business or savings
 * account), a household of a few logins a dozen or so; each account is a dozen series and three
 * requests per poll, so a hostile or buggy list of thousands would flood both. The oldest are kept.
 */
export const MAX_ACCOUNTS = 50;

/**
 * Most accounts remembered as the household's own (closed ones included), for recognising transfers
 * between them; those first seen are kept, so a flood cannot push out the real ones.
 */
export const MAX_OWN_ACCOUNTS = 10 * MAX_ACCOUNTS;

/** Most owners kept per account: a joint account has two; more is Monzo misbehaving. */
export const MAX_OWNERS = 10;

/** Longest `owners` label value, in code points (an account's description and a pot's name are 200 too). */
export const MAX_OWNERS_LABEL = 200;

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
  /** How many open accounts beyond {@link MAX_ACCOUNTS} were left out at the last discovery. */
  readonly leftOut: number;
  /**
   * Every account any login's `/accounts` has listed since the exporter started, closed, skipped and
   * unexported ones included (at most {@link MAX_OWN_ACCOUNTS}): a transfer to or from one is internal.
   * It never shrinks while the process runs, so a login that fails for a poll does not turn the
   * household's transfers back into spending and income.
   */
  readonly own: readonly OwnAccount[];
}

function accountIdProblems(memory: DiscoveryMemory, accountId: string | null): Problem[] {
  if (accountId === null || !memory.complete || memory.discoveredAt === null) return [];
  return memory.accounts.some((account) => account.id === accountId)
    ? []
    : [problem("account_id_not_found", accountId)];
}

/**
 * The {@link MAX_ACCOUNTS} accounts to export, in id order: the oldest by when they were opened (an
 * unknown date last), ties by id, so the same list gives the same choice on every poll and after a
 * restart, and accounts a flood adds today do not push out the ones the user has had for years.
 */
function bounded<T extends AccountEntry>(accounts: readonly T[]): { kept: T[]; leftOut: number } {
  const byId = (a: T, b: T) => compareText(a.id, b.id);
  const oldest = [...accounts].sort((a, b) => (a.created ?? Infinity) - (b.created ?? Infinity) || byId(a, b));
  const kept = oldest.slice(0, MAX_ACCOUNTS).sort(byId);
  return { kept, leftOut: accounts.length - kept.length };
}

/** The status page's note when accounts are left out. */
function leftOutNote(count: number): string {
  return `${count} more open accounts that Monzo lists are left out: at most ${MAX_ACCOUNTS} are exported, ` +
    "the oldest.";
}

/** The log line when the bound on accounts starts to apply. */
function leftOutLogLine(listed: number, count: number): string {
  return `Monzo lists ${listed} open accounts, more than ${MAX_ACCOUNTS}: the ${MAX_ACCOUNTS} oldest are ` +
    `exported and ${count} are left out`;
}

/** The log line when every open account is exported again. */
const ALL_ACCOUNTS_LOG_LINE = `Monzo lists ${MAX_ACCOUNTS} open accounts or fewer again: each is exported`;

/**
 * The discovery step, saying in `log` once when the bound on accounts starts or stops applying (the
 * status page says how many are left out while it does).
 */
export function accountsStep(log: Pick<Logger, "info" | "warn">): StepDefinition<DiscoveryMemory> {
  return {
    ...discovery,
    async run(context, memory) {
      const run = await discovery.run(context, memory);
      const before = memory.leftOut;
      const now = run.memory.leftOut;
      if (now > 0 && before === 0) log.warn(leftOutLogLine(run.memory.accounts.length + now, now));
      if (now === 0 && before > 0) log.info(ALL_ACCOUNTS_LOG_LINE);
      return run;
    },
  };
}

/**
 * Discovery: reads `/accounts` for every working login and merges the lists (a joint account once).
 * Accounts of logins that could not be asked are kept from the previous list, so their last values
 * stay. At most {@link MAX_ACCOUNTS} are exported.
 */
const discovery: StepDefinition<DiscoveryMemory> = {
  name: "accounts",
  initial: { accounts: [], discoveredAt: null, discoveredFor: null, complete: false, leftOut: 0, own: [] },
  accounts: (memory) => memory.accounts,
  ownAccounts: (memory) => memory.own,
  notes: (memory) => memory.leftOut > 0 ? [leftOutNote(memory.leftOut)] : [],
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
            ["owners", cutText(account.owners.join(", "), MAX_OWNERS_LABEL)],
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
    const own = new Map(memory.own.map((account) => [account.id, account]));
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
        if (own.size < MAX_OWN_ACCOUNTS || own.has(account.id)) {
          const known = own.get(account.id);
          own.set(account.id, {
            id: account.id,
            sortCode: account.sort_code ?? known?.sortCode ?? null,
            accountNumber: account.account_number ?? known?.accountNumber ?? null,
          });
        }
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
          owners: account.owners.slice(0, MAX_OWNERS).map((owner) => owner.preferred_name ?? owner.user_id),
          visibleTo: [key],
          created: account.created,
          currency: isCurrencyCode(account.currency) ? account.currency : undefined,
        });
      }
    }
    for (const entry of memory.accounts) {
      if (!found.has(entry.id) && !entry.visibleTo.some((key) => asked.has(key))) {
        found.set(entry.id, { ...entry, visibleTo: [...entry.visibleTo] });
      }
    }
    const { kept: accounts, leftOut } = bounded([...found.values()]);
    const next: DiscoveryMemory = {
      accounts,
      discoveredAt: context.now(),
      discoveredFor: keys,
      complete,
      leftOut,
      own: [...own.values()],
    };
    return {
      memory: next,
      problems: [...problems, ...accountIdProblems(next, context.accountId)],
      reads: new Map(),
      complete,
    };
  },
};
