/**
 * The values of the `--backfill.*` options, read from the command line: a Prometheus duration for the
 * step, an RFC 3339 time for the end, and `NAME=VALUE` labels. Each error is one line naming the
 * option and the value.
 *
 * @module
 */
import { err, ok, type Result } from "../shared/result.ts";
import { cleanText, hasUnsafeCharacters } from "../shared/hostile_text.ts";

/** What `--backfill FILE` and its options ask for. */
export interface BackfillRequest {
  /** The file to write (`--backfill`). */
  readonly file: string;
  /** Labels added to every series (`--backfill.label`), in the order given. */
  readonly labels: ReadonlyArray<readonly [string, string]>;
  /** Time between samples, ms (`--backfill.step`). */
  readonly stepMs: number;
  /** No sample at or after this time, epoch ms (`--backfill.until`); null for none. */
  readonly untilMs: number | null;
}

const SECOND_MS = 1_000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** The step between samples unless `--backfill.step` says otherwise. */
export const DEFAULT_STEP_MS = HOUR_MS;
/** The shortest step: finer than a scrape interval only makes the file bigger. */
export const MIN_STEP_MS = 5 * MINUTE_MS;
/** The longest step: a day, so a day's balance is never skipped. */
export const MAX_STEP_MS = DAY_MS;

/**
 * The label names of the backfilled series' own (lib/backfill/openmetrics.ts OWN_LABELS; the config
 * stage cannot import it, and a test holds the two lists together).
 */
export const SERIES_LABELS: readonly string[] = ["account_id", "category", "currency"];

// Prometheus' duration units, largest first: each at most once, in this order (as model.ParseDuration).
const UNITS: ReadonlyArray<readonly [string, number]> = [
  ["y", 365 * DAY_MS],
  ["w", 7 * DAY_MS],
  ["d", DAY_MS],
  ["h", HOUR_MS],
  ["m", MINUTE_MS],
  ["s", SECOND_MS],
  ["ms", 1],
];
const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

/** A Prometheus duration (`90m`, `1h30m`, `1d`) in ms; null when `text` is not one. */
export function parseDuration(text: string): number | null {
  // As Prometheus: a bare 0 is the one duration without a unit.
  if (text === "0") return 0;
  const match = DURATION.exec(text);
  if (match === null || text === "") return null;
  let total = 0;
  UNITS.forEach(([, ms], i) => {
    const digits = match[i + 1];
    if (digits !== undefined) total += Number(digits) * ms;
  });
  return total;
}

/** `--backfill.step`: a Prometheus duration of whole seconds from 5m to 1d. */
export function parseStep(text: string): Result<number> {
  const refuse = (why: string) => err(`--backfill.step ${JSON.stringify(cleanText(text))} ${why}`);
  const ms = parseDuration(text);
  if (ms === null) return refuse("is not a Prometheus duration (such as 5m, 90m, 1h or 1d)");
  if (ms < MIN_STEP_MS) return refuse("is shorter than 5m, the shortest step");
  if (ms > MAX_STEP_MS) return refuse("is longer than 1d, the longest step");
  // OpenMetrics timestamps are written in seconds: a step of whole seconds keeps every one exact.
  if (ms % SECOND_MS !== 0) return refuse("is not a whole number of seconds");
  return ok(ms);
}

// RFC 3339 date-time: full date, T, full time with optional fraction, Z or a numeric offset.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** An RFC 3339 time (`2026-01-31T00:00:00Z`, `2026-06-01T09:30:00+01:00`) in epoch ms; null when not one. */
export function parseRfc3339(text: string): number | null {
  const match = RFC3339.exec(text);
  if (match === null) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const offsetHours = match[9] === undefined ? 0 : Number(match[10]);
  const offsetMinutes = match[9] === undefined ? 0 : Number(match[11]);
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return null;
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(wall);
  // Date.UTC rolls 31 April over to 1 May: a date that does not exist reads back differently.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null;
  const fraction = match[7] === undefined ? 0 : Math.floor(Number(`0${match[7]}`) * 1_000);
  const sign = match[9] === "-" ? -1 : 1;
  return wall + fraction - sign * (offsetHours * HOUR_MS + offsetMinutes * MINUTE_MS);
}

/** `--backfill.until`: an RFC 3339 time. */
export function parseUntil(text: string): Result<number> {
  const ms = parseRfc3339(text);
  return ms === null
    ? err(`--backfill.until ${JSON.stringify(cleanText(text))} is not an RFC 3339 time (such as 2026-01-31T00:00:00Z)`)
    : ok(ms);
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * The `--backfill.label NAME=VALUE` options: each NAME a Prometheus label name, not reserved (`__…`),
 * not one of the series' own and given once; each VALUE not empty (an empty value is no label) and
 * without control, bidi or line-breaking characters.
 */
export function parseLabels(given: readonly string[]): Result<ReadonlyArray<readonly [string, string]>> {
  const labels: [string, string][] = [];
  for (const word of given) {
    const refuse = (why: string) => err(`--backfill.label ${JSON.stringify(cleanText(word))} ${why}`);
    const equals = word.indexOf("=");
    if (equals === -1) return refuse("is not NAME=VALUE");
    const name = word.slice(0, equals);
    const value = word.slice(equals + 1);
    if (!LABEL_NAME.test(name)) {
      return refuse("does not start with a Prometheus label name (letters, digits and _, not first a digit)");
    }
    if (name.startsWith("__")) return refuse("names a label starting with __, which Prometheus reserves");
    if (SERIES_LABELS.includes(name)) return refuse(`names ${name}, a label the series carry of their own`);
    if (labels.some(([known]) => known === name)) return refuse(`gives the label ${name} a second time`);
    if (value === "") return refuse("has an empty value, which Prometheus reads as no label");
    if (hasUnsafeCharacters(value)) return refuse("has a control, bidi or line-breaking character in its value");
    labels.push([name, value]);
  }
  return ok(labels);
}
