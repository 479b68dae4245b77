// A small fixed set of transactions with exactly one of every awkward kind the exporter's spending
// rules must get right (issue 8 and shared/reference/monzo-transactions.md), whose figures can be
// worked out by hand. Each row's `notes` is its kind, so a test can find it.

import { merchant } from "./merchants.ts";
import { objectId } from "./random.ts";
import { type FakeTransaction, makeTransaction, type NewTransaction, rfc3339 } from "./transaction.ts";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** The kinds of row in {@link awkwardTransactions}, each row's `notes`. */
export type AwkwardKind =
  | "settled_debit"
  | "pending_debit"
  | "declined"
  | "pot_out"
  | "pot_in"
  | "refund"
  | "split"
  | "fx"
  | "salary"
  | "transfer_in"
  | "transfer_out"
  | "custom_category"
  | "no_include_in_spending"
  | "top_up"
  | "old_pending"
  | "old_settled";

/** Whose rows {@link awkwardTransactions} makes; by default Alice's current account and emergency pot. */
export interface AwkwardOptions {
  accountId?: string;
  userId?: string;
  /** The account's pot the pot moves go to and come from. */
  potId?: string;
}

/**
 * One row of every awkward kind on one account, oldest first, dated relative to `now` (ms). Every row
 * but the two `old_` ones lies in the 8 hours before `now`, so with `now` at least 8 hours into a
 * budget month they all fall in it; `old_pending` is 20 days old, `old_settled` 40 days.
 *
 * | kind | amount | category | what it tests |
 * |---|---|---|---|
 * | settled_debit | -4000 | shopping | a plain settled card payment: cash flow and budget |
 * | pending_debit | -1850 | eating_out | pending (`settled: ""`): budget only; settle it with a tip to test a changed amount |
 * | declined | -9999 | shopping | `decline_reason` INSUFFICIENT_FUNDS: counted nowhere |
 * | pot_out | -50000 | savings | `uk_retail_pot` with `metadata.pot_id`, money into a pot: counted nowhere |
 * | pot_in | +20000 | savings | money back from the pot: not income |
 * | refund | +1500 | shopping | credit with `include_in_spending: true`: received in cash flow, minus shopping in the budget |
 * | split | -7000 | groceries | `categories` {groceries: -2000, bills: -5000}: each part in its own category |
 * | fx | -2575 | holidays | paid €30.00 abroad (`local_amount` -3000 EUR): the pounds count |
 * | salary | +250000 | income | `bacs` credit, `include_in_spending: false`: received |
 * | transfer_in | +3000 | transfers | faster payment in, with the misspelt scheme `payport_faster_pajments`: received |
 * | transfer_out | -10000 | transfers | debit with `include_in_spending: false`: not spending |
 * | custom_category | -1299 | dog | a category the user made up, `categories: null`: passes through |
 * | no_include_in_spending | -850 | transport | an old-style row without `include_in_spending`, `categories` or `amount_is_pending`: spending |
 * | top_up | +10000 | mondo | `is_load` top-up: received |
 * | old_pending | -15000 | holidays | a car hire still pending after 20 days: never settled, so no cash flow; reverse it in tests |
 * | old_settled | -3000 | eating_out | settled 40 days ago: cash flow only, in no current budget month |
 *
 * Figures over all rows (pence): settled spending 4000 + 7000 + 2575 + 1299 + 850 + 3000 = 18724;
 * settled credits received 1500 + 250000 + 3000 + 10000 = 264500. This month's budget spending (the
 * 14 recent rows): shopping 4000 - 1500 = 2500, eating_out 1850, groceries 2000, bills 5000,
 * holidays 2575, dog 1299, transport 850; received this month: income 250000, transfers 3000, mondo 10000.
 */
export function awkwardTransactions(now: number, options: AwkwardOptions = {}): FakeTransaction[] {
  const accountId = options.accountId ?? "acc_00009AliceCurrent7Rk2Lm";
  const userId = options.userId ?? "user_00009AliceQx7Rk2Lm9WzT";
  const potId = options.potId ?? "pot_00009AliceEmergency0001";
  const ago = (minutes: number) => rfc3339(now - minutes * MINUTE);
  const row = (kind: AwkwardKind, fields: Omit<NewTransaction, "notes">): FakeTransaction =>
    makeTransaction(accountId, userId, {
      id: objectId("tx", `awkward|${accountId}|${kind}`),
      notes: kind,
      ...fields,
    });
  const card = (created: string, settled: string) => ({ created, settled, scheme: "mastercard" });
  const pot = { pot_id: potId, pot_account_id: objectId("acc", potId), trigger: "user", user_id: userId };
  const bank = { sort_code: "040004", account_number: "12345678" };

  return [
    row("old_settled", {
      ...card(rfc3339(now - 40 * DAY), rfc3339(now - 39 * DAY)),
      amount: -3000,
      description: "DISHOOM LONDON",
      category: "eating_out",
      merchant: merchant("dishoom"),
    }),
    row("old_pending", {
      ...card(rfc3339(now - 20 * DAY), ""),
      amount: -15000,
      description: "HERTZ CAR HIRE",
      category: "holidays",
      merchant: null,
    }),
    row("settled_debit", {
      ...card(ago(480), ago(475)),
      amount: -4000,
      description: "UNIQLO LONDON",
      category: "shopping",
      merchant: merchant("uniqlo"),
    }),
    row("pot_out", {
      created: ago(470),
      amount: -50000,
      description: potId,
      category: "savings",
      scheme: "uk_retail_pot",
      include_in_spending: false,
      metadata: pot,
    }),
    row("pot_in", {
      created: ago(460),
      amount: 20000,
      description: potId,
      category: "savings",
      scheme: "uk_retail_pot",
      include_in_spending: false,
      metadata: { ...pot, trigger: "withdrawal" },
    }),
    row("salary", {
      created: ago(450),
      amount: 250000,
      description: "ACME LTD",
      category: "income",
      scheme: "bacs",
      include_in_spending: false,
      counterparty: { name: "ACME LTD", ...bank },
    }),
    row("split", {
      ...card(ago(420), ago(415)),
      amount: -7000,
      description: "TESCO LONDON",
      category: "groceries",
      categories: { groceries: -2000, bills: -5000 },
      merchant: merchant("tesco"),
    }),
    row("fx", {
      ...card(ago(400), ago(390)),
      amount: -2575,
      description: "PASTELARIA ALFAMA LISBOA",
      category: "holidays",
      local_amount: -3000,
      local_currency: "EUR",
      merchant: merchant("pastelaria"),
    }),
    row("pending_debit", {
      ...card(ago(300), ""),
      amount: -1850,
      description: "DISHOOM LONDON",
      category: "eating_out",
      merchant: merchant("dishoom"),
    }),
    row("declined", {
      ...card(ago(290), ""),
      amount: -9999,
      description: "AMAZON",
      category: "shopping",
      decline_reason: "INSUFFICIENT_FUNDS",
      merchant: merchant("amazon"),
    }),
    row("refund", {
      ...card(ago(240), ago(235)),
      amount: 1500,
      description: "UNIQLO LONDON",
      category: "shopping",
      include_in_spending: true,
      merchant: merchant("uniqlo"),
    }),
    row("transfer_in", {
      created: ago(200),
      amount: 3000,
      description: "Carol Example",
      category: "transfers",
      scheme: "payport_faster_pajments",
      include_in_spending: false,
      counterparty: { name: "Carol Example", ...bank },
    }),
    row("transfer_out", {
      created: ago(180),
      amount: -10000,
      description: "Landlord",
      category: "transfers",
      scheme: "payport_faster_payments",
      include_in_spending: false,
      counterparty: { name: "Landlord", ...bank },
    }),
    row("custom_category", {
      ...card(ago(160), ago(155)),
      amount: -1299,
      description: "PETS AT HOME LONDON",
      category: "dog",
      categories: null,
      merchant: merchant("petsAtHome"),
    }),
    row("no_include_in_spending", {
      ...card(ago(140), ago(135)),
      amount: -850,
      description: "TFL TRAVEL CH",
      category: "transport",
      include_in_spending: undefined,
      categories: undefined,
      amount_is_pending: undefined,
      merchant: merchant("tfl"),
    }),
    row("top_up", {
      created: ago(120),
      amount: 10000,
      description: "Top up",
      category: "mondo",
      is_load: true,
      include_in_spending: false,
    }),
  ];
}
