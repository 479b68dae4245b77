// The budget month starts at 00:00 Europe/London on the configured day. Expected instants are worked
// out by hand: London is UTC+0 in GMT and UTC+1 in BST; in 2026 BST runs from 29 March 01:00 UTC to
// 25 October 01:00 UTC, in 2027 from 28 March 01:00 UTC to 31 October 01:00 UTC.
import assert from "node:assert/strict";
import { budgetMonth } from "../lib/spending/budget_month.ts";

const utc = (text: string) => {
  const ms = Date.parse(text);
  assert.ok(Number.isFinite(ms), text);
  return ms;
};

/** Asserts the month containing `now` is [start, end), all three written as UTC times. */
function assertMonth(now: string, day: number, start: string, end: string): void {
  const month = budgetMonth(utc(now), day);
  assert.deepEqual(
    { start: new Date(month.start).toISOString(), end: new Date(month.end).toISOString() },
    { start: new Date(utc(start)).toISOString(), end: new Date(utc(end)).toISOString() },
    `now ${now}, day ${day}`,
  );
}

Deno.test("a month in GMT starts at UTC midnight", () => {
  assertMonth("2026-01-20T12:00:00Z", 1, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
});

Deno.test("a month in BST starts at 23:00 UTC the day before", () => {
  // 1 July 00:00 BST = 30 June 23:00 UTC; 1 August 00:00 BST = 31 July 23:00 UTC.
  assertMonth("2026-07-15T12:00:00Z", 1, "2026-06-30T23:00:00Z", "2026-07-31T23:00:00Z");
});

Deno.test("months from the 25th: the London date decides, not the UTC date", () => {
  // 24 July 23:59:59.999 BST is still the month that began on 25 June.
  assertMonth("2026-07-24T22:59:59.999Z", 25, "2026-06-24T23:00:00Z", "2026-07-24T23:00:00Z");
  // 24 July 23:30 UTC is 25 July 00:30 in London: the new month, though UTC still says the 24th.
  assertMonth("2026-07-24T23:30:00Z", 25, "2026-07-24T23:00:00Z", "2026-08-24T23:00:00Z");
});

Deno.test("now exactly at the boundary belongs to the month that starts there", () => {
  assertMonth("2026-07-24T23:00:00Z", 25, "2026-07-24T23:00:00Z", "2026-08-24T23:00:00Z");
  assertMonth("2026-02-01T00:00:00Z", 1, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z");
});

Deno.test("months from the 28th work in February", () => {
  assertMonth("2026-02-27T23:59:59.999Z", 28, "2026-01-28T00:00:00Z", "2026-02-28T00:00:00Z");
  // 28 March 2026 is still GMT (the clocks go forward on the 29th).
  assertMonth("2026-02-28T00:00:00Z", 28, "2026-02-28T00:00:00Z", "2026-03-28T00:00:00Z");
});

Deno.test("a month that started last year", () => {
  assertMonth("2026-01-10T12:00:00Z", 25, "2025-12-25T00:00:00Z", "2026-01-25T00:00:00Z");
  assertMonth("2025-12-31T23:59:59.999Z", 1, "2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z");
});

Deno.test("the month containing 29 March 2026, when the clocks go forward, is an hour short", () => {
  // 1 March 00:00 GMT to 1 April 00:00 BST (31 March 23:00 UTC): 31 days minus an hour.
  assertMonth("2026-03-29T01:00:00Z", 1, "2026-03-01T00:00:00Z", "2026-03-31T23:00:00Z");
  assertMonth("2026-03-29T00:59:59.999Z", 1, "2026-03-01T00:00:00Z", "2026-03-31T23:00:00Z");
  // From the 28th: 28 March 00:00 GMT to 28 April 00:00 BST.
  assertMonth("2026-03-29T00:30:00Z", 28, "2026-03-28T00:00:00Z", "2026-04-27T23:00:00Z");
});

Deno.test("a month starting on 25 October 2026, when the clocks go back, starts at midnight BST", () => {
  // The clocks go back at 02:00 BST, so midnight is still BST: 24 October 23:00 UTC. The month
  // ends on 25 November 00:00 GMT: 31 days and an hour.
  assertMonth("2026-10-25T12:00:00Z", 25, "2026-10-24T23:00:00Z", "2026-11-25T00:00:00Z");
  // 01:30 happens twice that night (00:30 and 01:30 UTC): both in the new month.
  assertMonth("2026-10-25T00:30:00Z", 25, "2026-10-24T23:00:00Z", "2026-11-25T00:00:00Z");
  assertMonth("2026-10-25T01:30:00Z", 25, "2026-10-24T23:00:00Z", "2026-11-25T00:00:00Z");
  assertMonth("2026-10-24T22:59:59.999Z", 25, "2026-09-24T23:00:00Z", "2026-10-24T23:00:00Z");
});

Deno.test("a month starting on 28 March 2027, when the clocks go forward, starts at midnight GMT", () => {
  // The clocks go forward at 01:00 GMT, so midnight is still GMT; 28 April 00:00 BST is 27 April 23:00 UTC.
  assertMonth("2027-03-28T12:00:00Z", 28, "2027-03-28T00:00:00Z", "2027-04-27T23:00:00Z");
  assertMonth("2027-03-28T00:00:00Z", 28, "2027-03-28T00:00:00Z", "2027-04-27T23:00:00Z");
  assertMonth("2027-03-27T23:59:59.999Z", 28, "2027-02-28T00:00:00Z", "2027-03-28T00:00:00Z");
});

Deno.test("a start day outside 1–28 or a time outside 1970–9999 is refused", () => {
  for (const day of [0, 29, 31, 1.5, -1, Number.NaN]) {
    assert.throws(() => budgetMonth(utc("2026-01-20T12:00:00Z"), day), RangeError, `day ${day}`);
  }
  for (const now of [Number.NaN, Number.POSITIVE_INFINITY, -1, 8.64e15]) {
    assert.throws(() => budgetMonth(now, 1), RangeError, `now ${now}`);
  }
});

// An oracle built only from formatting: what London's clocks show at an instant.
const londonFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/London",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});
const london = (ms: number) => londonFormat.format(ms); // "dd/mm/yyyy, hh:mm:ss"

Deno.test("over two years, every month starts at London midnight on its day and contains now", () => {
  const from = utc("2026-01-01T00:00:00Z");
  const to = utc("2028-01-01T00:00:00Z");
  // 97 minutes is prime to the hour and the day, so the samples land at every time of day.
  for (let now = from; now < to; now += 97 * 60_000) {
    for (const day of [1, 25, 28]) {
      const { start, end } = budgetMonth(now, day);
      assert.ok(start <= now && now < end, `${london(now)} day ${day}`);
      const dd = String(day).padStart(2, "0");
      assert.match(london(start), new RegExp(`^${dd}/\\d\\d/\\d{4}, 00:00:00$`));
      assert.match(london(end), new RegExp(`^${dd}/\\d\\d/\\d{4}, 00:00:00$`));
      assert.notEqual(london(start - 1).slice(0, 2), dd, "start is the first instant of the day");
      // Months tile: the next month starts where this one ends, one calendar month later.
      const startMonth = Number(london(start).slice(3, 5));
      const endMonth = Number(london(end).slice(3, 5));
      assert.equal(endMonth, startMonth % 12 + 1);
      // Between 28 and 31 days, give or take the hour of a clock change.
      assert.ok(end - start >= 28 * 86_400_000 - 3_600_000 && end - start <= 31 * 86_400_000 + 3_600_000);
    }
  }
});

Deno.test("the written-out summer-time rule agrees with ICU's Europe/London on every day from 1996 to 2060", () => {
  const day = 86_400_000;
  for (let noon = utc("1996-01-01T12:00:00Z"); noon < utc("2061-01-01T00:00:00Z"); noon += day) {
    const date = Number(london(noon).slice(0, 2));
    if (date > 28) continue;
    // The month starting today starts at today's London midnight: the first instant ICU shows as 00:00:00.
    const { start } = budgetMonth(noon, date);
    assert.match(london(start), /, 00:00:00$/, london(noon));
    assert.equal(london(start).slice(0, 10), london(noon).slice(0, 10));
    assert.notEqual(
      london(start - 1).slice(0, 10),
      london(noon).slice(0, 10),
      `${london(noon)}: start is not the first instant`,
    );
  }
});

Deno.test("a clock at 1970, as on a device before its first time sync, gives a month rather than an error", () => {
  const { start, end } = budgetMonth(0, 1);
  assert.equal(start, utc("1970-01-01T00:00:00Z"));
  assert.equal(end, utc("1970-02-01T00:00:00Z"));
});
