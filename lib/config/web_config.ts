/**
 * The Prometheus exporter-toolkit web configuration file (`--web.config.file`): TLS, basic auth users
 * and extra response headers, in the YAML a user already has for node_exporter. What Deno cannot do
 * is refused by name rather than ignored; the file is read again when it or its certificate changes.
 *
 * The YAML parser and node:crypto are imported when a file is first loaded, so that an exporter run
 * without a web config never loads them.
 */

import { besideFile, resolve } from "../shared/file_path.ts";
import { z } from "zod/v3";
import type { Logger } from "../shared/log.ts";
import { type Problem, problem, type ProblemFacts, type WebConfigCode } from "../shared/problems.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { errorMessage, fileErrorMessage } from "../shared/error_message.ts";

/** A refused web config: a problem about the file's absolute path, and the key it is about (dotted; "" for the file). */
export interface WebConfigError extends Problem {
  readonly code: WebConfigCode;
  readonly key: string;
  /** The files read or tried, so a reload notices when one of them appears or changes. */
  readonly files: readonly string[];
  /** What was read from them (see {@link WebConfig.read}). */
  readonly read: string;
}

/** A certificate chain and its private key, in PEM, as `Deno.serve` takes them. */
export interface TlsPair {
  readonly cert: string;
  readonly key: string;
}

/** A valid web config. */
export interface WebConfig {
  /** Absolute path of the file. */
  readonly path: string;
  /** null: plain HTTP. */
  readonly tls: TlsPair | null;
  /** User name → bcrypt hash; empty: no basic auth. */
  readonly users: ReadonlyMap<string, string>;
  /** `http_server_config.headers` with a value, in the file's spelling. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The files it was read from: the YAML, then any cert_file and key_file. */
  readonly files: readonly string[];
  /** Their contents as read, to compare with the files later. */
  readonly read: string;
}

/**
 * Keys of the toolkit's format that Deno cannot honour, and why. A value listed as harmless asks for
 * what Deno does anyway (the toolkit's default), so a pasted file that spells out a default still loads.
 */
const UNSUPPORTED: ReadonlyArray<{ key: string; why: string; harmless?: readonly unknown[] }> = [
  {
    key: "tls_server_config.min_version",
    why: "Deno serves TLS 1.2 and 1.3 and no other range; it cannot refuse TLS 1.2 (only TLS12 is accepted)",
    harmless: ["TLS12"],
  },
  {
    key: "tls_server_config.max_version",
    why: "Deno offers TLS 1.3 and cannot be held below it (only TLS13 is accepted)",
    harmless: ["TLS13"],
  },
  {
    key: "tls_server_config.client_auth_type",
    why: "Deno.serve cannot ask for client certificates (only NoClientCert is accepted)",
    harmless: ["NoClientCert", ""],
  },
  { key: "tls_server_config.client_ca_file", why: "Deno.serve cannot verify client certificates" },
  { key: "tls_server_config.client_ca", why: "Deno.serve cannot verify client certificates" },
  { key: "tls_server_config.client_allowed_sans", why: "Deno.serve cannot verify client certificates" },
  { key: "tls_server_config.cipher_suites", why: "Deno.serve has no setting for cipher suites" },
  { key: "tls_server_config.curve_preferences", why: "Deno.serve has no setting for curves" },
  {
    key: "tls_server_config.prefer_server_cipher_suites",
    why: "Deno.serve has no setting for cipher suite order",
  },
  {
    key: "http_server_config.http2",
    why: "Deno.serve always offers HTTP/2 over TLS and cannot turn it off (only true is accepted)",
    harmless: [true],
  },
  { key: "rate_limit", why: "the exporter has no request rate limiter; put a reverse proxy in front for one" },
];

/** The headers the toolkit lets a file set, and the values it allows where it restricts them. */
const HEADERS = {
  "Strict-Transport-Security": null,
  "X-Content-Type-Options": ["nosniff"],
  "X-Frame-Options": ["deny", "sameorigin"],
  "X-XSS-Protection": null,
  "Content-Security-Policy": null,
} as const;

// A header value must stay one header, and be one that every answer can carry: printable ASCII only.
// A line break would split it; a character beyond Latin-1 (a typographic quote pasted from a web page)
// makes \`Headers\` throw on every answer.
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

const headerValue = (name: keyof typeof HEADERS) => {
  const allowed = HEADERS[name];
  const text = z.string({ invalid_type_error: "must be a string" }).refine((v) => PRINTABLE_ASCII.test(v), {
    message: "must be printable ASCII: no line breaks, control characters or typographic quotes",
  });
  return (allowed === null ? text : text.refine((v) => v === "" || (allowed as readonly string[]).includes(v), {
    message: `must be one of ${allowed.join(", ")}`,
  })).optional();
};

const passThrough = z.unknown().optional();

/** The file's keys; unsupported ones pass here and are refused by name before. */
const webConfigSchema = z.object({
  tls_server_config: z.object({
    cert: z.string({ invalid_type_error: "must be a string" }).optional(),
    key: z.string({ invalid_type_error: "must be a string" }).optional(),
    cert_file: z.string({ invalid_type_error: "must be a string" }).optional(),
    key_file: z.string({ invalid_type_error: "must be a string" }).optional(),
    min_version: passThrough,
    max_version: passThrough,
    client_auth_type: passThrough,
    client_ca_file: passThrough,
    client_ca: passThrough,
    client_allowed_sans: passThrough,
    cipher_suites: passThrough,
    curve_preferences: passThrough,
    prefer_server_cipher_suites: passThrough,
  }, { invalid_type_error: "must be a mapping" }).strict().nullish(),
  http_server_config: z.object({
    http2: passThrough,
    headers: z.object({
      "Strict-Transport-Security": headerValue("Strict-Transport-Security"),
      "X-Content-Type-Options": headerValue("X-Content-Type-Options"),
      "X-Frame-Options": headerValue("X-Frame-Options"),
      "X-XSS-Protection": headerValue("X-XSS-Protection"),
      "Content-Security-Policy": headerValue("Content-Security-Policy"),
    }, { invalid_type_error: "must be a mapping of header names to values" }).strict().nullish(),
  }, { invalid_type_error: "must be a mapping" }).strict().nullish(),
  basic_auth_users: z.record(
    z.string().refine((user) => !user.includes(":"), {
      message: "is a user name with a colon, which basic auth cannot send",
    }),
    z.string({ invalid_type_error: "must be a bcrypt hash (a string)" }),
    { invalid_type_error: "must be a mapping of user names to bcrypt hashes" },
  ).nullish(),
  rate_limit: passThrough,
}, { invalid_type_error: "must be a mapping" }).strict();

/** A bcrypt hash as htpasswd and the toolkit write it: `$2a$`, `$2b$` or `$2y$`, cost 04–31. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** Reads and validates a web config file; a refusal is one line naming the file and the key. */
export async function loadWebConfig(path: string): Promise<Result<WebConfig, WebConfigError>> {
  const absolute = resolve(path);
  const files = [absolute];
  const texts: string[] = [];
  const fail = (code: WebConfigCode, key: string, facts: ProblemFacts = {}) => {
    const { message } = problem(code, absolute, { ...facts, key });
    // One line whatever the file holds: a key or a parser's words may carry line breaks.
    const line = message.replaceAll("\r", "\\r").replaceAll("\n", "\\n");
    return err({ code, subject: absolute, key, message: line, files: [...files], read: JSON.stringify(texts) });
  };

  const text = await readText(absolute);
  texts.push(said(text));
  if (!text.ok) return fail("web_config_unreadable", "", { detail: text.error });
  const { parseDocument } = await import("yaml");
  // The document rather than `parse`, which writes warnings to standard error over several lines.
  const document = parseDocument(text.value, { prettyErrors: true });
  // A warning (an unknown tag, say) is refused too: the file would not mean what it seems to.
  const mistake = document.errors[0] ?? document.warnings[0];
  if (mistake) {
    const at = mistake.linePos?.[0];
    const reason = mistake.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    return fail("web_config_yaml_syntax", "", { detail: reason, line: at?.line, column: at?.col });
  }
  let raw: unknown;
  try {
    raw = document.toJS();
  } catch (error) {
    // Aliases that would expand into a huge value, which the parser refuses to build.
    return fail("web_config_yaml_syntax", "", { detail: errorMessage(error) });
  }
  // An empty file is the toolkit's "no TLS, no users".
  raw ??= {};

  for (const { key, why, harmless } of UNSUPPORTED) {
    const value = lookup(raw, key);
    if (value !== undefined && value !== null && !harmless?.includes(value)) {
      return fail("web_config_unsupported", key, { detail: why });
    }
  }
  const parsed = webConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      const key = [at, issue.keys[0]].filter(Boolean).join(".");
      return fail("web_config_unknown_key", key);
    }
    return fail("web_config_invalid_value", at, { detail: issue.message });
  }
  const file = parsed.data;

  const users = new Map<string, string>();
  for (const [user, hash] of Object.entries(file.basic_auth_users ?? {})) {
    // The hash is not shown: it is not the password, but it is what an attacker would crack.
    if (!BCRYPT.test(hash)) {
      return fail("web_config_bad_hash", `basic_auth_users.${user}`);
    }
    users.set(user, hash);
  }

  const headers = Object.entries(file.http_server_config?.headers ?? {})
    .filter((entry): entry is [string, string] => typeof entry[1] === "string" && entry[1] !== "");

  const tls = file.tls_server_config ?? {};
  const wantsTls = [tls.cert, tls.key, tls.cert_file, tls.key_file].some((v) => v !== undefined && v !== "");
  if (!wantsTls) return ok({ path: absolute, tls: null, users, headers, files, read: JSON.stringify(texts) });

  const material = async (kind: "cert" | "key"): Promise<Result<string, [WebConfigCode, string, ProblemFacts]>> => {
    const inline = tls[kind] ?? "";
    const named = tls[`${kind}_file`] ?? "";
    const prefix = "tls_server_config.";
    if (inline && named) return err(["web_config_tls_twice", `${prefix}${kind}`, { half: kind }]);
    if (inline) return ok(inline);
    // Relative to the web config's folder, as the toolkit resolves them.
    const where = besideFile(absolute, named);
    files.push(where);
    const read = await readText(where);
    texts.push(said(read));
    if (!read.ok) {
      return err([`web_config_${kind}_unreadable`, `${prefix}${kind}_file`, { file: where, detail: read.error }]);
    }
    return ok(read.value);
  };
  for (const kind of ["cert", "key"] as const) {
    if (!tls[kind] && !tls[`${kind}_file`]) {
      return fail("web_config_tls_incomplete", "tls_server_config", { half: kind });
    }
  }
  const cert = await material("cert");
  if (!cert.ok) return fail(...cert.error);
  const key = await material("key");
  if (!key.ok) return fail(...key.error);
  const checked = await checkPair(cert.value, key.value);
  if (!checked.ok) {
    const [code, kind, detail] = checked.error;
    const name = `tls_server_config.${tls[`${kind}_file`] ? `${kind}_file` : kind}`;
    return fail(code, name, { detail });
  }
  const pair = { cert: cert.value, key: key.value };
  return ok({ path: absolute, tls: pair, users, headers, files, read: JSON.stringify(texts) });
}

/** Parses the PEM and checks that the key is the certificate's, before anything listens with them. */
async function checkPair(
  cert: string,
  key: string,
): Promise<Result<void, [WebConfigCode, "cert" | "key", string | undefined]>> {
  const { X509Certificate, createPrivateKey } = await import("node:crypto");
  if (!cert.includes("-----BEGIN CERTIFICATE-----")) {
    return err(["web_config_cert_invalid", "cert", undefined]);
  }
  let certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    return err(["web_config_cert_invalid", "cert", errorMessage(error)]);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    return err(["web_config_key_invalid", "key", errorMessage(error)]);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    return err(["web_config_key_mismatch", "key", undefined]);
  }
  return ok(undefined);
}

function lookup(raw: unknown, dotted: string): unknown {
  let value = raw;
  for (const part of dotted.split(".")) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The most a web config, certificate or key file may hold: far beyond any real one. */
export const MAX_WEB_FILE_BYTES = 1 << 20;
/** How long reading one of them may take before it counts as unreadable (a stuck network mount, say). */
const READ_TIMEOUT_MS = 2_000;

/**
 * The text of a regular file (or a link to one), bounded in size and in time. Anything else is refused
 * before it is opened: opening a FIFO waits for a writer, for ever, and a device may never end.
 */
async function readText(path: string): Promise<Result<string>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<Result<string>>((resolve) => {
    timer = setTimeout(
      () => resolve(err(`could not be read within ${READ_TIMEOUT_MS / 1000} s`)),
      READ_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([readRegular(path), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function readRegular(path: string): Promise<Result<string>> {
  try {
    // stat follows links, which were always allowed (Kubernetes mounts secrets as links).
    const info = await Deno.stat(path);
    const kind = notRegular(info);
    if (kind) return err(`is ${kind}, not a regular file`);
    if (info.size > MAX_WEB_FILE_BYTES) return err(tooLarge());
    using file = await Deno.open(path, { read: true });
    // Replaced between the look and the open: what was opened is what counts.
    const opened = notRegular(await file.stat());
    if (opened) return err(`is ${opened}, not a regular file`);
    // One byte more than the limit, to tell a file at the limit from one beyond it (it may have grown).
    const buffer = new Uint8Array(Math.min(info.size, MAX_WEB_FILE_BYTES) + 1);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const read = await file.read(buffer);
      if (read === null) break;
      chunks.push(buffer.slice(0, read));
      total += read;
      if (total > MAX_WEB_FILE_BYTES) return err(tooLarge());
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return ok(new TextDecoder().decode(all));
  } catch (error) {
    return err(readError(error));
  }
}

function tooLarge(): string {
  return `is larger than ${MAX_WEB_FILE_BYTES / (1 << 20)} MiB, which no web config, certificate or key is`;
}

/** What a file is when it is not a regular one ("a FIFO (named pipe)"), or null when it is. */
function notRegular(info: Deno.FileInfo): string | null {
  if (info.isFile) return null;
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "of another kind";
}

function readError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "file not found";
  return fileErrorMessage(error);
}

/** A one-line description of a web config, without any secret. */
export function summarizeWebConfig(config: WebConfig): string {
  const users = config.users.size;
  return `Web config "${config.path}" is valid: ${config.tls ? "TLS" : "no TLS"}, ` +
    `${users === 0 ? "no basic auth" : `basic auth for ${users} user${users === 1 ? "" : "s"}`}, ` +
    `${config.headers.length} extra header${config.headers.length === 1 ? "" : "s"}`;
}

/** Options of {@link watchWebConfig}. */
export interface WatchOptions {
  readonly log: Pick<Logger, "info" | "warn" | "error">;
  /** How often the files are looked at; 3 s by default. */
  readonly intervalMs?: number;
  /** Called with a new valid config whose certificate or key changed; may refuse it (a failed relisten). */
  readonly onTls?: (tls: TlsPair) => Promise<Result<void>> | Result<void>;
  /** The loader; {@link loadWebConfig} by default. */
  readonly load?: (path: string) => Promise<Result<WebConfig, WebConfigError>>;
}

/** The web config in force, kept up to date with its files. */
export interface WebConfigWatch {
  /** The last valid config. */
  current(): WebConfig;
  /** Why the files on disk are not in force, or null when they are. */
  problem(): Problem | null;
  /** Looks at the files now and loads them if they changed; the timer calls this too. */
  check(): Promise<void>;
  /** Stops the timer. */
  close(): void;
}

/**
 * Keeps `initial` in force until its files change, then loads them again. The files are read every
 * few seconds and compared with what was loaded (they are small), so a file replaced by a rename is
 * seen as well as one written in place within the same millisecond. A file that turns invalid keeps the last good config and
 * is said once in the log and through {@link WebConfigWatch.problem}; turning TLS on or off needs a
 * restart, since the public URL's scheme changes with it, and so does turning basic auth off (from some
 * users to none), said at ERROR: a protection is never lost to a file caught half-written.
 */
export function watchWebConfig(initial: WebConfig, options: WatchOptions): WebConfigWatch {
  const load = options.load ?? loadWebConfig;
  let current = initial;
  let refused: Problem | null = null;
  let files = initial.files;
  let seen = initial.read;
  let running: Promise<void> | null = null;

  async function look(): Promise<void> {
    if (await contents(files) === seen) return;
    const loaded = await load(initial.path);
    ({ files, read: seen } = loaded.ok ? loaded.value : loaded.error);
    if (!loaded.ok) return refuse(loaded.error);
    const next = loaded.value;
    // Protection is never switched off by a reload: a file caught empty or half-written (a shell `>`,
    // an editor writing in place, a full disk) reads as a valid config without it.
    if (current.users.size > 0 && next.users.size === 0) {
      return refuse(
        problem("web_config_protection_off", initial.path, { key: "basic_auth_users", protection: "basic auth" }),
        "error",
      );
    }
    if (current.tls && !next.tls) {
      return refuse(
        problem("web_config_protection_off", initial.path, { key: "tls_server_config", protection: "TLS" }),
        "error",
      );
    }
    if (!current.tls && next.tls) {
      return refuse(problem("web_config_needs_restart", initial.path, { turning: "on" }));
    }
    if (next.tls && current.tls && (next.tls.cert !== current.tls.cert || next.tls.key !== current.tls.key)) {
      const applied = await options.onTls?.(next.tls) ?? ok(undefined);
      if (!applied.ok) return refuse(problem("web_config_not_applied", initial.path, { detail: applied.error }));
    }
    current = next;
    refused = null;
    options.log.info(`Reloaded the web config: ${summarizeWebConfig(next)}`);
  }

  function refuse(now: Problem, level: "warn" | "error" = "warn"): void {
    // Said once per distinct problem, not at every look.
    if (now.message !== refused?.message) {
      options.log[level](`${now.message}; the last valid web config stays in force`);
    }
    refused = now;
  }

  const timer = setInterval(() => void check(), options.intervalMs ?? 3_000);
  function check(): Promise<void> {
    running ??= look().finally(() => running = null);
    return running;
  }
  return {
    current: () => current,
    problem: () => refused,
    check,
    close: () => clearInterval(timer),
  };
}

/** The text of each file (or why it cannot be read); any change in it is a reason to load again. */
async function contents(files: readonly string[]): Promise<string> {
  return JSON.stringify(await Promise.all(files.map(async (path) => said(await readText(path)))));
}

function said(read: Result<string>): string {
  return read.ok ? `+${read.value}` : `-${read.error}`;
}

/**
 * The public URL must have the scheme the server speaks, or Monzo sends the browser back to a port
 * that cannot answer it. A reverse proxy may end TLS in front of a plain server, so only https:// on
 * a TLS server's http:// URL is refused.
 */
export function checkPublicUrl(publicUrl: string, web: WebConfig): Result<void, Problem> {
  if (web.tls && publicUrl.startsWith("http://")) {
    return err(problem("web_config_needs_https", web.path, { url: publicUrl }));
  }
  return ok(undefined);
}
