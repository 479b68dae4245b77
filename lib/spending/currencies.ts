import { isCurrencyCode } from "../monzo/transaction.ts";

// Each currency of an account is a `currency` series of the cash-flow counters and of every
// category's budget figures, so the currencies come from Monzo only within a bound. Monzo gives
// every transaction in its account's own currency (spending abroad is in `local_currency`, which is
// never kept): when `/accounts` says the account's currency, that one is the only one counted; when
// it does not, at most MAX_CURRENCIES_PER_ACCOUNT are, which is room for the unforeseen.

/** Most currencies an account's transactions are counted in when Monzo does not say the account's currency. */
export const MAX_CURRENCIES_PER_ACCOUNT = 5;

/**
 * The currencies one account's transactions are stored and counted in. Built from the account's
 * own currency (when Monzo says it) or else from the currencies already stored (those shaped like a
 * currency code, the first {@link MAX_CURRENCIES_PER_ACCOUNT} alphabetically, so that an older store
 * holding more is cut down the same way at every start); new ones are admitted while there is room.
 */
export class AccountCurrencies {
  readonly #own: string | undefined;
  readonly #admitted: Set<string>;

  constructor(own: string | undefined, stored: Iterable<string>) {
    this.#own = own !== undefined && isCurrencyCode(own) ? own : undefined;
    this.#admitted = this.#own !== undefined
      ? new Set([this.#own])
      : new Set([...new Set(stored)].filter(isCurrencyCode).sort().slice(0, MAX_CURRENCIES_PER_ACCOUNT));
  }

  /** True when figures in `currency` are counted (nothing is admitted by asking). */
  has(currency: string): boolean {
    return this.#admitted.has(currency);
  }

  /** True when a transaction in `currency` may be stored: admitted already, or now while there is room. */
  admit(currency: string): boolean {
    if (this.#admitted.has(currency)) return true;
    if (this.#own !== undefined || !isCurrencyCode(currency)) return false;
    if (this.#admitted.size >= MAX_CURRENCIES_PER_ACCOUNT) return false;
    this.#admitted.add(currency);
    return true;
  }

  /** Why a transaction in `currency`, not admitted, is left out: one short line. */
  refusal(currency: string): string {
    const code = isCurrencyCode(currency) ? currency : "it";
    return this.#own !== undefined
      ? `currency is unusable (${code} is not the account's currency, ${this.#own})`
      : `currency is unusable (the account's transactions already come in ${MAX_CURRENCIES_PER_ACCOUNT} ` +
        `currencies: ${[...this.#admitted].sort().join(", ")})`;
  }
}
