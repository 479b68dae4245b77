/**
 * A bound on the pots exported per account. Pots come from Monzo, so a hostile or buggy answer could
 * list thousands of them, and each would be two series (balance and goal) with a name as long as
 * Monzo allows. Per account at most {@link MAX_POTS} pots keep their own series; the rest are added
 * together into one row per currency whose `pot_id` and `pot_name` are {@link OTHER_POT}, so
 * `sum by (account_id) (monzo_pot_balance)` and the same sum of `monzo_pot_goal` stay what they were.
 *
 * Both pot families are summable (money per pot), so the overflow row is a sum like the category
 * one; its goal is the sum of the folded pots' goals, which is a total, not one pot's progress.
 * Which pots keep their series: the largest by balance (absolute value), ties broken by id, so the
 * choice is the same on every poll for the same answer. A pot Monzo itself gives the id "other"
 * never keeps its series when the bound applies, so no two rows share a label set; below the bound
 * nothing changes. A pot listed twice under one id is counted once (the first), so it is neither
 * summed twice nor exported as two identical series. Amounts of different currencies cannot be added
 * up, so the overflow rows are at most {@link MAX_OTHER_CURRENCIES}; pots beyond the bound in yet more
 * currencies are left out, and the note and the log line say how many.
 *
 * @module
 */
import type { Pot } from "../monzo/monzo_schemas.ts";
import { compareText } from "../shared/compare.ts";

/**
 * Most pots exported with their own series per account. Monzo customers have a handful of pots, a
 * keen saver a few dozen; 100 leaves room for all of them while a flood of thousands stays ~200 series.
 */
export const MAX_POTS = 100;
/** The `pot_id` and `pot_name` of the row the pots beyond the bound are added up in. */
export const OTHER_POT = "other";
/**
 * Most currencies that get an {@link OTHER_POT} row per account. A pot holds its account's currency,
 * so one is the norm; pots beyond the bound in yet more currencies (one per pot, say) are left out,
 * since amounts of different currencies cannot be added up and each currency would be a series.
 */
export const MAX_OTHER_CURRENCIES = 5;

/** An account's pots with the bound applied. */
export interface CappedPots {
  /** The kept pots, then one {@link OTHER_POT} row per currency when some were folded. */
  readonly pots: readonly Pot[];
  /** How many pots were added up under {@link OTHER_POT}; 0 below the bound. */
  readonly folded: number;
  /** How many pots beyond the bound were left out, their currency having no {@link OTHER_POT} row. */
  readonly leftOut: number;
}

/** Applies the bound to one account's live pots (deleted ones already left out). */
export function capPots(pots: readonly Pot[], max: number = MAX_POTS): CappedPots {
  const byId = new Map<string, Pot>();
  for (const pot of pots) if (!byId.has(pot.id)) byId.set(pot.id, pot);
  const unique = [...byId.values()];
  if (unique.length <= max) return { pots: unique, folded: 0, leftOut: 0 };
  const ranked = unique.filter((pot) => pot.id !== OTHER_POT)
    .sort((a, b) => Math.abs(b.balance) - Math.abs(a.balance) || compareText(a.id, b.id));
  const kept = new Set(ranked.slice(0, max));
  const other = new Map<string, { balance: number; goal: number; size: number; count: number }>();
  for (const pot of unique) {
    if (kept.has(pot)) continue;
    const sum = other.get(pot.currency) ?? { balance: 0, goal: 0, size: 0, count: 0 };
    sum.balance += pot.balance;
    // Only positive goals are exported (a goal of 0 or less means none), so only they are added up.
    if ((pot.goal_amount ?? 0) > 0) sum.goal += pot.goal_amount ?? 0;
    sum.size += Math.abs(pot.balance);
    sum.count++;
    other.set(pot.currency, sum);
  }
  // The currencies holding the most, ties by code; then in code order, the same on every poll.
  const currencies = [...other].sort(([a, x], [b, y]) => y.size - x.size || compareText(a, b))
    .slice(0, MAX_OTHER_CURRENCIES);
  const folded = currencies.reduce((total, [, sum]) => total + sum.count, 0);
  const overflow = currencies.sort(([a], [b]) => compareText(a, b)).map(([currency, sum]): Pot => ({
    id: OTHER_POT,
    name: OTHER_POT,
    balance: sum.balance,
    currency,
    deleted: false,
    goal_amount: sum.goal > 0 ? sum.goal : null,
  }));
  // Monzo's order for the kept pots, so a scrape reads like the app's list.
  return {
    pots: [...unique.filter((pot) => kept.has(pot)), ...overflow],
    folded,
    leftOut: unique.length - kept.size - folded,
  };
}

/** The status page's note on an account whose pots were folded. */
export function foldedPotsNote(capped: CappedPots): string {
  return `${capped.folded} of its pots are added up under pot_id="${OTHER_POT}"${leftOutClause(capped)}: only the ` +
    `${MAX_POTS} largest are exported by name.`;
}

/** The log line when the bound starts to apply to an account. */
export function foldedPotsLogLine(accountId: string, capped: CappedPots): string {
  return `Account ${accountId} has more than ${MAX_POTS} pots: ${capped.folded} are added up under ` +
    `pot_id="${OTHER_POT}"${leftOutClause(capped)} (the pot figures still add up to the same totals` +
    `${capped.leftOut > 0 ? ` in the ${MAX_OTHER_CURRENCIES} currencies that hold the most` : ""})`;
}

function leftOutClause(capped: CappedPots): string {
  return capped.leftOut > 0
    ? ` and ${capped.leftOut} in more than ${MAX_OTHER_CURRENCIES} other currencies are left out`
    : "";
}

/** The log line when an account's pots fit under the bound again. */
export function unfoldedPotsLogLine(accountId: string): string {
  return `Account ${accountId} has ${MAX_POTS} pots or fewer again: each is exported by name`;
}
