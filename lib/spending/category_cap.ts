/**
 * A bound on the category labels of the budget-month figures. Categories come from Monzo and may be
 * made up by the user, so a hostile or buggy answer could name thousands of them, and each would be
 * a series. Per account, at most {@link MAX_CATEGORIES} categories keep their own name; the rest are
 * added together under {@link OTHER_CATEGORY}, so every figure still adds up to the same total.
 *
 * Which categories keep their name: those with a budget in the config (the user's own choice, so
 * always visible), then the largest by size, ties broken by name. A category's size is the sum of
 * the absolute values of its figures (spending and received, every currency of the account), so a
 * large refund counts as much as a large purchase. A category Monzo itself calls "other" never
 * keeps its name when the bound applies: it is added to the overflow, so no two rows share a label
 * set. Below the bound nothing changes, a Monzo "other" included.
 *
 * Only gauges carry the category label (the `_this_month` families); the `_total` counters are per
 * account and currency, so a category moving in or out of the kept set never makes a counter go back.
 *
 * @module
 */
import type { BudgetRow } from "./rules.ts";
import { compareText } from "../shared/compare.ts";

/** Most categories exported under their own name per account (more when the config budgets more). */
export const MAX_CATEGORIES = 100;
/** The category the figures of every category beyond the bound are added up in. */
export const OTHER_CATEGORY = "other";

/** Rows with the bound applied, and how many categories of each account were folded into "other". */
export interface CappedRows {
  readonly rows: BudgetRow[];
  /** Account id to the number of its categories folded into {@link OTHER_CATEGORY}; only accounts over the bound. */
  readonly folded: ReadonlyMap<string, number>;
}

/**
 * Applies the bound to budget rows (as {@link budget} gives them): at most `max` named categories per
 * account besides `budgeted` ones beyond `max`, plus one {@link OTHER_CATEGORY} row per currency.
 */
export function capCategories(
  rows: readonly BudgetRow[],
  budgeted: ReadonlySet<string>,
  max: number = MAX_CATEGORIES,
): CappedRows {
  const byAccount = new Map<string, BudgetRow[]>();
  for (const row of rows) {
    const list = byAccount.get(row.accountId);
    if (list) list.push(row);
    else byAccount.set(row.accountId, [row]);
  }
  const out: BudgetRow[] = [];
  const folded = new Map<string, number>();
  for (const [accountId, list] of byAccount) {
    const size = new Map<string, number>();
    for (const row of list) {
      if (row.category === OTHER_CATEGORY) continue;
      size.set(row.category, (size.get(row.category) ?? 0) + Math.abs(row.spentMinor) + Math.abs(row.receivedMinor));
    }
    if (size.size <= max) {
      out.push(...list);
      continue;
    }
    const ranked = [...size].sort(([a, sizeA], [b, sizeB]) =>
      Number(budgeted.has(b)) - Number(budgeted.has(a)) || sizeB - sizeA || compareText(a, b)
    );
    const kept = new Set(
      ranked.slice(0, Math.max(max, ranked.filter(([name]) => budgeted.has(name)).length))
        .map(([name]) => name),
    );
    folded.set(accountId, size.size - kept.size);
    const other = new Map<string, { spentMinor: number; receivedMinor: number }>();
    for (const row of list) {
      if (kept.has(row.category)) {
        out.push(row);
        continue;
      }
      const sum = other.get(row.currency) ?? { spentMinor: 0, receivedMinor: 0 };
      sum.spentMinor += row.spentMinor;
      sum.receivedMinor += row.receivedMinor;
      other.set(row.currency, sum);
    }
    for (const [currency, sum] of other) out.push({ accountId, category: OTHER_CATEGORY, currency, ...sum });
  }
  // The order of `budget`: account, currency, category.
  out.sort((a, b) =>
    compareText(a.accountId, b.accountId) || compareText(a.currency, b.currency) || compareText(a.category, b.category)
  );
  return { rows: out, folded };
}

/** The status page's note on an account whose categories were folded. */
export function foldedNote(count: number): string {
  return `${count} of its categories this budget month are added up under category="${OTHER_CATEGORY}": only ` +
    `the ${MAX_CATEGORIES} largest (and those with a budget) are exported by name.`;
}

/** The log line when the bound starts to apply to an account. */
export function foldedLogLine(accountId: string, count: number): string {
  return `Account ${accountId} has more than ${MAX_CATEGORIES} categories this budget month: ${count} are added ` +
    `up under category="${OTHER_CATEGORY}" (the figures still add up to the same totals)`;
}

/** The log line when an account's categories fit under the bound again. */
export function unfoldedLogLine(accountId: string): string {
  return `Account ${accountId} has ${MAX_CATEGORIES} categories or fewer this budget month again: each is ` +
    "exported by name";
}
