// The transactions step against the fake Monzo over real HTTP: the full-history import inside the
// 5 minutes after a login and the 89-day fallback outside them, steady polls, paging, settlement,
// reversal and re-categorisation, and figures that survive a restart without a reset.

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { configFromObject } from "../lib/config/config.ts";
import { createExporter } from "../lib/run/exporter.ts";
import { openKv } from "../lib/store/kv.ts";
import { ok } from "../lib/shared/result.ts";
import { awkwardTransactions, type FakeMonzo, householdData } from "../lib/fake_monzo/mod.ts";
import { makeTransaction } from "../lib/fake_monzo/transaction.ts";
import { PAGE_LIMIT, REREAD_EVERY_MS, WINDOW_MS } from "../lib/poll/transactions_step.ts";
import { memoryTokens } from "../lib/logins/token_file.ts";
import {
  ALICE,
  ALICE_CURRENT,
  AUTH_KEY,
  CLIENT_ID,
  CLIENT_SECRET,
  type Harness,
  HOLIDAY_POT,
  JOINT,
  logIn,
  metrics,
  MINUTE,
  page,
  poll,
  sample,
  T0,
  TEST_HISTORY_DAYS,
  withHarness,
} from "./helpers/harness.ts";
import { AWKWARD_INSTANTS } from "./helpers/dates.ts";
import { countingLongAgo, countingSince } from "./helpers/counting.ts";
import { CAN_LIST_OPEN_FILES, openFilesOf } from "./helpers/open_files.ts";
import { type FailingKv, failingKv } from "./helpers/failing_kv.ts";

/** The household, with Alice's current account holding exactly one row of every awkward kind. */
function awkwardHousehold() {
  const data = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  const account = data.accounts.find((a) => a.id === ALICE_CURRENT);
  assert.ok(account);
  account.transactions = awkwardTransactions(T0, { accountId: ALICE_CURRENT, userId: ALICE, potId: HOLIDAY_POT });
  return data;
}

/** The config keys every exporter here needs; nothing listens at the address. */
const BASE_CONFIG = {
  client_id: CLIENT_ID,
  client_secret: CLIENT_SECRET,
  server_addr: "127.0.0.1:9100",
  redirect_uri: "http://127.0.0.1:9100",
  auth_key: AUTH_KEY,
};

const series = (name: string, labels: string) => `${name}{${labels}}`;
const spent = (category: string) =>
  series("monzo_spent_this_month", `account_id="${ALICE_CURRENT}",category="${category}",currency="GBP"`);
const received = (category: string) =>
  series("monzo_received_this_month", `account_id="${ALICE_CURRENT}",category="${category}",currency="GBP"`);
const TOTAL_SPENT = series("monzo_spent_total", `account_id="${ALICE_CURRENT}",currency="GBP"`);
const TOTAL_RECEIVED = series("monzo_received_total", `account_id="${ALICE_CURRENT}",currency="GBP"`);
const STORED = series("monzo_transactions_stored", `account_id="${ALICE_CURRENT}"`);
const STEP_OK = (step: string) => `monzo_poll_step_success{step="${step}"}`;
const HISTORY_START = series("monzo_transactions_history_start_timestamp_seconds", `account_id="${ALICE_CURRENT}"`);

/** `/transactions` requests about `accountId`. */
function transactionCalls(fake: FakeMonzo, accountId: string) {
  return fake.requests.filter((r) => r.path === "/transactions" && r.query.account_id === accountId);
}

/** The id of the awkward row whose `notes` is `kind`. */
function awkwardId(h: Harness, kind: string): string {
  const account = h.fake.data.accounts.find((a) => a.id === ALICE_CURRENT);
  const row = account?.transactions.find((tx) => tx.notes === kind);
  assert.ok(row, kind);
  return row.id;
}

Deno.test("every awkward kind counts exactly as the rules say, in both lenses", async () => {
  // A store counting since before the fixture's history, so that the counters count all of it.
  await withHarness({ fake: { data: awkwardHousehold() }, prepare: countingLongAgo(ALICE_CURRENT) }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, text);
    // Figures worked out by hand in lib/fake_monzo/awkward.ts, in pence: 18724 and 264500.
    assert.equal(sample(text, TOTAL_SPENT), 187.24);
    assert.equal(sample(text, TOTAL_RECEIVED), 2645);
    const thisMonth = {
      shopping: 25,
      eating_out: 18.5,
      groceries: 20,
      bills: 50,
      holidays: 25.75,
      dog: 12.99,
      transport: 8.5,
    };
    for (const [category, value] of Object.entries(thisMonth)) {
      assert.equal(sample(text, spent(category)), value, category);
    }
    for (const [category, value] of Object.entries({ income: 2500, transfers: 30, mondo: 100 })) {
      assert.equal(sample(text, received(category)), value, category);
    }
    // Pot moves and declines are nowhere; no other category shows up.
    const categories = text.split("\n").filter((l) =>
      l.startsWith(`monzo_spent_this_month{account_id="${ALICE_CURRENT}"`)
    );
    assert.equal(categories.length, Object.keys(thisMonth).length, categories.join("\n"));
    assert.ok(!text.includes('category="savings"'), "a pot move was counted");
    assert.equal(sample(text, STORED), 16);
  });
});

Deno.test("right after a login the whole history is imported, newest window first, in few requests", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    h.fake.resetRequests();
    await poll(h);
    const account = h.fake.data.accounts.find((a) => a.id === ALICE_CURRENT);
    assert.ok(account);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1);
    assert.equal(sample(text, STORED), account.transactions.length);
    const opened = Date.parse(account.created);
    assert.equal(sample(text, HISTORY_START), opened / 1000, "the history does not reach the account's opening");

    const calls = transactionCalls(h.fake, ALICE_CURRENT);
    const windows = Math.ceil((T0 - opened) / WINDOW_MS);
    const bound = Math.ceil(account.transactions.length / PAGE_LIMIT) + windows + 1; // + the month's re-read
    assert.ok(calls.length <= bound, `${calls.length} requests for ${account.transactions.length} transactions`);
    for (const call of calls) {
      assert.ok(Number(call.query.limit) <= PAGE_LIMIT);
      if (call.query.before && call.query.since && !call.query.since.startsWith("tx_")) {
        assert.ok(
          Date.parse(call.query.before) - Date.parse(call.query.since) <= WINDOW_MS,
          JSON.stringify(call.query),
        );
      }
    }
    // Newest window first: the window ends move back in time.
    const ends = calls.filter((c) => c.query.before).map((c) => Date.parse(c.query.before));
    assert.ok(ends.slice(1).every((end, i) => end <= ends[i]), JSON.stringify(ends));
  });
});

Deno.test("once the 5 minutes have passed only the last 89 days are read, and that is not a failing poll", async () => {
  // The fake closes the full-history window at once, as Monzo does when the approval comes late.
  await withHarness({ fake: { fullHistoryMinutes: 0 } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, JSON.stringify(h.exporter.snapshot.state.lastPoll?.problems));
    assert.equal(sample(text, 'monzo_poll_step_success{step="transactions"}'), 1);
    assert.equal(sample(text, HISTORY_START), (T0 - WINDOW_MS + 1) / 1000);
    const account = h.fake.data.accounts.find((a) => a.id === ALICE_CURRENT);
    assert.ok(account);
    const recent = account.transactions.filter((tx) => Date.parse(tx.created) > T0 - WINDOW_MS);
    assert.equal(sample(text, STORED), recent.length);
    assert.ok(recent.length < account.transactions.length, "the fixture has no older history to leave out");
    // The page says how far back the history goes, and how to get more.
    const html = await page(h);
    assert.ok(html.includes(`Transactions since ${new Date(T0 - WINDOW_MS + 1).toISOString().slice(0, 10)}`), html);
    assert.match(html, /log in again to import older history/);
  });
});

Deno.test("a steady poll asks once per account for what is new, and pages past 100", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const before = sample(await metrics(h), STORED) ?? 0;

    h.fake.resetRequests();
    await poll(h, MINUTE);
    assert.equal(transactionCalls(h.fake, ALICE_CURRENT).length, 1, "more than one request with nothing new");

    for (let i = 0; i < 250; i++) {
      h.fake.addTransaction(ALICE_CURRENT, {
        created: new Date(h.clock.now() + i).toISOString(),
        amount: -100,
        description: `Coffee ${i}`,
        category: "eating_out",
      });
    }
    h.clock.advance(MINUTE);
    h.fake.resetRequests();
    await poll(h);
    const calls = transactionCalls(h.fake, ALICE_CURRENT);
    assert.equal(calls.length, 3, "250 new transactions take three pages of 100");
    assert.ok(
      calls.slice(1).every((c, i) => c.query.since.startsWith("tx_") && c.query.since !== calls[i].query.since),
    );
    assert.equal(sample(await metrics(h), STORED), before + 250);
  });
});

Deno.test("settlement, a changed amount, reversals and re-categorisation are picked up by the hourly re-read", async () => {
  await withHarness({ fake: { data: awkwardHousehold() }, prepare: countingLongAgo(ALICE_CURRENT) }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    let text = await metrics(h);
    assert.equal(sample(text, spent("eating_out")), 18.5);
    assert.equal(sample(text, TOTAL_SPENT), 187.24);

    // The restaurant adds a tip at settlement; the old car hire is released; shopping becomes "gifts".
    h.fake.settleTransaction(awkwardId(h, "pending_debit"), -2_200);
    h.fake.reverseTransaction(awkwardId(h, "old_pending"), "removed");
    h.fake.recategoriseTransaction(awkwardId(h, "settled_debit"), "gifts");

    // A minute later nothing is re-read yet.
    await poll(h, MINUTE);
    assert.equal(sample(await metrics(h), spent("eating_out")), 18.5);

    await poll(h, REREAD_EVERY_MS);
    text = await metrics(h);
    assert.equal(sample(text, spent("eating_out")), 22, "the settled amount is not used");
    assert.equal(sample(text, TOTAL_SPENT), 187.24 + 22, "the settled debit did not reach the cash flow");
    assert.equal(sample(text, spent("gifts")), 40);
    assert.equal(sample(text, spent("shopping")), -15, "the refund stays in shopping");
    assert.equal(sample(text, STORED), 15, "the released authorisation is still stored");

    // A reversal that comes back declined leaves the budget too.
    h.fake.addTransaction(ALICE_CURRENT, {
      created: new Date(h.clock.now()).toISOString(),
      settled: "",
      amount: -999,
      description: "Hotel hold",
      category: "holidays",
    });
    await poll(h, MINUTE);
    assert.equal(sample(await metrics(h), spent("holidays")), 25.75 + 9.99);
    const hold = h.fake.data.accounts.find((a) => a.id === ALICE_CURRENT)?.transactions.find((tx) =>
      tx.description === "Hotel hold"
    );
    assert.ok(hold);
    h.fake.reverseTransaction(hold.id, "declined");
    await poll(h, REREAD_EVERY_MS);
    assert.equal(sample(await metrics(h), spent("holidays")), 25.75);
  });
});

Deno.test("after a restart the counters go on from the store: no reset, nothing counted twice", async () => {
  const dir = await Deno.makeTempDir({ prefix: "transactions_test_" });
  try {
    const data = awkwardHousehold();
    await countingSince(join(dir, "data.kv"), [ALICE_CURRENT]);
    await withHarness({ fake: { data }, config: { data_path: join(dir, "data.kv") } }, async (h) => {
      await logIn(h, ALICE);
      await poll(h);
      assert.equal(sample(await metrics(h), TOTAL_SPENT), 187.24);

      // A second exporter on the same store, as after a restart, with the same login.
      const config = configFromObject({
        ...BASE_CONFIG,
        api_url: h.fake.url,
        auth_url: h.fake.authUrl,
        data_path: join(dir, "data.kv"),
      }, { path: join(dir, "config.toml") });
      assert.ok(config.ok);
      await h.exporter.close();
      const again = await createExporter({
        config: config.value,
        build: { version: "0.0.0-test", mode: "live" },
        clock: h.clock,
        sink: () => {},
        persistence: memoryTokens(h.exporter.store.logins().map((login) => ({ ...login, grantedAt: undefined }))),
      });
      assert.ok(again.ok, again.ok ? "" : again.error);
      try {
        h.fake.resetRequests();
        h.clock.advance(MINUTE);
        await again.value.poller.poll();
        const text = await (await again.value.app.request("/metrics")).text();
        assert.equal(sample(text, TOTAL_SPENT), 187.24);
        assert.equal(sample(text, TOTAL_RECEIVED), 2645);
        assert.equal(sample(text, STORED), 16);
        // Nothing fetched twice: one request for what is new, one re-read of this month.
        assert.ok(transactionCalls(h.fake, ALICE_CURRENT).length <= 2);
      } finally {
        await again.value.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("budgets from the config are exported with the month's start", async () => {
  const config = { budgets: { eating_out: 250, groceries: 400.5 }, month_start_day: 25 };
  await withHarness({ config }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, 'monzo_budget{category="eating_out",currency="GBP"}'), 250);
    assert.equal(sample(text, 'monzo_budget{category="groceries",currency="GBP"}'), 400.5);
    // T0 is 2 March 2026, so the month began on 25 February at midnight in London (GMT).
    assert.equal(sample(text, "monzo_budget_month_start_timestamp_seconds"), Date.UTC(2026, 1, 25) / 1000);
  });
});

Deno.test("the month's nominal end is exported, and the next month starts there", async () => {
  await withHarness({ config: { month_start_day: 25 } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    let text = await metrics(h);
    // T0 is 2 March 2026: the month that began on 25 February ends at 00:00 on 25 March in London (GMT).
    const end = sample(text, "monzo_budget_month_end_timestamp_seconds");
    assert.equal(end, Date.UTC(2026, 2, 25) / 1000);
    // A month in summer time ends at 23:00 UTC the day before: 25 April 00:00 BST.
    h.clock.set(end * 1000);
    await poll(h);
    text = await metrics(h);
    assert.equal(sample(text, "monzo_budget_month_start_timestamp_seconds"), end);
    assert.equal(sample(text, "monzo_budget_month_end_timestamp_seconds"), Date.UTC(2026, 3, 24, 23) / 1000);
  });
});

Deno.test("every budgeted category has a spent-this-month series on each account, 0 until something is spent in it", async () => {
  const quiet = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  for (const account of quiet.accounts) account.transactions = [];
  const config = { budgets: { eating_out: 250, groceries: 400 } };
  await withHarness({ config, fake: { data: quiet } }, async (h) => {
    // Half a minute into 1 April 2026 in London (BST): nothing is spent yet this budget month.
    h.clock.set(Date.UTC(2026, 2, 31, 23, 0, 30));
    await logIn(h, ALICE);
    await poll(h);
    const spentLines = (text: string) => text.split("\n").filter((l) => l.startsWith("monzo_spent_this_month{"));
    const on = (account: string, category: string) =>
      series("monzo_spent_this_month", `account_id="${account}",category="${category}",currency="GBP"`);
    let text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, text);
    for (const account of [ALICE_CURRENT, JOINT]) {
      for (const category of ["eating_out", "groceries"]) assert.equal(sample(text, on(account, category)), 0);
    }
    assert.ok(spentLines(text).every((l) => /category="(eating_out|groceries)"/.test(l)), spentLines(text).join("\n"));

    // Spending shows in its category; the other budgeted one stays 0; an unbudgeted one shows only when spent.
    h.fake.addTransaction(ALICE_CURRENT, { amount: -1250, description: "Lunch", category: "eating_out" });
    h.fake.addTransaction(ALICE_CURRENT, { amount: -700, description: "Dog food", category: "dog" });
    await poll(h, MINUTE);
    text = await metrics(h);
    assert.equal(sample(text, on(ALICE_CURRENT, "eating_out")), 12.5);
    assert.equal(sample(text, on(ALICE_CURRENT, "groceries")), 0);
    assert.equal(sample(text, on(ALICE_CURRENT, "dog")), 7);
    assert.equal(sample(text, on(JOINT, "eating_out")), 0);
    assert.equal(spentLines(text).filter((l) => l.includes(ALICE_CURRENT)).length, 3, spentLines(text).join("\n"));
  });
});

Deno.test("at every awkward instant the budget month starts at 00:00 London on the 1st and counts from there", async () => {
  for (const instant of AWKWARD_INSTANTS) {
    const quiet = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
    for (const account of quiet.accounts) account.transactions = [];
    const prepare = countingLongAgo(ALICE_CURRENT);
    await withHarness({ config: { month_start_day: 1 }, fake: { data: quiet }, prepare }, async (h) => {
      const now = Date.parse(instant.utc);
      const start = Date.parse(instant.monthStart);
      h.clock.set(now);
      const at = (ms: number) => new Date(ms).toISOString();
      // A minute before the month, its first half minute, and half a minute ago.
      h.fake.addTransaction(ALICE_CURRENT, {
        created: at(start - MINUTE),
        amount: -10000,
        description: "Before",
        category: "groceries",
      });
      h.fake.addTransaction(ALICE_CURRENT, {
        created: at(start + 30_000),
        amount: -250,
        description: "First",
        category: "groceries",
      });
      h.fake.addTransaction(ALICE_CURRENT, {
        created: at(now - 30_000),
        amount: -125,
        description: "Latest",
        category: "groceries",
      });
      await logIn(h, ALICE);
      await poll(h);
      const text = await metrics(h);
      assert.equal(sample(text, "monzo_up"), 1, `${instant.name}: ${text}`);
      assert.equal(sample(text, "monzo_budget_month_start_timestamp_seconds"), start / 1000, instant.name);
      assert.equal(sample(text, spent("groceries")), 3.75, instant.name);
      assert.equal(sample(text, TOTAL_SPENT), 103.75, instant.name);
    });
  }
});

Deno.test("bad transaction keys in the config are one line naming the key", () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ month_start_day: 0 }, /^month_start_day must be between 1 and 28$/],
    [{ month_start_day: 29 }, /^month_start_day must be between 1 and 28$/],
    [{ month_start_day: 2.5 }, /^month_start_day must be a whole day/],
    [{ budgets: { eating_out: -5 } }, /^budgets\.eating_out must not be negative$/],
    [{ budgets: { eating_out: "lots" } }, /^budgets\.eating_out must be a number/],
    [{ budgets: 250 }, /^budgets must be a table/],
    [{ history_days: -1 }, /^history_days must be 0/],
    [{ budget_currency: "pounds" }, /^budget_currency must be a currency code/],
  ];
  for (const [fields, expected] of cases) {
    const parsed = configFromObject({ ...BASE_CONFIG, ...fields }, { path: "/tmp/config.toml" });
    assert.ok(!parsed.ok, JSON.stringify(fields));
    assert.match(parsed.error, expected, JSON.stringify(fields));
  }
});

Deno.test("a data store that cannot be opened stops the start with one line naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "transactions_test_" });
  try {
    const dataPath = join(dir, "no-such-folder", "data.kv");
    const config = configFromObject({
      ...BASE_CONFIG,
      data_path: dataPath,
    }, { path: join(dir, "config.toml") });
    assert.ok(config.ok);
    const made = await createExporter({
      config: config.value,
      build: { version: "0.0.0-test", mode: "live" },
      sink: () => {},
      persistence: memoryTokens(),
    });
    assert.ok(!made.ok);
    assert.ok(made.error.startsWith(`Cannot use data_path "${dataPath}"`), made.error);
    assert.ok(!made.error.includes("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the data store is opened once at start, used by every poll, and closed when the exporter closes", async () => {
  let opens = 0;
  const counted = (location: string) => {
    opens++;
    return openKv(location);
  };
  await withHarness({ openKv: counted }, async (h) => {
    const path = h.config.dataPath;
    assert.equal(opens, 1);
    if (CAN_LIST_OPEN_FILES) assert.notDeepEqual(openFilesOf(path), [], "the store is not open after the start");
    await logIn(h, ALICE);
    await poll(h);
    await poll(h, MINUTE);
    const text = await metrics(h);
    assert.equal(sample(text, STEP_OK("transactions")), 1);
    assert.ok((sample(text, STORED) ?? 0) > 0, "nothing was imported");
    assert.equal(opens, 1, "a poll opened the store again");
    await h.exporter.close();
    if (CAN_LIST_OPEN_FILES) assert.deepEqual(openFilesOf(path), [], "the data file is still open after close");
    // Closed for good: a store opened now finds what the polls wrote.
    const reopened = await openKv(path);
    assert.ok(reopened.ok, reopened.ok ? "" : reopened.error);
    try {
      assert.ok((await Array.fromAsync(reopened.value.kv.list({ prefix: ["tx", ALICE_CURRENT] }))).length > 0);
    } finally {
      reopened.value.kv.close();
    }
  });
});

Deno.test('a ":memory:" store stays open between polls: what it holds is not read from Monzo again', async () => {
  await withHarness({ config: { data_path: ":memory:" } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const stored = sample(await metrics(h), STORED);
    assert.ok((stored ?? 0) > 0);

    h.fake.resetRequests();
    await poll(h, MINUTE);
    const text = await metrics(h);
    // A store opened anew would be empty, read again in full from Monzo: many requests and a log line.
    assert.equal(transactionCalls(h.fake, ALICE_CURRENT).length, 1, "the stored history was read again");
    assert.equal(sample(text, STORED), stored);
    assert.equal(sample(text, STEP_OK("transactions")), 1);
  });
});

Deno.test("a data store that fails mid-run is that poll's data_unavailable and balance_unsaved problems only: it keeps serving, and the next poll works", async () => {
  let store: FailingKv | undefined;
  const failing = async (location: string) => {
    const opened = await openKv(location);
    if (!opened.ok) return opened;
    store = failingKv(opened.value.kv);
    return ok({ kv: store.kv });
  };
  const prepare = countingLongAgo(ALICE_CURRENT);
  await withHarness({ fake: { data: awkwardHousehold() }, openKv: failing, serve: true, prepare }, async (h) => {
    assert.ok(store);
    await logIn(h, ALICE);
    await poll(h);
    assert.equal(sample(await metrics(h), TOTAL_SPENT), 187.24);

    // Every read and write throws now, as on a disk gone or full.
    store.fail(true);
    h.fake.addTransaction(ALICE_CURRENT, { amount: -500, description: "Lunch", category: "eating_out" });
    await poll(h, MINUTE);
    assert.ok(store.thrown > 0, "the poll did not use the store");
    // Over real HTTP: the process still serves the last figures.
    const scraped = await fetch(`${h.base}/metrics`);
    assert.equal(scraped.status, 200);
    let text = await scraped.text();
    assert.equal(sample(text, STEP_OK("transactions")), 0);
    for (const step of ["accounts", "pots"]) assert.equal(sample(text, STEP_OK(step)), 1, step);
    // The balances were read and are served; only keeping them in the store failed.
    assert.equal(sample(text, STEP_OK("balances")), 0);
    assert.equal(sample(text, `monzo_balance{account_id="${ALICE_CURRENT}",currency="GBP"}`), 1234.56);
    assert.equal(sample(text, TOTAL_SPENT), 187.24, "the last figures are not served");
    assert.equal(sample(text, STORED), 16);
    const all = h.exporter.snapshot.state.lastPoll?.problems ?? [];
    const unsaved = all.filter((p) => p.code === "balance_unsaved");
    assert.deepEqual(unsaved.map((p) => p.subject).sort(), h.exporter.snapshot.state.accounts.map((a) => a.id).sort());
    assert.ok(unsaved.length > 0 && unsaved.every((p) => !p.message.includes("\n")));
    const problems = all.filter((p) => p.code !== "balance_unsaved");
    assert.deepEqual(problems.map((p) => p.code), ["data_unavailable"]);
    assert.ok(problems[0].message.includes(`"${h.config.dataPath}"`), problems[0].message);
    assert.ok(!problems[0].message.includes("\n"));
    assert.ok(h.lines.some((line) => line.includes(problems[0].message)), "the problem was not logged");

    store.fail(false);
    await poll(h, MINUTE);
    text = await metrics(h);
    assert.equal(sample(text, STEP_OK("transactions")), 1);
    assert.deepEqual(h.exporter.snapshot.state.lastPoll?.problems, []);
    assert.equal(sample(text, TOTAL_SPENT), 187.24 + 5);
    assert.equal(sample(text, STORED), 17);
  });
});

Deno.test("a data file found unreadable at start is moved aside, kept, and a new store is filled from Monzo", async () => {
  const garbage = "this is not a database ".repeat(200);
  const prepare = (_fake: FakeMonzo, tokensPath: string) =>
    Deno.writeTextFile(join(dirname(tokensPath), "data.kv"), garbage);
  await withHarness({ prepare }, async (h) => {
    const movedLine = h.lines.find((line) => line.includes("was not readable and is kept as"));
    assert.ok(movedLine, h.lines.join("\n"));
    const aside = /kept as "([^"]+)"/.exec(movedLine)?.[1];
    assert.ok(aside);
    assert.equal(await Deno.readTextFile(aside), garbage);

    await logIn(h, ALICE);
    await poll(h);
    const account = h.fake.data.accounts.find((a) => a.id === ALICE_CURRENT);
    assert.ok(account);
    const text = await metrics(h);
    assert.equal(sample(text, STEP_OK("transactions")), 1);
    assert.equal(sample(text, STORED), account.transactions.length);
  });
});

// ---------------------------------------------------------------- the bound on categories (issue 15, finding 8)

/**
 * The household, with Alice's current account holding `count` transactions this budget month (from
 * 1 March, T0 being 2 March), each in a category of its own: `c00000` spends 1p, `c00001` 2p, and so
 * on, every tenth one a credit; the largest one is called "other", and the others are padded to `width`.
 */
function manyCategories(count: number, width = 0) {
  const data = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  const account = data.accounts.find((a) => a.id === ALICE_CURRENT);
  assert.ok(account);
  const start = Date.UTC(2026, 2, 1);
  account.transactions = Array.from({ length: count }, (_, i) =>
    makeTransaction(ALICE_CURRENT, ALICE, {
      id: `tx_00009Many${String(i).padStart(6, "0")}`,
      created: new Date(start + i * 4_000).toISOString(),
      description: `SHOP ${i}`,
      category: i === count - 1 ? "other" : `c${String(i).padStart(5, "0")}`.padEnd(width, "x"),
      amount: i % 10 === 9 ? i + 1 : -(i + 1),
    }));
  return data;
}

/** Alice's current-account samples of `family`: category to value. */
function byCategory(text: string, family: string): Map<string, number> {
  const out = new Map<string, number>();
  const prefix = `${family}{account_id="${ALICE_CURRENT}",category="`;
  for (const line of text.split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const category = line.slice(prefix.length, line.indexOf('"', prefix.length));
    assert.ok(!out.has(category), `category="${category}" appears twice in ${family}`);
    out.set(category, Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return out;
}

const pence = (pounds: number) => Math.round(pounds * 100);
const sumOf = (values: Iterable<number>) => [...values].reduce((total, value) => total + pence(value), 0);

Deno.test("20,000 categories from Monzo: the 100 largest and other, the same sums, a bounded scrape", async () => {
  const count = 20_000;
  await withHarness({ fake: { data: manyCategories(count, 120) } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1);
    const spentRows = byCategory(text, "monzo_spent_this_month");
    const receivedRows = byCategory(text, "monzo_received_this_month");
    assert.ok(spentRows.size <= 101, `${spentRows.size} spent categories`);
    assert.ok(receivedRows.size <= 101, `${receivedRows.size} received categories`);
    assert.ok(spentRows.has("other") && receivedRows.has("other"));
    // Sums over every category, worked out from the amounts: credits are the multiples of 10 up to
    // 20,000, i.e. 10 × (2000 × 2001 / 2); everything else of 1 + … + 20,000 is spent.
    const received = 10 * (2000 * 2001) / 2;
    assert.equal(sumOf(spentRows.values()), (count * (count + 1)) / 2 - received);
    assert.equal(sumOf(receivedRows.values()), received);
    // The largest named one (c19998, 19,999p) keeps its name, cut to a bounded label.
    const largest = [...spentRows.keys()].find((name) => name.startsWith("c19998"));
    assert.ok(largest, "the largest category is not exported by name");
    assert.ok([...largest].length <= 101, largest);
    // With every name kept it held 20,000 series of these families (megabytes); now about 200 of them.
    assert.ok(text.length < 100_000, `the scrape is ${text.length} characters`);
  });
});

Deno.test("folding categories into other is logged once, shown on the status page, and logged when it ends", async () => {
  // c00003 (4p) is small enough to be folded, but has a budget: it keeps its name.
  await withHarness({ fake: { data: manyCategories(250) }, config: { budgets: { c00003: 5 } } }, async (h) => {
    const folded = () => h.lines.filter((line) => line.includes('added up under category="other"'));
    await logIn(h, ALICE);
    await poll(h);
    assert.equal(folded().length, 1, h.lines.join("\n"));
    assert.match(folded()[0], new RegExp(`WARN Account ${ALICE_CURRENT} has more than 100 categories`));
    // 249 named categories besides Monzo's "other": 100 kept, 149 folded.
    assert.match(folded()[0], /: 149 are added up/);
    assert.ok((await page(h)).includes("149 of its categories this budget month are added up"));
    const named = byCategory(await metrics(h), "monzo_spent_this_month");
    assert.equal(named.get("c00003"), 0.04);
    assert.ok(!named.has("c00004") && named.has("other"));
    await poll(h, MINUTE);
    await poll(h, MINUTE);
    assert.equal(folded().length, 1, "logged again on a poll where nothing changed");
    // The user re-categorises all but a few: the bound no longer applies, which is said once.
    const account = h.fake.data.accounts.find((a) => a.id === ALICE_CURRENT);
    assert.ok(account);
    for (const tx of account.transactions.slice(0, 200)) h.fake.recategoriseTransaction(tx.id, "shopping");
    await poll(h, REREAD_EVERY_MS);
    const ended = h.lines.filter((line) => line.includes("100 categories or fewer this budget month again"));
    assert.equal(ended.length, 1, h.lines.join("\n"));
    assert.ok(!(await page(h)).includes("of its categories this budget month are added up"));
    // 1 + … + 200 less the credits among them (10 + 20 + … + 200), in pounds.
    const shopping = ((200 * 201) / 2 - 10 * (20 * 21) / 2) / 100;
    assert.equal(byCategory(await metrics(h), "monzo_spent_this_month").get("shopping"), shopping);
  });
});
