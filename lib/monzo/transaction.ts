import { z } from "zod/v3";
import { cleanText, hasUnsafeCharacters } from "../shared/hostile_text.ts";

// One Monzo transaction, read as hostile input and kept in a small form. Only `id`, `created`,
// `amount` and `currency` are required; every other field has a documented fallback, because real
// payloads vary by counterparty type and one odd optional field must not stop a sync. Unknown fields
// (`__proto__` included) are dropped. Maps Monzo sends (`categories`, `metadata`) are read with
// `Object.entries`/`Object.hasOwn` on the parsed JSON, never copied by assignment, so a `__proto__`
// key is a plain name and cannot reach any prototype.

/**
 * Largest |amount| of one transaction, in minor units: ten billion pounds, beyond any real payment.
 * Sums of up to 9,007 such extremes (and of any real history) stay below `Number.MAX_SAFE_INTEGER`,
 * so figures added as plain numbers are exact integers.
 */
export const MAX_TRANSACTION_MINOR = 1e12;
const minor = z.number().int().min(-MAX_TRANSACTION_MINOR).max(MAX_TRANSACTION_MINOR);

/** Longest id accepted; Monzo's are about 30 characters (`tx_00009…`). */
const MAX_ID_LENGTH = 256;
const withoutControls = (value: string) => !hasUnsafeCharacters(value);
const id = z.string().min(1).max(MAX_ID_LENGTH).refine(withoutControls, "contains control characters");
/**
 * An ISO 4217 currency code: three capital letters (`GBP`). Monzo gives every transaction in its
 * account's currency, so anything else ("gbp", "GBPX", "", a long string) is not a currency but a
 * broken or hostile row, and as a label it would be a new series: the row is left out.
 */
const CURRENCY_CODE = /^[A-Z]{3}$/;
/** True when `value` is shaped like an ISO 4217 currency code (three capital letters). */
export const isCurrencyCode = (value: unknown): value is string =>
  typeof value === "string" && CURRENCY_CODE.test(value);
const currency = z.string().regex(CURRENCY_CODE, "is not a currency code such as GBP");

/** The category a transaction without a usable one is counted in (Monzo's own default). */
const DEFAULT_CATEGORY = "general";
/** Longest category name kept; custom categories are names people chose, so longer ones are cut. */
const MAX_CATEGORY_LENGTH = 100;
/** Most parts a split map may have before it is ignored (the app offers a handful). */
const MAX_SPLIT_PARTS = 50;

/**
 * Categories pass through as they are (custom ones included), made safe for a label: unsafe
 * characters become U+FFFD and long names are cut. A missing, empty or non-string category is
 * counted as {@link DEFAULT_CATEGORY} rather than failing the sync.
 */
function categoryName(value: unknown): string {
  return typeof value === "string" && value !== "" ? cleanText(value, MAX_CATEGORY_LENGTH) : DEFAULT_CATEGORY;
}

function isPlainObject(value: unknown): value is object {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const RFC_3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * RFC 3339 time to epoch ms, or null. Parsed by hand rather than by `Date.parse`, which accepts
 * implementation-defined formats and rolls 30 February over into March.
 */
function parseTime(text: string): number | null {
  const match = RFC_3339.exec(text);
  if (match === null) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const millis = Number((match[7] ?? "").padEnd(3, "0").slice(0, 3));
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 60) return null;
  const offsetHours = Number(match[10] ?? 0);
  const offsetMinutes = Number(match[11] ?? 0);
  if (offsetHours > 23 || offsetMinutes > 59) return null;
  const offsetMs = (match[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  // Date.UTC maps years 0–99 to 1900–1999; setUTCFullYear keeps the year as written.
  const utc = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, millis));
  utc.setUTCFullYear(year);
  return utc.getTime() - offsetMs;
}

const time = z.string().max(64).transform((text, context) => {
  const ms = parseTime(text);
  if (ms === null) {
    context.addIssue({ code: z.ZodIssueCode.custom, message: "is not an RFC 3339 time" });
    return z.NEVER;
  }
  return ms;
});

/** `settled` is `""` while pending; null or absent is read the same way. */
const settled = z.union([z.literal(""), z.null(), time]).optional().transform((value) =>
  typeof value === "number" ? value : null
);

/** A split part: a category and its share of `amount`, signed like `amount`. */
export type SplitPart = readonly [category: string, amount: number];

/**
 * `categories` as a list of parts, or null when absent, null or unusable (not a map, a non-integer or
 * out-of-range part, too many parts): the transaction then counts in its `category`, which is what
 * the app shows for an unsplit transaction.
 */
const categories = z.unknown().transform((value): SplitPart[] | null => {
  if (!isPlainObject(value)) return null;
  const entries = Object.entries(value);
  if (entries.length === 0 || entries.length > MAX_SPLIT_PARTS) return null;
  const parts: SplitPart[] = [];
  for (const [name, amount] of entries) {
    if (!minor.safeParse(amount).success) return null;
    parts.push([categoryName(name), amount as number]);
  }
  return parts;
});

/**
 * Any `decline_reason` other than absent, null or "" marks a decline; the reason is kept as short
 * safe text (Monzo's list is open: `CARD_CLOSED`, `STRONG_CUSTOMER_AUTHENTICATION_REQUIRED`, …).
 */
const declineReason = z.unknown().transform((value): string | null => {
  if (value === undefined || value === null || value === "") return null;
  return typeof value === "string" ? cleanText(value, 64) : "OTHER";
});

/**
 * `metadata` values may be anything; only an own `pot_id` matters, and it counts when it is
 * anything other than absent, null or "" (so a numeric pot id still marks a pot move).
 */
const potId = z.unknown().transform((metadata): boolean => {
  if (!isPlainObject(metadata) || !Object.hasOwn(metadata, "pot_id")) return false;
  const value: unknown = Reflect.get(metadata, "pot_id");
  return value !== undefined && value !== null && value !== "";
});

/** Longest description or merchant name kept, in code points; longer ones are cut (rules match the kept text). */
export const MAX_DESCRIPTION_LENGTH = 200;

/** Free text made safe (unsafe characters become U+FFFD, cut to {@link MAX_DESCRIPTION_LENGTH}), or "" when not text. */
const description = z.unknown().transform((value) =>
  typeof value === "string" ? cleanText(value, MAX_DESCRIPTION_LENGTH) : ""
);

/** An id Monzo chose, or null when absent or not one (empty, too long, control characters). */
function optionalId(value: unknown): string | null {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_ID_LENGTH && !hasUnsafeCharacters(value)
    ? value
    : null;
}

/**
 * `merchant` is an id, or (with `expand[]=merchant`) an object with a `name` and an `id`: the name when
 * it is usable text, else the id, else null.
 */
const merchant = z.unknown().transform((value): string | null => {
  if (typeof value === "string") return optionalId(value);
  if (!isPlainObject(value)) return null;
  const name: unknown = Object.hasOwn(value, "name") ? Reflect.get(value, "name") : undefined;
  if (typeof name === "string" && name.trim() !== "") return cleanText(name, MAX_DESCRIPTION_LENGTH);
  return optionalId(Object.hasOwn(value, "id") ? Reflect.get(value, "id") : undefined);
});

/** The other side of a transfer, as far as it can name one of the household's own accounts. */
export interface Counterparty {
  /** A Monzo account id (Monzo-to-Monzo payments). */
  readonly accountId: string | null;
  /** Six digits, without separators (bank transfers). */
  readonly sortCode: string | null;
  /** Eight digits (bank transfers). */
  readonly accountNumber: string | null;
}

/** A UK sort code as six digits (`04-00-04`, `04 00 04` and `040004` alike), or null when it is not one. */
export function sortCodeOf(value: unknown): string | null {
  if (typeof value !== "string" || value.length > 16) return null;
  const digits = value.replace(/[-\s]/g, "");
  return /^\d{6}$/.test(digits) ? digits : null;
}

/** A UK account number as eight digits, or null when it is not one. */
export function accountNumberOf(value: unknown): string | null {
  if (typeof value !== "string" || value.length > 16) return null;
  const digits = value.replace(/\s/g, "");
  return /^\d{8}$/.test(digits) ? digits : null;
}

/**
 * `counterparty` (every field optional: Monzo-to-Monzo payments name `account_id` and `user_id`, bank
 * transfers `sort_code` and `account_number`), kept only as what can identify an account; null when
 * it names none (absent, empty, a card payment's `{}`, or nothing usable in it).
 */
const counterparty = z.unknown().transform((value): Counterparty | null => {
  if (!isPlainObject(value)) return null;
  const field = (key: string): unknown => Object.hasOwn(value, key) ? Reflect.get(value, key) : undefined;
  const found = {
    accountId: optionalId(field("account_id")),
    sortCode: sortCodeOf(field("sort_code")),
    accountNumber: accountNumberOf(field("account_number")),
  };
  return found.accountId === null && found.sortCode === null && found.accountNumber === null ? null : found;
});

/** A boolean, or null when absent or not a boolean (old rows lack `include_in_spending`). */
const optionalBoolean = z.unknown().transform((value) => (typeof value === "boolean" ? value : null));

/**
 * One entry of Monzo's `GET /transactions` answer, normalised: `created` and `settled` become epoch
 * ms (`settled` null while pending), `categories` a list of parts or null, `decline_reason` a short
 * text or null, `metadata` just whether it names a pot (`has_pot_id`). Absent optional fields never
 * fail; a missing or hostile required field does.
 */
export const transactionSchema = z.object({
  id,
  created: time,
  settled,
  amount: minor,
  currency,
  category: z.unknown().transform(categoryName),
  categories,
  decline_reason: declineReason,
  include_in_spending: optionalBoolean,
  is_load: optionalBoolean.transform((value) => value === true),
  scheme: z.unknown().transform((value) => (typeof value === "string" ? cleanText(value, 64) : null)),
  metadata: potId,
  description,
  merchant,
  counterparty,
}).transform(({ metadata, ...rest }) => ({ ...rest, has_pot_id: metadata }));
/** A transaction as read from Monzo (see {@link transactionSchema}). */
export type Transaction = z.infer<typeof transactionSchema>;

/** The answer of `GET /transactions`. */
export const transactionsSchema = z.object({ transactions: z.array(transactionSchema) });

/**
 * What the store keeps per transaction: only what the counting rules and the sync need. Amounts are
 * signed minor units of `currency` (the account's currency; `local_amount` is never kept).
 */
export interface StoredTransaction {
  readonly id: string;
  readonly accountId: string;
  /** Epoch ms of `created`: which budget month the transaction belongs to. */
  readonly createdMs: number;
  /** Epoch ms of `settled`, or null while pending. */
  readonly settledMs: number | null;
  /** Signed minor units; negative is money out. */
  readonly amount: number;
  readonly currency: string;
  readonly category: string;
  /** The split map as parts, or null when there is none or it only repeats `category` and `amount`. */
  readonly categories: readonly SplitPart[] | null;
  readonly declined: boolean;
  /** Monzo's `include_in_spending`, or null when it was absent. */
  readonly includeInSpending: boolean | null;
  /** A move to or from one of the account's own pots. */
  readonly potMove: boolean;
  /** A top-up. */
  readonly isLoad: boolean;
  /** Monzo's description, made safe; "" when none (and in entries stored before it was kept). */
  readonly description: string;
  /** The merchant's name when Monzo gives one, else its id; null when none (and in older entries). */
  readonly merchant: string | null;
  /** The other side of a transfer, when it names an account; null otherwise (and in older entries). */
  readonly counterparty: Counterparty | null;
}

/** The stored form of `tx`, read from account `accountId` (a pot move is `metadata.pot_id` or scheme `uk_retail_pot`). */
export function toStored(tx: Transaction, accountId: string): StoredTransaction {
  const split = tx.categories;
  const repeatsCategory = split !== null && split.length === 1 && split[0][0] === tx.category &&
    split[0][1] === tx.amount;
  return {
    id: tx.id,
    accountId,
    createdMs: tx.created,
    settledMs: tx.settled,
    amount: tx.amount,
    currency: tx.currency,
    category: tx.category,
    categories: repeatsCategory ? null : split,
    declined: tx.decline_reason !== null,
    includeInSpending: tx.include_in_spending,
    potMove: tx.has_pot_id || tx.scheme === "uk_retail_pot",
    isLoad: tx.is_load,
    description: tx.description,
    merchant: tx.merchant,
    counterparty: tx.counterparty,
  };
}

// Stored entries were checked when they came from Monzo; reading them back only has to catch a
// corrupt or older entry. A plain check, not zod: decoding thousands of entries through zod at start
// grew the process's private memory several times over (docs/performance.md has the figures).
const MAX_EPOCH_MS = 8.64e15;
const isEpochMs = (value: unknown): value is number =>
  Number.isInteger(value) && Math.abs(value as number) <= MAX_EPOCH_MS;
const isMinor = (value: unknown): value is number =>
  Number.isInteger(value) && Math.abs(value as number) <= MAX_TRANSACTION_MINOR;
const isText = (value: unknown, max: number): value is string =>
  typeof value === "string" && value.length > 0 && value.length <= max && !hasUnsafeCharacters(value);
// Lengths count UTF-16 units: a name cut to 100 code points can take up to 200 of them.
const isCategory = (value: unknown): value is string => isText(value, 2 * MAX_CATEGORY_LENGTH);
const isSplit = (value: unknown): boolean =>
  Array.isArray(value) && value.length >= 1 && value.length <= MAX_SPLIT_PARTS &&
  value.every((part) => Array.isArray(part) && part.length === 2 && isCategory(part[0]) && isMinor(part[1]));

// Lengths count UTF-16 units: a text cut to 200 code points can take up to 400 of them, plus the ellipsis.
const isDescription = (value: unknown): value is string =>
  value === "" || isText(value, 2 * MAX_DESCRIPTION_LENGTH + 1);
const isDigits = (value: unknown, length: number): boolean =>
  value === null || (typeof value === "string" && value.length === length && /^\d+$/.test(value));
function isCounterparty(value: unknown): value is Counterparty {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const { accountId, sortCode, accountNumber } = value as Record<string, unknown>;
  return (accountId === null || isText(accountId, MAX_ID_LENGTH)) && isDigits(sortCode, 6) &&
    isDigits(accountNumber, 8);
}

/**
 * Checks a value read back from the store: the transaction, or null for a corrupt entry. Entries
 * stored before descriptions, merchants and counterparties were kept (none of the three fields) are
 * read with "" and nulls: their history cannot be read from Monzo again.
 */
export function decodeStoredTransaction(value: unknown): StoredTransaction | null {
  if (typeof value !== "object" || value === null) return null;
  const tx = value as Record<string, unknown>;
  const valid = isText(tx.id, MAX_ID_LENGTH) && isText(tx.accountId, MAX_ID_LENGTH) && isEpochMs(tx.createdMs) &&
    (tx.settledMs === null || isEpochMs(tx.settledMs)) && isMinor(tx.amount) && isText(tx.currency, 64) &&
    isCategory(tx.category) && (tx.categories === null || isSplit(tx.categories)) &&
    typeof tx.declined === "boolean" && (tx.includeInSpending === null || typeof tx.includeInSpending === "boolean") &&
    typeof tx.potMove === "boolean" && typeof tx.isLoad === "boolean";
  if (!valid) return null;
  const older = !("description" in tx) && !("merchant" in tx) && !("counterparty" in tx);
  if (older) return { ...(value as StoredTransaction), description: "", merchant: null, counterparty: null };
  const newer = isDescription(tx.description) &&
    (tx.merchant === null || isText(tx.merchant, 2 * MAX_DESCRIPTION_LENGTH + 1)) &&
    (tx.counterparty === null || isCounterparty(tx.counterparty));
  if (!newer) return null;
  const { accountId, sortCode, accountNumber } = (tx.counterparty ?? {}) as Record<string, string | null>;
  // Rebuilt, so nothing but the three known fields travels on from a stored counterparty.
  const party = tx.counterparty === null ? null : { accountId, sortCode, accountNumber };
  return { ...(value as StoredTransaction), counterparty: party };
}
