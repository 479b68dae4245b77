import { besideFile, resolve } from "../shared/file_path.ts";
import { parse as parseToml, TomlError } from "smol-toml";
import { z } from "zod/v3";
import { formatListenAddress, type ListenAddress, parseListenAddress } from "./listen_address.ts";
import { readRegularFile } from "../shared/regular_file.ts";
import { accountsSchema, MAX_AMOUNT, type Rule, RULE_KEYS, rulesSchema } from "./rules_config.ts";
import { err, ok, type Result } from "../shared/result.ts";

/** Earliest `month_start_day`. */
export const MIN_MONTH_START_DAY = 1;
/** Latest `month_start_day`: every month has a 28th. */
export const MAX_MONTH_START_DAY = 28;

/** Auth keys published in examples; a config that still uses one is refused. */
export const EXAMPLE_AUTH_KEYS: readonly string[] = [
  "$Kq1wJ@HF18yN^4I", // the original exporter's README
  "replace-me-with-a-long-random-string", // config.example.toml
];

/** Environment variables that override config keys, for containers. */
export const ENV_OVERRIDES = {
  MONZO_ACCOUNT_ID: "account_id",
  MONZO_CLIENT_ID: "client_id",
  MONZO_CLIENT_SECRET: "client_secret",
  MONZO_AUTH_KEY: "auth_key",
} as const;

// Poll intervals that `Deno.cron` can keep evenly (minutes dividing an hour).
const POLL_INTERVALS: readonly number[] = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60];

const MIN_AUTH_KEY_LENGTH = 16;

/** The same message whether a value has the wrong type or is absent (absence is reworded later). */
function typeError(message: string) {
  return { invalid_type_error: message, required_error: message };
}

function nonEmpty(key: string) {
  return z.string(typeError(`${key} must be a string`)).trim().min(1, `${key} is empty`);
}

function httpUrl(key: string) {
  return z.string(typeError(`${key} must be a string`)).transform((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: "custom", message: `${key} "${text}" is not a URL` });
      return z.NEVER;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      ctx.addIssue({ code: "custom", message: `${key} "${text}" must start with http:// or https://` });
      return z.NEVER;
    }
    if (url.search || url.hash) {
      ctx.addIssue({ code: "custom", message: `${key} "${text}" must not have a query or fragment` });
      return z.NEVER;
    }
    // A trailing slash would double up when paths are appended.
    return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
  });
}

const listenAddress = z.string(typeError("server_addr must be a string")).transform(
  (text, ctx): ListenAddress => {
    const parsed = parseListenAddress(text);
    if (parsed.ok) return parsed.value;
    ctx.addIssue({ code: "custom", message: `server_addr ${parsed.error}` });
    return z.NEVER;
  },
);

const publicBase = httpUrl("redirect_uri").superRefine((base, ctx) => {
  // zod 3 runs refinements even after the transform failed; there is nothing to check then.
  if (typeof base !== "string") return;
  const host = new URL(base).hostname;
  if (host === "0.0.0.0" || host === "[::]") {
    ctx.addIssue({
      code: "custom",
      message: `redirect_uri "${base}" uses ${host}, which a browser cannot open; use the address you browse to`,
    });
  }
});

/**
 * Why a character of auth_key cannot be typed into /authorize?key=… as written. The key is typed
 * into a browser's address bar, which sends the URL as it reads it, and the server decodes the query
 * as URLSearchParams does. Measured for every ASCII character: these are the ones whose key does not
 * arrive as written (other punctuation and non-ASCII letters do, percent-encoded by the browser).
 */
function unusableInUrl(character: string): string | null {
  if (character === "#") return "which a browser does not send to the server";
  if (character === "&") return "which a browser sends as the start of another parameter";
  if (character === "+") return "which the server reads as a space";
  if (character === "%") return "which the server reads as the start of an encoded character";
  if (/\s/.test(character)) return "a space or line break, which an address bar trims, drops or turns into a search";
  // deno-lint-ignore no-control-regex -- control characters are what is refused here
  if (/[\x00-\x1f\x7f-\x9f]/.test(character)) return "a control character, which cannot be typed";
  return null;
}

const authKey = z.string(typeError("auth_key must be a string")).superRefine((key, ctx) => {
  const unusable = [...key].map((character) => [character, unusableInUrl(character)] as const)
    .find(([, why]) => why !== null);
  if (key.trim() === "") {
    ctx.addIssue({ code: "custom", message: "auth_key is empty" });
  } else if (EXAMPLE_AUTH_KEYS.includes(key)) {
    ctx.addIssue({
      code: "custom",
      message: "auth_key is the published example key; choose your own random string",
    });
  } else if (unusable) {
    ctx.addIssue({
      code: "custom",
      message: `auth_key contains ${JSON.stringify(unusable[0])}, ${unusable[1]}; use letters, digits and - _ . ~`,
    });
  } else if (key.length < MIN_AUTH_KEY_LENGTH) {
    ctx.addIssue({
      code: "custom",
      message: `auth_key is too short (${key.length} characters, at least ${MIN_AUTH_KEY_LENGTH})`,
    });
  }
});

/** The config file's keys, validated and normalised. */
export const configFileSchema = z.strictObject({
  account_id: z.string(typeError("account_id must be a string")).regex(
    /^acc_[0-9A-Za-z]+$/,
    "account_id must look like acc_…",
  ).optional(),
  client_id: nonEmpty("client_id"),
  client_secret: nonEmpty("client_secret"),
  server_addr: listenAddress,
  redirect_uri: publicBase,
  auth_key: authKey,
  api_url: httpUrl("api_url").default("https://api.monzo.com"),
  auth_url: httpUrl("auth_url").default("https://auth.monzo.com"),
  tokens_path: nonEmpty("tokens_path").default("tokens.json"),
  poll_interval_minutes: z.number(typeError("poll_interval_minutes must be a number"))
    .refine((n) => POLL_INTERVALS.includes(n), {
      message: `poll_interval_minutes must be one of ${POLL_INTERVALS.join(", ")}`,
    }).default(1),
  data_path: nonEmpty("data_path").default("monzo-exporter.kv"),
  history_days: z.number(typeError("history_days must be a number"))
    .int("history_days must be a whole number of days")
    .min(0, "history_days must be 0 (everything) or more").default(0),
  month_start_day: z.number(typeError("month_start_day must be a number"))
    .int("month_start_day must be a whole day of the month")
    .min(MIN_MONTH_START_DAY, `month_start_day must be between ${MIN_MONTH_START_DAY} and ${MAX_MONTH_START_DAY}`)
    .max(MAX_MONTH_START_DAY, `month_start_day must be between ${MIN_MONTH_START_DAY} and ${MAX_MONTH_START_DAY}`)
    .default(1),
  budget_currency: z.string(typeError("budget_currency must be a string"))
    .regex(/^[A-Z]{3}$/, "budget_currency must be a currency code such as GBP").default("GBP"),
  budgets: z.record(
    z.string().min(1, "is an empty category name").max(100, "is too long a category name")
      .refine((name) => !/\p{Cc}/u.test(name), "has control characters"),
    z.number(typeError("must be a number in major units, e.g. 250")).finite("must be a finite number")
      .min(0, "must not be negative"),
    typeError("budgets must be a table, e.g. [budgets] with eating_out = 250"),
  ).default({}),
  payday_min_amount: z.number(typeError("payday_min_amount must be a number in major units, e.g. 1500"))
    .finite("payday_min_amount must be a finite number")
    .min(0.01, "payday_min_amount must be at least 0.01 (a penny)")
    .max(MAX_AMOUNT, `payday_min_amount must be at most ${MAX_AMOUNT} (no transaction is larger)`).optional(),
  accounts: accountsSchema.default({}),
  rules: rulesSchema.default([]),
  web_config_file: nonEmpty("web_config_file").optional(),
  request_timeout_seconds: z.number(typeError("request_timeout_seconds must be a number"))
    .min(1, "request_timeout_seconds must be at least 1")
    .max(120, "request_timeout_seconds must be at most 120")
    .default(10),
});

/** Everything the exporter needs to know from its configuration. */
export interface Config {
  /** Absolute path of the file this came from, for messages. */
  readonly path: string;
  /** The one account to export, or null to discover every open account. */
  readonly accountId: string | null;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly listen: ListenAddress;
  /** Public base URL of the exporter (the config key `redirect_uri`), without a trailing slash. */
  readonly publicUrl: string;
  /** Where Monzo sends the browser back to: `{publicUrl}/callback`. */
  readonly callbackUrl: string;
  readonly authKey: string;
  readonly apiUrl: string;
  readonly authUrl: string;
  /** Absolute path of the tokens file. */
  readonly tokensPath: string;
  readonly pollIntervalMinutes: number;
  readonly requestTimeoutMs: number;
  /** Where the transactions are kept: an absolute file path, `:memory:`, or a remote KV URL. */
  readonly dataPath: string;
  /** Days of history to import at login; 0 for everything. */
  readonly historyDays: number;
  /** Day of the month (1–28) the budget month starts, at 00:00 Europe/London. */
  readonly monthStartDay: number;
  /** Monthly budget per category, in major units of `budgetCurrency`. */
  readonly budgets: ReadonlyMap<string, number>;
  readonly budgetCurrency: string;
  /** The smallest credit, in minor units of `budgetCurrency`, that starts a pay-day month; null when off. */
  readonly paydayMinMinor: number | null;
  /** The fraction (0, 1] of each listed account's figures that counts (`[accounts.acc_…] share`). */
  readonly accountShares: ReadonlyMap<string, number>;
  /** The `[[rules]]`, in the file's order, their patterns compiled. */
  readonly rules: readonly Rule[];
  /** Names of the environment variables that supplied values. */
  readonly fromEnv: readonly string[];
  /** Absolute path of the exporter-toolkit web config (TLS, basic auth), or null for plain HTTP. */
  readonly webConfigFile: string | null;
}

/** Environment lookup, passed in so tests need not touch the real environment. */
export type Env = (name: string) => string | undefined;

/** Validates parsed TOML (plus environment overrides) into a Config. */
export function configFromObject(
  raw: Record<string, unknown>,
  options: { path: string; env?: Env },
): Result<Config> {
  const merged: Record<string, unknown> = { ...raw };
  const fromEnv: string[] = [];
  for (const [name, key] of Object.entries(ENV_OVERRIDES)) {
    const value = options.env?.(name);
    if (value !== undefined && value !== "") {
      merged[key] = value;
      fromEnv.push(name);
    }
  }
  const parsed = configFileSchema.safeParse(merged);
  if (!parsed.success) return err(describeIssue(firstIssue(parsed.error.issues), merged));
  const file = parsed.data;
  const unexported = unexportedAccount(file.account_id ?? null, file.accounts, file.rules);
  if (unexported !== null) return err(unexported);
  return ok({
    path: options.path,
    accountId: file.account_id ?? null,
    clientId: file.client_id,
    clientSecret: file.client_secret,
    listen: file.server_addr,
    publicUrl: file.redirect_uri,
    callbackUrl: `${file.redirect_uri}/callback`,
    authKey: file.auth_key,
    apiUrl: file.api_url,
    authUrl: file.auth_url,
    tokensPath: besideFile(options.path, file.tokens_path),
    pollIntervalMinutes: file.poll_interval_minutes,
    requestTimeoutMs: file.request_timeout_seconds * 1000,
    dataPath: file.data_path === ":memory:" || /^https?:\/\//.test(file.data_path)
      ? file.data_path
      : besideFile(options.path, file.data_path),
    historyDays: file.history_days,
    monthStartDay: file.month_start_day,
    budgets: new Map(Object.entries(file.budgets)),
    budgetCurrency: file.budget_currency,
    // Minor units as budgets are shown: major() divides by 100, so this multiplies by it.
    paydayMinMinor: file.payday_min_amount === undefined ? null : Math.round(file.payday_min_amount * 100),
    accountShares: file.accounts,
    rules: file.rules,
    fromEnv,
    webConfigFile: file.web_config_file === undefined ? null : besideFile(options.path, file.web_config_file),
  });
}

/**
 * With `account_id` set only that account is read, so a share or a rule's `account_id` naming another
 * would silently count nothing: the line saying so, or null.
 */
function unexportedAccount(
  accountId: string | null,
  shares: ReadonlyMap<string, number>,
  rules: readonly Rule[],
): string | null {
  if (accountId === null) return null;
  const why = `is not exported (account_id = ${accountId} exports only that account)`;
  for (const id of shares.keys()) {
    if (id !== accountId) return `accounts.${id} ${why}, so its share would count nothing`;
  }
  const rule = rules.find((one) => one.accountId !== null && one.accountId !== accountId);
  return rule ? `rules[${rule.index}].account_id ${rule.accountId} ${why}, so the rule would never match` : null;
}

/**
 * The issue to report: the first, unless its table also has an unknown key, which is then the likelier
 * cause (`shar = 0.5` is why `share` is missing) and is reported instead.
 */
function firstIssue(issues: readonly z.ZodIssue[]): z.ZodIssue {
  const first = issues[0];
  const sameTable = (issue: z.ZodIssue) =>
    issue.code === "unrecognized_keys" && issue.path.every((part, i) => first.path[i] === part);
  return issues.find(sameTable) ?? first;
}

function describeIssue(issue: z.ZodIssue, input: Record<string, unknown>): string {
  const key = String(issue.path[0] ?? "");
  if (key === "rules" && issue.path.length > 1) return describeRuleIssue(issue);
  if (key === "accounts" && issue.path.length > 1) {
    const where = `accounts.${issue.path.slice(1).map(String).join(".")}`;
    if (issue.code === "unrecognized_keys") {
      return `${where}: unknown key ${issue.keys.map((k) => `"${k}"`).join(", ")} (known keys: share)`;
    }
    return `${where} ${issue.message}`;
  }
  if (issue.code === "unrecognized_keys") {
    const known = Object.keys(configFileSchema.shape).join(", ");
    return `unknown key ${issue.keys.map((k) => `"${k}"`).join(", ")} (known keys: ${known})`;
  }
  // A budget names its category, so the message says which one (budgets.eating_out must not be negative).
  if (key === "budgets" && issue.path.length > 1) return `budgets.${String(issue.path[1])} ${issue.message}`;
  if (key && input[key] === undefined) {
    const envName = Object.entries(ENV_OVERRIDES).find(([, k]) => k === key)?.[0];
    return envName ? `${key} is missing (set it in the file or in ${envName})` : `${key} is missing`;
  }
  return issue.message;
}

/** A problem in one `[[rules]]` table, named as `rules[N]` (1-based, as the file counts) and its key. */
function describeRuleIssue(issue: z.ZodIssue): string {
  const rule = `rules[${Number(issue.path[1]) + 1}]`;
  if (issue.code === "unrecognized_keys") {
    return `${rule}: unknown key ${issue.keys.map((k) => `"${k}"`).join(", ")} (known keys: ${RULE_KEYS.join(", ")})`;
  }
  const key = issue.path.slice(2).map(String).join(".");
  return `${rule}${key ? `.${key}` : ""} ${issue.message}`;
}

/** The largest config file read: a real one is a few hundred bytes. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The config file's text, or null when there is none; anything but a regular file (or a link to one) is
 * refused before it is opened, and the read is bounded in size and time (lib/shared/regular_file.ts). The
 * health check reads the config through this too.
 */
async function readConfigText(path: string): Promise<Result<string | null>> {
  const read = await readRegularFile(path, { maxBytes: MAX_CONFIG_BYTES, what: "a config file" });
  if (!read.ok || read.value === null) return read as Result<null>;
  return ok(new TextDecoder().decode(read.value.bytes));
}

/** The parsed TOML of the config file at `absolute`, or null when there is none; the error is its detail. */
async function readConfigToml(absolute: string): Promise<Result<Record<string, unknown> | null>> {
  const read = await readConfigText(absolute);
  if (!read.ok || read.value === null) return read as Result<null>;
  try {
    return ok(parseToml(read.value));
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = error.message.replace(/^Invalid TOML document: /, "").split("\n")[0];
    return err(`invalid TOML at line ${error.line}, column ${error.column}: ${reason}`);
  }
}

/** Reads, parses and validates a config file; the error is one line naming the file. */
export async function loadConfig(path: string, options: { env?: Env } = {}): Promise<Result<Config>> {
  const absolute = resolve(path);
  // Values are quoted in messages as written, so line breaks in them are escaped to keep one line.
  const fail = (detail: string) =>
    err(`Cannot load config "${absolute}": ${detail}`.replaceAll("\r", "\\r").replaceAll("\n", "\\n"));
  const raw = await readConfigToml(absolute);
  if (!raw.ok) return fail(raw.error);
  if (raw.value === null) return fail("file not found (copy config.example.toml to start one, or try --demo)");
  const config = configFromObject(raw.value, { path: absolute, env: options.env });
  return config.ok ? config : fail(config.error);
}

/** What `--healthcheck` reads of a config file: its two keys, each validated as the exporter does. */
export interface ProbeKeys {
  /** Absolute path of the config file, for messages. */
  readonly path: string;
  /** `server_addr`, or why it is missing or unusable. */
  readonly listen: Result<ListenAddress>;
  /** `web_config_file` made absolute (null when absent), or why it is unusable. */
  readonly webConfigFile: Result<string | null>;
}

/**
 * The keys `--healthcheck` needs from the config file at `path`, or null when there is no file. Only
 * those two are validated, so the probe works whatever else the file lacks (secrets that only the
 * exporter's environment holds); the error is one line naming the file.
 */
export async function loadProbeKeys(path: string): Promise<Result<ProbeKeys | null>> {
  const absolute = resolve(path);
  const raw = await readConfigToml(absolute);
  if (!raw.ok) return err(`Cannot read config "${absolute}": ${raw.error}`);
  if (raw.value === null) return ok(null);
  const value = raw.value;
  const key = <K extends "server_addr" | "web_config_file">(name: K) => {
    const parsed = configFileSchema.shape[name].safeParse(value[name]);
    if (parsed.success) return ok(parsed.data as z.infer<typeof configFileSchema.shape[K]>);
    return err(value[name] === undefined ? `${name} is missing` : parsed.error.issues[0].message);
  };
  const listen = key("server_addr");
  const file = key("web_config_file");
  return ok({
    path: absolute,
    listen,
    webConfigFile: file.ok ? ok(file.value === undefined ? null : besideFile(absolute, file.value)) : file,
  });
}

/** A one-line description of a config, without any secret. */
export function summarizeConfig(config: Config): string {
  const accounts = config.accountId ? `account ${config.accountId}` : "every open account";
  const env = config.fromEnv.length ? `; from environment: ${config.fromEnv.join(", ")}` : "";
  return `Config "${config.path}" is valid: ${accounts}, client ${config.clientId}, ` +
    `listening on ${formatListenAddress(config.listen)}, callback ${config.callbackUrl}, ` +
    `tokens in "${config.tokensPath}", transactions in "${config.dataPath}", poll every ${config.pollIntervalMinutes} min, ` +
    `API ${config.apiUrl}${rulesSummary(config)}${env}`;
}

// Said only when set, so a config without them reads as before.
function rulesSummary(config: Config): string {
  const parts: string[] = [];
  if (config.rules.length) parts.push(`${config.rules.length} rule${config.rules.length === 1 ? "" : "s"}`);
  if (config.accountShares.size) {
    parts.push(`a share of ${config.accountShares.size} account${config.accountShares.size === 1 ? "" : "s"}`);
  }
  if (config.paydayMinMinor !== null) parts.push("pay-day months");
  return parts.length ? `, ${parts.join(", ")}` : "";
}
