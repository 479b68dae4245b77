// A transaction as Monzo's `/transactions` sends it (snake_case, amounts in signed minor units), and
// the one place that fills in the fields a test or a generator leaves out. See
// shared/reference/monzo-transactions.md for what each field means and where real payloads vary.

import { hash, objectId } from "./random.ts";
import { compareText } from "../shared/compare.ts";

/** A merchant: what `merchant` holds when `expand[]=merchant` is asked, otherwise only its `id` is sent. */
export interface FakeMerchant {
  /** E.g. `merch_00009…`. */
  id: string;
  group_id: string;
  name: string;
  logo: string;
  emoji: string;
  /** Monzo's category for the merchant, which the transaction's own `category` may differ from. */
  category: string;
  online: boolean;
  atm: boolean;
  address: {
    short_formatted: string;
    city: string;
    country: string;
    postcode: string;
    latitude: number;
    longitude: number;
  };
  disable_feedback: boolean;
  metadata: Record<string, string>;
}

/** The other side of a bank transfer or payment between people; `{}` for card payments. */
export interface FakeCounterparty {
  name?: string;
  sort_code?: string;
  account_number?: string;
  /** Set when the other side banks with Monzo. */
  user_id?: string;
  account_id?: string;
}

/** One transaction in Monzo's JSON shape, as the fake stores it and `/transactions` answers it. */
export interface FakeTransaction {
  /** E.g. `tx_00009…`. */
  id: string;
  /** RFC 3339 time; the order of `/transactions` and the budget month follow it. */
  created: string;
  /** Signed minor units of `currency`: negative is money out. */
  amount: number;
  /** The account's currency. */
  currency: string;
  description: string;
  /** A free string: Monzo's categories, or one the user made up (e.g. `dog`). */
  category: string;
  /** A split over categories whose values sum to `amount`; Monzo sometimes sends null or leaves it out. */
  categories?: Record<string, number> | null;
  /** RFC 3339 time, or `""` while pending (and on declined transactions). */
  settled: string;
  /** Not always present. */
  amount_is_pending?: boolean;
  /** Present only on declined transactions, e.g. `INSUFFICIENT_FUNDS`. */
  decline_reason?: string;
  /** Absent on some old rows (then a debit counts as spending). */
  include_in_spending?: boolean;
  /** True on top-ups. */
  is_load: boolean;
  /** Not a closed list: `mastercard`, `uk_retail_pot`, `p2p_payment`, `bacs`, `payport_faster_payments`, … */
  scheme: string;
  /** Pot moves carry `pot_id` and `pot_account_id`. */
  metadata: Record<string, string>;
  counterparty: FakeCounterparty;
  /** Stored as the object so it can be expanded; answered as its id unless `expand[]=merchant`. Null without one. */
  merchant: string | FakeMerchant | null;
  /** Signed minor units of `local_currency`: what a card abroad was charged. */
  local_amount: number;
  local_currency: string;
  notes: string;
  /** RFC 3339 time of the last change (settlement, re-categorising). */
  updated: string;
  dedupe_id: string;
  account_id: string;
  user_id: string;
}

// The fields Monzo sometimes leaves out.
const OPTIONAL_FIELDS = new Set(["categories", "amount_is_pending", "decline_reason", "include_in_spending"]);

/** What a caller must give to make a transaction; every other field has a Monzo-like default. */
export type NewTransaction =
  & Partial<FakeTransaction>
  & Pick<FakeTransaction, "amount" | "description" | "category" | "created">;

/**
 * A whole transaction on `accountId` from `fields`: the id is derived from the account, time and
 * description; `categories` is `{category: amount}`; settled at `created`; `include_in_spending` true
 * for debits and false for credits; scheme `mastercard` with a merchant, else `payport_faster_payments`.
 * Optional fields given explicitly as `undefined` are left out, like Monzo's absent ones; other
 * fields given as `undefined` take their defaults.
 */
export function makeTransaction(accountId: string, userId: string, fields: NewTransaction): FakeTransaction {
  const id = fields.id ?? objectId("tx", `${accountId}|${fields.created}|${fields.description}|${fields.amount}`);
  const currency = fields.currency ?? "GBP";
  const settled = fields.settled ?? fields.created;
  const merchant = fields.merchant ?? null;
  const defaults: FakeTransaction = {
    id,
    created: fields.created,
    amount: fields.amount,
    currency,
    description: fields.description,
    category: fields.category,
    categories: { [fields.category]: fields.amount },
    settled,
    amount_is_pending: settled === "" && fields.decline_reason === undefined,
    include_in_spending: fields.amount < 0,
    is_load: false,
    scheme: merchant ? "mastercard" : "payport_faster_payments",
    metadata: { ledger_insertion_id: `entryset_${id.slice(3)}` },
    counterparty: {},
    merchant,
    local_amount: fields.amount,
    local_currency: currency,
    notes: "",
    updated: settled || fields.created,
    dedupe_id: `${merchant ? "mcauthmsg" : "ledger"}_${id.slice(3)}`,
    account_id: accountId,
    user_id: userId,
  };
  const record: Record<string, unknown> = { ...defaults };
  const given: Record<string, unknown> = fields;
  for (const key in given) {
    const value = given[key];
    if (value !== undefined) record[key] = value;
    else if (OPTIONAL_FIELDS.has(key)) delete record[key];
  }
  return record as unknown as FakeTransaction;
}

/** The order of `/transactions`: by `created`, then by id for transactions made at the same instant. */
export function compareTransactions(a: { created: string; id: string }, b: { created: string; id: string }): number {
  return Date.parse(a.created) - Date.parse(b.created) || compareText(a.id, b.id);
}

/** Puts `transaction` into `list` (kept oldest first) at its place in time. */
export function insertTransaction(list: FakeTransaction[], transaction: FakeTransaction): void {
  let index = list.length;
  while (index > 0 && compareTransactions(list[index - 1], transaction) > 0) index--;
  list.splice(index, 0, transaction);
}

/** The UK bank details `/accounts` gives an account (sort code `04…`, an eight-digit number), made up from its id. */
export function ukBankDetails(accountId: string): { sort_code: string; account_number: string } {
  const digits = String(hash(accountId)).padStart(14, "0");
  return { account_number: digits.slice(0, 8), sort_code: "04" + digits.slice(8, 12) };
}

/** One of the household's accounts as the other side of a payment: its id, owner's user id and name. */
export interface HouseholdParty {
  readonly accountId: string;
  readonly userId: string;
  readonly name: string;
}

/**
 * The counterparty of a Monzo-to-Monzo payment (`p2p_payment`) to or from `party`: the other side's
 * account and user ids, name and bank details, as Monzo gives them.
 */
export function monzoCounterparty(party: HouseholdParty): FakeCounterparty {
  return { account_id: party.accountId, user_id: party.userId, name: party.name, ...ukBankDetails(party.accountId) };
}

/** The counterparty of a Faster Payments transfer to or from `party`: its name, sort code and account number only. */
export function bankCounterparty(party: HouseholdParty): FakeCounterparty {
  return { name: party.name, ...ukBankDetails(party.accountId) };
}

/** RFC 3339 with milliseconds in UTC, as Monzo writes times. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}
