/**
 * Problems are values: a code that tests and code branch on, the subject it is about (a user id, an
 * account id, a file path, an endpoint) and the sentence shown to people. Every sentence a problem
 * can show is written here and nowhere else.
 */

/** What went wrong, as a stable identifier. */
export type ProblemCode =
  | "no_login"
  | "logged_out"
  | "no_refresh_token"
  | "awaiting_approval"
  | "token_refused"
  | "refresh_failed"
  | "client_rejected"
  | "identify_failed"
  | "accounts_failed"
  | "account_failed"
  | "account_id_not_found"
  | "rate_limited"
  | "unreachable"
  | "tokens_unreadable"
  | "tokens_unwritable"
  | "data_unwritable"
  | "data_unavailable"
  | "balance_unsaved"
  | "transactions_stuck"
  | "transactions_request_limit"
  | WebConfigCode;

/** Why a web config file (`--web.config.file`) is refused or not applied; its subject is the file's path. */
export type WebConfigCode =
  | "web_config_unreadable"
  | "web_config_yaml_syntax"
  | "web_config_unknown_key"
  | "web_config_unsupported"
  | "web_config_invalid_value"
  | "web_config_tls_incomplete"
  | "web_config_tls_twice"
  | "web_config_cert_unreadable"
  | "web_config_key_unreadable"
  | "web_config_cert_invalid"
  | "web_config_key_invalid"
  | "web_config_key_mismatch"
  | "web_config_bad_hash"
  | "web_config_needs_restart"
  | "web_config_protection_off"
  | "web_config_not_applied"
  | "web_config_needs_https";

/** One problem: what, about whom or what, and the sentence to show. */
export interface Problem {
  readonly code: ProblemCode;
  /** A user id, account id, file path or endpoint; "" when the problem is about the whole exporter. */
  readonly subject: string;
  /** The sentence for the log and the pages, saying what to do. */
  readonly message: string;
}

/** The facts a sentence may need besides the subject. */
export interface ProblemFacts {
  /** Monzo's or the system's own words (already free of secrets). */
  readonly detail?: string;
  /** The `/authorize` link with a placeholder for the key. */
  readonly loginLink?: string;
  /** Epoch ms, e.g. when a rate-limit pause ends. */
  readonly until?: number;
  /** The account id named in the config. */
  readonly accountId?: string;
  /** The dotted key of a file that the sentence is about; "" or absent for the whole file. */
  readonly key?: string;
  /** Another file that the subject names (a certificate of a web config). */
  readonly file?: string;
  /** Where in the subject's file, 1-based. */
  readonly line?: number;
  readonly column?: number;
  /** The half of a TLS pair that a web config lacks or names twice. */
  readonly half?: "cert" | "key";
  /** TLS being turned "on" or "off". */
  readonly turning?: "on" | "off";
  /** The protection a reloaded web config would turn off. */
  readonly protection?: "basic auth" | "TLS";
  /** A URL the sentence is about, e.g. the configured redirect_uri. */
  readonly url?: string;
  /** How many of something: requests, transactions. */
  readonly count?: number;
}

function who(subject: string): string {
  return subject || "the stored login";
}

function logInAgain(facts: ProblemFacts): string {
  return facts.loginLink ? `log in again at ${facts.loginLink}` : "log in again";
}

/** The start shared by every refusal of a web config file: the file, then the key when one is named. */
function webConfig(subject: string, facts: ProblemFacts): string {
  return `Cannot load web config "${subject}": ${facts.key ? `${facts.key} ` : ""}`;
}

const SENTENCES: { readonly [code in ProblemCode]: (subject: string, facts: ProblemFacts) => string } = {
  no_login: (_, f) => `No Monzo login yet: log in at ${f.loginLink ?? "/authorize?key=YOUR_AUTH_KEY"}`,
  logged_out: (s, f) => `Monzo refused to renew the login of ${who(s)} (${f.detail}): ${logInAgain(f)}`,
  no_refresh_token: (s, f) =>
    `The login of ${who(s)} has expired and Monzo gave no refresh token (is the OAuth client confidential?): ` +
    logInAgain(f),
  awaiting_approval: (s, f) =>
    `The login of ${who(s)} is waiting for approval in the Monzo app (or the approval lapsed): open the ` +
    `Monzo app and allow access; if no request shows there, ${logInAgain(f)}`,
  token_refused: (s, f) =>
    `Monzo refused the access token of ${who(s)} (${f.detail}) and it could not be renewed; it is tried ` +
    `again at the next poll; if this persists, ${logInAgain(f)}`,
  refresh_failed: (s, f) =>
    `Cannot refresh the login of ${who(s)}: ${f.detail}; the stored tokens are kept and the refresh is ` +
    `retried at the next poll`,
  client_rejected: (s, f) =>
    `Cannot refresh the login of ${who(s)}: ${f.detail}; check client_id and client_secret in the config`,
  identify_failed: (_, f) =>
    `Cannot tell which Monzo user the stored login belongs to (${f.detail}); Monzo is asked again at the ` +
    `next poll`,
  accounts_failed: (s, f) =>
    `Cannot list the accounts of ${who(s)}: ${f.detail}; the accounts found before are kept and the next ` +
    `poll tries again`,
  account_failed: (s, f) => `Cannot read account ${s}: ${f.detail}; its last values are kept`,
  account_id_not_found: (s) =>
    `account_id ${s} is not an open account of the logged-in users: fix account_id in the config, or ` +
    `remove it to export every open account`,
  rate_limited: (s, f) =>
    `Monzo is rate limiting the exporter (HTTP 429 on ${s}); polling pauses until ` +
    `${f.until === undefined ? "later" : isoTime(f.until)}. Avoid other apps using the same OAuth client`,
  unreachable: (_, f) => `${f.detail}; the last values are kept and the next poll tries again`,
  tokens_unreadable: (_, f) => `${f.detail}; log in again (the file is kept aside at the next login)`,
  tokens_unwritable: (_, f) =>
    `${f.detail}; the logins are kept in memory only and writing is retried every poll: fix this before the ` +
    `exporter restarts, or the logins are lost`,
  data_unwritable: (s, f) =>
    `Cannot store the transactions of account ${s}: ${f.detail}; they are read again from Monzo at the next poll`,
  data_unavailable: (_, f) =>
    `${f.detail}; the transaction figures of the last poll are kept and the next poll tries again`,
  balance_unsaved: (s, f) =>
    `${f.detail}; the balance of account ${s} is exported as read, and kept in the store at a later poll`,
  transactions_stuck: (s, f) =>
    `Monzo keeps answering the same transactions of account ${s} (${f.detail}): paging stopped there; what ` +
    "was read is kept, and the next poll tries again",
  transactions_request_limit: (s, f) =>
    `Reading the transactions of account ${s} took the most requests a poll may make (${f.count}); what was ` +
    "read is kept, and the next poll goes on",
  web_config_unreadable: (s, f) => `${webConfig(s, f)}${f.detail}`,
  web_config_yaml_syntax: (s, f) =>
    `${webConfig(s, f)}is not valid YAML${f.line === undefined ? "" : ` at line ${f.line}, column ${f.column}`}: ` +
    f.detail,
  web_config_unknown_key: (s, f) => `${webConfig(s, f)}is not a key of the web config (a typo?)`,
  web_config_unsupported: (s, f) => `${webConfig(s, f)}is not supported: ${f.detail}`,
  web_config_invalid_value: (s, f) => `${webConfig(s, f)}${f.detail}`,
  web_config_tls_incomplete: (s, f) => `${webConfig(s, f)}needs ${f.half}_file (or ${f.half} inline)`,
  web_config_tls_twice: (s, f) => `${webConfig(s, f)}and ${f.half}_file are both set; use one`,
  web_config_cert_unreadable: (s, f) => `${webConfig(s, f)}"${f.file}": ${f.detail}`,
  web_config_key_unreadable: (s, f) => `${webConfig(s, f)}"${f.file}": ${f.detail}`,
  web_config_cert_invalid: (s, f) =>
    webConfig(s, f) +
    (f.detail
      ? `is not a valid PEM certificate: ${f.detail}`
      : "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
  web_config_key_invalid: (s, f) => `${webConfig(s, f)}is not a valid unencrypted PEM private key: ${f.detail}`,
  web_config_key_mismatch: (s, f) => `${webConfig(s, f)}is not the private key of the certificate`,
  web_config_bad_hash: (s, f) =>
    `${webConfig(s, f)}is not a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-31, 60 characters; make one with ` +
    `htpasswd -nBC 10 "" | tr -d ':\\n')`,
  web_config_needs_restart: (s, f) => `Cannot apply web config "${s}": turning TLS ${f.turning} needs a restart`,
  web_config_protection_off: (s, f) =>
    `Refused to reload web config "${s}": it has no ${f.key}, so it would turn ${f.protection} off (a file caught ` +
    `empty or half-written reads so too); turning ${f.protection} off needs a restart`,
  web_config_not_applied: (s, f) => `Cannot apply web config "${s}": ${f.detail}`,
  web_config_needs_https: (s, f) =>
    `Cannot use web config "${s}": it turns TLS on, but redirect_uri "${f.url}" starts with http://; use ` +
    "https:// so that Monzo sends the browser back over TLS",
};

/** Makes a problem, its sentence taken from the one table of them. */
export function problem(code: ProblemCode, subject: string, facts: ProblemFacts = {}): Problem {
  return { code, subject, message: SENTENCES[code](subject, facts) };
}

/** A time as shown to people: ISO 8601 in UTC, or "a time out of range" for an absurd value. */
export function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? "a time out of range" : date.toISOString();
}
