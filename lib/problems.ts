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
  | "data_unwritable";

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
}

function who(subject: string): string {
  return subject || "the stored login";
}

function logInAgain(facts: ProblemFacts): string {
  return facts.loginLink ? `log in again at ${facts.loginLink}` : "log in again";
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
