import type { Logger } from "../shared/log.ts";
import { FROM_LAST_POLL, major, MONEY } from "../shared/metric_family.ts";
import { ok } from "../shared/result.ts";
import { inAccountOrder, type PerAccount, readEachAccount } from "./per_account.ts";
import {
  type CappedPots,
  capPots,
  foldedPotsLogLine,
  foldedPotsNote,
  MAX_POTS,
  OTHER_POT,
  unfoldedPotsLogLine,
} from "./pot_cap.ts";
import type { AccountRead, StepDefinition } from "./step.ts";

function everyPot(memory: PerAccount<CappedPots>) {
  return inAccountOrder(memory).flatMap(([id, read]) =>
    read.value.pots.map((pot) => ({
      pot,
      labels: [["account_id", id], ["pot_id", pot.id], ["pot_name", pot.name], ["currency", pot.currency]] as const,
    }))
  );
}

/**
 * The pots step, saying in `log` once when an account's pots start or stop being folded into
 * "other", and on every poll, beside the account on the status page, how many are folded.
 */
export function potsStep(log: Pick<Logger, "info" | "warn">): StepDefinition<PerAccount<CappedPots>> {
  return {
    ...pots,
    async run(context, memory) {
      const run = await pots.run(context, memory);
      return { ...run, reads: noteFolds(log, memory, run.memory, run.reads) };
    },
  };
}

/**
 * Pots: `GET /pots` of every exported account; deleted pots are left out, and past {@link MAX_POTS}
 * per account the smallest are added up under `pot_id="other"` (see pot_cap.ts).
 */
const pots: StepDefinition<PerAccount<CappedPots>> = {
  name: "pots",
  initial: new Map(),
  families: [
    {
      name: "monzo_pot_balance",
      type: "gauge",
      help: `Balance of the pot ${MONEY}; deleted pots are left out, and past ${MAX_POTS} per account the ` +
        `smallest are added up under pot_id="${OTHER_POT}". ${FROM_LAST_POLL}`,
      samples: (memory) => everyPot(memory).map(({ pot, labels }) => ({ labels, value: major(pot.balance) })),
    },
    {
      name: "monzo_pot_goal",
      type: "gauge",
      help: `Savings goal of the pot ${MONEY}, for pots that have one (for pot_id="${OTHER_POT}", the sum of ` +
        `their goals). ${FROM_LAST_POLL}`,
      samples: (memory) =>
        everyPot(memory).filter(({ pot }) => (pot.goal_amount ?? 0) > 0)
          .map(({ pot, labels }) => ({ labels, value: major(pot.goal_amount ?? 0) })),
    },
  ],
  run: (context, memory) =>
    readEachAccount(context, memory, async (token, account) => {
      const answer = await context.client.pots(token, account.id, context.signal);
      return answer.ok ? ok(capPots(answer.value.filter((pot) => !pot.deleted))) : answer;
    }),
};

/**
 * The reads with a note on each account whose pots are folded, after logging each account where
 * folding starts or ends. An account that could not be read keeps its last figures, so nothing
 * changed for it and nothing is logged.
 */
function noteFolds(
  log: Pick<Logger, "info" | "warn">,
  before: PerAccount<CappedPots>,
  now: PerAccount<CappedPots>,
  reads: ReadonlyMap<string, AccountRead>,
): ReadonlyMap<string, AccountRead> {
  const noted = new Map(reads);
  const bounded = (capped: CappedPots | undefined) => capped !== undefined && capped.folded + capped.leftOut > 0;
  for (const [id, read] of now) {
    const applies = bounded(read.value);
    const applied = bounded(before.get(id)?.value);
    if (applies && !applied) log.warn(foldedPotsLogLine(id, read.value));
    if (!applies && applied) log.info(unfoldedPotsLogLine(id));
    const status = noted.get(id);
    if (applies && status?.ok) {
      noted.set(id, { ...status, note: [status.note, foldedPotsNote(read.value)].filter(Boolean).join(" ") });
    }
  }
  return noted;
}
