import { accountsStep } from "./accounts_step.ts";
import { balancesStep } from "./balances_step.ts";
import { potsStep } from "./pots_step.ts";
import { startStep, type StepState } from "./step.ts";

/**
 * The poll's steps, in order: discovery first, since the others read the accounts it lists. A new
 * capability is one more entry here and a module of its own; no other step changes.
 */
export function startSteps(): StepState[] {
  return [startStep(accountsStep), startStep(balancesStep), startStep(potsStep)];
}
