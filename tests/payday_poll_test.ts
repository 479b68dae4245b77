// Issue 18, section 2, wired: a pay-day month through the real poll against the fake household over
// real HTTP. The calendar is March 2026 with month_start_day = 8, a Sunday: a salary lands on Friday
// the 6th. Times are set on the injected clock, so the test runs the same on any date.

import assert from "node:assert/strict";
import { join } from "node:path";
import { runBackfill } from "../lib/run/backfill.ts";
import { HOUSEHOLD } from "../lib/fake_monzo/history.ts";
import { monzoCounterparty } from "../lib/fake_monzo/transaction.ts";
import {
  ALICE,
  ALICE_CURRENT,
  BOB,
  BOB_CURRENT,
  type Harness,
  JOINT,
  logIn,
  metrics,
  page,
  poll,
  restarted,
  sample,
  withHarness,
} from "./helpers/harness.ts";

/** Sunday 8 March 2026 starts the nominal month; London is on GMT until the 29th. */
const START_DAY = 8;
const THURSDAY = Date.parse("2026-03-05T12:00:00Z");
const FRIDAY = Date.parse("2026-03-06T08:30:00Z");
const SATURDAY = Date.parse("2026-03-07T12:00:00Z");
/** 00:00 London on 8 February 2026 (GMT) and on 8 April 2026 (BST, 23:00 UTC the day before). */
const FEB_8 = Date.parse("2026-02-08T00:00:00Z");
const MAR_8 = Date.parse("2026-03-08T00:00:00Z");
const APR_8 = Date.parse("2026-04-07T23:00:00Z");
const PROBE = "payday_probe";
const SPENT_PROBE = `monzo_spent_this_month{account_id="${ALICE_CURRENT}",category="${PROBE}",currency="GBP"}`;
const START = "monzo_budget_month_start_timestamp_seconds";
const END = "monzo_budget_month_end_timestamp_seconds";
/** Above any salary of the fake household's own history (£2,850 and £2,400), so only the test's start months. */
const PAYDAY = { month_start_day: START_DAY, payday_min_amount: 5000 };

/** A settled card payment of `pence` on Alice's account at `at`, in a category nothing else uses. */
function purchase(h: Harness, at: number, pence: number): void {
  h.fake.addTransaction(ALICE_CURRENT, {
    created: new Date(at).toISOString(),
    amount: -pence,
    description: "CORNER SHOP",
    category: PROBE,
  });
}

/** Bob's salary of £6,000 from his employer (an outside bank account) at `at`; its created time, ms. */
function salary(h: Harness, at: number): number {
  const tx = h.fake.addTransaction(BOB_CURRENT, {
    created: new Date(at).toISOString(),
    amount: 600_000,
    description: "INITECH LTD SALARY",
    category: "income",
    scheme: "payport_faster_payments",
    counterparty: { name: "INITECH LTD", sort_code: "401276", account_number: "71234567" },
  });
  return Date.parse(tx.created);
}

/** £7,000 from Alice's current account into the joint account, Monzo to Monzo, at `at`: both sides. */
function intoJoint(h: Harness, at: number): void {
  const fields = {
    created: new Date(at).toISOString(),
    category: "transfers",
    include_in_spending: false,
    scheme: "p2p_payment",
  } as const;
  h.fake.addTransaction(ALICE_CURRENT, {
    ...fields,
    amount: -700_000,
    description: HOUSEHOLD.joint.name,
    counterparty: monzoCounterparty(HOUSEHOLD.joint),
  });
  h.fake.addTransaction(JOINT, {
    ...fields,
    amount: 700_000,
    description: HOUSEHOLD.alice.name,
    counterparty: monzoCounterparty(HOUSEHOLD.alice),
  });
}

/** Both logins and the first poll (the history imported), then `events`, then a poll on Saturday. */
async function saturday(h: Harness, events: () => void): Promise<{ exposition: string; html: string }> {
  await logIn(h, ALICE);
  await logIn(h, BOB);
  await poll(h);
  events();
  h.clock.set(SATURDAY);
  await poll(h);
  return { exposition: await metrics(h), html: await page(h) };
}

/** {@link saturday} with a purchase on Thursday, Bob's salary on Friday and a purchase on Saturday; the salary's time too. */
async function salaryMonth(h: Harness): Promise<{ paid: number; exposition: string; html: string }> {
  let paid = 0;
  const seen = await saturday(h, () => {
    purchase(h, THURSDAY, 1_111);
    paid = salary(h, FRIDAY);
    purchase(h, SATURDAY, 2_222);
  });
  return { paid, ...seen };
}

Deno.test("a Friday salary before a Sunday month_start_day starts the month: figures, start, end and the status page", async () => {
  await withHarness({ config: PAYDAY }, async (h) => {
    const { paid, exposition, html } = await salaryMonth(h);
    // The purchase the day before the salary is the previous month's: only Saturday's counts.
    assert.equal(sample(exposition, SPENT_PROBE), 22.22);
    assert.equal(sample(exposition, START), paid / 1000);
    assert.equal(sample(exposition, END), APR_8 / 1000);
    assert.match(html, /The budget month started with the salary of £6,000\.00 on Fri 6 Mar\./);
  });
});

Deno.test("after the start day has passed the month is still the salary's: its salary and purchases stay held", async () => {
  await withHarness({ config: PAYDAY }, async (h) => {
    const { paid } = await salaryMonth(h);
    // Monday 9 March, past the nominal start (Sunday the 8th); the second poll reads nothing again
    // (the hourly re-read was the first's), so only what the store holds tells the month.
    h.clock.set(Date.parse("2026-03-09T12:00:00Z"));
    await poll(h);
    await poll(h, 10 * 60_000);
    const exposition = await metrics(h);
    assert.equal(sample(exposition, START), paid / 1000);
    assert.equal(sample(exposition, SPENT_PROBE), 22.22);
    assert.match(await page(h), /The budget month started with the salary of £6,000\.00 on Fri 6 Mar\./);
  });
});

Deno.test("a restart inside a salary-started month keeps it: the store holds the salary from before the start day", async () => {
  await withHarness({ config: PAYDAY }, async (h) => {
    const { paid } = await salaryMonth(h);
    // Monday 9 March, past the nominal start: a new exporter on the same store and logins, and Monzo
    // answers no transactions request, so only what the restart loads from the store tells the month.
    h.clock.set(Date.parse("2026-03-09T12:00:00Z"));
    const again = await restarted(h);
    try {
      h.fake.fault({ kind: "status", path: "/transactions", status: 500 });
      await again.poller.poll();
      const exposition = await (await again.app.request("/metrics")).text();
      assert.equal(sample(exposition, START), paid / 1000);
      assert.equal(sample(exposition, SPENT_PROBE), 22.22);
      assert.equal(sample(exposition, END), APR_8 / 1000);
    } finally {
      await again.close();
    }
  });
});

Deno.test("an internal transfer above payday_min_amount in the window does not start the month", async () => {
  await withHarness({ config: PAYDAY }, async (h) => {
    const { exposition, html } = await saturday(h, () => {
      intoJoint(h, THURSDAY - 3_600_000);
      purchase(h, THURSDAY, 1_111);
      purchase(h, SATURDAY, 2_222);
    });
    assert.equal(sample(exposition, SPENT_PROBE), 33.33);
    assert.equal(sample(exposition, START), FEB_8 / 1000);
    assert.equal(sample(exposition, END), MAR_8 / 1000);
    assert.match(html, /The budget month started on the 8th/);
  });
});

Deno.test("with payday_min_amount unset a salary in the window changes nothing: the month starts on the start day", async () => {
  await withHarness({ config: { month_start_day: START_DAY } }, async (h) => {
    const { exposition, html } = await saturday(h, () => {
      intoJoint(h, THURSDAY - 3_600_000);
      purchase(h, THURSDAY, 1_111);
      salary(h, FRIDAY);
      purchase(h, SATURDAY, 2_222);
    });
    assert.equal(sample(exposition, SPENT_PROBE), 33.33);
    assert.equal(sample(exposition, START), FEB_8 / 1000);
    assert.equal(sample(exposition, END), MAR_8 / 1000);
    assert.doesNotMatch(html, /budget month started/);
  });
});

Deno.test("the backfill's pay-day month is live's: a salary-started month's figures at the last sample equal the poll's", async () => {
  await withHarness({ config: PAYDAY }, async (h) => {
    // Everything lands before the first poll, so the backfill (which ends at the counting start) covers it.
    h.clock.set(SATURDAY);
    purchase(h, THURSDAY, 1_111);
    const paid = salary(h, FRIDAY);
    purchase(h, SATURDAY - 2 * 3_600_000, 2_222);
    await logIn(h, ALICE);
    await logIn(h, BOB);
    await poll(h);
    const live = sample(await metrics(h), SPENT_PROBE);
    assert.equal(live, 22.22);
    const out = await Deno.makeTempDir({ prefix: "monzo-payday-backfill-" });
    try {
      const file = join(out, "history.om");
      const written = await runBackfill(h.config, { file, labels: [], stepMs: 3_600_000, untilMs: null }, h.clock);
      assert.ok(written.ok, written.ok ? "" : written.error);
      const values = new Map<number, number>();
      for (const line of (await Deno.readTextFile(file)).split("\n")) {
        if (!line.startsWith(`${SPENT_PROBE} `)) continue;
        const [, value, at] = line.split(" ");
        values.set(Number(at) * 1000, Number(value));
      }
      // The last sample time, an hour before the poll (the counting start), with nothing created since.
      assert.equal(values.get(SATURDAY - 3_600_000), live);
      // Before the salary Thursday's purchase is the month's; from the salary on it is the previous month's.
      const beforePay = Math.floor(paid / 3_600_000) * 3_600_000;
      assert.equal(values.get(beforePay), 11.11);
      assert.equal(values.get(beforePay + 3_600_000) ?? 0, 0);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
});
