/**
 * Which `[[rules]]` table decides a transaction: the first whose conditions all match. The rules are
 * data from the config (lib/config/rules_config.ts), their patterns compiled and checked at load; what
 * a rule then does to the figures is the caller's.
 *
 * @module
 */
import type { Rule } from "../config/rules_config.ts";
import { major } from "../shared/metric_family.ts";

/** What rules look at in a transaction. */
export interface RuleView {
  readonly id: string;
  readonly accountId: string;
  readonly category: string;
  /** Minor units, signed (negative for money out). */
  readonly amount: number;
  readonly description: string;
  /** The merchant's name when Monzo gives one, else its id; null when there is no merchant. */
  readonly merchant: string | null;
}

/** The first rule whose given conditions all match `tx`, or null when none does. */
export function firstRule(rules: readonly Rule[], tx: RuleView): Rule | null {
  return rules.find((rule) => matches(rule, tx)) ?? null;
}

/** True when every condition `rule` gives holds for `tx` (a rule always gives at least one). */
export function matches(rule: Rule, tx: RuleView): boolean {
  // Amounts are compared in major units, as written in the config; the size, whatever the sign.
  const size = major(Math.abs(tx.amount));
  return (rule.id === null || rule.id === tx.id) &&
    (rule.accountId === null || rule.accountId === tx.accountId) &&
    (rule.category === null || rule.category === tx.category) &&
    (rule.amountAbove === null || size > rule.amountAbove) &&
    (rule.amountBelow === null || size < rule.amountBelow) &&
    // Patterns last: the cheap exact checks rule most transactions out first. Compiled with "iu" (no
    // `g` or `y`), test() keeps no lastIndex from one transaction to the next.
    (rule.description === null || rule.description.test(tx.description)) &&
    (rule.merchant === null || (tx.merchant !== null && rule.merchant.test(tx.merchant)));
}
