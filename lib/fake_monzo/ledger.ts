// The transactions of every account: `/transactions` with Monzo's paging and window rules, and the
// changes tests make between polls (new rows, settlement, reversed authorisations, re-categorising).
//
// The rules of `GET /transactions?account_id=…&since=…&before=…&limit=…&expand[]=merchant`, checked
// in this order after the token and its SCA approval (401, then 403 `forbidden.insufficient_permissions`):
// - `account_id` is required (400 `bad_request.missing_param`) and must be visible to the token's
//   user (a joint account to both owners; else 403 `forbidden.insufficient_permissions`, as is a
//   `uk_monzo_flex_backing_loan`).
// - `limit`: default 30; a whole number 1 to 100, anything else (101, 0, -1, 1.5, "") is 400
//   `bad_request.bad_param`.
// - `since`: an RFC 3339 time with an offset (rows created strictly after it), or a transaction id of
//   this account (rows after it in the order, even if that row was removed since); else 400
//   `bad_request.bad_param`. `before`: an RFC 3339 time (rows created strictly before it); else 400.
// - Window: only when `since` is given, `(before ?? now) - since` over 90 days is 400
//   `bad_request.time_range_too_large` (an id stands for its row's time). Without `since` there is
//   no window, as in Monzo's own example `GET /transactions?account_id=…`.
// - Age: the request starts at `since` (or the account's creation when absent). Once the token's
//   full-history window has closed, a start more than 90 days before now is 403
//   `forbidden.verification_required`. The window is open for `fullHistoryMinutes` (default 5) from
//   the code exchange (or the first approval, with `fullHistoryFrom: "approval"`); refreshed tokens
//   keep their login's window, re-approval does not reopen it, only a new login does.
// - Answer: `{transactions: [...]}`, oldest first (by `created`, then id), at most `limit` rows; the
//   merchant is its id unless `expand[]=merchant`; a few fields clients must ignore are added.

import type { Clock } from "../shared/clock.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { badParam, json, timeRangeTooLarge, verificationRequired } from "./bodies.ts";
import type { FakeAccount, FakeData } from "./data.ts";
import { objectId } from "./random.ts";
import {
  compareTransactions,
  type FakeTransaction,
  insertTransaction,
  makeTransaction,
  type NewTransaction,
  rfc3339,
} from "./transaction.ts";

/** `limit` when none is given (it was 100 until early 2025). */
export const DEFAULT_LIMIT = 30;
/** The largest `limit` Monzo accepts. */
export const MAX_LIMIT = 100;
/** Widest `since`..`before` window, and how far back a request may reach once full history has closed. */
export const WINDOW_MS = 90 * 24 * 3_600_000;

// Monzo writes and accepts RFC 3339; a bare date or a time without an offset is not one.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** A new transaction for {@link Ledger.add}: `created` defaults to now, the id to a fresh one. */
export type AddedTransaction = Omit<NewTransaction, "created"> & { created?: string };

/** What happens to a reversed authorisation: it comes back declined, or Monzo stops returning it. */
export type Reversal = "declined" | "removed";

interface Position {
  readonly accountId: string;
  readonly created: string;
  readonly id: string;
}

/** The fake's transactions and the rules of reading them. */
export class Ledger {
  readonly #data: FakeData;
  readonly #clock: Clock;
  // Removed rows still mark a place in the order, so `since=<their id>` keeps working as at Monzo,
  // whose ids are positions rather than rows that must still exist.
  readonly #removed = new Map<string, Position>();
  #added = 0;

  /** A ledger over the accounts of `data`, whose `transactions` it changes in place. */
  constructor(data: FakeData, clock: Clock) {
    this.#data = data;
    this.#clock = clock;
  }

  /**
   * The body of `GET /transactions` for `account`, or Monzo's error answer, by the rules at the top of
   * this file. `fullHistory` says whether the token's full-history window is still open.
   */
  page(account: FakeAccount, query: URLSearchParams, fullHistory: boolean): Result<unknown, Response> {
    const now = this.#clock.now();
    const limitText = query.get("limit");
    const limit = limitText === null ? DEFAULT_LIMIT : /^[1-9]\d{0,5}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit <= MAX_LIMIT)) {
      return err(json(400, badParam("limit", limitText ?? "", `limit must be a whole number from 1 to ${MAX_LIMIT}`)));
    }

    const sinceText = query.get("since");
    let after: ((t: FakeTransaction) => boolean) | null = null;
    let start = Date.parse(account.created);
    if (sinceText !== null) {
      const time = parseTime(sinceText);
      if (time !== null) {
        start = time;
        after = (t) => Date.parse(t.created) > time;
      } else {
        const position = this.#position(account, sinceText);
        if (!position) {
          return err(json(400, badParam("since", sinceText, "since must be an RFC 3339 time or a transaction id")));
        }
        start = Date.parse(position.created);
        after = (t) => compareTransactions(t, position) > 0;
      }
    }
    const beforeText = query.get("before");
    const before = beforeText === null ? null : parseTime(beforeText);
    if (beforeText !== null && before === null) {
      return err(json(400, badParam("before", beforeText, "before must be an RFC 3339 time")));
    }
    if (sinceText !== null && (before ?? now) - start > WINDOW_MS) {
      return err(json(400, timeRangeTooLarge(sinceText, beforeText)));
    }
    if (!fullHistory && start < now - WINDOW_MS) return err(json(403, verificationRequired()));

    const expand = query.getAll("expand[]").includes("merchant");
    const rows: Record<string, unknown>[] = [];
    for (const t of account.transactions) {
      if (rows.length === limit) break;
      if (before !== null && Date.parse(t.created) >= before) break;
      if (after === null || after(t)) rows.push(render(t, expand));
    }
    return ok({ transactions: rows });
  }

  /** Adds a transaction to `accountId` in its place in time; throws for an unknown account or a taken id. */
  add(accountId: string, fields: AddedTransaction): FakeTransaction {
    const account = this.#data.accounts.find((a) => a.id === accountId);
    if (!account) throw new Error(`fake Monzo: unknown account ${accountId}`);
    if (fields.id !== undefined && (this.#find(fields.id) || this.#removed.has(fields.id))) {
      throw new Error(`fake Monzo: transaction ${fields.id} already exists`);
    }
    this.#added += 1;
    const created = fields.created ?? rfc3339(this.#clock.now());
    const transaction = makeTransaction(accountId, account.owners[0] ?? "", {
      ...fields,
      id: fields.id ?? objectId("tx", `added|${accountId}|${this.#added}|${created}`),
      created,
    });
    checkSplit(transaction.amount, transaction.categories);
    insertTransaction(account.transactions, transaction);
    return transaction;
  }

  /** Settles a pending transaction now, optionally for a different `amount` (a tip, an exchange rate). */
  settle(id: string, amount?: number): FakeTransaction {
    const { transaction } = this.#pending(id, "settle");
    const now = rfc3339(this.#clock.now());
    if (amount !== undefined && amount !== transaction.amount) {
      const change = amount - transaction.amount;
      transaction.amount = amount;
      // Abroad, the shop's charge stays the same while the rate moves the pounds.
      if (transaction.local_currency === transaction.currency) transaction.local_amount = amount;
      const split = transaction.categories;
      if (split) {
        const key = transaction.category in split ? transaction.category : Object.keys(split)[0];
        split[key] = (split[key] ?? 0) + change;
      }
    }
    transaction.settled = now;
    if ("amount_is_pending" in transaction) transaction.amount_is_pending = false;
    transaction.updated = now;
    return transaction;
  }

  /** A pending authorisation is released: it comes back with `decline_reason`, or is no longer returned. */
  reverse(id: string, outcome: Reversal, reason = "OTHER"): FakeTransaction {
    const { account, transaction } = this.#pending(id, "reverse");
    if (outcome === "declined") {
      transaction.decline_reason = reason;
      if ("amount_is_pending" in transaction) transaction.amount_is_pending = false;
      transaction.updated = rfc3339(this.#clock.now());
    } else {
      account.transactions.splice(account.transactions.indexOf(transaction), 1);
      this.#removed.set(id, { accountId: account.id, created: transaction.created, id });
    }
    return transaction;
  }

  /** The user re-categorises a transaction; `categories` defaults to the whole amount in `category`. */
  recategorise(id: string, category: string, categories?: Record<string, number> | null): FakeTransaction {
    const found = this.#find(id);
    if (!found) throw new Error(`fake Monzo: no transaction ${id}`);
    const { transaction } = found;
    const split = categories === undefined ? { [category]: transaction.amount } : categories;
    checkSplit(transaction.amount, split);
    transaction.category = category;
    transaction.categories = split;
    transaction.updated = rfc3339(this.#clock.now());
    return transaction;
  }

  /** The transaction with `id` and its account, or null. */
  find(id: string): FakeTransaction | null {
    return this.#find(id)?.transaction ?? null;
  }

  #find(id: string): { account: FakeAccount; transaction: FakeTransaction } | null {
    for (const account of this.#data.accounts) {
      const transaction = account.transactions.find((t) => t.id === id);
      if (transaction) return { account, transaction };
    }
    return null;
  }

  #pending(id: string, action: string): { account: FakeAccount; transaction: FakeTransaction } {
    const found = this.#find(id);
    if (!found) throw new Error(`fake Monzo: no transaction ${id}`);
    const { transaction } = found;
    if (transaction.settled !== "" || transaction.decline_reason !== undefined) {
      throw new Error(`fake Monzo: cannot ${action} ${id}: it is not pending`);
    }
    return found;
  }

  /** Where transaction `id` of `account` stands in the order, even if it was removed since. */
  #position(account: FakeAccount, id: string): Position | null {
    const live = account.transactions.find((t) => t.id === id);
    if (live) return { accountId: account.id, created: live.created, id };
    const removed = this.#removed.get(id);
    return removed?.accountId === account.id ? removed : null;
  }
}

/** The time of an RFC 3339 string in ms, or null if it is not one. */
function parseTime(text: string): number | null {
  if (!RFC3339.test(text)) return null;
  const time = Date.parse(text);
  return Number.isNaN(time) ? null : time;
}

/** A transaction as the API sends it: the merchant's id unless expanded, plus fields clients must ignore. */
export function render(transaction: FakeTransaction, expandMerchant: boolean): Record<string, unknown> {
  const merchant = transaction.merchant;
  return {
    ...transaction,
    merchant: merchant !== null && typeof merchant === "object" && !expandMerchant ? merchant.id : merchant,
    attachments: null,
    atm_fees_detailed: null,
    can_split_the_bill: transaction.amount < 0 && transaction.decline_reason === undefined,
    fees: {},
    international: transaction.local_currency === transaction.currency
      ? null
      : { currency: transaction.local_currency },
    labels: null,
    originator: false,
  };
}

function checkSplit(amount: number, split: Record<string, number> | null | undefined): void {
  if (!split) return;
  const total = Object.values(split).reduce((sum, part) => sum + part, 0);
  if (total !== amount) {
    throw new Error(`fake Monzo: categories add up to ${total}, not the amount ${amount}`);
  }
}
