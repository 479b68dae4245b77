// A transaction's `currency` is a label of four families (issue 15, the class of finding 8): over real
// HTTP with the fake Monzo, a Monzo sending thousands of currencies gives a bounded number of series,
// a currency that is not a code is left out as unusable, and a store from before the bound holding
// odd currencies exports only the account's own.

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { REREAD_EVERY_MS } from "../lib/poll/transactions_step.ts";
import { AccountCurrencies, MAX_CURRENCIES_PER_ACCOUNT } from "../lib/spending/currencies.ts";
import { decodeStoredTransaction, type StoredTransaction } from "../lib/monzo/transaction.ts";
import { TransactionStore } from "../lib/store/transaction_store.ts";
import {
  ALICE,
  ALICE_CURRENT,
  debits,
  type Harness,
  holdOnly,
  JOINT,
  logIn,
  metrics,
  MINUTE,
  poll,
  sample,
  spentOf,
  T0,
  withHarness,
} from "./helpers/harness.ts";
import { countingLongAgo, LONG_AGO } from "./helpers/counting.ts";

const HOUR = 60 * MINUTE;
const STORED = `monzo_transactions_stored{account_id="${ALICE_CURRENT}"}`;
const REJECTED = `monzo_transactions_rejected_total{account_id="${ALICE_CURRENT}"}`;
const SPENT_TOTAL = `monzo_spent_total{account_id="${ALICE_CURRENT}",currency="GBP"}`;
const FAMILIES = ["monzo_spent_total", "monzo_received_total", "monzo_spent_this_month", "monzo_received_this_month"];

/** A made-up code shaped like a currency (three capital letters) for each `i` below 17,576, never GBP. */
function madeUpCode(i: number): string {
  const code = [Math.floor(i / 676) % 26, Math.floor(i / 26) % 26, i % 26].map((n) => String.fromCharCode(65 + n))
    .join("");
  return code === "GBP" ? "ZZZ" : code;
}

/** Every `currency` label of Alice's current account in the spending families. */
function currencyLabels(text: string): Set<string> {
  const found = new Set<string>();
  for (const line of text.split("\n")) {
    if (!FAMILIES.some((family) => line.startsWith(`${family}{`)) || !line.includes(`"${ALICE_CURRENT}"`)) continue;
    const match = /currency="([^"]*)"/.exec(line);
    assert.ok(match, line);
    found.add(match[1]);
  }
  return found;
}

/** The log's "Left out" lines. */
const leftOut = (h: Harness) => h.lines.filter((line) => / WARN Left out /.test(line));

/** Gives rows whose id is in `currencies` that currency in every `/transactions` answer. */
function spoilCurrencies(h: Harness, currencies: ReadonlyMap<string, unknown>): void {
  h.fake.fault({
    path: "/transactions",
    kind: "edit_rows",
    accountId: ALICE_CURRENT,
    edit: (page) =>
      page.map((row) => currencies.has(String(row.id)) ? { ...row, currency: currencies.get(String(row.id)) } : row),
  });
}

Deno.test("2,000 transactions in 2,000 made-up currencies: only the account's currency is a series, the rest rejected and logged once each", async () => {
  await withHarness({ config: { history_days: 30 }, prepare: countingLongAgo(ALICE_CURRENT) }, async (h) => {
    // 2,100 over the last 15 days: every 21st in pounds, the others each in a currency of its own.
    const rows = debits(2100, 10 * MINUTE);
    holdOnly(h, rows);
    const odd = rows.filter((_, i) => i % 21 !== 0);
    const pounds = rows.filter((_, i) => i % 21 === 0);
    assert.equal(odd.length, 2000);
    spoilCurrencies(h, new Map(odd.map((tx, i) => [tx.id, madeUpCode(i)])));
    await logIn(h, ALICE);
    await poll(h);
    const check = async () => {
      const text = await metrics(h);
      assert.equal(sample(text, "monzo_up"), 1, JSON.stringify(h.exporter.snapshot.state.lastPoll?.problems));
      assert.deepEqual([...currencyLabels(text)], ["GBP"]);
      assert.equal(sample(text, REJECTED), odd.length);
      assert.equal(sample(text, `monzo_transactions_rejected_total{account_id="${JOINT}"}`), 0);
      assert.equal(sample(text, STORED), pounds.length);
      assert.equal(sample(text, SPENT_TOTAL), Math.round(spentOf(pounds) * 100) / 100);
    };
    await check();
    // The hourly re-read gives them all again: not counted or logged a second time.
    await poll(h, REREAD_EVERY_MS);
    await check();
    const warned = leftOut(h);
    assert.equal(warned.length, odd.length);
    const ids = new Set(warned.map((line) => /transaction (\S+) of account/.exec(line)?.[1]));
    assert.deepEqual(ids, new Set(odd.map((tx) => tx.id)));
    assert.ok(warned.every((line) => line.includes("is not the account's currency, GBP")), warned[0]);
  });
});

Deno.test('a currency that is not a code ("gbp", "GBPX", "", "GB P", 64 letters) is rejected, counted and logged', async () => {
  await withHarness({ config: { history_days: 30 }, prepare: countingLongAgo(ALICE_CURRENT) }, async (h) => {
    const rows = debits(20, HOUR);
    holdOnly(h, rows);
    const bad = ["gbp", "GBPX", "", "GB P", "G".repeat(64), "Gbp", "GB"];
    const spoilt = new Map(bad.map((currency, i) => [rows[2 * i + 1].id, currency]));
    spoilCurrencies(h, spoilt);
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, JSON.stringify(h.exporter.snapshot.state.lastPoll?.problems));
    assert.equal(sample(text, REJECTED), bad.length);
    assert.equal(sample(text, STORED), rows.length - bad.length);
    assert.deepEqual([...currencyLabels(text)], ["GBP"]);
    assert.equal(sample(text, SPENT_TOTAL), spentOf(rows.filter((tx) => !spoilt.has(tx.id))));
    const warned = leftOut(h);
    assert.equal(warned.length, bad.length);
    for (const id of spoilt.keys()) assert.equal(warned.filter((line) => line.includes(id)).length, 1, id);
  });
});

Deno.test("an account whose currency Monzo does not give as a code: at most 5 currencies, the first ones met", async () => {
  await withHarness({ config: { history_days: 30 } }, async (h) => {
    const account = h.fake.data.accounts.find((a) => a.id === ALICE_CURRENT);
    assert.ok(account);
    account.currency = "pounds";
    const rows = debits(300, 20 * MINUTE);
    holdOnly(h, rows);
    // Oldest first, as Monzo reads them out: GBP, then a new currency every row.
    const currencies = new Map(rows.map((tx, i) => [tx.id, i < 10 ? "GBP" : madeUpCode(i)]));
    spoilCurrencies(h, currencies);
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, JSON.stringify(h.exporter.snapshot.state.lastPoll?.problems));
    const labels = currencyLabels(text);
    assert.equal(labels.size, MAX_CURRENCIES_PER_ACCOUNT, [...labels].join(" "));
    assert.ok(labels.has("GBP"));
    const kept = MAX_CURRENCIES_PER_ACCOUNT - 1 + 10;
    assert.equal(sample(text, STORED), kept);
    assert.equal(sample(text, REJECTED), rows.length - kept);
    assert.equal(leftOut(h).length, rows.length - kept);
  });
});

Deno.test("a store from before holding transactions in odd currencies: only the account's currency is exported", async () => {
  const legacy: StoredTransaction[] = [
    "GBP",
    "gbp",
    "",
    "X".repeat(60),
    ...Array.from({ length: 300 }, (_, i) => madeUpCode(i)),
  ].map((currency, i) => ({
    id: `tx_00009Legacy${i}`,
    accountId: ALICE_CURRENT,
    createdMs: T0 - 3 * HOUR - i * MINUTE,
    settledMs: T0 - 2 * HOUR,
    amount: -500,
    currency: currency === "" ? "?" : currency,
    category: "groceries",
    categories: null,
    declined: false,
    includeInSpending: true,
    potMove: false,
    isLoad: false,
    description: "",
    merchant: null,
    counterparty: null,
  }));
  const prepare = async (_fake: unknown, tokensPath: string) => {
    const kv = await Deno.openKv(join(dirname(tokensPath), "data.kv"));
    try {
      const store = await TransactionStore.open(kv, {
        decode: decodeStoredTransaction,
        recentSince: 0,
        clock: { now: () => LONG_AGO },
      });
      assert.ok(store.ok);
      assert.ok((await store.value.write(ALICE_CURRENT, { put: legacy })).ok);
    } finally {
      kv.close();
    }
  };
  await withHarness({ config: { history_days: 30 }, prepare }, async (h) => {
    const rows = debits(10, HOUR);
    holdOnly(h, rows);
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1, JSON.stringify(h.exporter.snapshot.state.lastPoll?.problems));
    assert.deepEqual([...currencyLabels(text)], ["GBP"]);
    // The legacy pound is counted; the odd ones stay stored but are no series.
    assert.equal(sample(text, SPENT_TOTAL), spentOf(rows) + 5);
    assert.equal(sample(text, STORED), rows.length + legacy.length);
  });
});

Deno.test("the currencies of an account: its own when known, else the stored codes and then new ones up to 5", () => {
  const own = new AccountCurrencies("GBP", ["EUR", "gbp"]);
  assert.ok(own.has("GBP") && !own.has("EUR"));
  assert.ok(own.admit("GBP") && !own.admit("EUR") && !own.admit("gbp"));
  assert.match(own.refusal("EUR"), /EUR is not the account's currency, GBP/);

  // Not known: stored codes first (odd ones never), alphabetically, so a store holding more is cut the same way.
  const stored = new AccountCurrencies(undefined, ["ZZZ", "gbp", "", "USD", "AAA", "EUR", "JPY", "CHF", "USD"]);
  assert.deepEqual(["AAA", "CHF", "EUR", "JPY", "USD", "ZZZ"].map((c) => stored.has(c)), [
    true,
    true,
    true,
    true,
    true,
    false,
  ]);
  assert.ok(!stored.admit("ZZZ") && stored.admit("USD"));
  assert.match(stored.refusal("ZZZ"), /already come in 5 currencies: AAA, CHF, EUR, JPY, USD/);

  const fresh = new AccountCurrencies("pounds", ["gbp"]);
  assert.ok(!fresh.admit("gbp") && !fresh.admit("GBPX"));
  for (const code of ["GBP", "EUR", "USD", "JPY", "CHF"]) assert.ok(fresh.admit(code), code);
  assert.ok(!fresh.admit("AUD"));
  assert.ok(fresh.admit("EUR"));
});
