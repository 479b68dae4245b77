/**
 * What counts as spending and income: the rules, stated once (the README quotes them).
 *
 * 1. Left out always: declined transactions (any `decline_reason`) and moves to or from the
 *    account's own pots (`metadata.pot_id`, or scheme `uk_retail_pot`).
 * 2. Cash flow (the `_total` counters): settled transactions only, settled at or after the
 *    account's counting start (when the store first held the account), each counted at its settled
 *    time; older history imported later never changes them. Spent is every debit (amount below 0)
 *    whose `include_in_spending` is not false; received is every credit (amount above 0): refunds,
 *    salary, transfers in, top-ups.
 * 3. Budget (the `_this_month` gauges): transactions created in the budget month, pending ones
 *    included. Spending is every debit whose `include_in_spending` is not false, minus refunds
 *    (credits whose `include_in_spending` is true) in the same category; received is every other
 *    credit. Spending is not clamped at zero: a refund bigger than the month's spending in its
 *    category (say, for something bought last month) makes that category negative, so the
 *    categories always add up to the month's net spending.
 * 4. A transaction whose `categories` split map is usable counts each part in its own category.
 *    A split is usable when every part has the sign of `amount` and the parts add up to `amount`
 *    exactly; otherwise the whole amount counts in `category`. Either way the parts counted add up
 *    to the transaction's amount, so no split can create or lose money.
 * 5. Categories pass through as Monzo sends them, custom ones included (past 100 per account, the
 *    smallest are added up under "other": see category_cap.ts). Amounts are `amount`, in the
 *    account's currency (never `local_amount`), added as integer minor units and turned into major
 *    units only when shown. Spending is a positive number; a transaction of amount 0 counts nowhere.
 * 6. Each transaction counts once per account, even if it is given twice.
 * 7. Households and rules (classify.ts): a transfer to or from another of the household's own
 *    accounts (its counterparty's `account_id`, or sort code and account number, is an account
 *    `/accounts` lists, closed ones included) counts in no figure, though it still moves the balances;
 *    so does a transaction a rule excludes. The first `[[rules]]` table whose conditions all match
 *    decides: `set_category` counts the whole amount in that category (a split is then ignored), and
 *    `share` times the account's `share` is the fraction counted. Each amount counted (the whole
 *    amount for the counters, each part for the monthly figures) is multiplied by the share and
 *    rounded to the nearest minor unit, halves away from zero, so figures stay whole minor units and
 *    a debit and its refund round alike. None of this is written into the store: it is worked out
 *    again whenever figures are computed, so a change of rules, shares or known accounts applies to
 *    the whole history (and restarts the counters: see transaction_store.ts).
 *
 * @module
 */
import type { BudgetMonth } from "./budget_month.ts";
import { type Classification, classify, type Counting, shareOf } from "./classify.ts";
import type { SplitPart, StoredTransaction } from "../monzo/transaction.ts";
import { compareText } from "../shared/compare.ts";

/** Cash flow of one account in one currency, in minor units (both positive). */
export interface CashFlow {
  readonly accountId: string;
  readonly currency: string;
  readonly spentMinor: number;
  readonly receivedMinor: number;
}

/** Budget-month figures of one account, category and currency, in minor units. */
export interface BudgetRow {
  readonly accountId: string;
  readonly category: string;
  readonly currency: string;
  /** Net spending: positive for money spent, negative when refunds exceed it. */
  readonly spentMinor: number;
  readonly receivedMinor: number;
}

// A debit that counts as spending: `include_in_spending` true or absent.
function isSpending(tx: StoredTransaction): boolean {
  return tx.amount < 0 && tx.includeInSpending !== false;
}

// A credit Monzo marks as spending (`include_in_spending` true): a refund, netted against spending.
function isRefund(tx: StoredTransaction): boolean {
  return tx.amount > 0 && tx.includeInSpending === true;
}

/** The parts a transaction counts in (rule 4): its usable split, or its whole amount in `category`. */
export function categoryParts(tx: StoredTransaction): readonly SplitPart[] {
  const split = tx.categories;
  if (split === null || split.length === 0 || tx.amount === 0) return [[tx.category, tx.amount]];
  let sum = 0;
  for (const [, part] of split) {
    if (Math.sign(part) === -Math.sign(tx.amount)) return [[tx.category, tx.amount]];
    sum += part;
  }
  return sum === tx.amount ? split : [[tx.category, tx.amount]];
}

/**
 * Cash flow per account and currency (rule 2) of what settled at or after `countingStart` (epoch ms;
 * every settled one when not given), under `counting` (rule 7), with a row, zeros included, for every
 * pair in the input.
 */
export function cashFlow(
  transactions: Iterable<StoredTransaction>,
  counting: Counting,
  countingStart: number = Number.NEGATIVE_INFINITY,
): CashFlow[] {
  const totals = new Map<string, { accountId: string; currency: string; spentMinor: number; receivedMinor: number }>();
  for (const tx of once(transactions)) {
    const key = JSON.stringify([tx.accountId, tx.currency]);
    let row = totals.get(key);
    if (row === undefined) {
      row = { accountId: tx.accountId, currency: tx.currency, spentMinor: 0, receivedMinor: 0 };
      totals.set(key, row);
    }
    if (tx.settledMs === null || tx.settledMs < countingStart) continue;
    const decided = classify(tx, counting);
    if (decided.kind !== "counted") continue;
    const amount = shareOf(tx.amount, decided.share);
    if (isSpending(tx)) row.spentMinor -= amount;
    else if (tx.amount > 0) row.receivedMinor += amount;
  }
  return [...totals.values()].sort((a, b) =>
    compareText(a.accountId, b.accountId) || compareText(a.currency, b.currency)
  );
}

/** The parts a counted transaction counts in under its classification: a rule's category takes the whole amount. */
function countedParts(tx: StoredTransaction, decided: Classification): readonly SplitPart[] {
  const parts = decided.category === null ? categoryParts(tx) : [[decided.category, tx.amount] as const];
  return decided.share === 1 ? parts : parts.map(([category, part]) => [category, shareOf(part, decided.share)]);
}

/**
 * Budget figures for `month` per account, category and currency (rule 3) under `counting` (rule 7),
 * with a row for every category that had a counted transaction created in the month. Categories are
 * those after the rules: the bound on categories (category_cap.ts) is applied to these rows.
 */
export function budget(transactions: Iterable<StoredTransaction>, month: BudgetMonth, counting: Counting): BudgetRow[] {
  const rows = new Map<string, { -readonly [K in keyof BudgetRow]: BudgetRow[K] }>();
  for (const tx of once(transactions)) {
    if (tx.createdMs < month.start || tx.createdMs >= month.end) continue;
    const spending = isSpending(tx);
    const refund = isRefund(tx);
    // Debits left out of spending (`include_in_spending` false) count nowhere.
    if (!spending && tx.amount <= 0) continue;
    const decided = classify(tx, counting);
    if (decided.kind !== "counted") continue;
    for (const [category, part] of countedParts(tx, decided)) {
      if (part === 0) continue;
      const key = JSON.stringify([tx.accountId, tx.currency, category]);
      let row = rows.get(key);
      if (row === undefined) {
        row = { accountId: tx.accountId, category, currency: tx.currency, spentMinor: 0, receivedMinor: 0 };
        rows.set(key, row);
      }
      // Debit parts are negative, so subtracting them adds to spending, and subtracting a refund's
      // positive part takes it back off.
      if (spending || refund) row.spentMinor -= part;
      else row.receivedMinor += part;
    }
  }
  return [...rows.values()].sort((a, b) =>
    compareText(a.accountId, b.accountId) || compareText(a.currency, b.currency) || compareText(a.category, b.category)
  );
}

// The store keeps one entry per account and id; this keeps a duplicate handed in by mistake from
// counting twice (the first copy wins).
function* once(transactions: Iterable<StoredTransaction>): Generator<StoredTransaction> {
  const seen = new Set<string>();
  for (const tx of transactions) {
    const key = JSON.stringify([tx.accountId, tx.id]);
    if (seen.has(key)) continue;
    seen.add(key);
    yield tx;
  }
}
