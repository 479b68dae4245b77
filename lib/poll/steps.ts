import type { Config } from "../config/config.ts";
import type { TransactionStore } from "../store/transaction_store.ts";
import { accountsStep } from "./accounts_step.ts";
import { balancesStep } from "./balances_step.ts";
import { potsStep } from "./pots_step.ts";
import { startStep, type StepState } from "./step.ts";
import type { Logger } from "../shared/log.ts";
import { type Sleep, transactionsStep } from "./transactions_step.ts";

/** What the steps need besides what each poll hands them. */
export interface StepDependencies {
  readonly config:
    & Pick<Config, "historyDays" | "monthStartDay" | "budgets" | "budgetCurrency">
    // None and whole unless given (a test's steps).
    & Partial<Pick<Config, "rules" | "accountShares" | "paydayMinMinor">>;
  /** The store of transactions, counting starts and the last balances; the balances and transactions steps write it. */
  readonly transactions: TransactionStore;
  /** Where a step's notices go (categories or pots folded into "other", accounts left out, rejected transactions). */
  readonly log: Pick<Logger, "info" | "warn">;
  /** The transactions step's pause between tries; a real one unless given. */
  readonly sleep?: Sleep;
}

/**
 * The poll's steps, in order: discovery first, since the others read the accounts it lists. A new
 * capability is one more entry here and a module of its own; no other step changes.
 */
export function startSteps(dependencies: StepDependencies): StepState[] {
  return [
    startStep(accountsStep(dependencies.log)),
    startStep(balancesStep(dependencies.transactions)),
    startStep(potsStep(dependencies.log)),
    startStep(
      transactionsStep(dependencies.transactions, dependencies.config, {
        log: dependencies.log,
        sleep: dependencies.sleep,
      }),
    ),
  ];
}
