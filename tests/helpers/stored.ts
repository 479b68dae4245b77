// Stored transactions and rules as the tests build them: every field given its plain default, so a
// test names only what it is about, and a field added to either type is defaulted in one place.

import type { Rule } from "../../lib/config/rules_config.ts";
import type { StoredTransaction } from "../../lib/monzo/transaction.ts";

/** A settled GBP transaction in `groceries`, with no split, merchant or counterparty, and the given fields. */
export function storedTransaction(
  fields: Pick<StoredTransaction, "id" | "accountId" | "createdMs"> & Partial<StoredTransaction>,
): StoredTransaction {
  return {
    settledMs: fields.createdMs,
    amount: -100,
    currency: "GBP",
    category: "groceries",
    categories: null,
    declined: false,
    includeInSpending: null,
    potMove: false,
    isLoad: false,
    description: "",
    merchant: null,
    counterparty: null,
    ...fields,
  };
}

/** A rule at 1-based `index` with only the given conditions and actions set (config tests check real ones). */
export function ruleWith(index: number, fields: Partial<Rule>): Rule {
  return {
    index,
    label: String(index),
    description: null,
    merchant: null,
    category: null,
    accountId: null,
    amountAbove: null,
    amountBelow: null,
    id: null,
    setCategory: null,
    exclude: false,
    share: null,
    ...fields,
  };
}
