// The counting rules of issue 8 ("What counts"), from Monzo's JSON to figures: every transaction goes
// through transactionSchema and toStored exactly as the sync will send it, then through cashFlow and
// budget. Every expected figure is worked out by hand in a comment next to it.
import { classify, MONZO_VIEW } from "../lib/spending/classify.ts";
import assert from "node:assert/strict";
import { major } from "../lib/shared/metric_family.ts";
import { budgetMonth } from "../lib/spending/budget_month.ts";
import { capCategories, MAX_CATEGORIES, OTHER_CATEGORY } from "../lib/spending/category_cap.ts";
import { budget, type BudgetRow, type CashFlow, cashFlow, categoryParts } from "../lib/spending/rules.ts";
import {
  decodeStoredTransaction,
  MAX_TRANSACTION_MINOR,
  type StoredTransaction,
  toStored,
  transactionSchema,
  transactionsSchema,
} from "../lib/monzo/transaction.ts";

const ACC = "acc_00009Current";
// Budget month of 20 January 2026 with months starting on the 1st: all of January, in GMT, so
// London midnight is UTC midnight: [2026-01-01T00:00Z, 2026-02-01T00:00Z).
const JANUARY = budgetMonth(Date.UTC(2026, 0, 20, 12), 1);
const IN_JANUARY = "2026-01-10T09:30:00.000Z";
const SETTLED = "2026-01-11T03:00:00.000Z";

let nextId = 0;

/** A Monzo transaction as JSON would give it: a settled £1 grocery debit unless told otherwise. */
function monzo(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: `tx_${String(++nextId).padStart(6, "0")}`,
    created: IN_JANUARY,
    settled: SETTLED,
    amount: -100,
    currency: "GBP",
    category: "groceries",
    ...fields,
  };
}

function parse(json: string) {
  return transactionSchema.safeParse(JSON.parse(json));
}

/** Reads `fields` through the schema and stores it, as the sync will. */
function stored(fields: Record<string, unknown> = {}, accountId = ACC): StoredTransaction {
  const parsed = parse(JSON.stringify(monzo(fields)));
  if (!parsed.success) throw new Error(parsed.error.message);
  return toStored(parsed.data, accountId);
}

const flow = (accountId: string, currency: string, spentMinor: number, receivedMinor: number): CashFlow => ({
  accountId,
  currency,
  spentMinor,
  receivedMinor,
});
const row = (
  category: string,
  spentMinor: number,
  receivedMinor: number,
  accountId = ACC,
  currency = "GBP",
): BudgetRow => ({
  accountId,
  category,
  currency,
  spentMinor,
  receivedMinor,
});

// ---------------------------------------------------------------- the whole fixture

Deno.test("a month with every awkward kind of transaction gives exact figures in both lenses", () => {
  const transactions = [
    stored({ amount: -2550, category: "groceries" }),
    stored({ amount: -10000, category: "shopping", decline_reason: "INSUFFICIENT_FUNDS", settled: "" }),
    stored({ amount: -50000, category: "savings", metadata: { pot_id: "pot_1", pot_account_id: "acc_pot" } }),
    stored({ amount: 20000, category: "savings", scheme: "uk_retail_pot" }),
    stored({ amount: -1200, category: "eating_out", settled: "" }),
    stored({ amount: 500, category: "groceries", include_in_spending: true }),
    stored({ amount: 300, category: "shopping", include_in_spending: true }),
    stored({ amount: 250000, category: "income", include_in_spending: false, scheme: "bacs" }),
    stored({ amount: 4000, category: "transfers", scheme: "payport_faster_payments" }),
    stored({ amount: 10000, category: "mondo", is_load: true, include_in_spending: false }),
    stored({ amount: -7000, category: "transfers", include_in_spending: false }),
    stored({ amount: -7000, category: "bills", categories: { bills: -5000, groceries: -2000 } }),
    stored({ amount: -3000, category: "entertainment", categories: { entertainment: -1000, shopping: -1000 } }),
    stored({ amount: -999, category: "Dog 🐶" }),
    stored({ amount: -4321, category: "holidays", local_amount: -5000, local_currency: "EUR" }),
    stored({ amount: -8888, category: "groceries", created: "2025-12-31T23:59:59.999Z" }),
    stored({ amount: 1500, category: "general", settled: "" }),
    stored({ amount: -1000, category: "groceries", currency: "EUR" }, "acc_00009Euro"),
  ];
  // Settled debits counted as spending: 2550 + 7000 (split) + 3000 (bad split) + 999 + 4321 + 8888
  // (last month, but cash flow has no month) = 26758. Not: the decline, the pot move, the pending
  // 1200, the 7000 left out of spending. Settled credits: 500 + 300 + 250000 + 4000 + 10000 = 264800
  // (not the pot withdrawal, not the pending 1500).
  assert.deepEqual(cashFlow(transactions, MONZO_VIEW), [
    flow(ACC, "GBP", 26758, 264800),
    flow("acc_00009Euro", "EUR", 1000, 0),
  ]);
  // Sorted by account, currency, then category ("D" sorts before lower case).
  assert.deepEqual(
    budget(transactions, JANUARY, MONZO_VIEW),
    [
      row("Dog 🐶", 999, 0),
      row("bills", 5000, 0),
      row("eating_out", 1200, 0), // pending counts in the budget
      row("entertainment", 3000, 0), // the split adds up to 2000, not 3000: all in category
      row("general", 0, 1500), // pending credit, include_in_spending absent: received
      row("groceries", 4050, 0), // 2550 - 500 refund + 2000 split part; December's 8888 is not January's
      row("holidays", 4321, 0), // amount, not local_amount
      row("income", 0, 250000),
      row("mondo", 0, 10000),
      row("shopping", -300, 0), // refund with no spending in shopping this month: negative
      row("transfers", 0, 4000), // the 7000 debit left out of spending is not here
      row("groceries", 1000, 0, "acc_00009Euro", "EUR"),
    ].sort((a, b) => (a.accountId === b.accountId ? 0 : a.accountId === ACC ? -1 : 1)),
  );
});

// ---------------------------------------------------------------- one rule at a time

Deno.test("declined transactions count nowhere, settled or pending, debit or credit", () => {
  const declined = [
    stored({ amount: -500, decline_reason: "INSUFFICIENT_FUNDS" }),
    stored({ amount: -600, decline_reason: "STRONG_CUSTOMER_AUTHENTICATION_REQUIRED", settled: "" }),
    stored({ amount: 700, decline_reason: "OTHER", include_in_spending: true }),
  ];
  assert.deepEqual(
    declined.map((tx) => [tx.declined, classify(tx, MONZO_VIEW).kind]),
    Array(3).fill([true, "left_out"]),
  );
  assert.deepEqual(cashFlow(declined, MONZO_VIEW), [flow(ACC, "GBP", 0, 0)]);
  assert.deepEqual(budget(declined, JANUARY, MONZO_VIEW), []);
});

Deno.test("pot moves count nowhere: into and out of a pot, marked by metadata or by scheme", () => {
  const moves = [
    stored({ amount: -5000, metadata: { pot_id: "pot_1" } }), // into a pot, by metadata
    stored({ amount: 3000, metadata: { pot_id: "pot_1" } }), // out of a pot, by metadata
    stored({ amount: -2000, scheme: "uk_retail_pot" }), // into, by scheme
    stored({ amount: 1000, scheme: "uk_retail_pot", include_in_spending: true }), // out, by scheme
  ];
  assert.deepEqual(moves.map((tx) => [tx.potMove, classify(tx, MONZO_VIEW).kind]), Array(4).fill([true, "left_out"]));
  assert.deepEqual(cashFlow(moves, MONZO_VIEW), [flow(ACC, "GBP", 0, 0)]);
  assert.deepEqual(budget(moves, JANUARY, MONZO_VIEW), []);
  // Other schemes and other metadata are not pot moves.
  const notMoves = [stored({ scheme: "uk_retail_pot_x" }), stored({ metadata: { pot_account_id: "acc_pot" } })];
  assert.deepEqual(
    notMoves.map((tx) => [tx.potMove, classify(tx, MONZO_VIEW).kind]),
    Array(2).fill([false, "counted"]),
  );
});

Deno.test("pending transactions count in the budget but not in cash flow; settled ones in both", () => {
  const pending = [stored({ amount: -1234, settled: "" }), stored({ amount: 4321, settled: "" })];
  assert.deepEqual(cashFlow(pending, MONZO_VIEW), [flow(ACC, "GBP", 0, 0)]);
  assert.deepEqual(budget(pending, JANUARY, MONZO_VIEW), [row("groceries", 1234, 4321)]);
  const settled = [stored({ amount: -1234 }), stored({ amount: 4321 })];
  assert.deepEqual(cashFlow(settled, MONZO_VIEW), [flow(ACC, "GBP", 1234, 4321)]);
  assert.deepEqual(budget(settled, JANUARY, MONZO_VIEW), [row("groceries", 1234, 4321)]);
});

Deno.test("a refund is taken off spending in its category, and is received in cash flow", () => {
  const transactions = [
    stored({ amount: -5000, category: "shopping" }),
    stored({ amount: 1500, category: "shopping", include_in_spending: true }),
  ];
  // Budget: 5000 - 1500 = 3500 spent, nothing received. Cash flow: 5000 out, 1500 in.
  assert.deepEqual(budget(transactions, JANUARY, MONZO_VIEW), [row("shopping", 3500, 0)]);
  assert.deepEqual(cashFlow(transactions, MONZO_VIEW), [flow(ACC, "GBP", 5000, 1500)]);
});

Deno.test("a refund in another category, or bigger than the spending, makes that category negative", () => {
  const transactions = [
    stored({ amount: -5000, category: "shopping" }),
    stored({ amount: 1500, category: "entertainment", include_in_spending: true }),
    stored({ amount: -200, category: "eating_out" }),
    stored({ amount: 700, category: "eating_out", include_in_spending: true }),
  ];
  // entertainment: 0 - 1500; eating_out: 200 - 700 = -500; shopping untouched at 5000. Net spending
  // over categories: 5000 - 1500 - 500 = 3000 = 5200 spent - 2200 refunded.
  assert.deepEqual(budget(transactions, JANUARY, MONZO_VIEW), [
    row("eating_out", -500, 0),
    row("entertainment", -1500, 0),
    row("shopping", 5000, 0),
  ]);
});

Deno.test("salary, transfers in and top-ups are received in both lenses", () => {
  const transactions = [
    stored({ amount: 300000, category: "income", include_in_spending: false }),
    stored({ amount: 2500, category: "transfers", scheme: "p2p_payment" }),
    stored({ amount: 10000, category: "mondo", is_load: true }),
  ];
  assert.equal(transactions[2].isLoad, true);
  // 300000 + 2500 + 10000 = 312500.
  assert.deepEqual(cashFlow(transactions, MONZO_VIEW), [flow(ACC, "GBP", 0, 312500)]);
  assert.deepEqual(budget(transactions, JANUARY, MONZO_VIEW), [
    row("income", 0, 300000),
    row("mondo", 0, 10000),
    row("transfers", 0, 2500),
  ]);
});

Deno.test("a debit with include_in_spending false counts nowhere; absent counts as spending", () => {
  const transactions = [
    stored({ amount: -7000, category: "transfers", include_in_spending: false }),
    stored({ amount: -300, category: "transfers" }), // absent on an old row: spending
    stored({ amount: -40, category: "transfers", include_in_spending: null }),
  ];
  // Only 300 + 40 = 340 is spending.
  assert.deepEqual(cashFlow(transactions, MONZO_VIEW), [flow(ACC, "GBP", 340, 0)]);
  assert.deepEqual(budget(transactions, JANUARY, MONZO_VIEW), [row("transfers", 340, 0)]);
});

Deno.test("a credit with include_in_spending absent or false is received, not a refund", () => {
  const transactions = [
    stored({ amount: -1000, category: "shopping" }),
    stored({ amount: 250, category: "shopping" }),
    stored({ amount: 50, category: "shopping", include_in_spending: false }),
  ];
  assert.deepEqual(budget(transactions, JANUARY, MONZO_VIEW), [row("shopping", 1000, 300)]);
  assert.deepEqual(cashFlow(transactions, MONZO_VIEW), [flow(ACC, "GBP", 1000, 300)]);
});

Deno.test("a split map counts each part in its own category; cash flow counts the whole amount", () => {
  const transactions = [
    stored({ amount: -7000, category: "bills", categories: { bills: -5000, groceries: -2000 } }),
    // A refund split the same way takes each part back off its own category.
    stored({
      amount: 700,
      category: "bills",
      categories: { bills: 500, groceries: 200 },
      include_in_spending: true,
    }),
    // A received credit split between two categories.
    stored({ amount: 900, category: "income", categories: { income: 600, gifts: 300 } }),
  ];
  // bills 5000 - 500 = 4500; groceries 2000 - 200 = 1800; income 600 and gifts 300 received.
  assert.deepEqual(budget(transactions, JANUARY, MONZO_VIEW), [
    row("bills", 4500, 0),
    row("gifts", 0, 300),
    row("groceries", 1800, 0),
    row("income", 0, 600),
  ]);
  // 7000 out; 700 + 900 = 1600 in.
  assert.deepEqual(cashFlow(transactions, MONZO_VIEW), [flow(ACC, "GBP", 7000, 1600)]);
});

Deno.test("a split that does not add up, or has a part of the wrong sign, counts whole in category", () => {
  const short = stored({ amount: -3000, category: "bills", categories: { bills: -1000, groceries: -1000 } });
  const over = stored({ amount: -3000, category: "bills", categories: { bills: -3000, groceries: -1000 } });
  // Adds up to -3000, but a credit part inside a debit is refused rather than trusted.
  const mixed = stored({ amount: -3000, category: "bills", categories: { bills: -4000, groceries: 1000 } });
  for (const tx of [short, over, mixed]) assert.deepEqual(categoryParts(tx), [["bills", -3000]]);
  assert.deepEqual(budget([short, over, mixed], JANUARY, MONZO_VIEW), [row("bills", 9000, 0)]);
  // A zero part is allowed (the sign check is "not the opposite sign").
  const zero = stored({ amount: -3000, category: "bills", categories: { bills: -3000, groceries: 0 } });
  assert.deepEqual(budget([zero], JANUARY, MONZO_VIEW), [row("bills", 3000, 0)]);
});

Deno.test("custom and unknown categories pass through unchanged", () => {
  const names = ["Dog 🐶", "category_00009abc", "personal_care", "Weekend\ttrips", "__proto__", "constructor"];
  const transactions = names.map((category) => stored({ amount: -100, category }));
  const rows = budget(transactions, JANUARY, MONZO_VIEW);
  // The tab is a control character: made safe, not dropped.
  assert.deepEqual(
    rows.map((r) => r.category).sort(),
    [
      "Dog 🐶",
      "Weekend\uFFFDtrips",
      "__proto__",
      "category_00009abc",
      "constructor",
      "personal_care",
    ].sort(),
  );
  assert.ok(rows.every((r) => r.spentMinor === 100));
});

Deno.test("an FX payment counts amount in the account's currency, never local_amount", () => {
  const fx = stored({ amount: -4321, category: "holidays", local_amount: -5000, local_currency: "EUR" });
  assert.deepEqual(budget([fx], JANUARY, MONZO_VIEW), [row("holidays", 4321, 0)]);
  assert.deepEqual(cashFlow([fx], MONZO_VIEW), [flow(ACC, "GBP", 4321, 0)]);
  assert.ok(!("local_amount" in fx) && !JSON.stringify(fx).includes("5000"));
});

Deno.test("two currencies and two accounts are never added together", () => {
  const transactions = [
    stored({ amount: -100, currency: "GBP" }, "acc_A"),
    stored({ amount: -200, currency: "EUR" }, "acc_A"),
    stored({ amount: -400, currency: "GBP" }, "acc_B"),
    stored({ amount: 800, currency: "GBP" }, "acc_B"),
  ];
  assert.deepEqual(cashFlow(transactions, MONZO_VIEW), [
    flow("acc_A", "EUR", 200, 0),
    flow("acc_A", "GBP", 100, 0),
    flow("acc_B", "GBP", 400, 800),
  ]);
  assert.deepEqual(budget(transactions, JANUARY, MONZO_VIEW), [
    row("groceries", 200, 0, "acc_A", "EUR"),
    row("groceries", 100, 0, "acc_A", "GBP"),
    row("groceries", 400, 800, "acc_B", "GBP"),
  ]);
});

Deno.test("signs: money out is positive spending, money in is positive received, amount 0 counts nowhere", () => {
  const transactions = [stored({ amount: -1 }), stored({ amount: 2 }), stored({ amount: 0, category: "general" })];
  assert.deepEqual(cashFlow(transactions, MONZO_VIEW), [flow(ACC, "GBP", 1, 2)]);
  assert.deepEqual(budget(transactions, JANUARY, MONZO_VIEW), [row("groceries", 1, 2)]);
});

Deno.test("10,000 amounts of 10p add up exactly, in integer minor units", () => {
  const tenPence = stored({ amount: -10 });
  const transactions = Array.from({ length: 10_000 }, (_, i) => ({ ...tenPence, id: `tx_${i}` }));
  // 10,000 × 10 = 100,000 pence = £1,000 exactly; adding £0.10 as a float 10,000 times would not.
  let pounds = 0;
  for (let i = 0; i < 10_000; i++) pounds += 0.1;
  assert.notEqual(pounds, 1000);
  const [cash] = cashFlow(transactions, MONZO_VIEW);
  const [month] = budget(transactions, JANUARY, MONZO_VIEW);
  assert.equal(cash.spentMinor, 100_000);
  assert.equal(month.spentMinor, 100_000);
  assert.equal(major(cash.spentMinor), 1000);
});

Deno.test("a transaction given twice counts once", () => {
  const tx = stored({ amount: -100 });
  const sameOtherAccount = { ...tx, accountId: "acc_other" };
  assert.deepEqual(cashFlow([tx, tx, sameOtherAccount], MONZO_VIEW), [
    flow(ACC, "GBP", 100, 0),
    flow("acc_other", "GBP", 100, 0),
  ]);
  assert.deepEqual(budget([tx, tx], JANUARY, MONZO_VIEW), [row("groceries", 100, 0)]);
});

Deno.test("a transaction belongs to the budget month of its created time, not its settled time", () => {
  // Months from the 25th; 25 July 2026 00:00 BST is 24 July 23:00 UTC.
  const month = budgetMonth(Date.UTC(2026, 6, 30), 25);
  assert.equal(month.start, Date.UTC(2026, 6, 24, 23));
  const at = (ms: number, amount: number, settled = "2026-07-26T10:00:00Z") =>
    stored({ amount, created: new Date(ms).toISOString(), settled });
  const transactions = [
    at(month.start - 1, -1), // 23:59:59.999 BST on the 24th: last month
    at(month.start, -10), // first instant of the month
    at(month.end - 1, -100), // last instant
    at(month.end, -1000), // next month
    at(month.start - 3_600_000, -10000, "2026-07-25T09:00:00+01:00"), // created last month, settled this month
  ];
  assert.deepEqual(budget(transactions, month, MONZO_VIEW), [row("groceries", 110, 0)]);
  // Cash flow has no month: 1 + 10 + 100 + 1000 + 10000.
  assert.deepEqual(cashFlow(transactions, MONZO_VIEW), [flow(ACC, "GBP", 11111, 0)]);
});

// ---------------------------------------------------------------- the schema

const REQUIRED = { id: "tx_1", created: IN_JANUARY, amount: -100, currency: "GBP" };

Deno.test("a transaction with only id, created, amount and currency parses, with every fallback", () => {
  const parsed = transactionSchema.parse(REQUIRED);
  assert.deepEqual(parsed, {
    id: "tx_1",
    created: Date.UTC(2026, 0, 10, 9, 30),
    settled: null,
    amount: -100,
    currency: "GBP",
    category: "general",
    categories: null,
    decline_reason: null,
    include_in_spending: null,
    is_load: false,
    scheme: null,
    description: "",
    merchant: null,
    counterparty: null,
    has_pot_id: false,
  });
  assert.deepEqual(toStored(parsed, ACC), {
    id: "tx_1",
    accountId: ACC,
    createdMs: Date.UTC(2026, 0, 10, 9, 30),
    settledMs: null,
    amount: -100,
    currency: "GBP",
    category: "general",
    categories: null,
    declined: false,
    includeInSpending: null,
    potMove: false,
    isLoad: false,
    description: "",
    merchant: null,
    counterparty: null,
  });
});

Deno.test("null optional fields are read as absent", () => {
  const nulls = Object.fromEntries(
    ["settled", "category", "categories", "decline_reason", "include_in_spending", "is_load", "scheme", "metadata"]
      .map((key) => [key, null]),
  );
  const parsed = transactionSchema.parse({ ...REQUIRED, ...nulls });
  assert.deepEqual(parsed, transactionSchema.parse(REQUIRED));
});

Deno.test("optional fields of an unexpected type fall back instead of failing the page", () => {
  const odd = {
    ...REQUIRED,
    category: 42,
    categories: "bills",
    include_in_spending: "false",
    is_load: "yes",
    scheme: { name: "x" },
    metadata: ["pot_id"],
    decline_reason: "",
  };
  assert.deepEqual(transactionSchema.parse(odd), transactionSchema.parse(REQUIRED));
  assert.equal(transactionSchema.parse({ ...REQUIRED, category: "" }).category, "general");
  // A split given as an array, or with a part that is not whole minor units, is no split.
  for (const categories of [[["bills", -100]], { bills: -50.5, groceries: -49.5 }, { bills: "-100" }, {}]) {
    assert.equal(transactionSchema.parse({ ...REQUIRED, categories }).categories, null, JSON.stringify(categories));
  }
});

Deno.test("settled is a time once settled and null while pending", () => {
  assert.equal(transactionSchema.parse({ ...REQUIRED, settled: "" }).settled, null);
  // +01:00 is an hour ahead of UTC; digits past the millisecond are dropped.
  assert.equal(
    transactionSchema.parse({ ...REQUIRED, settled: "2026-07-01T10:00:00.123456+01:00" }).settled,
    Date.UTC(2026, 6, 1, 9, 0, 0, 123),
  );
  // -05:00 is five hours behind: 04:30 there is 09:30 UTC.
  assert.equal(
    transactionSchema.parse({ ...REQUIRED, created: "2026-01-10T04:30:00-05:00" }).created,
    Date.UTC(2026, 0, 10, 9, 30),
  );
  assert.equal(
    transactionSchema.parse({ ...REQUIRED, created: "2026-01-10t09:30:00z" }).created,
    Date.UTC(2026, 0, 10, 9, 30),
  );
});

Deno.test("unknown fields are ignored, __proto__ and constructor included", () => {
  const json = JSON.stringify({
    ...REQUIRED,
    local_amount: -120,
    local_currency: "EUR",
    merchant: { id: "merch_1", name: "Café", logo: "https://x", online: true, atm: false, category: "eating_out" },
    counterparty: { name: "A", sort_code: "040004", account_number: "12345678", user_id: "user_1" },
    labels: null,
    fees: {},
    amount_is_pending: true,
    dedupe_id: "d",
    updated: "2026-01-10T09:31:00Z",
    notes: "",
    attachments: [],
  }).replace("{", '{"__proto__":{"amount":999,"polluted":true},"constructor":{"prototype":{"polluted":true}},');
  const parsed = parse(json);
  assert.ok(parsed.success);
  assert.equal(parsed.data.amount, -100);
  assert.equal(Object.getPrototypeOf(parsed.data), Object.prototype);
  assert.ok(!Object.hasOwn(parsed.data, "constructor") && !Object.hasOwn(parsed.data, "local_amount"));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("metadata values of any type are tolerated; only an own, non-empty pot_id marks a pot move", () => {
  const potMove = (metadata: unknown) => transactionSchema.parse({ ...REQUIRED, metadata }).has_pot_id;
  assert.equal(potMove({ notes: 5, nested: { a: 1 }, list: [1], flag: true, pot_id: "" }), false);
  assert.equal(potMove({ pot_id: null }), false);
  assert.equal(potMove({ pot_id: "pot_00009" }), true);
  assert.equal(potMove({ pot_id: 123 }), true);
  assert.equal(potMove("pot_id"), false);
  // Only own keys count: a pot_id inherited from a prototype (polluted elsewhere) is not one.
  assert.equal(potMove(Object.create({ pot_id: "pot_1" })), false);
});

Deno.test("a __proto__ key in metadata cannot make a pot move or reach Object.prototype", () => {
  const json = JSON.stringify(REQUIRED).replace("{", '{"metadata":{"__proto__":{"pot_id":"pot_1"}},');
  const parsed = parse(json);
  assert.ok(parsed.success);
  assert.equal(parsed.data.has_pot_id, false);
  assert.equal(({} as Record<string, unknown>).pot_id, undefined);
});

Deno.test("__proto__ and constructor in a split map are plain category names, polluting nothing", () => {
  const json = JSON.stringify({ ...REQUIRED, amount: -300 }).replace(
    "{",
    '{"categories":{"__proto__":-100,"constructor":-200},',
  );
  const parsed = parse(json);
  assert.ok(parsed.success);
  const tx = toStored(parsed.data, ACC);
  assert.deepEqual(tx.categories, [["__proto__", -100], ["constructor", -200]]);
  assert.deepEqual(budget([tx], JANUARY, MONZO_VIEW), [row("__proto__", 100, 0), row("constructor", 200, 0)]);
  // An object under __proto__ is not a part: the split is unusable and the amount counts in category.
  const nested = parse(JSON.stringify(REQUIRED).replace("{", '{"categories":{"__proto__":{"bills":-100}},'));
  assert.ok(nested.success);
  assert.equal(nested.data.categories, null);
  assert.equal(({} as Record<string, unknown>).bills, undefined);
});

Deno.test("hostile required values are rejected", () => {
  const bad: Record<string, unknown>[] = [
    { amount: MAX_TRANSACTION_MINOR + 1 },
    { amount: -MAX_TRANSACTION_MINOR - 1 },
    { amount: 1.5 },
    { amount: "-100" },
    { amount: undefined },
    { id: 123 },
    { id: "" },
    { id: "tx_\n1" },
    { id: "x".repeat(257) },
    { currency: "GB\u001bP" },
    { currency: "" },
    { created: "yesterday" },
    { created: "2026-02-30T00:00:00Z" },
    { created: "2026-01-10" },
    { created: "2026-01-10T24:00:00Z" },
    { created: "Sat, 10 Jan 2026 09:30:00 GMT" },
    { created: 1768037400000 },
    { created: undefined },
    { settled: "soon" },
  ];
  for (const fields of bad) {
    assert.equal(transactionSchema.safeParse({ ...REQUIRED, ...fields }).success, false, JSON.stringify(fields));
  }
  // 1e400 is Infinity after JSON.parse.
  assert.equal(parse(JSON.stringify(REQUIRED).replace("-100", "1e400")).success, false);
  // One hostile transaction fails its page.
  assert.equal(transactionsSchema.safeParse({ transactions: [REQUIRED, { ...REQUIRED, id: 7 }] }).success, false);
  // The bounds themselves are accepted.
  for (const amount of [MAX_TRANSACTION_MINOR, -MAX_TRANSACTION_MINOR]) {
    assert.equal(transactionSchema.parse({ ...REQUIRED, amount }).amount, amount);
  }
});

Deno.test("category names are made safe for a label and bounded", () => {
  const parsed = transactionSchema.parse({ ...REQUIRED, category: "\u001b[31mred" + "x".repeat(500) });
  assert.ok(parsed.category.startsWith("\uFFFD[31mred"));
  assert.equal([...parsed.category].length, 100); // 99 kept, then "…"
  assert.ok(parsed.category.endsWith("…"));
});

Deno.test("any decline_reason other than empty marks a decline", () => {
  const reason = (decline_reason: unknown) => transactionSchema.parse({ ...REQUIRED, decline_reason }).decline_reason;
  assert.equal(reason("CARD_CLOSED"), "CARD_CLOSED");
  assert.equal(reason(42), "OTHER");
  assert.equal(reason(""), null);
  assert.equal(stored({ decline_reason: "CARD_BLOCKED" }).declined, true);
  assert.equal(stored({}).declined, false);
});

Deno.test("the stored form drops a split that only repeats category and amount, and keeps real ones", () => {
  assert.equal(stored({ amount: -100, category: "bills", categories: { bills: -100 } }).categories, null);
  assert.deepEqual(stored({ amount: -100, category: "general", categories: { bills: -100 } }).categories, [[
    "bills",
    -100,
  ]]);
});

Deno.test("a stored transaction survives a JSON round trip and the store's check; a corrupt one does not", () => {
  const tx = stored({ amount: -7000, categories: { bills: -5000, groceries: -2000 }, include_in_spending: true });
  assert.deepEqual(decodeStoredTransaction(JSON.parse(JSON.stringify(tx))), tx);
  const corrupt: unknown[] = [
    { ...tx, amount: 0.5 },
    { ...tx, createdMs: "x" },
    { ...tx, potMove: undefined },
    { ...tx, id: "" },
    { ...tx, category: "bad\u001b[31m" },
    { ...tx, categories: [["bills"]] },
    { ...tx, categories: [] },
    { ...tx, settledMs: Infinity },
    { ...tx, includeInSpending: "yes" },
    null,
    "tx",
  ];
  for (const value of corrupt) assert.equal(decodeStoredTransaction(value), null, JSON.stringify(value));
});

Deno.test("a typical stored transaction is under 375 bytes of JSON, a split one under 425", () => {
  const bytes = (fields: Record<string, unknown>) =>
    new TextEncoder().encode(JSON.stringify(stored({
      id: "tx_0000AbCdEfGhIjKlMnOpQrStUv",
      amount: -7000,
      category: "eating_out",
      include_in_spending: true,
      description: "PRET A MANGER",
      merchant: { id: "merch_0000AbCdEfGhIjKlMnOpQrStUv", name: "Pret A Manger", logo: "https://x/y.png" },
      ...fields,
    }, "acc_0000AbCdEfGhIjKlMnOpQrStUv"))).length;
  // Measured 350 and 387 bytes with ids of Monzo's length (282 and 319 before the description, merchant
  // and counterparty were kept for the rules and internal transfers of issue 18).
  assert.ok(bytes({ categories: { eating_out: -7000 } }) < 375);
  assert.ok(bytes({ categories: { eating_out: -5000, groceries: -2000 } }) < 425);
});

// ---------------------------------------------------------------- description, merchant, counterparty (issue 18)

Deno.test("the stored form keeps the description, the merchant's name (else its id) and the counterparty", () => {
  const card = stored({
    description: "PRET A MANGER",
    merchant: { id: "merch_1", name: "Pret A Manger", logo: "https://x/y.png" },
    counterparty: {},
  });
  assert.equal(card.description, "PRET A MANGER");
  assert.equal(card.merchant, "Pret A Manger");
  assert.equal(card.counterparty, null);
  // Not expanded: the id; an object without a usable name: its id; anything else: none.
  assert.equal(stored({ merchant: "merch_2" }).merchant, "merch_2");
  assert.equal(stored({ merchant: { id: "merch_3", name: "" } }).merchant, "merch_3");
  assert.equal(stored({ merchant: { id: "merch_3", name: 7 } }).merchant, "merch_3");
  for (const merchant of [null, undefined, "", 5, ["merch_4"], "merch_\u001b5", {}]) {
    assert.equal(stored({ merchant }).merchant, null, JSON.stringify(merchant));
  }
  assert.equal(stored({ description: undefined }).description, "");
  assert.equal(stored({ description: 42 }).description, "");
  const p2p = stored({
    scheme: "p2p_payment",
    counterparty: { account_id: "acc_joint", user_id: "user_2", name: "Bob", sort_code: "04-00-04", number: "+44" },
  });
  assert.deepEqual(p2p.counterparty, { accountId: "acc_joint", sortCode: "040004", accountNumber: null });
  const fps = stored({
    scheme: "payport_faster_payments",
    counterparty: { name: "Alice", sort_code: "040004", account_number: "12345678" },
  });
  assert.deepEqual(fps.counterparty, { accountId: null, sortCode: "040004", accountNumber: "12345678" });
});

Deno.test("hostile descriptions, merchants and counterparties are made safe or dropped, never failing the row", () => {
  const tx = stored({
    description: "\u001b[31mred\u202e" + "x".repeat(1000),
    merchant: { name: "Caf\u001b\u00e9" + "y".repeat(1000), id: "merch_1" },
    counterparty: { account_id: "acc_\n1", sort_code: "04000", account_number: "1234567x" },
  });
  assert.ok(tx.description.startsWith("\uFFFD[31mred\uFFFD"));
  assert.equal([...tx.description].length, 200);
  assert.ok(tx.merchant?.startsWith("Caf\uFFFD\u00e9"));
  assert.equal(tx.counterparty, null);
  const hostile: unknown[] = [
    "acc_1",
    ["acc_1"],
    { account_id: 7, sort_code: 40004, account_number: 12345678 },
    { account_id: "x".repeat(257), sort_code: "0".repeat(100), account_number: "1".repeat(9) },
  ];
  for (const counterparty of hostile) assert.equal(stored({ counterparty }).counterparty, null);
  // A __proto__ key names nothing and pollutes nothing.
  const json = JSON.stringify(REQUIRED).replace("{", '{"counterparty":{"__proto__":{"account_id":"acc_1"}},');
  const parsed = parse(json);
  assert.ok(parsed.success);
  assert.equal(parsed.data.counterparty, null);
  assert.equal(({} as Record<string, unknown>).account_id, undefined);
});

Deno.test("entries stored before descriptions, merchants and counterparties were kept are still read", () => {
  const tx = stored({ description: "TESCO", merchant: "merch_1", counterparty: { account_id: "acc_2" } });
  const { description: _d, merchant: _m, counterparty: _c, ...older } = tx;
  assert.deepEqual(decodeStoredTransaction(JSON.parse(JSON.stringify(older))), {
    ...older,
    description: "",
    merchant: null,
    counterparty: null,
  });
  assert.deepEqual(decodeStoredTransaction(JSON.parse(JSON.stringify(tx))), tx);
  const corrupt: unknown[] = [
    { ...tx, description: null },
    { ...tx, description: "a\u001bb" },
    { ...tx, merchant: "" },
    { ...tx, merchant: 5 },
    { ...tx, counterparty: "acc_2" },
    { ...tx, counterparty: { accountId: "acc_2", sortCode: "04-00-04", accountNumber: null } },
    { ...tx, counterparty: { accountId: "acc_2", sortCode: null, accountNumber: "123" } },
    { ...tx, counterparty: { accountId: "", sortCode: null, accountNumber: null } },
    { ...tx, counterparty: undefined },
  ];
  for (const value of corrupt) assert.equal(decodeStoredTransaction(value), null, JSON.stringify(value));
  // Nothing beyond the three fields travels on from a stored counterparty.
  const extra = decodeStoredTransaction({ ...tx, counterparty: { ...tx.counterparty, name: "x" } });
  assert.deepEqual(extra?.counterparty, tx.counterparty);
});

// ---------------------------------------------------------------- the bound on categories (issue 15, finding 8)

/** The month's rows of many transactions, one per `[category, amount]`, read as the sync reads them. */
function monthRows(parts: ReadonlyArray<readonly [string, number]>, accountId = ACC, currency = "GBP"): BudgetRow[] {
  return budget(
    parts.map(([category, amount]) => stored({ amount, category, currency }, accountId)),
    JANUARY,
    MONZO_VIEW,
  );
}

/** Spent and received added up per account and currency, in minor units. */
function sums(rows: readonly BudgetRow[]): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const row of rows) {
    const key = `${row.accountId} ${row.currency}`;
    const [spent, received] = out.get(key) ?? [0, 0];
    out.set(key, [spent + row.spentMinor, received + row.receivedMinor]);
  }
  return out;
}

/** Distinct category names per account. */
function namesPerAccount(rows: readonly BudgetRow[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const row of rows) out.set(row.accountId, (out.get(row.accountId) ?? new Set()).add(row.category));
  return out;
}

/** Fails when two rows share an account, category and currency: they would be one series twice. */
function assertOneRowPerSeries(rows: readonly BudgetRow[]): void {
  const keys = rows.map((row) => JSON.stringify([row.accountId, row.category, row.currency]));
  assert.equal(new Set(keys).size, keys.length, "two rows share a label set");
}

Deno.test("20,000 categories are cut to the 100 largest and other, and every figure adds up the same", () => {
  // Category c00000 spends 1p, c00001 2p, … c19999 £200; every tenth one is a credit instead.
  const parts = Array.from({ length: 20_000 }, (_, i): [string, number] => [
    `c${String(i).padStart(5, "0")}`,
    i % 10 === 9 ? i + 1 : -(i + 1),
  ]);
  const rows = monthRows(parts);
  assert.equal(rows.length, 20_000);
  const capped = capCategories(rows, new Set());
  const names = namesPerAccount(capped.rows).get(ACC);
  assert.ok(names);
  assert.equal(names.size, MAX_CATEGORIES + 1);
  // The largest 100 by size (spent or received alike) are c19900…c19999; the rest are in "other".
  for (let i = 19_900; i < 20_000; i++) assert.ok(names.has(`c${i}`), `c${i} is not kept`);
  assert.ok(names.has(OTHER_CATEGORY));
  assert.deepEqual(capped.folded, new Map([[ACC, 19_900]]));
  assert.deepEqual(sums(capped.rows), sums(rows));
  const other = capped.rows.find((row) => row.category === OTHER_CATEGORY);
  // Of 1…19900, the multiples of 10 are received: 10 + 20 + … + 19900 = 10 × (1990 × 1991 / 2).
  const receivedOther = 10 * (1990 * 1991) / 2;
  assert.deepEqual(other, {
    accountId: ACC,
    category: OTHER_CATEGORY,
    currency: "GBP",
    spentMinor: (19_900 * 19_901) / 2 - receivedOther,
    receivedMinor: receivedOther,
  });
  assertOneRowPerSeries(capped.rows);
});

Deno.test("at the bound nothing changes; one category more folds exactly one", () => {
  const parts = Array.from({ length: MAX_CATEGORIES }, (_, i): [string, number] => [`c${i}`, -(i + 1)]);
  const atBound = monthRows(parts);
  assert.deepEqual(capCategories(atBound, new Set()), { rows: atBound, folded: new Map() });
  const over = monthRows([...parts, ["smallest", -1]]);
  const capped = capCategories(over, new Set());
  assert.deepEqual(capped.folded, new Map([[ACC, 1]]));
  // c0 (1p) and "smallest" (1p) tie: the name decides, and "c0" sorts first, so "smallest" goes.
  assert.ok(capped.rows.some((row) => row.category === "c0"));
  assert.ok(!capped.rows.some((row) => row.category === "smallest"));
  assert.deepEqual(capped.rows.find((row) => row.category === OTHER_CATEGORY)?.spentMinor, 1);
});

Deno.test("the kept categories do not depend on the order of the rows; ties go by name", () => {
  const parts = Array.from({ length: 300 }, (_, i): [string, number] => [`n${(i * 7919) % 300}`, -500]);
  const rows = monthRows(parts);
  const forwards = capCategories(rows, new Set());
  const backwards = capCategories([...rows].reverse(), new Set());
  assert.deepEqual(backwards, forwards);
  // All the same size: the first 100 names in code-unit order keep their name.
  const expected = parts.map(([name]) => name).sort().slice(0, MAX_CATEGORIES);
  assert.deepEqual(
    forwards.rows.map((row) => row.category).filter((name) => name !== OTHER_CATEGORY),
    expected,
  );
});

Deno.test("size is the absolute value: a category refunded more than spent ranks by its size", () => {
  // 100 categories of 40p spent; "returns" is a £50 net refund (spending -5000), "tiny" 1p.
  const parts: Array<[string, number]> = Array.from({ length: MAX_CATEGORIES }, (_, i) => [`c${i}`, -40]);
  const rows = monthRows(parts).concat(
    budget([stored({ amount: 5000, category: "returns", include_in_spending: true })], JANUARY, MONZO_VIEW),
    monthRows([["tiny", -1]]),
  );
  const capped = capCategories(rows, new Set());
  assert.ok(capped.rows.some((row) => row.category === "returns" && row.spentMinor === -5000));
  assert.deepEqual(capped.folded, new Map([[ACC, 2]]));
  assert.deepEqual(sums(capped.rows), sums(rows));
});

Deno.test('a category Monzo calls "other" is added to the overflow, never a second series', () => {
  // "other" is the largest of all, yet it is not one of the 100: it holds the overflow.
  const parts: Array<[string, number]> = [
    ...Array.from({ length: 150 }, (_, i): [string, number] => [`c${i + 1}`, -(i + 1)]),
    [OTHER_CATEGORY, -1_000_000],
  ];
  const rows = monthRows(parts);
  const capped = capCategories(rows, new Set());
  assertOneRowPerSeries(capped.rows);
  const names = namesPerAccount(capped.rows).get(ACC);
  assert.equal(names?.size, MAX_CATEGORIES + 1);
  // c51…c150 are kept; c1…c50 (1 + … + 50 = 1275) join Monzo's own 1,000,000.
  assert.equal(capped.rows.find((row) => row.category === OTHER_CATEGORY)?.spentMinor, 1_000_000 + 1275);
  assert.deepEqual(capped.folded, new Map([[ACC, 50]]));
  assert.deepEqual(sums(capped.rows), sums(rows));
  // Below the bound Monzo's "other" passes through as it is, like any category.
  const few = monthRows([["c1", -1], [OTHER_CATEGORY, -7]]);
  assert.deepEqual(capCategories(few, new Set()), { rows: few, folded: new Map() });
});

Deno.test("a category with a budget in the config keeps its name however small; budgets count in the 100", () => {
  const parts = Array.from({ length: 200 }, (_, i): [string, number] => [`c${i + 1}`, -(i + 1)]);
  const rows = monthRows(parts);
  const capped = capCategories(rows, new Set(["c1", "c2", "not_spent_in"]));
  const names = namesPerAccount(capped.rows).get(ACC);
  assert.ok(names);
  assert.ok(names.has("c1") && names.has("c2"));
  // c1, c2 and the 98 largest (c103…c200) keep their name: 100 in all, and c102 goes to "other".
  assert.equal(names.size, MAX_CATEGORIES + 1);
  assert.ok(names.has("c103") && !names.has("c102"));
  assert.deepEqual(sums(capped.rows), sums(rows));
  // A config that budgets more than 100 of them keeps every budgeted one.
  const many = new Set(parts.slice(0, 150).map(([name]) => name));
  const all = capCategories(rows, many);
  const kept = namesPerAccount(all.rows).get(ACC);
  for (const name of many) assert.ok(kept?.has(name), name);
  assert.equal(kept?.size, 151);
  assert.deepEqual(sums(all.rows), sums(rows));
});

Deno.test('the bound is per account, and "other" is per currency: no currencies are added together', () => {
  const gbp = Array.from({ length: 150 }, (_, i): [string, number] => [`g${i}`, -(i + 1)]);
  const eur = Array.from({ length: 150 }, (_, i): [string, number] => [`e${i}`, -(i + 1)]);
  const rows = [
    ...monthRows(gbp),
    ...monthRows(eur, ACC, "EUR"),
    ...monthRows(gbp.slice(0, 20), "acc_00009Small"),
  ];
  const capped = capCategories(rows, new Set());
  assertOneRowPerSeries(capped.rows);
  assert.deepEqual(sums(capped.rows), sums(rows));
  assert.equal(namesPerAccount(capped.rows).get(ACC)?.size, MAX_CATEGORIES + 1);
  assert.equal(namesPerAccount(capped.rows).get("acc_00009Small")?.size, 20);
  assert.deepEqual(capped.folded, new Map([[ACC, 200]]));
  const others = capped.rows.filter((row) => row.category === OTHER_CATEGORY).map((row) => row.currency);
  assert.deepEqual(others, ["EUR", "GBP"]);
});
