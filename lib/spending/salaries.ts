/**
 * Which stored transactions may start a pay-day month (`payday_min_amount`): decided when figures are
 * computed, like internal transfers, so a transfer stored before the second member's accounts were
 * known stops counting as a salary once they are.
 *
 * @module
 */
import type { StoredTransaction } from "../monzo/transaction.ts";
import type { Salary } from "./budget_month.ts";
import { classify, type Counting } from "./classify.ts";

/** What makes a credit a salary: at least `minMinor` of `currency` (the budget's). */
export interface PaydayRule {
  /** The smallest credit that starts a month, minor units of `currency`. */
  readonly minMinor: number;
  readonly currency: string;
}

/**
 * `tx` as a {@link Salary} when it is one: a credit of at least the minimum in the budget's currency,
 * not declined, not a pot move and not an internal transfer; else null.
 */
export function salaryOf(tx: StoredTransaction, rule: PaydayRule, counting: Counting): Salary | null {
  if (tx.currency !== rule.currency || tx.amount < rule.minMinor || tx.amount <= 0) return null;
  const kind = classify(tx, counting).kind;
  if (kind === "internal" || kind === "left_out") return null;
  return { createdMs: tx.createdMs, amountMinor: tx.amount, currency: tx.currency };
}
