/**
 * The budget month: it starts at 00:00 Europe/London on the configured day, the way people paid on
 * the 25th think of "this month". London's offset comes from the runtime's ICU time-zone data
 * (`Intl.DateTimeFormat`), so BST and GMT, and any future rule change, need no code here.
 *
 * @module
 */

/** A budget month as epoch ms: `start` is included, `end` (the next month's start) is not. */
export interface BudgetMonth {
  readonly start: number;
  readonly end: number;
}

/** Earliest `month_start_day`. */
export const MIN_MONTH_START_DAY = 1;
/** Latest `month_start_day`: every month has a 28th. */
export const MAX_MONTH_START_DAY = 28;

const TIME_ZONE = "Europe/London";
// Dates outside 1970–9999 would need eras in the parts below; no clock of this program reads them.
const EARLIEST_MS = 0;
const LATEST_MS = Date.UTC(9999, 10, 1);

// Built once: constructing a DateTimeFormat costs far more than formatting with it.
const londonParts = new Intl.DateTimeFormat("en-US", {
  timeZone: TIME_ZONE,
  year: "numeric",
  month: "numeric",
  day: "numeric",
  hour: "numeric",
  minute: "numeric",
  second: "numeric",
  hourCycle: "h23",
});

/** The London wall-clock date and time at `ms` (month 1–12). */
function londonClock(ms: number): { year: number; month: number; day: number; utcOfWallClock: number } {
  const parts: Record<string, number> = {};
  for (const part of londonParts.formatToParts(ms)) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const { year, month, day, hour, minute, second } = parts;
  return { year, month, day, utcOfWallClock: Date.UTC(year, month - 1, day, hour, minute, second) };
}

/** London's offset from UTC at `ms`, in ms (3,600,000 in BST, 0 in GMT). */
function londonOffset(ms: number): number {
  const wholeSecond = Math.floor(ms / 1000) * 1000;
  return londonClock(wholeSecond).utcOfWallClock - wholeSecond;
}

/**
 * The instant London's clocks show 00:00 on the given day (`month` 0-based, and may overflow into
 * the next or previous year). The offset at that date's UTC midnight gives a first guess; the offset
 * at the guess is the answer. London changes its clocks at 01:00 UTC, so today the two offsets always
 * agree; the second look keeps the answer right should a switch ever move nearer to midnight.
 */
function londonMidnight(year: number, month: number, day: number): number {
  const wall = Date.UTC(year, month, day);
  const guess = wall - londonOffset(wall);
  return wall - londonOffset(guess);
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
