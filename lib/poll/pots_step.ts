import { FROM_LAST_POLL, major, MONEY } from "../metric_family.ts";
import type { Pot } from "../monzo_schemas.ts";
import { ok } from "../result.ts";
import { inAccountOrder, type PerAccount, readEachAccount } from "./per_account.ts";
import type { StepDefinition } from "./step.ts";

function everyPot(memory: PerAccount<readonly Pot[]>) {
  return inAccountOrder(memory).flatMap(([id, read]) =>
    read.value.map((pot) => ({
      pot,
      labels: [["account_id", id], ["pot_id", pot.id], ["pot_name", pot.name], ["currency", pot.currency]] as const,
    }))
  );
}

/** Pots: `GET /pots` of every exported account; deleted pots are left out. */
export const potsStep: StepDefinition<PerAccount<readonly Pot[]>> = {
  name: "pots",
  initial: new Map(),
  families: [
    {
      name: "monzo_pot_balance",
      type: "gauge",
      help: `Balance of the pot ${MONEY}; deleted pots are left out. ${FROM_LAST_POLL}`,
      samples: (memory) => everyPot(memory).map(({ pot, labels }) => ({ labels, value: major(pot.balance) })),
    },
    {
      name: "monzo_pot_goal",
      type: "gauge",
      help: `Savings goal of the pot ${MONEY}, for pots that have one. ${FROM_LAST_POLL}`,
      samples: (memory) =>
        everyPot(memory).filter(({ pot }) => (pot.goal_amount ?? 0) > 0)
          .map(({ pot, labels }) => ({ labels, value: major(pot.goal_amount ?? 0) })),
    },
  ],
  run: (context, memory) =>
    readEachAccount(context, memory, async (token, account) => {
      const answer = await context.client.pots(token, account.id, context.signal);
      return answer.ok ? ok(answer.value.filter((pot) => !pot.deleted)) : answer;
    }),
};
