// Counters that count from a fixed start (issue 17, section 1), and what the store keeps for the
// backfill: each account's counting start, set at its first write and never moved; monzo_spent_total
// and monzo_received_total count only what settled at or after it, so older history imported by a
// later login never changes them, and a rebuilt store starts them again from 0. Over real HTTP with
// the fake Monzo and the real exporter wiring, then the store itself (reopened, and made corrupt).

import { MONZO_VIEW } from "../lib/spending/classify.ts";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { configFromObject } from "../lib/config/config.ts";
import { createExporter, type Exporter } from "../lib/run/exporter.ts";
import { tokenFile } from "../lib/logins/token_file.ts";
import type { FakeMonzo, FakeTransaction } from "../lib/fake_monzo/mod.ts";
import { budgetMonth } from "../lib/spending/budget_month.ts";
import { cashFlow } from "../lib/spending/rules.ts";
import { decodeStoredTransaction, type StoredTransaction } from "../lib/monzo/transaction.ts";
import { openKv } from "../lib/store/kv.ts";
import { compareText } from "../lib/shared/compare.ts";
import { type StoredBalance, TransactionStore } from "../lib/store/transaction_store.ts";
import { REREAD_EVERY_MS, WINDOW_MS } from "../lib/poll/transactions_step.ts";
import {
  ALICE,
  ALICE_CURRENT,
  AUTH_KEY,
  CLIENT_ID,
  CLIENT_SECRET,
  debits,
  exchangeCode,
  type Harness,
  holdOnly,
  logIn,
  metrics,
  MINUTE,
  poll,
  REDIRECT,
  sample,
  spentOf,
  T0,
  withHarness,
  withTempDir,
} from "./helpers/harness.ts";

const HOUR = 60 * MINUTE;
const ON_ALICE = `account_id="${ALICE_CURRENT}"`;
const SPENT = `monzo_spent_total{${ON_ALICE},currency="GBP"}`;
const RECEIVED = `monzo_received_total{${ON_ALICE},currency="GBP"}`;
const COUNTING_START = `monzo_counting_start_timestamp_seconds{${ON_ALICE}}`;
const HISTORY_START = `monzo_transactions_history_start_timestamp_seconds{${ON_ALICE}}`;
const STORED = `monzo_transactions_stored{${ON_ALICE}}`;
const GROCERIES_THIS_MONTH = `monzo_spent_this_month{${ON_ALICE},category="groceries",currency="GBP"}`;
const pounds = (minor: number) => Math.round(minor) / 100;
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A tokens file as the original exporter left it (no time of login), so that this process never saw
 * the login's 5 minutes: only the last 89 days can be read.
 */
async function tokensFileOfAlice(fake: FakeMonzo, tokensPath: string, seen: Set<string>): Promise<void> {
  const { status, grant } = await exchangeCode(fake, ALICE, `${REDIRECT}/callback`);
  assert.equal(status, 200);
  fake.approve(ALICE);
  seen.add(grant.access_token);
  seen.add(grant.refresh_token);
  const expiresAt = new Date(T0 + grant.expires_in * 1000).toISOString();
  const file = { access_token: grant.access_token, expires_at: expiresAt, refresh_token: grant.refresh_token };
  await Deno.writeTextFile(tokensPath, JSON.stringify(file), { mode: 0o600 });
}

/** A settled transaction on Alice's current account, created (and settled) now. */
function settledNow(h: Harness, amount: number, description: string): FakeTransaction {
  const category = amount < 0 ? "groceries" : "income";
  return h.fake.addTransaction(ALICE_CURRENT, { created: iso(h.clock.now()), amount, description, category });
}

/** Another exporter on the harness's fake, tokens file and clock, over the store at `dataPath`. */
async function exporterOn(h: Harness, dataPath: string, lines: string[] = []): Promise<Exporter> {
  const dir = dirname(h.tokensPath);
  const config = configFromObject({
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    server_addr: "127.0.0.1:9100",
    redirect_uri: REDIRECT,
    auth_key: AUTH_KEY,
    api_url: h.fake.url,
    auth_url: h.fake.authUrl,
    tokens_path: h.tokensPath,
    data_path: dataPath,
  }, { path: join(dir, "config.toml") });
  assert.ok(config.ok, config.ok ? "" : config.error);
  const made = await createExporter({
    config: config.value,
    build: { version: "0.0.0-test", mode: "live" },
    clock: h.clock,
    sink: (line) => lines.push(line),
    persistence: tokenFile(h.tokensPath),
  });
  assert.ok(made.ok, made.ok ? "" : made.error);
  return made.value;
}

/** Polls `exporter` and scrapes its /metrics. */
async function pollAndScrape(exporter: Exporter): Promise<string> {
  await exporter.poller.poll();
  return await (await exporter.app.request("/metrics")).text();
}

/** Alice's current account holds 400 settled grocery debits, one every 12 hours (200 days) up to T0. */
function olderHistory(h: Harness): FakeTransaction[] {
  const rows = debits(400, 12 * HOUR);
  // A copy: the fake adds later transactions to the array it holds.
  holdOnly(h, [...rows]);
  assert.ok(Date.parse(rows[0].created) < T0 - WINDOW_MS, "the fixture has no history older than 89 days");
  return rows;
}

Deno.test("a second login importing older history leaves the live counters unchanged", async () => {
  await withHarness({ prepare: tokensFileOfAlice }, async (h) => {
    const rows = olderHistory(h);
    // The tokens file's login is past its 5 minutes at Monzo too.
    h.clock.advance(6 * MINUTE);
    await poll(h);
    const countingStart = h.clock.now();
    let text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, JSON.stringify(h.exporter.snapshot.state.lastPoll?.problems));
    const recent = rows.filter((tx) => Date.parse(tx.created) > countingStart - WINDOW_MS);
    assert.ok(recent.length < rows.length);
    assert.equal(sample(text, STORED), recent.length);
    assert.equal(sample(text, COUNTING_START), countingStart / 1000);
    // Everything read so far settled before the counting start.
    assert.equal(sample(text, SPENT), 0);
    assert.equal(sample(text, RECEIVED), 0);

    // Money that settles after the counting start counts.
    h.clock.advance(MINUTE);
    const lunch = settledNow(h, -1234, "Lunch");
    const salary = settledNow(h, 250000, "Salary");
    await poll(h, MINUTE);
    text = await metrics(h);
    assert.equal(sample(text, SPENT), pounds(-lunch.amount));
    assert.equal(sample(text, RECEIVED), pounds(salary.amount));
    // The monthly figures keep today's rules: the whole stored month, whenever it settled.
    const month = budgetMonth(h.clock.now(), 1);
    const thisMonth = [...rows, lunch].filter((tx) => Date.parse(tx.created) >= month.start);
    assert.ok(thisMonth.some((tx) => Date.parse(tx.settled) < countingStart), "no row of the month settled before");
    const groceries = Math.round(spentOf(thisMonth) * 100) / 100;
    assert.equal(sample(text, GROCERIES_THIS_MONTH), groceries);
    const historyStart = sample(text, HISTORY_START);

    // A new login in the browser: its 5 minutes import the whole older history.
    await logIn(h, ALICE);
    await poll(h, MINUTE);
    text = await metrics(h);
    assert.equal(sample(text, STORED), rows.length + 2, "the older history was not imported");
    assert.ok((sample(text, HISTORY_START) ?? Infinity) < (historyStart ?? 0), "the history start did not move");
    assert.equal(sample(text, SPENT), pounds(-lunch.amount), "the older history reached the spending counter");
    assert.equal(sample(text, RECEIVED), pounds(salary.amount));
    assert.equal(sample(text, COUNTING_START), countingStart / 1000, "the counting start moved");
    assert.equal(sample(text, GROCERIES_THIS_MONTH), groceries);
  });
});

Deno.test("a rebuilt store restarts the counters from 0, with a later counting start", async () => {
  await withHarness({ prepare: tokensFileOfAlice }, async (h) => {
    const rows = olderHistory(h);
    await poll(h, 6 * MINUTE);
    const first = h.clock.now();
    h.clock.advance(MINUTE);
    const lunch = settledNow(h, -1234, "Lunch");
    await poll(h, MINUTE);
    let text = await metrics(h);
    assert.equal(sample(text, SPENT), pounds(-lunch.amount));
    assert.equal(sample(text, COUNTING_START), first / 1000);
    await h.exporter.close();

    // The same tokens, a store made anew (a container run without its volume), an hour later.
    h.clock.advance(HOUR);
    const rebuilt = await exporterOn(h, join(dirname(h.tokensPath), "rebuilt.kv"));
    try {
      text = await pollAndScrape(rebuilt);
      assert.equal(sample(text, "monzo_up"), 1, text);
      assert.equal(sample(text, COUNTING_START), h.clock.now() / 1000, "the counting start did not move");
      assert.equal(sample(text, SPENT), 0, "the rebuilt store counted history from before its start");
      assert.equal(sample(text, RECEIVED), 0);
      const recent = rows.filter((tx) => Date.parse(tx.created) > h.clock.now() - WINDOW_MS);
      assert.equal(sample(text, STORED), recent.length + 1, "the lunch is not stored");

      h.clock.advance(MINUTE);
      const dinner = settledNow(h, -2500, "Dinner");
      h.clock.advance(MINUTE);
      text = await pollAndScrape(rebuilt);
      assert.equal(sample(text, SPENT), pounds(-dinner.amount));
    } finally {
      await rebuilt.close();
    }
  });
});

Deno.test("after a restart on the same store the counting start is unchanged and the counters go on", async () => {
  await withHarness({ prepare: tokensFileOfAlice }, async (h) => {
    olderHistory(h);
    await poll(h, 6 * MINUTE);
    const first = h.clock.now();
    h.clock.advance(MINUTE);
    const lunch = settledNow(h, -1234, "Lunch");
    await poll(h, MINUTE);
    await h.exporter.close();

    h.clock.advance(HOUR);
    const again = await exporterOn(h, h.config.dataPath);
    try {
      let text = await pollAndScrape(again);
      assert.equal(sample(text, COUNTING_START), first / 1000, "the counting start moved at the restart");
      assert.equal(sample(text, SPENT), pounds(-lunch.amount), "the counter did not survive the restart");
      h.clock.advance(MINUTE);
      const dinner = settledNow(h, -2500, "Dinner");
      h.clock.advance(MINUTE);
      text = await pollAndScrape(again);
      assert.equal(sample(text, SPENT), pounds(-lunch.amount - dinner.amount));
    } finally {
      await again.close();
    }
  });
});

Deno.test("a transaction pending before the counting start counts when it settles after it; one settled before does not", async () => {
  await withHarness({}, async (h) => {
    const pending = h.fake.addTransaction(ALICE_CURRENT, {
      created: iso(T0 - 30 * MINUTE),
      settled: "",
      amount: -4200,
      description: "Hotel",
      category: "holidays",
    });
    const coffee = h.fake.addTransaction(ALICE_CURRENT, {
      created: iso(T0 - 20 * MINUTE),
      amount: -700,
      description: "Coffee and cake",
      category: "eating_out",
    });
    holdOnly(h, [pending, coffee]);
    await logIn(h, ALICE);
    await poll(h);
    let text = await metrics(h);
    assert.equal(sample(text, COUNTING_START), T0 / 1000);
    assert.equal(sample(text, STORED), 2);
    assert.equal(sample(text, SPENT), 0, "a transaction settled before the counting start was counted");

    h.clock.advance(REREAD_EVERY_MS);
    h.fake.settleTransaction(pending.id);
    await poll(h);
    text = await metrics(h);
    assert.equal(
      sample(text, SPENT),
      42,
      "the pending transaction that settled after the counting start is not counted",
    );
  });
});

Deno.test("the balances step keeps each balance it reads in the store", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h, MINUTE);
    const at = h.clock.now();
    await h.exporter.close();
    await withStore(h.config.dataPath, at, (store) => {
      assert.deepEqual(store.lastBalance(ALICE_CURRENT), { balanceMinor: 123456, currency: "GBP", at });
      return Promise.resolve();
    });
  });
});

Deno.test("a store from before counting starts: its counters start again from 0 once, and the log says so", async () => {
  await withHarness({ prepare: tokensFileOfAlice }, async (h) => {
    olderHistory(h);
    await poll(h, 6 * MINUTE);
    h.clock.advance(MINUTE);
    settledNow(h, -1234, "Lunch");
    await poll(h, MINUTE);
    assert.equal(sample(await metrics(h), SPENT), 12.34);
    await h.exporter.close();
    // What an older version left: the same entries, without a counting start.
    const opened = await openKv(h.config.dataPath);
    assert.ok(opened.ok);
    await opened.value.kv.delete(["counting_start", ALICE_CURRENT]);
    opened.value.kv.close();

    h.clock.advance(HOUR);
    const lines: string[] = [];
    const again = await exporterOn(h, h.config.dataPath, lines);
    try {
      const text = await pollAndScrape(again);
      assert.equal(sample(text, COUNTING_START), h.clock.now() / 1000);
      assert.equal(sample(text, SPENT), 0);
      const warned = lines.filter((line) => line.includes(" WARN ") && line.includes("no usable counting start"));
      assert.equal(warned.length, 1, lines.join("\n"));
      assert.ok(warned[0].includes(ALICE_CURRENT), warned[0]);
      h.clock.advance(MINUTE);
      const dinner = settledNow(h, -2500, "Dinner");
      h.clock.advance(MINUTE);
      assert.equal(sample(await pollAndScrape(again), SPENT), pounds(-dinner.amount));
    } finally {
      await again.close();
    }
  });
});

// The store itself.

const ACCOUNT = "acc_00009CountingStart";
const OTHER = "acc_00009AnotherAccount";

/** Transaction `n` of `accountId`, created `n` hours after T0; settled `settledAfter` ms after creation, or pending. */
function tx(
  n: number,
  { amount = -100 * n, settledAfter = 1_000 as number | null, accountId = ACCOUNT } = {},
): StoredTransaction {
  const createdMs = T0 + n * HOUR;
  return {
    id: `tx_${String(n).padStart(8, "0")}`,
    accountId,
    createdMs,
    settledMs: settledAfter === null ? null : createdMs + settledAfter,
    amount,
    currency: "GBP",
    category: "groceries",
    categories: null,
    declined: false,
    includeInSpending: true,
    potMove: false,
    isLoad: false,
    description: "",
    merchant: null,
    counterparty: null,
  };
}

/** Opens the store at `path` with its clock at `now`, runs `body`, and closes it. */
async function withStore(
  path: string,
  now: number | { now(): number },
  body: (store: TransactionStore, kv: Deno.Kv) => Promise<void>,
): Promise<void> {
  const opened = await openKv(path);
  assert.ok(opened.ok, opened.ok ? "" : opened.error);
  try {
    const clock = typeof now === "number" ? { now: () => now } : now;
    const store = await TransactionStore.open(opened.value.kv, {
      decode: decodeStoredTransaction,
      recentSince: 0,
      clock,
    });
    assert.ok(store.ok, store.ok ? "" : store.error);
    await body(store.value, opened.value.kv);
  } finally {
    opened.value.kv.close();
  }
}

/** Writes `txs` as the step does: looking up what is stored first. */
async function put(store: TransactionStore, txs: StoredTransaction[], remove: StoredTransaction[] = []) {
  const previous = await store.stored(txs);
  assert.ok(previous.ok);
  const written = await store.write(
    txs[0]?.accountId ?? remove[0]?.accountId ?? ACCOUNT,
    { put: txs, remove },
    previous.value,
  );
  assert.ok(written.ok, written.ok ? "" : written.error);
}

Deno.test("the counting start is the time of the account's first write, never moved by later writes or a reopening", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    let now = T0 + 50 * HOUR;
    const clock = { now: () => now };
    await withStore(path, clock, async (store) => {
      assert.equal(store.countingStart(ACCOUNT), undefined);
      await put(store, [tx(1)]);
      assert.equal(store.countingStart(ACCOUNT), T0 + 50 * HOUR);
      now += HOUR;
      await put(store, [tx(60), tx(2)]);
      await store.write(ACCOUNT, { history: { start: T0 - 1000 * HOUR, complete: true } });
      assert.equal(store.countingStart(ACCOUNT), T0 + 50 * HOUR);
      assert.equal(store.countingStart(OTHER), undefined);
    });
    now += 24 * HOUR;
    await withStore(path, clock, (store) => {
      assert.equal(store.countingStart(ACCOUNT), T0 + 50 * HOUR, "the counting start moved when reopened");
      assert.deepEqual(store.restarted, []);
      // Only tx(60) settled after the counting start.
      assert.deepEqual(store.summary(ACCOUNT), { count: 3, flows: cashFlow([tx(60)], MONZO_VIEW) });
      return Promise.resolve();
    });
  });
});

Deno.test("settling, replacing and dropping around the counting start keep the totals equal to a recount from it", async () => {
  const start = T0 + 60 * HOUR;
  await withStore(":memory:", start, async (store, kv) => {
    await store.write(ACCOUNT, {});
    assert.equal(store.countingStart(ACCOUNT), start);
    let seed = 11;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const live = new Map<string, StoredTransaction>();
    for (let step = 0; step < 400; step++) {
      const n = 1 + Math.floor(random() * 120);
      const held = live.get(tx(n).id);
      const roll = random();
      if (held && held.settledMs === null && roll < 0.2) {
        await put(store, [], [held]);
        live.delete(held.id);
      } else {
        // Settled from 10 hours before creation (an import of old history) to 30 hours after, or pending.
        const settledAfter = roll < 0.4 ? null : Math.floor((random() * 40 - 10) * HOUR);
        const next = tx(n, { settledAfter, amount: roll < 0.8 ? -100 * n : 50 * n });
        // A settled transaction stays as it was stored, as the step keeps it.
        if (held && held.settledMs !== null) continue;
        await put(store, [next]);
        live.set(next.id, next);
      }
    }
    const stored: StoredTransaction[] = [];
    for await (const entry of kv.list<StoredTransaction>({ prefix: ["tx", ACCOUNT] })) stored.push(entry.value);
    assert.equal(stored.length, live.size);
    const recount = cashFlow(stored, MONZO_VIEW, start);
    assert.notDeepEqual(
      recount,
      cashFlow(stored, MONZO_VIEW),
      "the walk has nothing settled before the counting start",
    );
    assert.ok(recount[0].spentMinor > 0 && recount[0].receivedMinor > 0, JSON.stringify(recount));
    assert.deepEqual(store.summary(ACCOUNT), { count: live.size, flows: recount });
  });
});

Deno.test("settled exactly at the counting start counts; a millisecond before does not", async () => {
  const start = T0 + 10 * HOUR;
  await withStore(":memory:", start, async (store) => {
    await put(store, [
      tx(10, { settledAfter: 0, amount: -300 }),
      tx(9, { settledAfter: HOUR - 1, amount: -5000 }),
      tx(8, { settledAfter: null, amount: -70 }),
    ]);
    assert.deepEqual(store.summary(ACCOUNT).flows, [
      { accountId: ACCOUNT, currency: "GBP", spentMinor: 300, receivedMinor: 0 },
    ]);
    // The pending one settles after the counting start.
    await put(store, [tx(8, { settledAfter: 3 * HOUR, amount: -70 })]);
    assert.equal(store.summary(ACCOUNT).flows[0].spentMinor, 370);
  });
});

Deno.test("a store from before counting starts gets one at open, its totals start again from 0 once, and it is kept", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    await withStore(path, T0, async (store, kv) => {
      await put(store, [tx(1), tx(2, { amount: 900 })]);
      assert.equal(store.summary(ACCOUNT).flows[0].spentMinor, 100);
      await kv.delete(["counting_start", ACCOUNT]);
    });
    const reopened = T0 + 100 * HOUR;
    await withStore(path, reopened, async (store) => {
      assert.deepEqual(store.restarted, [ACCOUNT]);
      assert.equal(store.countingStart(ACCOUNT), reopened);
      assert.deepEqual(store.summary(ACCOUNT), {
        count: 2,
        flows: [{ accountId: ACCOUNT, currency: "GBP", spentMinor: 0, receivedMinor: 0 }],
      });
      await put(store, [tx(101, { amount: -250 })]);
      assert.equal(store.summary(ACCOUNT).flows[0].spentMinor, 250);
    });
    await withStore(path, reopened + 100 * HOUR, (store) => {
      assert.deepEqual(store.restarted, [], "the counting start set at open was not kept");
      assert.equal(store.countingStart(ACCOUNT), reopened);
      assert.equal(store.summary(ACCOUNT).flows[0].spentMinor, 250);
      return Promise.resolve();
    });
  });
});

Deno.test("a counting start in the store that is not a time, or is later than now, is not trusted: counting starts again at open", async () => {
  const corrupt: unknown[] = ["yesterday", -5, 1.5, null, { at: T0 }, 9e15, T0 + 200 * HOUR, Number.NaN];
  for (const value of corrupt) {
    await withTempDir(async (dir) => {
      const path = join(dir, "data.kv");
      await withStore(path, T0, async (store, kv) => {
        await put(store, [tx(1)]);
        await kv.set(["counting_start", ACCOUNT], value);
      });
      const now = T0 + 100 * HOUR;
      await withStore(path, now, (store) => {
        assert.equal(store.countingStart(ACCOUNT), now, String(value));
        assert.deepEqual(store.restarted, [ACCOUNT], String(value));
        assert.equal(store.summary(ACCOUNT).flows[0].spentMinor, 0, String(value));
        return Promise.resolve();
      });
    });
  }
});

Deno.test("a saved balance survives reopening; a corrupt one is left out, and one that is not a balance is not saved", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    const balance: StoredBalance = { balanceMinor: -12345, currency: "GBP", at: T0 + 5 * MINUTE };
    const corrupt: unknown[] = [
      { ...balance, balanceMinor: "lots" },
      { ...balance, balanceMinor: 1.5 },
      { ...balance, balanceMinor: 1e16 },
      { ...balance, currency: "" },
      { ...balance, currency: "GBP\u001b[31m" },
      { ...balance, currency: "G".repeat(65) },
      { ...balance, at: -1 },
      { ...balance, at: "now" },
      "a balance",
      null,
    ];
    await withStore(path, T0, async (store, kv) => {
      const saved = await store.saveBalance(ACCOUNT, balance);
      assert.ok(saved.ok, saved.ok ? "" : saved.error);
      assert.ok((await store.markRead(ACCOUNT, balance.at)).ok);
      assert.deepEqual(store.lastBalance(ACCOUNT), balance);
      const refused = await store.saveBalance(ACCOUNT, { ...balance, balanceMinor: Number.NaN });
      assert.ok(!refused.ok);
      assert.match(refused.error, /^Cannot write the data store/);
      assert.deepEqual(store.lastBalance(ACCOUNT), balance);
      for (const [i, value] of corrupt.entries()) await kv.set(["balance", `acc_corrupt${i}`], value);
    });
    await withStore(path, T0 + HOUR, (store) => {
      assert.deepEqual(store.lastBalance(ACCOUNT), balance, "the saved balance did not survive reopening");
      for (const [i, value] of corrupt.entries()) {
        assert.equal(store.lastBalance(`acc_corrupt${i}`), undefined, JSON.stringify(value));
      }
      // A balance alone is not a history: its account has no counting start until its transactions come.
      assert.equal(store.countingStart(ACCOUNT), undefined);
      assert.deepEqual(store.restarted, []);
      return Promise.resolve();
    });
  });
});

Deno.test("saving a balance to a store that fails is a one-line error, and memory keeps the last one", async () => {
  const opened = await openKv(":memory:");
  assert.ok(opened.ok);
  const made = await TransactionStore.open(opened.value.kv, {
    decode: decodeStoredTransaction,
    recentSince: 0,
    clock: { now: () => T0 },
  });
  assert.ok(made.ok);
  const balance: StoredBalance = { balanceMinor: 100, currency: "GBP", at: T0 };
  assert.ok((await made.value.saveBalance(ACCOUNT, balance)).ok);
  assert.ok((await made.value.markRead(ACCOUNT, balance.at)).ok);
  opened.value.kv.close();
  const failed = await made.value.saveBalance(ACCOUNT, { ...balance, balanceMinor: 200 });
  assert.ok(!failed.ok);
  assert.match(failed.error, /^Cannot write the data store: /);
  assert.ok(!failed.error.includes("\n"));
  assert.deepEqual(made.value.lastBalance(ACCOUNT), balance);
});

Deno.test("transactionsOf gives the account's stored transactions oldest first, readable ones only; accountIds every account, sorted", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    const mine = [tx(30), tx(2), tx(17, { settledAfter: null }), tx(5)];
    await withStore(path, T0, async (store, kv) => {
      await put(store, mine);
      await put(store, [tx(3, { accountId: OTHER }), tx(1, { accountId: OTHER })]);
      await store.saveBalance("acc_00009BalanceOnly", { balanceMinor: 1, currency: "GBP", at: T0 });
      await store.markRead("acc_00009BalanceOnly", T0);
      await kv.set(["tx", ACCOUNT, tx(4).createdMs, tx(4).id], { id: tx(4).id, createdMs: "yesterday" });
    });
    await withStore(path, T0, async (store) => {
      const read: StoredTransaction[] = [];
      for await (const one of store.transactionsOf(ACCOUNT)) read.push(one);
      assert.deepEqual(read, [...mine].sort((a, b) => a.createdMs - b.createdMs));
      const other: string[] = [];
      for await (const one of store.transactionsOf(OTHER)) other.push(one.id);
      assert.deepEqual(other, [tx(1).id, tx(3).id]);
      for await (const _ of store.transactionsOf("acc_00009Nobody")) assert.fail("an account with nothing stored");
      assert.deepEqual(store.accountIds(), [ACCOUNT, OTHER, "acc_00009BalanceOnly"].sort(compareText));
    });
  });
});

Deno.test("a balance becomes the last one only once a read of the transactions begun at or after it is stored, and waits across a restart", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data.kv");
    const first: StoredBalance = { balanceMinor: 100, currency: "GBP", at: T0 };
    const second: StoredBalance = { balanceMinor: 250, currency: "GBP", at: T0 + MINUTE };
    await withStore(path, T0, async (store) => {
      assert.ok((await store.saveBalance(ACCOUNT, first)).ok);
      assert.equal(store.lastBalance(ACCOUNT), undefined, "a balance no stored read explains yet was given");
      assert.ok((await store.markRead(ACCOUNT, T0 - 1)).ok);
      assert.equal(store.lastBalance(ACCOUNT), undefined, "a read begun before the balance was read explains it");
      assert.ok((await store.markRead(ACCOUNT, T0)).ok);
      assert.deepEqual(store.lastBalance(ACCOUNT), first);
      // The next poll's balance, read before its transactions are stored: the last one stays.
      assert.ok((await store.saveBalance(ACCOUNT, second)).ok);
      assert.deepEqual(store.lastBalance(ACCOUNT), first);
    });
    await withStore(path, T0 + HOUR, async (store) => {
      assert.deepEqual(
        store.lastBalance(ACCOUNT),
        first,
        "reopening lost the explained balance or took the waiting one",
      );
      assert.ok((await store.markRead(ACCOUNT, T0 + 2 * MINUTE)).ok);
      assert.deepEqual(store.lastBalance(ACCOUNT), second);
    });
    await withStore(path, T0 + 2 * HOUR, (store) => {
      assert.deepEqual(store.lastBalance(ACCOUNT), second);
      return Promise.resolve();
    });
  });
});
