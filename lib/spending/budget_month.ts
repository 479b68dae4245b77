/**
 * The budget month: it starts at 00:00 Europe/London on the configured day, the way people paid on
 * the 25th think of "this month". London's offset follows the UK summer-time rule written out below,
 * not `Intl.DateTimeFormat`: asking ICU for a named time zone loads its time-zone and locale data,
 * which stays resident for the life of the process (docs/performance.md has the figure). The tests check this rule against ICU for every day from 1996 to 2060.
 * A pay-day month (`payday_min_amount`) may start earlier, when a salary lands in the five days before.
 *
 * @module
 */

import { MAX_MONTH_START_DAY, MIN_MONTH_START_DAY } from "../config/config.ts";

/** A budget month as epoch ms: `start` is included, `end` (the next month's start) is not. */
export interface BudgetMonth {
  readonly start: number;
  readonly end: number;
}

// The rule below is the UK's since 1996; before that it is an approximation, for a clock that is wrong
// anyway (a device without a real-time clock starts at 1970 until it syncs), and must not stop the poll.
const EARLIEST_MS = 0;
const LATEST_MS = Date.UTC(9999, 10, 1);
const HOUR_MS = 3_600_000;
const MARCH = 2;
const OCTOBER = 9;

/** 01:00 UTC on the last Sunday of the month (0-based): when UK clocks change. */
function lastSundayAtOneUtc(year: number, month: number): number {
  const lastDay = new Date(Date.UTC(year, month + 1, 0));
  return Date.UTC(year, month, lastDay.getUTCDate() - lastDay.getUTCDay(), 1);
}

/**
 * London's offset from UTC at `ms`, in ms: British Summer Time (UTC+1) runs from 01:00 UTC on the
 * last Sunday of March to 01:00 UTC on the last Sunday of October, GMT (UTC+0) the rest of the year.
 */
function londonOffset(ms: number): number {
  const year = new Date(ms).getUTCFullYear();
  return ms >= lastSundayAtOneUtc(year, MARCH) && ms < lastSundayAtOneUtc(year, OCTOBER) ? HOUR_MS : 0;
}

/** The London wall-clock date at `ms` (month 1–12). */
function londonClock(ms: number): { year: number; month: number; day: number } {
  const wall = new Date(ms + londonOffset(ms));
  return { year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate() };
}

/**
 * The instant London's clocks show 00:00 on the given day (`month` 0-based, and may overflow into
 * the next or previous year). The offset at that date's UTC midnight is the offset at London's
 * midnight too, since the clocks change at 01:00 UTC, never within an hour of midnight.
 */
function londonMidnight(year: number, month: number, day: number): number {
  const wall = Date.UTC(year, month, day);
  return wall - londonOffset(wall);
}

/** The nominal month containing `nowMs`: its start's London year and 0-based month (may be -1). */
function nominalMonthOf(nowMs: number, monthStartDay: number): { year: number; month: number } {
  if (!Number.isInteger(monthStartDay) || monthStartDay < MIN_MONTH_START_DAY || monthStartDay > MAX_MONTH_START_DAY) {
    throw new RangeError(`Month start day must be a whole number from 1 to 28: "${monthStartDay}"`);
  }
  if (!Number.isFinite(nowMs) || nowMs < EARLIEST_MS || nowMs > LATEST_MS) {
    throw new RangeError(`Time is outside 1970–9999: "${nowMs}"`);
  }
  const today = londonClock(nowMs);
  // Midnight starts the day, so "on or after the start day" is a comparison of dates alone.
  return { year: today.year, month: today.day >= monthStartDay ? today.month - 1 : today.month - 2 };
}

/**
 * The budget month containing `nowMs`, for months starting on `monthStartDay` (1–28) at 00:00
 * London time. Throws a RangeError for a day outside 1–28 or a time outside 1970–9999, which
 * config checks and the clock rule out.
 */
export function budgetMonth(nowMs: number, monthStartDay: number): BudgetMonth {
  const { year, month } = nominalMonthOf(nowMs, monthStartDay);
  return {
    start: londonMidnight(year, month, monthStartDay),
    end: londonMidnight(year, month + 1, monthStartDay),
  };
}

/** A credit that may start a pay-day month, already chosen by the caller (not internal, budget currency, large enough). */
export interface Salary {
  readonly createdMs: number;
  readonly amountMinor: number;
  readonly currency: string;
}

/**
 * A pay-day month: `start` is the salary's created time when `startedBy` is one, else 00:00 London on
 * the start day; `end` is the next month's start as far as the salaries given tell (the nominal end if
 * none of them starts it); `nominalEnd` is 00:00 London on the start day after the one the month is named for.
 */
export interface PaydayMonth extends BudgetMonth {
  readonly startedBy: Salary | null;
  readonly nominalEnd: number;
}

/** How many days before the start day a salary may land and start the month. */
export const PAYDAY_WINDOW_DAYS = 5;

/**
 * The pay-day month containing `at`: a month named for the start day S begins at the first of
 * `salaries` created in [00:00 London five days before S, 00:00 London on S), else at 00:00 on S.
 * The salaries are what is known, so a month whose next salary is in them ends where it landed. Throws
 * like {@link budgetMonth}.
 */
export function paydayMonth(at: number, monthStartDay: number, salaries: readonly Salary[]): PaydayMonth {
  const { year, month } = nominalMonthOf(at, monthStartDay);
  // Month `offset` from the nominal one containing `at`: its nominal start and when it actually starts.
  const named = (offset: number) => {
    const nominal = londonMidnight(year, month + offset, monthStartDay);
    // A day before the 1st overflows back into the previous month (and year), as the window needs.
    const windowStart = londonMidnight(year, month + offset, monthStartDay - PAYDAY_WINDOW_DAYS);
    let first: Salary | null = null;
    for (const salary of salaries) {
      const t = salary.createdMs;
      if (t >= windowStart && t < nominal && (first === null || t < first.createdMs)) first = salary;
    }
    return { nominal, start: first?.createdMs ?? nominal, startedBy: first };
  };
  // A window ends where its month would nominally start and begins over three weeks after the month
  // before did, so the months' starts keep their order: `at` is in this nominal month's or the next one's.
  const next = named(1);
  const [current, following] = at >= next.start ? [next, named(2)] : [named(0), next];
  return {
    start: current.start,
    end: following.start,
    startedBy: current.startedBy,
    nominalEnd: following.nominal,
  };
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const SYMBOLS: Readonly<Record<string, string>> = { GBP: "£", EUR: "€", USD: "$" };

/** "1st", "2nd", "3rd", "4th", …, "11th", …, "21st", … */
function ordinal(day: number): string {
  const teen = day % 100 >= 11 && day % 100 <= 13;
  const suffix = teen ? "th" : ["th", "st", "nd", "rd"][day % 10] ?? "th";
  return `${day}${suffix}`;
}

/** Minor units as "£2,150.00", or "2,150.00 CHF" for a currency without a symbol here. */
function money(minor: number, currency: string): string {
  const sign = minor < 0 ? "-" : "";
  const pence = Math.abs(Math.round(minor));
  const whole = String(Math.floor(pence / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const amount = `${whole}.${String(pence % 100).padStart(2, "0")}`;
  const symbol = SYMBOLS[currency];
  return symbol === undefined ? `${sign}${amount} ${currency}` : `${sign}${symbol}${amount}`;
}

/**
 * Why the month began when it did, for the status page: "salary of £2,150.00 on Thu 24 Jul" (the salary's
 * London date), or "the 25th" when no salary started it.
 */
export function monthStartReason(month: PaydayMonth, monthStartDay: number): string {
  if (month.startedBy === null) return `the ${ordinal(monthStartDay)}`;
  const { createdMs, amountMinor, currency } = month.startedBy;
  const { year, month: wallMonth, day } = londonClock(createdMs);
  const weekday = WEEKDAYS[new Date(Date.UTC(year, wallMonth - 1, day)).getUTCDay()];
  return `salary of ${money(amountMinor, currency)} on ${weekday} ${day} ${MONTHS[wallMonth - 1]}`;
}

/**
 * The earliest instant the pay-day month containing `at` may start (00:00 London five days before the
 * start day of the nominal month containing `at`): what must be held to find its salary. Throws like {@link budgetMonth}.
 */
export function paydayHeldFrom(at: number, monthStartDay: number): number {
  const { year, month } = nominalMonthOf(at, monthStartDay);
  return londonMidnight(year, month, monthStartDay - PAYDAY_WINDOW_DAYS);
}
