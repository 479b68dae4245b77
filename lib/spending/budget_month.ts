/**
 * The budget month: it starts at 00:00 Europe/London on the configured day, the way people paid on
 * the 25th think of "this month". London's offset follows the UK summer-time rule written out below,
 * not `Intl.DateTimeFormat`: asking ICU for a named time zone loads its time-zone and locale data,
 * which stays resident for the life of the process (docs/performance.md has the figure). The tests check this rule against ICU for every day from 1996 to 2060.
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

/**
 * The budget month containing `nowMs`, for months starting on `monthStartDay` (1–28) at 00:00
 * London time. Throws a RangeError for a day outside 1–28 or a time outside 1970–9999, which
 * config checks and the clock rule out.
 */
export function budgetMonth(nowMs: number, monthStartDay: number): BudgetMonth {
  if (!Number.isInteger(monthStartDay) || monthStartDay < MIN_MONTH_START_DAY || monthStartDay > MAX_MONTH_START_DAY) {
    throw new RangeError(`Month start day must be a whole number from 1 to 28: "${monthStartDay}"`);
  }
  if (!Number.isFinite(nowMs) || nowMs < EARLIEST_MS || nowMs > LATEST_MS) {
    throw new RangeError(`Time is outside 1970–9999: "${nowMs}"`);
  }
  const today = londonClock(nowMs);
  // Midnight starts the day, so "on or after the start day" is a comparison of dates alone.
  const month = today.day >= monthStartDay ? today.month - 1 : today.month - 2;
  return {
    start: londonMidnight(today.year, month, monthStartDay),
    end: londonMidnight(today.year, month + 1, monthStartDay),
  };
}
