// Pay-day months (payday_min_amount): a month named for month_start_day starts at the first salary
// that lands in the five London days before it, else at 00:00 London on the day. Every case is checked
// against an oracle written independently of lib/spending/budget_month.ts's window arithmetic: nominal
// months from walking budgetMonth, and "in the window" from the London calendar date ICU shows.
import assert from "node:assert/strict";
import {
  budgetMonth,
  monthStartReason,
  type PaydayMonth,
  paydayMonth,
  type Salary,
} from "../lib/spending/budget_month.ts";

const DAY_MS = 86_400_000;

const utc = (text: string) => {
  const ms = Date.parse(text);
  assert.ok(Number.isFinite(ms), text);
  return ms;
};
const iso = (ms: number) => new Date(ms).toISOString();
const salaryAt = (text: string, amountMinor = 215_000): Salary => ({
  createdMs: utc(text),
  amountMinor,
  currency: "GBP",
});

// What London's clocks show at an instant, from ICU: the oracle only, never the code under test.
const londonFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/London",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  weekday: "short",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});
const londonParts = (ms: number) =>
  Object.fromEntries(londonFormat.formatToParts(ms).map((part) => [part.type, part.value]));
const dayNumberCache = new Map<number, number>();
/** The London calendar date at `ms`, as days since 1970-01-01. */
function londonDayNumber(ms: number): number {
  let day = dayNumberCache.get(ms);
  if (day === undefined) {
    const p = londonParts(ms);
    day = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day)) / DAY_MS;
    dayNumberCache.set(ms, day);
  }
  return day;
}
const londonWeekday = (ms: number) => londonParts(ms).weekday;

/**
 * The oracle: nominal month starts from budgetMonth, walked a month at a time; a salary is in the window
 * of start S when it is before S and its London date is at most five dates before S's.
 */
function oracle(at: number, day: number, salaries: readonly Salary[]): PaydayMonth {
  const nominal: number[] = [budgetMonth(budgetMonth(at, day).start - 1, day).start];
  while (nominal.length < 5) nominal.push(budgetMonth(nominal[nominal.length - 1], day).end);
  const months = nominal.map((start) => {
    const inWindow = salaries.filter((s) =>
      s.createdMs < start && londonDayNumber(start) - londonDayNumber(s.createdMs) <= 5
    );
    inWindow.sort((a, b) => a.createdMs - b.createdMs);
    return { nominal: start, start: inWindow[0]?.createdMs ?? start, startedBy: inWindow[0] ?? null };
  });
  const i = months.findLastIndex((month) => month.start <= at);
  assert.ok(i >= 0 && i < months.length - 1, `oracle: ${iso(at)} is outside the months it walked`);
  return {
    start: months[i].start,
    end: months[i + 1].start,
    startedBy: months[i].startedBy,
    nominalEnd: months[i + 1].nominal,
  };
}

const show = (m: PaydayMonth) => ({
  start: iso(m.start),
  end: iso(m.end),
  nominalEnd: iso(m.nominalEnd),
  startedBy: m.startedBy === null ? null : iso(m.startedBy.createdMs),
});

/** paydayMonth, checked against the oracle. */
function month(at: number, day: number, salaries: readonly Salary[]): PaydayMonth {
  const got = paydayMonth(at, day, salaries);
  assert.deepEqual(show(got), show(oracle(at, day, salaries)), `at ${iso(at)}, day ${day}`);
  assert.ok(got.start <= at && at < got.end, `at ${iso(at)} is not in its month ${JSON.stringify(show(got))}`);
  return got;
}

Deno.test("a salary on Friday 23 January 2026, before Sunday the 25th, starts the month when it lands", () => {
  const salary = salaryAt("2026-01-23T06:12:00Z");
  assert.equal(londonWeekday(salary.createdMs), "Fri");
  assert.equal(londonWeekday(utc("2026-01-25T12:00:00Z")), "Sun");
  const nominal = budgetMonth(utc("2026-01-25T12:00:00Z"), 25);
  for (const at of [salary.createdMs, utc("2026-01-24T12:00:00Z"), utc("2026-02-10T12:00:00Z")]) {
    const got = month(at, 25, [salary]);
    assert.equal(got.start, salary.createdMs, iso(at));
    assert.equal(got.startedBy, salary);
    // Named for 25 January: it ends nominally on 25 February, and nothing known starts February earlier.
    assert.equal(got.nominalEnd, nominal.end);
    assert.equal(got.end, nominal.end);
  }
});

Deno.test("before the salary lands the previous month goes on, and ends where the salary starts the next", () => {
  const salary = salaryAt("2026-01-23T06:12:00Z");
  const before = month(salary.createdMs - 1, 25, [salary]);
  assert.equal(before.start, budgetMonth(utc("2026-01-01T12:00:00Z"), 25).start);
  assert.equal(before.startedBy, null);
  assert.equal(before.end, salary.createdMs);
  assert.equal(before.nominalEnd, budgetMonth(utc("2026-01-25T12:00:00Z"), 25).start);
  // The same instant with the salary not yet known: the month ends nominally.
  const unknown = month(salary.createdMs - 1, 25, []);
  assert.equal(unknown.end, before.nominalEnd);
  const after = month(salary.createdMs, 25, [salary]);
  assert.equal(after.start, before.end);
});

Deno.test("a salary outside the five-day window is ignored", () => {
  // The window of 25 January 2026 opens at 00:00 on the 20th (GMT).
  const opens = budgetMonth(utc("2026-01-20T12:00:00Z"), 20).start;
  const sixDaysBefore = salaryAt("2026-01-19T09:00:00Z");
  const justBefore = { ...sixDaysBefore, createdMs: opens - 1 };
  const onTheDay = salaryAt("2026-01-25T09:00:00Z");
  const at = utc("2026-01-26T12:00:00Z");
  for (const salary of [sixDaysBefore, justBefore, onTheDay]) {
    const got = month(at, 25, [salary]);
    assert.equal(got.start, budgetMonth(at, 25).start, iso(salary.createdMs));
    assert.equal(got.startedBy, null);
  }
  // The window's first instant is in it.
  const first = { ...sixDaysBefore, createdMs: opens };
  assert.equal(month(at, 25, [first]).start, opens);
});

Deno.test("of two salaries in the window the first starts the month, whatever their order", () => {
  const early = salaryAt("2026-01-21T15:00:00Z", 90_000);
  const late = salaryAt("2026-01-23T06:12:00Z");
  const at = utc("2026-01-24T12:00:00Z");
  for (const salaries of [[early, late], [late, early]]) {
    const got = month(at, 25, salaries);
    assert.equal(got.start, early.createdMs);
    assert.equal(got.startedBy, early);
  }
  // Between the two the new month has started already.
  assert.equal(month(utc("2026-01-22T12:00:00Z"), 25, [late, early]).start, early.createdMs);
});

Deno.test("with no salary a month starts at 00:00 London on the day, as budgetMonth says", () => {
  for (const text of ["2026-01-24T12:00:00Z", "2026-07-25T00:30:00Z", "2028-02-29T23:59:00Z"]) {
    for (const day of [1, 25, 28]) {
      const got = month(utc(text), day, []);
      const plain = budgetMonth(utc(text), day);
      assert.deepEqual([got.start, got.end, got.nominalEnd, got.startedBy], [plain.start, plain.end, plain.end, null]);
    }
  }
});

Deno.test("month_start_day 1: a salary on 29 December 2025 starts January's month, across the year end", () => {
  const salary = salaryAt("2025-12-29T10:00:00Z");
  const got = month(utc("2025-12-30T12:00:00Z"), 1, [salary]);
  assert.equal(got.start, salary.createdMs);
  assert.equal(got.nominalEnd, budgetMonth(utc("2026-01-15T12:00:00Z"), 1).end);
  assert.equal(got.nominalEnd, utc("2026-02-01T00:00:00Z"));
  // December's month ends where the salary landed.
  assert.equal(month(utc("2025-12-10T12:00:00Z"), 1, [salary]).end, salary.createdMs);
  // The window opens at 00:00 on 27 December: the 26th is too early.
  assert.equal(month(utc("2025-12-30T12:00:00Z"), 1, [salaryAt("2025-12-26T23:59:59Z")]).startedBy, null);
  assert.equal(
    month(utc("2025-12-30T12:00:00Z"), 1, [salaryAt("2025-12-27T00:00:00Z")]).startedBy?.createdMs,
    utc("2025-12-27T00:00:00Z"),
  );
});

Deno.test("month_start_day 28: the window is the 23rd to the 27th", () => {
  const salary = salaryAt("2026-02-27T17:00:00Z");
  const got = month(utc("2026-02-27T18:00:00Z"), 28, [salary]);
  assert.equal(got.start, salary.createdMs);
  assert.equal(got.nominalEnd, utc("2026-03-28T00:00:00Z"));
  assert.equal(month(utc("2026-02-27T18:00:00Z"), 28, [salaryAt("2026-02-22T23:59:59Z")]).startedBy, null);
});

Deno.test("a leap February: 29 February 2028 is in the window of 1 March, and opens the window of 5 March", () => {
  const leapDay = salaryAt("2028-02-29T12:00:00Z");
  assert.equal(month(utc("2028-02-29T13:00:00Z"), 1, [leapDay]).start, leapDay.createdMs);
  // Five days before 5 March 2028 is 29 February, not 28 February.
  const opens = salaryAt("2028-02-29T00:00:00Z");
  assert.equal(month(utc("2028-03-01T12:00:00Z"), 5, [opens]).start, opens.createdMs);
  const tooEarly = salaryAt("2028-02-28T23:59:59.999Z");
  assert.equal(month(utc("2028-03-01T12:00:00Z"), 5, [tooEarly]).startedBy, null);
});

Deno.test("a window across the clocks going back (last Sunday of October 2026) is five days and an hour", () => {
  // The window of 28 October 2026 opens at 00:00 BST on the 23rd (22nd 23:00 UTC) and closes at 00:00 GMT on the 28th.
  assert.equal(londonWeekday(utc("2026-10-25T12:00:00Z")), "Sun");
  const at = utc("2026-10-28T12:00:00Z");
  assert.equal(month(at, 28, [salaryAt("2026-10-22T23:00:00Z")]).start, utc("2026-10-22T23:00:00Z"));
  assert.equal(month(at, 28, [salaryAt("2026-10-22T22:59:59.999Z")]).startedBy, null);
  assert.equal(month(at, 28, [salaryAt("2026-10-27T23:59:59.999Z")]).start, utc("2026-10-27T23:59:59.999Z"));
  // The Sunday itself: 01:30 comes twice (00:30 and 01:30 UTC); both are in the window.
  for (const text of ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"]) {
    assert.equal(month(at, 28, [salaryAt(text)]).start, utc(text));
  }
});

Deno.test("a window across the clocks going forward (last Sunday of March 2029) is five days less an hour", () => {
  // The window of 28 March 2029 opens at 00:00 GMT on the 23rd and closes at 00:00 BST on the 28th (27th 23:00 UTC).
  assert.equal(londonWeekday(utc("2029-03-25T12:00:00Z")), "Sun");
  const at = utc("2029-03-28T12:00:00Z");
  assert.equal(month(at, 28, [salaryAt("2029-03-27T22:59:59.999Z")]).start, utc("2029-03-27T22:59:59.999Z"));
  const afterMidnight = month(at, 28, [salaryAt("2029-03-27T23:00:00Z")]);
  assert.equal(afterMidnight.startedBy, null);
  assert.equal(afterMidnight.start, utc("2029-03-27T23:00:00Z"));
  assert.equal(month(at, 28, [salaryAt("2029-03-23T00:00:00Z")]).start, utc("2029-03-23T00:00:00Z"));
  assert.equal(month(at, 28, [salaryAt("2029-03-22T23:59:59.999Z")]).startedBy, null);
  assert.equal(month(at, 28, [salaryAt("2029-03-25T01:30:00Z")]).start, utc("2029-03-25T01:30:00Z"));
});

Deno.test("a Friday salary before Sunday 28 March 2027, the day the clocks go forward", () => {
  const salary = salaryAt("2027-03-26T08:00:00Z");
  assert.equal(londonWeekday(salary.createdMs), "Fri");
  const got = month(utc("2027-03-27T12:00:00Z"), 28, [salary]);
  assert.equal(got.start, salary.createdMs);
  // Named for 28 March: it ends nominally at 00:00 BST on 28 April.
  assert.equal(got.nominalEnd, utc("2027-04-27T23:00:00Z"));
});

Deno.test("nominalEnd is the day after the one the month is named for, even when the next salary comes earlier", () => {
  const january = salaryAt("2026-01-23T06:12:00Z");
  const february = salaryAt("2026-02-20T06:12:00Z");
  const got = month(utc("2026-02-01T12:00:00Z"), 25, [january, february]);
  assert.equal(got.start, january.createdMs);
  assert.equal(got.end, february.createdMs);
  assert.equal(got.nominalEnd, utc("2026-02-25T00:00:00Z"));
  // In February's month, begun early on the 20th, the nominal end is 25 March.
  const next = month(utc("2026-02-21T12:00:00Z"), 25, [january, february]);
  assert.equal(next.start, february.createdMs);
  assert.equal(next.nominalEnd, utc("2026-03-25T00:00:00Z"));
});

/** A small seeded generator (mulberry32), so the walk below is the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

Deno.test("over four years of salaries near month ends, every instant agrees with the oracle and months tile", () => {
  const random = seeded(18);
  const salaries: Salary[] = [];
  // Up to three salaries around the turn of each month (from the 18th to the 4th), at any minute.
  for (let m = 0; m < 50; m++) {
    const count = Math.floor(random() * 4);
    for (let i = 0; i < count; i++) {
      const ms = Date.UTC(2025, m, 18) + Math.floor(random() * 17 * 24 * 60) * 60_000;
      salaries.push({ createdMs: ms, amountMinor: 200_000, currency: "GBP" });
    }
  }
  const from = utc("2025-02-01T00:00:00Z");
  const to = utc("2029-01-01T00:00:00Z");
  for (const day of [1, 3, 25, 28]) {
    let last: PaydayMonth | null = null;
    // 331 minutes is prime to the hour and the day, so the samples land at every time of day.
    for (let at = from; at < to; at += 331 * 60_000) {
      const got = month(at, day, salaries);
      if (last !== null && got.start !== last.start) {
        assert.equal(got.start, last.end, `day ${day}: a month starts where the last ended`);
      }
      last = got;
    }
  }
});

Deno.test("the status page's reason names the salary, on its London date, or the day", () => {
  const salary = salaryAt("2025-07-24T06:00:00Z", 215_000);
  const started = month(utc("2025-07-24T12:00:00Z"), 25, [salary]);
  assert.equal(monthStartReason(started, 25), "salary of £2,150.00 on Thu 24 Jul");
  // 23:30 UTC on 23 July is 00:30 on the 24th in London (BST).
  const late = month(utc("2025-07-24T12:00:00Z"), 25, [salaryAt("2025-07-23T23:30:00Z", 215_000)]);
  assert.equal(monthStartReason(late, 25), "salary of £2,150.00 on Thu 24 Jul");
  const plain = month(utc("2025-07-26T12:00:00Z"), 25, []);
  const days: Array<[number, string]> = [
    [1, "1st"],
    [2, "2nd"],
    [3, "3rd"],
    [4, "4th"],
    [11, "11th"],
    [12, "12th"],
    [
      13,
      "13th",
    ],
    [21, "21st"],
    [22, "22nd"],
    [23, "23rd"],
    [25, "25th"],
    [28, "28th"],
  ];
  for (const [day, text] of days) assert.equal(monthStartReason(plain, day), `the ${text}`);
});

Deno.test("the reason's date and amount agree with ICU's for salaries at any time over four years", () => {
  const dateFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/London",
    weekday: "short",
    day: "numeric",
    month: "short",
  });
  const random = seeded(24);
  for (let i = 0; i < 3000; i++) {
    const createdMs = utc("2025-01-01T00:00:00Z") + Math.floor(random() * 4 * 365 * DAY_MS);
    // Amounts from a penny to ten million pounds, in each currency with a symbol and one without.
    const amountMinor = Math.floor(10 ** (random() * 9));
    const currency = ["GBP", "EUR", "USD", "CHF"][i % 4];
    const reason = monthStartReason(
      {
        start: createdMs,
        end: createdMs + DAY_MS,
        nominalEnd: createdMs + DAY_MS,
        startedBy: { createdMs, amountMinor, currency },
      },
      25,
    );
    const amount = new Intl.NumberFormat("en-GB", { style: "currency", currency, currencyDisplay: "narrowSymbol" })
      .format(amountMinor / 100);
    const expected = currency === "CHF" ? `${amount.replace("CHF", "").trim()} CHF` : amount;
    // ICU's en-GB writes September "Sept"; the page keeps to three letters, as for the other months.
    const date = dateFormat.format(createdMs).replace("Sept", "Sep");
    assert.equal(reason, `salary of ${expected} on ${date}`);
  }
});
