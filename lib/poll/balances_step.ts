import { FROM_LAST_POLL, major, MONEY, type Sample } from "../shared/metric_family.ts";
import type { Balance } from "../monzo/monzo_schemas.ts";
import { inAccountOrder, type PerAccount, readEachAccount } from "./per_account.ts";
import type { StepDefinition } from "./step.ts";
import { problem } from "../shared/problems.ts";
import type { TransactionStore } from "../store/transaction_store.ts";

function perAccount(memory: PerAccount<Balance>, pick: (balance: Balance) => number): Sample[] {
  return inAccountOrder(memory).map(([id, read]) => ({
    labels: [["account_id", id], ["currency", read.value.currency]],
    value: major(pick(read.value)),
  }));
}

/** The balances step's families, declared apart so the backfill can reuse their HELP. */
export const balanceFamilies: StepDefinition<PerAccount<Balance>>["families"] = [
  {
    name: "monzo_balance",
    type: "gauge",
    help: `Balance of the account ${MONEY}, without pots. ${FROM_LAST_POLL}`,
    samples: (memory) => perAccount(memory, (b) => b.balance),
  },
  {
    name: "monzo_balance_including_flexible_savings",
    type: "gauge",
    help: `Balance of the account plus its flexible savings pots, ${MONEY}. ${FROM_LAST_POLL}`,
    samples: (memory) => perAccount(memory, (b) => b.balance_including_flexible_savings),
  },
  {
    name: "monzo_total_balance",
    type: "gauge",
    help: `Balance of the account plus all its pots, ${MONEY}. ${FROM_LAST_POLL}`,
    samples: (memory) => perAccount(memory, (b) => b.total_balance),
  },
  {
    name: "monzo_spend_today",
    type: "gauge",
    help: `Money spent from the account today (Monzo's day starts about 4 am), ${MONEY}; ` +
      `positive for spending, negative when more came back than went out. ${FROM_LAST_POLL}`,
    samples: (memory) => perAccount(memory, (b) => -b.spend_today),
  },
  {
    name: "monzo_account_last_successful_poll_timestamp_seconds",
    type: "gauge",
    help: "Unix time at which the account's balance was last read from Monzo.",
    samples: (memory) =>
      inAccountOrder(memory).map(([id, read]) => ({ labels: [["account_id", id]], value: read.at / 1000 })),
  },
];

/**
 * Balances: `GET /balance` of every exported account. Each balance read is kept in `store` too, so
 * the stored history can be replayed into past balances without Monzo; a store that cannot keep it
 * is the step's `balance_unsaved` problem, and the balance is exported all the same.
 */
export const balancesStep = (store: Pick<TransactionStore, "saveBalance">): StepDefinition<PerAccount<Balance>> => ({
  name: "balances",
  initial: new Map(),
  families: balanceFamilies,
  async run(context, memory) {
    const run = await readEachAccount(
      context,
      memory,
      (token, account) => context.client.balance(token, account.id, context.signal),
    );
    const problems = [...run.problems];
    for (const [id, read] of inAccountOrder(run.memory)) {
      // Only what this poll read: an account that failed keeps its last figures, already kept.
      if (!run.reads.get(id)?.ok) continue;
      const { balance: balanceMinor, currency } = read.value;
      const saved = await store.saveBalance(id, { balanceMinor, currency, at: read.at });
      if (!saved.ok) problems.push(problem("balance_unsaved", id, { detail: saved.error }));
    }
    return { ...run, problems };
  },
});
