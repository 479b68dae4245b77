// firstRule: which [[rules]] table decides a transaction. Rules are built through the config's own
// schema, so patterns are compiled exactly as a loaded config compiles them.

import assert from "node:assert/strict";
import { type Rule, rulesSchema } from "../lib/config/rules_config.ts";
import { firstRule, type RuleView } from "../lib/spending/rule_match.ts";

/** The rules of `tables`, as `[[rules]]` tables read from TOML. */
function rules(...tables: Record<string, unknown>[]): readonly Rule[] {
  const parsed = rulesSchema.safeParse(tables);
  if (!parsed.success) throw new Error(`a test rule is refused: ${parsed.error.issues[0].message}`);
  return parsed.data;
}

/** One rule with `conditions` and an action. */
function rule(conditions: Record<string, unknown>): readonly Rule[] {
  return rules({ ...conditions, set_category: "matched" });
}

const TX: RuleView = {
  id: "tx_0000Lunch",
  accountId: "acc_0000Alice",
  category: "eating_out",
  amount: -1250,
  description: "PRET A MANGER LONDON",
  merchant: "Pret A Manger",
};

function view(changes: Partial<RuleView> = {}): RuleView {
  return { ...TX, ...changes };
}

/** The label of the rule that decides `tx`, or null. */
function decides(list: readonly Rule[], tx: RuleView): string | null {
  return firstRule(list, tx)?.label ?? null;
}

Deno.test("description alone: matches anywhere in the text, case-insensitively", () => {
  assert.equal(decides(rule({ description: "manger" }), view()), "1");
  assert.equal(decides(rule({ description: "Pret A" }), view({ description: "pret a manger" })), "1");
  assert.equal(decides(rule({ description: "^pret" }), view({ description: "MY PRET" })), null);
  assert.equal(decides(rule({ description: "costa" }), view()), null);
});

Deno.test("merchant alone: matches the name case-insensitively; a transaction without a merchant never matches", () => {
  assert.equal(decides(rule({ merchant: "^pret a" }), view()), "1");
  assert.equal(decides(rule({ merchant: "PRET" }), view({ merchant: "pret a manger" })), "1");
  assert.equal(decides(rule({ merchant: "costa" }), view()), null);
  // Not even a pattern that matches every text, the empty text included.
  for (const pattern of [".*", "^$", "null"]) {
    assert.equal(decides(rule({ merchant: pattern }), view({ merchant: null })), null, pattern);
  }
  // The description is not the merchant.
  assert.equal(decides(rule({ merchant: "LONDON" }), view()), null);
});

Deno.test("merchant given by its id when Monzo gives no name", () => {
  const byId = view({ merchant: "merch_0000Pret" });
  assert.equal(decides(rule({ merchant: "^merch_0000pret$" }), byId), "1");
  assert.equal(decides(rule({ merchant: "merch_0000Costa" }), byId), null);
});

Deno.test("category alone: exact, not a part of it and not another case", () => {
  assert.equal(decides(rule({ category: "eating_out" }), view()), "1");
  assert.equal(decides(rule({ category: "eating" }), view()), null);
  assert.equal(decides(rule({ category: "Eating_Out" }), view()), null);
  assert.equal(decides(rule({ category: "eating_out" }), view({ category: "eating_out_2" })), null);
});

Deno.test("account_id alone and id alone: exact", () => {
  assert.equal(decides(rule({ account_id: "acc_0000Alice" }), view()), "1");
  assert.equal(decides(rule({ account_id: "acc_0000Bob" }), view()), null);
  assert.equal(decides(rule({ account_id: "acc_0000Alic" }), view()), null);
  assert.equal(decides(rule({ id: "tx_0000Lunch" }), view()), "1");
  assert.equal(decides(rule({ id: "tx_0000Lunch" }), view({ id: "tx_0000Lunch2" })), null);
});

Deno.test("amount_above alone: the size in major units, strictly above, whatever the sign", () => {
  const above12 = rule({ amount_above: 12 });
  assert.equal(decides(above12, view({ amount: -1250 })), "1", "a debit of 12.50");
  assert.equal(decides(above12, view({ amount: 1250 })), "1", "a credit of 12.50");
  assert.equal(decides(above12, view({ amount: -1201 })), "1");
  assert.equal(decides(above12, view({ amount: -1200 })), null, "12.00 is not above 12");
  assert.equal(decides(above12, view({ amount: 1200 })), null);
  assert.equal(decides(above12, view({ amount: -900 })), null);
  assert.equal(decides(rule({ amount_above: 12.49 }), view({ amount: -1250 })), "1");
  assert.equal(decides(rule({ amount_above: 12.5 }), view({ amount: -1250 })), null);
});

Deno.test("amount_below alone: the size in major units, strictly below, whatever the sign", () => {
  const below12 = rule({ amount_below: 12 });
  assert.equal(decides(below12, view({ amount: -1199 })), "1");
  assert.equal(decides(below12, view({ amount: 1199 })), "1");
  assert.equal(decides(below12, view({ amount: -1200 })), null, "12.00 is not below 12");
  assert.equal(decides(below12, view({ amount: -1250 })), null);
  assert.equal(decides(below12, view({ amount: -100_000 })), null, "a large debit is not below 12");
});

Deno.test("conditions combined: every one given must match", () => {
  const list = rule({
    description: "pret",
    merchant: "manger",
    category: "eating_out",
    account_id: "acc_0000Alice",
    amount_above: 10,
    amount_below: 20,
    id: "tx_0000Lunch",
  });
  assert.equal(decides(list, view()), "1");
  const misses: Array<[string, Partial<RuleView>]> = [
    ["description", { description: "COSTA" }],
    ["merchant", { merchant: "Costa" }],
    ["merchant null", { merchant: null }],
    ["category", { category: "groceries" }],
    ["account", { accountId: "acc_0000Bob" }],
    ["too small", { amount: -1000 }],
    ["too large", { amount: -2000 }],
    ["id", { id: "tx_0000Other" }],
  ];
  for (const [what, changes] of misses) assert.equal(decides(list, view(changes)), null, what);
  // A range: above 10 and below 20.
  const range = rule({ amount_above: 10, amount_below: 20 });
  assert.equal(decides(range, view({ amount: 1500 })), "1");
  assert.equal(decides(range, view({ amount: -1001 })), "1");
  assert.equal(decides(range, view({ amount: -1999 })), "1");
  assert.equal(decides(range, view({ amount: -2500 })), null);
  assert.equal(decides(range, view({ amount: 500 })), null);
});

Deno.test("order: the first rule that matches decides, later ones are not consulted", () => {
  const list = rules(
    { name: "costa", description: "costa", exclude: true },
    { name: "pret lunch", description: "pret", share: 0.5 },
    { name: "eating out", category: "eating_out", set_category: "food" },
  );
  assert.equal(decides(list, view()), "pret lunch");
  assert.equal(firstRule(list, view())?.share, 0.5);
  assert.equal(decides(list, view({ description: "COSTA COFFEE" })), "costa");
  assert.equal(decides(list, view({ description: "WAGAMAMA" })), "eating out");
  assert.equal(decides(list, view({ description: "WAGAMAMA", category: "groceries" })), null);
  // The same rules in another order give another decision.
  const reversed = rules(
    { name: "eating out", category: "eating_out", set_category: "food" },
    { name: "pret lunch", description: "pret", share: 0.5 },
  );
  assert.equal(decides(reversed, view()), "eating out");
  assert.equal(firstRule([], view()), null);
});

Deno.test("a rule decides transaction after transaction: a match leaves nothing behind for the next", () => {
  const list = rule({ description: "pret" });
  for (let i = 0; i < 3; i++) {
    assert.equal(decides(list, view({ id: `tx_${i}` })), "1", `transaction ${i}`);
  }
});
