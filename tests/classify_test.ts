// Issue 18, part C: what every transaction is to the figures (lib/spending/classify.ts), and the
// figures of lib/spending/rules.ts under it. Every transaction goes through transactionSchema and
// toStored as the sync sends it; every expected figure is worked out by hand beside it.
import assert from "node:assert/strict";
import { budgetMonth } from "../lib/spending/budget_month.ts";
import { capCategories, MAX_CATEGORIES, OTHER_CATEGORY } from "../lib/spending/category_cap.ts";
import { classify, type Counting, MONZO_VIEW, OwnAccounts, shareOf } from "../lib/spending/classify.ts";
import { budget, cashFlow } from "../lib/spending/rules.ts";
import { type StoredTransaction, toStored, transactionSchema } from "../lib/monzo/transaction.ts";
import { ruleWith as rule } from "./helpers/stored.ts";

const CURRENT = "acc_00009AliceCurrent";
const JOINT = "acc_00009Joint";
const BOB = "acc_00009BobCurrent";
const CLOSED = "acc_00009AliceOldCurrent";
const JANUARY = budgetMonth(Date.UTC(2026, 0, 20, 12), 1);

const OWN = new OwnAccounts([
  { id: CURRENT, sortCode: "040004", accountNumber: "11111111" },
  { id: JOINT, sortCode: "040004", accountNumber: "22222222" },
  { id: BOB, sortCode: "040004", accountNumber: "33333333" },
  { id: CLOSED, sortCode: "040004", accountNumber: "44444444" },
]);

let nextId = 0;

/** A settled £1 grocery debit on `accountId` in January, read as the sync reads it, unless told otherwise. */
function tx(fields: Record<string, unknown> = {}, accountId = CURRENT): StoredTransaction {
  return toStored(
    transactionSchema.parse({
      id: `tx_${String(++nextId).padStart(6, "0")}`,
      created: "2026-01-10T09:30:00.000Z",
      settled: "2026-01-11T03:00:00.000Z",
      amount: -100,
      currency: "GBP",
      category: "groceries",
      ...fields,
    }),
    accountId,
  );
}

const counting = (fields: Partial<Counting>): Counting => ({ ...MONZO_VIEW, ...fields });

Deno.test("a transfer to or from another own account is internal, by account id or by sort code and number", () => {
  const household = counting({ own: OWN });
  // Monzo to Monzo: the counterparty's account_id.
  assert.equal(classify(tx({ amount: -50_000, counterparty: { account_id: JOINT } }), household).kind, "internal");
  assert.equal(classify(tx({ amount: 50_000, counterparty: { account_id: BOB } }), household).kind, "internal");
  // A bank transfer: sort code and account number, however the sort code is written.
  const fps = { sort_code: "04-00-04", account_number: "33333333", name: "Bob" };
  assert.equal(classify(tx({ amount: -2_000, counterparty: fps }, JOINT), household).kind, "internal");
  // A closed account's old transfers still happened between own accounts.
  assert.equal(classify(tx({ counterparty: { account_id: CLOSED } }), household).kind, "internal");
  // The sort code alone, or an account of someone else, is not.
  const others = [
    { sort_code: "040004" },
    { account_number: "33333333" },
    { sort_code: "040004", account_number: "99999999" },
    { account_id: "acc_00009Stranger" },
    // Its own account named as the counterparty (a reversal, say) is not a transfer between two accounts.
    { account_id: CURRENT },
    { sort_code: "040004", account_number: "11111111" },
  ];
  for (const counterparty of others) {
    assert.equal(classify(tx({ counterparty }), household).kind, "counted", JSON.stringify(counterparty));
  }
  // Unknown accounts make nothing internal: Monzo's own view.
  assert.equal(classify(tx({ counterparty: { account_id: JOINT } }), MONZO_VIEW).kind, "counted");
});

Deno.test("declined ones and pot moves stay left out before anything else, internal ones before the rules", () => {
  const excludeAll = counting({ own: OWN, rules: [rule(1, { amountAbove: 0, exclude: true })] });
  assert.equal(
    classify(tx({ decline_reason: "CARD_BLOCKED", counterparty: { account_id: JOINT } }), excludeAll).kind,
    "left_out",
  );
  assert.equal(classify(tx({ metadata: { pot_id: "pot_1" } }), excludeAll).kind, "left_out");
  const internal = classify(tx({ counterparty: { account_id: JOINT } }), excludeAll);
  assert.equal(internal.kind, "internal");
  assert.equal(internal.rule, null);
  assert.equal(classify(tx(), excludeAll).kind, "excluded");
});

Deno.test("the first rule that matches decides; each action does what it says", () => {
  const rules = [
    rule(1, { description: /netflix/i, setCategory: "subscriptions" }),
    rule(2, { merchant: /tesco/i, share: 0.5 }),
    rule(3, { category: "groceries", exclude: true }),
  ];
  const view = counting({ rules, accountShares: new Map([[JOINT, 0.5]]) });
  const netflix = classify(tx({ description: "NETFLIX.COM", category: "entertainment" }), view);
  assert.deepEqual([netflix.kind, netflix.category, netflix.share, netflix.rule?.index], [
    "counted",
    "subscriptions",
    1,
    1,
  ]);
  // Tesco is groceries too, but rule 2 comes first: counted at half, not excluded.
  const tesco = classify(tx({ merchant: { id: "merch_1", name: "Tesco Metro" } }), view);
  assert.deepEqual([tesco.kind, tesco.category, tesco.share, tesco.rule?.index], ["counted", null, 0.5, 2]);
  // On the joint account, the rule's share and the account's multiply: 0.5 × 0.5.
  assert.equal(classify(tx({ merchant: { id: "merch_1", name: "Tesco" } }, JOINT), view).share, 0.25);
  const other = classify(tx({ merchant: "merch_2" }), view);
  assert.deepEqual([other.kind, other.rule?.index], ["excluded", 3]);
  // No rule: Monzo's category, the account's share.
  const plain = classify(tx({ category: "bills" }, JOINT), view);
  assert.deepEqual([plain.kind, plain.category, plain.share, plain.rule], ["counted", null, 0.5, null]);
});

Deno.test("internal and excluded transactions count in no figure; rules re-categorise and share every figure", () => {
  const rules = [
    rule(1, { description: /rent/i, share: 0.5 }),
    rule(2, { description: /^amazon/i, setCategory: "shopping" }),
    rule(3, { description: /cashback/i, exclude: true }),
  ];
  const view = counting({ own: OWN, rules, accountShares: new Map([[JOINT, 0.5]]) });
  const transactions = [
    tx({ amount: -50_000, category: "transfers", counterparty: { account_id: JOINT } }),
    tx({ amount: 50_000, category: "transfers", counterparty: { account_id: CURRENT } }, JOINT),
    tx({ amount: -120_001, category: "bills", description: "RENT JAN" }),
    tx({
      amount: -2_999,
      category: "general",
      description: "AMAZON.CO.UK",
      categories: { general: -999, gifts: -2_000 },
    }),
    tx({ amount: 1_000, category: "income", description: "CASHBACK" }),
    tx({ amount: -333, category: "groceries" }, JOINT),
    tx({ amount: 250_000, category: "income", description: "SALARY" }),
  ];
  // Current: spent 120,001 × 0.5 = 60,000.5 → 60,001 (halves away from zero), plus 2,999; received
  // 250,000 (cashback excluded, the transfer internal). Joint: 333 × 0.5 = 166.5 → 167; nothing received.
  assert.deepEqual(cashFlow(transactions, view), [
    { accountId: CURRENT, currency: "GBP", spentMinor: 60_001 + 2_999, receivedMinor: 250_000 },
    { accountId: JOINT, currency: "GBP", spentMinor: 167, receivedMinor: 0 },
  ]);
  const rows = budget(transactions, JANUARY, view);
  const figures = rows.map((row) => [row.accountId, row.category, row.spentMinor, row.receivedMinor]);
  // The Amazon split is dropped: set_category takes the whole amount. No "transfers" row anywhere.
  assert.deepEqual(figures, [
    [CURRENT, "bills", 60_001, 0],
    [CURRENT, "income", 0, 250_000],
    [CURRENT, "shopping", 2_999, 0],
    [JOINT, "groceries", 167, 0],
  ]);
  // Monzo's view counts everything: the transfers too.
  const monzo = cashFlow(transactions, MONZO_VIEW);
  assert.deepEqual(monzo.map((flow) => [flow.spentMinor, flow.receivedMinor]), [
    [50_000 + 120_001 + 2_999, 1_000 + 250_000],
    [333, 50_000],
  ]);
});

Deno.test("a share applies to each split part, rounded on its own, halves away from zero", () => {
  assert.equal(shareOf(-3, 0.5), -2);
  assert.equal(shareOf(3, 0.5), 2);
  assert.equal(shareOf(-1, 0.25), 0);
  assert.equal(shareOf(-7, 1), -7);
  const view = counting({ accountShares: new Map([[JOINT, 0.5]]) });
  const split = tx({ amount: -1_001, categories: { groceries: -501, household: -500 } }, JOINT);
  // 501 × 0.5 = 250.5 → 251; 500 × 0.5 = 250.
  assert.deepEqual(budget([split], JANUARY, view).map((row) => [row.category, row.spentMinor]), [
    ["groceries", 251],
    ["household", 250],
  ]);
  // A refund rounds like its purchase, so they cancel.
  const refund = tx({ amount: 1_001, include_in_spending: true }, JOINT);
  const purchase = tx({ amount: -1_001 }, JOINT);
  assert.equal(budget([purchase, refund], JANUARY, view)[0].spentMinor, 0);
});

Deno.test("the bound on categories applies after the rules: re-categorising cannot grow the series past it", () => {
  // 150 of Monzo's categories that one rule gathers into one: nothing is folded.
  const many = Array.from({ length: 150 }, (_, i) => tx({ category: `custom_${i}`, description: "SHOP" }));
  const gather = counting({ rules: [rule(1, { description: /shop/i, setCategory: "shops" })] });
  const gathered = capCategories(budget(many, JANUARY, gather), new Set());
  assert.deepEqual(gathered.rows.map((row) => [row.category, row.spentMinor]), [["shops", 150 * 100]]);
  assert.equal(gathered.folded.size, 0);
  // 150 transactions in one Monzo category that the rules spread over 150: folded down to the bound.
  const one = Array.from({ length: 150 }, (_, i) => tx({ category: "general", description: `SHOP ${i}.` }));
  const spread = counting({
    rules: Array.from(
      { length: 150 },
      (_, i) => rule(i + 1, { description: new RegExp(`SHOP ${i}\\.`), setCategory: `c_${i}` }),
    ),
  });
  const capped = capCategories(budget(one, JANUARY, spread), new Set());
  assert.equal(capped.rows.length, MAX_CATEGORIES + 1);
  assert.equal(capped.rows.filter((row) => row.category === OTHER_CATEGORY).length, 1);
  assert.equal(capped.rows.reduce((sum, row) => sum + row.spentMinor, 0), 150 * 100);
});
