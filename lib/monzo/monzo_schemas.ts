import { z } from "zod/v3";
import { cutText, hasUnsafeCharacters } from "../shared/hostile_text.ts";
import { accountNumberOf, sortCodeOf } from "./transaction.ts";

// Only the fields the exporter uses are declared: unknown extra fields (`__proto__` included) are
// dropped, and a field Monzo stops sending fails here, in one place. Every value is hostile until
// checked: numbers are bounded so later arithmetic and dates cannot overflow, ids and labels carry no
// control characters, and free text is bounded but otherwise kept (it is escaped where it is shown).

/**
 * 10^15 minor units (ten trillion pounds) is far beyond any real balance and well inside
 * `Number.MAX_SAFE_INTEGER`, so sums of a few amounts stay exact.
 */
const MAX_MINOR_UNITS = 1e15;
const pence = z.number().int().min(-MAX_MINOR_UNITS).max(MAX_MINOR_UNITS);

/** Longest id accepted; Monzo's are about 30 characters (`acc_00009…`, `user_00009…`). */
const MAX_ID_LENGTH = 256;
const withoutControls = (value: string) => !hasUnsafeCharacters(value);

/** An id Monzo chose: a non-empty bounded string that is safe in a log line, a URL query or a label. */
const id = z.string().min(1).max(MAX_ID_LENGTH).refine(withoutControls, "contains control characters");

/** A short machine word such as an account type or a currency code. */
const word = (min: number) => z.string().min(min).max(64).refine(withoutControls, "contains control characters");

/** Names people chose (pots, accounts): newlines, quotes and emoji are kept and escaped where shown. */
const MAX_NAME_LENGTH = 200;
const name = z.string().transform((value) => cutText(value, MAX_NAME_LENGTH));

/**
 * RFC 6749 allows visible ASCII in tokens; a space or a control character could not travel in an
 * `Authorization` header, and would otherwise surface inside a fetch error message.
 */
const token = z.string().min(1).max(8192).regex(/^[\x21-\x7e]+$/, "is not a visible ASCII token");

/** Shortest and longest token lifetime the exporter believes, in seconds. */
const MIN_EXPIRES_IN_S = 60;
const MAX_EXPIRES_IN_S = 90 * 24 * 3600;

/**
 * `expires_in` is clamped, never refused: when Monzo answers a refresh it has already revoked the
 * old pair, so refusing the answer would lose the login. 90 days is the longest a Monzo login lasts
 * before re-approval (so `expiresAt` stays a valid date); a lifetime under a minute (zero, negative)
 * only makes the next poll refresh, which is what such an answer asks for anyway. `1e400` parses to
 * Infinity and is clamped like any other huge number.
 */
const expiresIn = z.number().transform((seconds) => Math.min(Math.max(seconds, MIN_EXPIRES_IN_S), MAX_EXPIRES_IN_S));

/** The answer of `POST /oauth2/token`. */
export const tokenResponseSchema = z.object({
  access_token: token,
  // RFC 6749 §6: a refresh answer without a new refresh token keeps the old one; "" and null mean absent.
  refresh_token: z.preprocess((value) => (value === "" || value === null ? undefined : value), token.optional()),
  expires_in: expiresIn,
  user_id: id,
});
/** A token grant from Monzo. */
export type TokenResponse = z.infer<typeof tokenResponseSchema>;

/** The answer of `GET /ping/whoami`. */
export const whoamiSchema = z.object({
  authenticated: z.boolean(),
  user_id: id,
});
/** Who a token belongs to. */
export type Whoami = z.infer<typeof whoamiSchema>;

const ownerSchema = z.object({
  user_id: id,
  preferred_name: name.optional(),
});

// One entry of `GET /accounts`.
const accountSchema = z.object({
  id,
  type: word(0),
  description: name.default(""),
  closed: z.boolean().default(false),
  currency: word(1).optional(),
  owners: z.array(ownerSchema).default([]),
  // What a bank transfer names it by: an internal transfer is recognised by them (issue 18). Unusable is none.
  sort_code: z.unknown().transform(sortCodeOf),
  account_number: z.unknown().transform(accountNumberOf),
  // When it was opened, epoch ms: how far back a full history import goes. Unreadable is unknown, not fatal.
  created: z.unknown().transform((value) => {
    const ms = typeof value === "string" ? Date.parse(value) : NaN;
    return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? ms : null;
  }),
});
/** An account as Monzo lists it. */
export type Account = z.infer<typeof accountSchema>;

/** The answer of `GET /accounts`. */
export const accountsSchema = z.object({ accounts: z.array(accountSchema) });

/** The answer of `GET /balance` (amounts in minor units, signed). */
export const balanceSchema = z.object({
  balance: pence,
  total_balance: pence,
  balance_including_flexible_savings: pence,
  currency: word(1),
  spend_today: pence,
});
/** An account's balance in minor units. */
export type Balance = z.infer<typeof balanceSchema>;

// One entry of `GET /pots`.
const potSchema = z.object({
  id,
  name,
  balance: pence,
  currency: word(1),
  deleted: z.boolean().default(false),
  goal_amount: pence.nullish(),
  type: word(0).optional(),
});
/** A pot as Monzo lists it. */
export type Pot = z.infer<typeof potSchema>;

/** The answer of `GET /pots`. */
export const potsSchema = z.object({ pots: z.array(potSchema) });

/**
 * The answer of `GET /transactions` with its entries left unchecked: each entry is checked on its own
 * (lib/monzo/transaction.ts), so that one unusable transaction does not make the whole page unusable.
 */
export const transactionPageSchema = z.object({ transactions: z.array(z.unknown()) });

/** The `id` of a transactions page's entry, checked alone: where the next page starts even when the rest is unusable. */
export const entryIdSchema = z.object({ id });

// A field of the wrong type is dropped on its own, so one odd field does not hide the others.
const errorText = z.string().optional().catch(undefined);

/** Monzo's error body; every field is optional because proxies and OAuth errors differ. */
export const errorBodySchema = z.object({
  code: errorText,
  message: errorText,
  error: errorText,
  error_description: errorText,
});
