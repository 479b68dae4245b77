/**
 * One walk through an account's stored history, sample time by sample time, with the figures the
 * live families would have read at each: the balance, the cash-flow counters (rule 2) and the
 * budget-month rows (rule 3), counted under the same rules, shares and own accounts as live (rule 7:
 * internal transfers and excluded transactions in no figure, though they move the balance). The walk holds running totals, the current month's rows and the
 * transactions read but not yet settled, never the samples: memory is bounded by the series.
 *
 * @module
 */
import type { StoredTransaction } from "../monzo/transaction.ts";
import { type BudgetMonth, budgetMonth, paydayMonth, type Salary } from "../spending/budget_month.ts";
import { type PaydayRule, salaryOf } from "../spending/salaries.ts";
import { capCategories, MAX_CATEGORIES } from "../spending/category_cap.ts";
import { budget, type BudgetRow, cashFlow } from "../spending/rules.ts";
import type { Counting } from "../spending/classify.ts";
import { compareText } from "../shared/compare.ts";
import type { BackfillAccount, BackfillSource } from "./source.ts";

/** The spacing and end of the sample times, and how budget months and categories are cut. */
export interface TimelinePlan {
  /** Time between samples, ms; samples fall on its multiples since the Unix epoch. */
  readonly stepMs: number;
  /** Samples stop before this time, epoch ms, if it comes before the account's counting start. */
  readonly untilMs: number | null;
  /** Day of the month (1–28) the budget month starts. */
  readonly monthStartDay: number;
  /** Categories with a budget, which keep their name when an account has too many (category_cap.ts). */
  readonly budgeted: ReadonlySet<string>;
  /** The rules, shares and known accounts the figures are counted under (lib/spending/classify.ts), as live. */
  readonly counting: Counting;
  /** `payday_min_amount` as the salaries' rule; none (or null) when pay-day months are off. */
  readonly payday?: PaydayRule | null;
  /**
   * With pay-day months, the salaries that start months, across every account ({@link paydaySalaries},
   * found once before the walks); the months are then pay-day months, as live.
   */
  readonly salaries?: readonly Salary[] | null;
}

/** Cash flow of one currency so far, minor units. */
export interface Flow {
  spentMinor: number;
  receivedMinor: number;
}

/** The figures at one sample time, valid only during the visit. */
export interface Moment {
  /** The sample time, epoch ms. */
  readonly at: number;
  /** The balance then, minor units. */
  balanceMinor(): number;
  /** Money settled at or before it, since the history start, in the currency. */
  flow(currency: string): Flow;
  /** The budget-month row of the category then (created at or before it), as the live gauges would read it. */
  row(currency: string, category: string): BudgetRow | undefined;
  /** Every budget-month row then. */
  rows(): readonly BudgetRow[];
}

/** The sample times of an account: the first multiple of the step at or after its history start, up to its end. */
export function sampleTimes(account: BackfillAccount, plan: Pick<TimelinePlan, "stepMs" | "untilMs">): {
  readonly first: number;
  readonly end: number;
} {
  const first = Math.ceil(account.historyStart / plan.stepMs) * plan.stepMs;
  const end = plan.untilMs === null ? account.countingStart : Math.min(account.countingStart, plan.untilMs);
  return { first, end };
}

/** What a survey of the account finds: what every later walk needs to know up front. */
export interface Survey {
  /** Sum of the balance-moving amounts created at or before the balance was read (see {@link Moment.balanceMinor}). */
  readonly movedByBalanceTime: number;
  /** Every currency of its transactions: a counter series each. */
  readonly currencies: readonly string[];
  /** The `[currency, category]` of every row with spending, or money received, at some sample time. */
  readonly spentRows: readonly (readonly [string, string])[];
  readonly receivedRows: readonly (readonly [string, string])[];
}

/** A transaction that moves the balance in its currency: every one not declined (pot moves and pending included). */
function movesBalance(tx: StoredTransaction, currency: string): boolean {
  return !tx.declined && tx.currency === currency;
}

/**
 * Walks the account's sample times in order, calling `visit` at each with the figures then, and
 * `read` with every transaction (all are read, those after the last sample time too).
 */
export async function walk(
  source: BackfillSource,
  account: BackfillAccount,
  plan: TimelinePlan,
  visit: (moment: Moment) => void | Promise<void>,
  read: (tx: StoredTransaction) => void = () => {},
  movedByBalanceTime = 0,
): Promise<void> {
  const { first, end } = sampleTimes(account, plan);
  const { counting } = plan;
  const salaries = plan.salaries ?? null;
  const iterator = source.transactions(account.accountId)[Symbol.asyncIterator]();
  let next = await iterator.next();
  let movedSoFar = 0;
  const flows = new Map<string, Flow>();
  // Transactions read whose settlement is still to come, by the time they count: a min-heap.
  const unsettled = new Heap();
  let month: BudgetMonth | null = null;
  const rows = new Map<string, BudgetRow>();
  let capped: Map<string, BudgetRow> | null = null;
  let cappedAt = -1;
  const flowOf = (currency: string): Flow => {
    let flow = flows.get(currency);
    if (flow === undefined) flows.set(currency, flow = { spentMinor: 0, receivedMinor: 0 });
    return flow;
  };
  const take = (tx: StoredTransaction, at: number) => {
    read(tx);
    if (movesBalance(tx, account.currency)) movedSoFar += tx.amount;
    // Rule 2, from the history start on; one settled before it was created counts once it is.
    if (tx.settledMs !== null && tx.settledMs >= account.historyStart) {
      for (const flow of cashFlow([tx], counting)) {
        if (flow.spentMinor !== 0 || flow.receivedMinor !== 0) {
          unsettled.push({ at: tx.settledMs, currency: flow.currency, flow });
        }
      }
    }
    // Rule 3, for the month of the sample time; a transaction of an earlier month is for no sample now.
    if (month !== null && tx.createdMs >= month.start && tx.createdMs <= at) {
      for (const part of budget([tx], month, counting)) {
        const key = rowKey(part.currency, part.category);
        const row = rows.get(key);
        rows.set(
          key,
          row === undefined ? part : {
            ...row,
            spentMinor: row.spentMinor + part.spentMinor,
            receivedMinor: row.receivedMinor + part.receivedMinor,
          },
        );
      }
    }
  };
  for (let at = first; at < end; at += plan.stepMs) {
    // A month is worked out only when the sample time leaves the last one: it is most of the walk's cost otherwise.
    if (month === null || at >= month.end || at < month.start) {
      month = salaries === null ? budgetMonth(at, plan.monthStartDay) : paydayMonth(at, plan.monthStartDay, salaries);
      rows.clear();
    }
    while (!next.done && next.value.createdMs <= at) {
      take(next.value, at);
      next = await iterator.next();
    }
    while (unsettled.size > 0 && unsettled.peek().at <= at) {
      const { currency, flow } = unsettled.pop();
      const total = flowOf(currency);
      total.spentMinor += flow.spentMinor;
      total.receivedMinor += flow.receivedMinor;
    }
    const cappedRows = (): Map<string, BudgetRow> => {
      if (rows.size <= MAX_CATEGORIES) return rows;
      if (cappedAt !== at || capped === null) {
        const list = [...rows.values()].sort(byRow);
        capped = new Map(
          capCategories(list, plan.budgeted).rows.map((row) => [rowKey(row.currency, row.category), row]),
        );
        cappedAt = at;
      }
      return capped;
    };
    const moment: Moment = {
      at,
      balanceMinor: () => account.balance.balanceMinor - (movedByBalanceTime - movedSoFar),
      flow: (currency) => ({ ...flowOf(currency) }),
      row: (currency, category) => cappedRows().get(rowKey(currency, category)),
      rows: () => [...cappedRows().values()].sort(byRow),
    };
    const visited = visit(moment);
    if (visited) await visited;
  }
  // The rest is read too, for the survey's totals (the balance was read after the last sample time).
  while (!next.done) {
    read(next.value);
    next = await iterator.next();
  }
}

/**
 * Reads the account once: the balance-moving sum up to the balance's time, its currencies, and the
 * budget-month rows that ever show.
 */
export async function survey(source: BackfillSource, account: BackfillAccount, plan: TimelinePlan): Promise<Survey> {
  let moved = 0;
  const currencies = new Set<string>();
  const spent = new Map<string, readonly [string, string]>();
  const received = new Map<string, readonly [string, string]>();
  await walk(source, account, plan, (moment) => {
    for (const row of moment.rows()) {
      const key = rowKey(row.currency, row.category);
      if (row.spentMinor !== 0) spent.set(key, [row.currency, row.category]);
      if (row.receivedMinor !== 0) received.set(key, [row.currency, row.category]);
    }
  }, (tx) => {
    currencies.add(tx.currency);
    if (movesBalance(tx, account.currency) && tx.createdMs <= account.balance.at) moved += tx.amount;
  });
  const ordered = (rows: Map<string, readonly [string, string]>) =>
    [...rows.values()].sort(([c1, k1], [c2, k2]) => compareText(c1, c2) || compareText(k1, k2));
  return {
    movedByBalanceTime: moved,
    currencies: [...currencies].sort(compareText),
    spentRows: ordered(spent),
    receivedRows: ordered(received),
  };
}

/**
 * The salaries of every account that start a pay-day month under `rule`: the first in each month's
 * window, so at most one a month is held however many large credits the history has.
 */
export async function paydaySalaries(
  source: BackfillSource,
  rule: PaydayRule,
  plan: Pick<TimelinePlan, "monthStartDay" | "counting">,
): Promise<Salary[]> {
  // By the month each starts (its nominal end): the earliest salary in that month's window.
  const first = new Map<number, Salary>();
  for (const account of source.accounts()) {
    for await (const tx of source.transactions(account.accountId)) {
      const salary = salaryOf(tx, rule, plan.counting);
      if (salary === null) continue;
      // Alone, a salary starts a month exactly when it lands in that month's window.
      const month = paydayMonth(salary.createdMs, plan.monthStartDay, [salary]);
      if (month.startedBy === null) continue;
      const held = first.get(month.nominalEnd);
      if (held === undefined || salary.createdMs < held.createdMs) first.set(month.nominalEnd, salary);
    }
  }
  return [...first.values()].sort((a, b) => a.createdMs - b.createdMs);
}

function rowKey(currency: string, category: string): string {
  return JSON.stringify([currency, category]);
}

// The order of the live rows: currency, then category (one account here).
function byRow(a: BudgetRow, b: BudgetRow): number {
  return compareText(a.currency, b.currency) || compareText(a.category, b.category);
}

/** A settled amount waiting for the sample time it counts at. */
interface Pending {
  readonly at: number;
  readonly currency: string;
  readonly flow: Flow;
}

/** A binary min-heap by time. */
class Heap {
  readonly #items: Pending[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Pending {
    return this.#items[0];
  }

  push(item: Pending): void {
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent].at <= items[i].at) break;
      [items[parent], items[i]] = [items[i], items[parent]];
      i = parent;
    }
  }

  pop(): Pending {
    const items = this.#items;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let least = i;
        if (left < items.length && items[left].at < items[least].at) least = left;
        if (right < items.length && items[right].at < items[least].at) least = right;
        if (least === i) break;
        [items[least], items[i]] = [items[i], items[least]];
        i = least;
      }
    }
    return top;
  }
}
