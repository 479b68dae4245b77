/**
 * The `[[rules]]` tables of the config, checked and compiled (placeholder: only the interface, until the
 * config part of issue 18 is merged; matching lives in lib/spending/rule_match.ts).
 *
 * @module
 */

/** One `[[rules]]` table, checked and compiled. */
export interface Rule {
  /** 1-based position in the file. */
  readonly index: number;
  /** `name`, else String(index): the monzo_rules_matched{rule} value. */
  readonly label: string;
  /** Case-insensitive, matches anywhere. */
  readonly description: RegExp | null;
  /** Matches the merchant's name when Monzo gives one, else its id. */
  readonly merchant: RegExp | null;
  /** Exact. */
  readonly category: string | null;
  readonly accountId: string | null;
  /** Major units; matches when |amount| > it. */
  readonly amountAbove: number | null;
  /** Major units; matches when |amount| < it. */
  readonly amountBelow: number | null;
  readonly id: string | null;
  readonly setCategory: string | null;
  readonly exclude: boolean;
  /** In (0, 1]. */
  readonly share: number | null;
}
