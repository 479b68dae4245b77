/**
 * What one transaction is to the figures, decided when figures are computed and never written into
 * the store: the rules, the shares and the set of the household's own accounts can change (a rule
 * edited, a second member logging in), and the figures then follow from the same stored history.
 *
 * In order, the first that applies decides:
 * 1. left out: declined, or a move to or from the account's own pots (rule 1 of rules.ts);
 * 2. internal: its counterparty is another of the accounts the exporter has seen in `/accounts`
 *    (closed ones too), by `account_id`, or by sort code and account number: money moved within the
 *    household is neither spending nor income, though it still moves the balances;
 * 3. the first `[[rules]]` table whose conditions all match: `exclude` leaves it out of every
 *    figure; otherwise it counts in `set_category` (else Monzo's category or split) at the rule's
 *    `share` times the account's `share`;
 * 4. otherwise it counts as Monzo gives it, at the account's share.
 *
 * @module
 */
import type { Rule } from "../config/rules_config.ts";
import type { Counterparty, StoredTransaction } from "../monzo/transaction.ts";
import { firstRule } from "./rule_match.ts";
import { compareText } from "../shared/compare.ts";

/** One of the household's accounts as `/accounts` lists it: what a counterparty may name it by. */
export interface OwnAccount {
  readonly id: string;
  /** Six digits, or null when `/accounts` gives none (Flex, loans). */
  readonly sortCode: string | null;
  /** Eight digits, or null. */
  readonly accountNumber: string | null;
}

/** The accounts the exporter has seen in `/accounts`, closed ones included: a transfer to one is internal. */
export class OwnAccounts {
  readonly #ids: ReadonlySet<string>;
  /** `sort code account number` to the account's id. */
  readonly #byDetails: ReadonlyMap<string, string>;
  /** The set written out in a stable order: two sets are the same when their keys are. */
  readonly key: string;
  /** The accounts as given. */
  readonly accounts: readonly OwnAccount[];

  constructor(accounts: Iterable<OwnAccount>) {
    this.accounts = [...accounts];
    const ids = new Set<string>();
    const byDetails = new Map<string, string>();
    for (const account of this.accounts) {
      ids.add(account.id);
      if (account.sortCode !== null && account.accountNumber !== null) {
        byDetails.set(`${account.sortCode} ${account.accountNumber}`, account.id);
      }
    }
    this.#ids = ids;
    this.#byDetails = byDetails;
    this.key = JSON.stringify([[...ids].sort(compareText), [...byDetails].sort(([a], [b]) => compareText(a, b))]);
  }

  /** How many accounts it holds. */
  get size(): number {
    return this.#ids.size;
  }

  /** True when `party` names one of the accounts other than `accountId` (the transaction's own). */
  isOther(party: Counterparty | null, accountId: string): boolean {
    if (party === null) return false;
    if (party.accountId !== null && party.accountId !== accountId && this.#ids.has(party.accountId)) return true;
    if (party.sortCode === null || party.accountNumber === null) return false;
    const named = this.#byDetails.get(`${party.sortCode} ${party.accountNumber}`);
    return named !== undefined && named !== accountId;
  }
}

/** Everything that decides how the stored transactions count. */
export interface Counting {
  /** The config's `[[rules]]`, in order. */
  readonly rules: readonly Rule[];
  /** The config's `[accounts.acc_…] share`, in (0, 1]; an account not listed counts whole. */
  readonly accountShares: ReadonlyMap<string, number>;
  readonly own: OwnAccounts;
}

/** Monzo's own view: no rules, no shares, no known accounts. */
export const MONZO_VIEW: Counting = { rules: [], accountShares: new Map(), own: new OwnAccounts([]) };

/** What a transaction is to the figures (see the module's comment). */
export interface Classification {
  readonly kind: "left_out" | "internal" | "excluded" | "counted";
  /** The category it counts in when a rule sets one; null to count in Monzo's category or split. */
  readonly category: string | null;
  /** The fraction of it that counts: the rule's share times the account's; 1 unless `counted`. */
  readonly share: number;
  /** The rule that decided it, if any. */
  readonly rule: Rule | null;
}

const LEFT_OUT: Classification = { kind: "left_out", category: null, share: 1, rule: null };
const INTERNAL: Classification = { kind: "internal", category: null, share: 1, rule: null };

/** What `tx` is to the figures under `counting`. */
export function classify(tx: StoredTransaction, counting: Counting): Classification {
  if (tx.declined || tx.potMove) return LEFT_OUT;
  if (counting.own.isOther(tx.counterparty, tx.accountId)) return INTERNAL;
  const rule = counting.rules.length === 0 ? null : firstRule(counting.rules, tx);
  if (rule?.exclude) return { kind: "excluded", category: null, share: 1, rule };
  const share = (rule?.share ?? 1) * (counting.accountShares.get(tx.accountId) ?? 1);
  return { kind: "counted", category: rule?.setCategory ?? null, share, rule };
}

/**
 * `minor` times `share`, rounded to a whole minor unit, halves away from zero (so a debit and its
 * refund round to the same size): the only rounding any figure goes through.
 */
export function shareOf(minor: number, share: number): number {
  if (share === 1) return minor;
  const size = Math.round(Math.abs(minor) * share);
  // `|| 0`: a debit that rounds to nothing is 0, never -0.
  return minor < 0 ? -size || 0 : size;
}
