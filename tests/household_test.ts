// Issue 18, section 1: money moved between the household's own accounts is neither spending nor
// income. Against the fake household over real HTTP with the real exporter: Alice pays into the joint
// account Monzo to Monzo, Alice pays Bob, the joint account pays Bob by Faster Payments (sort code and
// account number only). The household's sums are compared with those of a second run whose fake Monzo
// never held any transfer between the household's accounts (removed from its data by their ground
// truth, the fake's own counterparties), so nothing here leans on the code under test to say which
// rows are internal.

import assert from "node:assert/strict";
import { type FakeData, type FakeTransaction, householdData, TEST_HISTORY_DAYS } from "../lib/fake_monzo/mod.ts";
import { bankCounterparty, monzoCounterparty, ukBankDetails } from "../lib/fake_monzo/transaction.ts";
import { HOUSEHOLD } from "../lib/fake_monzo/history.ts";
import { budgetMonth } from "../lib/spending/budget_month.ts";
import {
  ALICE,
  ALICE_CLOSED,
  ALICE_CURRENT,
  BOB,
  BOB_CURRENT,
  type Harness,
  JOINT,
  logIn,
  metrics,
  MINUTE,
  page,
  poll,
  sample,
  T0,
  withHarness,
} from "./helpers/harness.ts";

const HOUSEHOLD_ACCOUNTS = [ALICE_CURRENT, JOINT, BOB_CURRENT];

/** True when the fake's row names another of the household's accounts as its other side: the ground truth. */
function betweenOwn(accountId: string, tx: FakeTransaction, data: FakeData): boolean {
  const party = tx.counterparty;
  return data.accounts.some((account) => {
    if (account.id === accountId) return false;
    const details = ukBankDetails(account.id);
    return party.account_id === account.id ||
      (party.sort_code === details.sort_code && party.account_number === details.account_number);
  });
}

/** The household with every transfer between its own accounts taken out. */
function withoutTransfers(now: number): FakeData {
  const data = householdData(now, { historyDays: TEST_HISTORY_DAYS });
  for (const account of data.accounts) {
    account.transactions = account.transactions.filter((tx) => !betweenOwn(account.id, tx, data));
  }
  return data;
}

/** The sum of every sample of `family` (whose name it is exactly) over the listed accounts, in minor units. */
function sumOf(exposition: string, family: string, accounts: readonly string[] = HOUSEHOLD_ACCOUNTS): number {
  let sum = 0;
  for (const line of exposition.split("\n")) {
    const match = new RegExp(`^${family}\\{account_id="([^"]+)"[^}]*\\} (\\S+)$`).exec(line);
    if (match && accounts.includes(match[1])) sum += Math.round(Number(match[2]) * 100);
  }
  return sum;
}

/** Alice's and Bob's logins, then the first poll: the household's history imported. */
async function household(h: Harness): Promise<void> {
  await logIn(h, ALICE);
  await logIn(h, BOB);
  await poll(h);
}

/** A settled card payment on Alice's account now: something the counters count in both runs. */
function lunch(h: Harness): void {
  h.fake.addTransaction(ALICE_CURRENT, { amount: -1_234, description: "PRET A MANGER", category: "eating_out" });
}

/**
 * Money moved now, both sides, as Monzo shows them: `from` pays `to` `amount` pence, Monzo to Monzo
 * (`p2p_payment`) or by Faster Payments (sort code and account number only). The fake's balances
 * move as Monzo's would.
 */
function move(h: Harness, from: keyof typeof HOUSEHOLD, to: keyof typeof HOUSEHOLD, amount: number, monzo: boolean) {
  const scheme = monzo ? "p2p_payment" : "payport_faster_payments";
  const party = monzo ? monzoCounterparty : bankCounterparty;
  h.fake.addTransaction(HOUSEHOLD[from].accountId, {
    amount: -amount,
    description: HOUSEHOLD[to].name,
    category: "transfers",
    include_in_spending: false,
    scheme,
    counterparty: party(HOUSEHOLD[to]),
  });
  h.fake.addTransaction(HOUSEHOLD[to].accountId, {
    amount,
    description: HOUSEHOLD[from].name,
    category: "transfers",
    include_in_spending: false,
    scheme,
    counterparty: party(HOUSEHOLD[from]),
  });
  for (const [id, change] of [[HOUSEHOLD[from].accountId, -amount], [HOUSEHOLD[to].accountId, amount]] as const) {
    const account = h.fake.data.accounts.find((a) => a.id === id);
    assert.ok(account);
    account.balance += change;
  }
}

/** The household's figures after the transfers (or none) and a lunch, read by the second poll. */
interface Figures {
  readonly spentMonth: number;
  readonly receivedMonth: number;
  readonly spentTotal: number;
  readonly receivedTotal: number;
  readonly exposition: string;
}

async function figures(h: Harness): Promise<Figures> {
  await poll(h, 2 * MINUTE);
  const exposition = await metrics(h);
  return {
    spentMonth: sumOf(exposition, "monzo_spent_this_month"),
    receivedMonth: sumOf(exposition, "monzo_received_this_month"),
    spentTotal: sumOf(exposition, "monzo_spent_total"),
    receivedTotal: sumOf(exposition, "monzo_received_total"),
    exposition,
  };
}

Deno.test("transfers member to joint and between members leave the household's spending and income unchanged", async () => {
  let without: Figures | undefined;
  await withHarness({ fake: { data: withoutTransfers(T0) } }, async (h) => {
    await household(h);
    h.clock.advance(MINUTE);
    lunch(h);
    without = await figures(h);
  });
  assert.ok(without);
  await withHarness({}, async (h) => {
    await household(h);
    const balances = async () => {
      const text = await metrics(h);
      return HOUSEHOLD_ACCOUNTS.map((id) => sample(text, `monzo_balance{account_id="${id}",currency="GBP"}`) ?? NaN);
    };
    const before = await balances();
    h.clock.advance(MINUTE);
    lunch(h);
    move(h, "alice", "joint", 30_000, true);
    move(h, "alice", "bob", 2_500, true);
    move(h, "joint", "bob", 4_500, false);
    const withTransfers = await figures(h);
    // Every figure of spending and income, the counters and the month's gauges, as if no transfer happened.
    assert.deepEqual(
      [withTransfers.spentMonth, withTransfers.receivedMonth, withTransfers.spentTotal, withTransfers.receivedTotal],
      [without!.spentMonth, without!.receivedMonth, without!.spentTotal, without!.receivedTotal],
    );
    // The lunch counts, so the counters compared are not two zeros.
    assert.equal(withTransfers.spentTotal, 1_234);
    // They still move the balances: Alice down 325, the joint account up 255, Bob up 70.
    const after = await balances();
    assert.deepEqual(after.map((value, i) => Math.round((value - before[i]) * 100)), [-32_500, 25_500, 7_000]);
    // And monzo_internal_transfers_this_month shows the month's transfers, worked out from the fake's rows.
    const month = budgetMonth(h.clock.now(), h.config.monthStartDay);
    for (const id of HOUSEHOLD_ACCOUNTS) {
      const account = h.fake.data.accounts.find((a) => a.id === id);
      assert.ok(account);
      const expected = account.transactions
        .filter((tx) => {
          const created = Date.parse(tx.created);
          return created >= month.start && created < month.end && !tx.decline_reason &&
            betweenOwn(id, tx, h.fake.data);
        })
        .reduce((sum, tx) => sum + tx.amount, 0);
      const shown = sample(
        withTransfers.exposition,
        `monzo_internal_transfers_this_month{account_id="${id}",currency="GBP"}`,
      );
      assert.equal(Math.round((shown ?? NaN) * 100), expected, id);
    }
    // The transfers added here are among them, so the gauge is not just the history's.
    assert.ok(
      (sample(
        withTransfers.exposition,
        `monzo_internal_transfers_this_month{account_id="${BOB_CURRENT}",currency="GBP"}`,
      ) ?? 0) >= 70,
    );
  });
});

Deno.test("a transfer stored before the second member's accounts were known stops counting once they are", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const aliceTotal = `monzo_spent_total{account_id="${ALICE_CURRENT}",currency="GBP"}`;
    const aliceStart = `monzo_counting_start_timestamp_seconds{account_id="${ALICE_CURRENT}"}`;
    const transfers = `monzo_spent_this_month{account_id="${ALICE_CURRENT}",category="transfers",currency="GBP"}`;
    const internal = `monzo_internal_transfers_this_month{account_id="${ALICE_CURRENT}",currency="GBP"}`;
    const first = await metrics(h);
    h.clock.advance(MINUTE);
    // Alice pays Bob, whose account Alice's login cannot see: to the exporter, money out like any other.
    h.fake.addTransaction(ALICE_CURRENT, {
      amount: -2_500,
      description: "Bob Example",
      category: "transfers",
      include_in_spending: true,
      scheme: "p2p_payment",
      counterparty: monzoCounterparty(HOUSEHOLD.bob),
    });
    await poll(h, MINUTE);
    const counted = await metrics(h);
    assert.equal(sample(counted, aliceTotal), 25);
    assert.equal(
      Math.round(((sample(counted, transfers) ?? 0) - (sample(first, transfers) ?? 0)) * 100),
      2_500,
      "before Bob logs in, the payment to him is spending",
    );
    const startBefore = sample(counted, aliceStart);
    // Bob logs in: his account is one of the household's, and the payment stored before turns internal.
    await logIn(h, BOB);
    await poll(h, MINUTE);
    const recognised = await metrics(h);
    assert.equal(
      Math.round(((sample(counted, transfers) ?? 0) - (sample(recognised, transfers) ?? 0)) * 100),
      2_500,
      "once Bob's account is known, the payment to him is no spending",
    );
    assert.equal(
      Math.round(((sample(recognised, internal) ?? 0) - (sample(counted, internal) ?? 0)) * 100),
      -2_500,
    );
    // The counter had counted it: it starts again from 0, at a new counting start, rather than drop to a lower value.
    assert.equal(sample(recognised, aliceTotal), 0);
    assert.ok((sample(recognised, aliceStart) ?? 0) > (startBefore ?? Infinity));
    assert.ok(h.lines.some((line) => line.includes(ALICE_CURRENT) && line.includes("start again from 0")));
  });
});

Deno.test("monzo_rules_matched counts the stored transactions each config rule decides, first match, internal ones not", async () => {
  const config = {
    rules: [
      { name: "coffee", description: "pret", exclude: true },
      { name: "shops", merchant: "tesco|pret", share: 0.5 },
      { name: "moves", description: "alice & bob|alice example", set_category: "household" },
      { name: "never", id: "tx_00009None", exclude: true },
    ],
  };
  await withHarness({ config }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    // Worked out from the fake's rows of the accounts Alice's login sees: left out are declined ones,
    // pot moves, and transfers to another account she can see (her payments to Bob are not internal yet).
    const seen = h.fake.data.accounts.filter((a) => a.owners.includes(ALICE));
    const ownData: FakeData = { ...h.fake.data, accounts: seen };
    const decided = (test: (tx: FakeTransaction) => boolean) =>
      seen.flatMap((account) =>
        account.transactions.filter((tx) =>
          !tx.decline_reason && tx.scheme !== "uk_retail_pot" && !("pot_id" in tx.metadata) &&
          !betweenOwn(account.id, tx, ownData) && test(tx)
        )
      ).length;
    const merchantName = (tx: FakeTransaction) =>
      typeof tx.merchant === "object" && tx.merchant !== null ? tx.merchant.name : tx.merchant ?? "";
    const coffee = decided((tx) => /pret/i.test(tx.description));
    const shops = decided((tx) => !/pret/i.test(tx.description) && /tesco|pret/i.test(merchantName(tx)));
    const moves = decided((tx) =>
      !/pret/i.test(tx.description) && !/tesco|pret/i.test(merchantName(tx)) &&
      /alice & bob|alice example/i.test(tx.description)
    );
    assert.ok(coffee > 0 && shops > 0, "the household's history has coffees and Tesco shops to decide");
    assert.equal(sample(text, `monzo_rules_matched{rule="coffee"}`), coffee);
    assert.equal(sample(text, `monzo_rules_matched{rule="shops"}`), shops);
    // Alice's transfers into the joint account match the pattern but are internal: counted for no rule.
    assert.equal(moves, 0);
    assert.equal(sample(text, `monzo_rules_matched{rule="moves"}`), 0);
    assert.equal(sample(text, `monzo_rules_matched{rule="never"}`), 0, "a rule that matches nothing is visible");
  });
});

Deno.test("money from a closed account of the household is internal too: old transfers still happened", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const received = `monzo_received_this_month{account_id="${ALICE_CURRENT}",category="transfers",currency="GBP"}`;
    const internal = `monzo_internal_transfers_this_month{account_id="${ALICE_CURRENT}",currency="GBP"}`;
    const before = await metrics(h);
    // What was left in her old, closed account, moved by sort code and account number (as /accounts lists them).
    h.fake.addTransaction(ALICE_CURRENT, {
      amount: 7_700,
      description: "Alice Example",
      category: "transfers",
      include_in_spending: false,
      scheme: "payport_faster_payments",
      counterparty: { name: "Alice Example", ...ukBankDetails(ALICE_CLOSED) },
    });
    // And a payment from someone outside the household, which counts.
    h.fake.addTransaction(ALICE_CURRENT, {
      amount: 1_500,
      description: "Carol",
      category: "transfers",
      include_in_spending: false,
      scheme: "payport_faster_payments",
      counterparty: { name: "Carol", sort_code: "200000", account_number: "55779911" },
    });
    await poll(h, MINUTE);
    const after = await metrics(h);
    const change = (series: string) => Math.round(((sample(after, series) ?? 0) - (sample(before, series) ?? 0)) * 100);
    assert.equal(change(internal), 7_700);
    assert.equal(change(received), 1_500);
  });
});

Deno.test("each rule action and an account's share, through the real poll: excluded counts nowhere, re-categorised moves, shares multiply and round", async () => {
  const config = {
    rules: [
      { name: "drop", description: "^ZZ DROP", exclude: true },
      { name: "move", description: "^ZZ MOVE", set_category: "zz_to" },
      { name: "half", description: "^ZZ HALF", share: 0.5 },
    ],
    accounts: { [JOINT]: { share: 0.5 } },
  };
  await withHarness({ config }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const before = await metrics(h);
    // Settled card debits now, in categories of their own so that each figure is theirs alone.
    const pay = (accountId: string, description: string, category: string, amount: number) =>
      h.fake.addTransaction(accountId, { amount, description, category });
    pay(ALICE_CURRENT, "ZZ DROP CAFE", "zz_drop", -1_000);
    pay(ALICE_CURRENT, "ZZ MOVE SHOP", "zz_from", -2_000);
    pay(ALICE_CURRENT, "ZZ HALF DINNER", "zz_half", -3_001);
    pay(JOINT, "ZZ SHARED BILL", "zz_joint", -4_000);
    pay(JOINT, "ZZ HALF RENT", "zz_joint_half", -1_000);
    await poll(h, 2 * MINUTE);
    const after = await metrics(h);
    const month = (accountId: string, category: string) =>
      sample(after, `monzo_spent_this_month{account_id="${accountId}",category="${category}",currency="GBP"}`);
    assert.equal(month(ALICE_CURRENT, "zz_drop"), undefined, "an excluded transaction shows in a category");
    assert.equal(month(ALICE_CURRENT, "zz_from"), undefined, "a re-categorised transaction stays in its old category");
    assert.equal(month(ALICE_CURRENT, "zz_to"), 20);
    // 30.01 × 0.5 = 15.005: rounded to the penny, halves away from zero.
    assert.equal(month(ALICE_CURRENT, "zz_half"), 15.01);
    assert.equal(month(JOINT, "zz_joint"), 20, "the joint account's share of 0.5 was not applied");
    assert.equal(month(JOINT, "zz_joint_half"), 2.5, "a rule's share and the account's do not multiply");
    const total = (text: string, accountId: string) =>
      sample(text, `monzo_spent_total{account_id="${accountId}",currency="GBP"}`) ?? 0;
    // The counters take the same figures as they settle: nothing for the excluded one.
    assert.equal(Math.round((total(after, ALICE_CURRENT) - total(before, ALICE_CURRENT)) * 100), 2_000 + 1_501);
    assert.equal(Math.round((total(after, JOINT) - total(before, JOINT)) * 100), 2_000 + 250);
    assert.equal(sample(after, `monzo_rules_matched{rule="drop"}`), 1);
    assert.equal(sample(after, `monzo_rules_matched{rule="move"}`), 1);
    assert.equal(sample(after, `monzo_rules_matched{rule="half"}`), 2);
  });
});

Deno.test("a share for no account of the logged-in users is said on the status page and logged once per change", async () => {
  const typo = "acc_00009JointHousehold4Tq9";
  const config = { accounts: { [BOB_CURRENT]: { share: 0.5 }, [typo]: { share: 0.5 }, [JOINT]: { share: 0.5 } } };
  await withHarness({ config }, async (h) => {
    const said = () => h.lines.filter((line) => / count(s)? nothing/.test(line));
    const noteOn = async () => /<p class="wait">([^<]* count(?:s)? nothing[^<]*)<\/p>/.exec(await page(h))?.[1] ?? "";
    await logIn(h, ALICE);
    await poll(h);
    await poll(h, MINUTE);
    // Alice's login lists her accounts and the joint one, not Bob's: his share and the typo count nothing yet.
    const before = await noteOn();
    assert.ok(before.includes(`[accounts.${BOB_CURRENT}]`) && before.includes(`[accounts.${typo}]`), before);
    assert.ok(!before.includes(`[accounts.${JOINT}]`), before);
    assert.equal(said().length, 1, "logged once, not at every poll");
    assert.ok(said()[0].includes(BOB_CURRENT) && said()[0].includes(typo));
    // Bob logs in: only the typo is left, said again because what is said changed.
    await logIn(h, BOB);
    await poll(h, MINUTE);
    const after = await noteOn();
    assert.ok(after.includes(`[accounts.${typo}]`) && !after.includes(BOB_CURRENT), after);
    assert.equal(said().length, 2);
  });
});
