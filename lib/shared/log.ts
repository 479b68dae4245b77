/** Where log lines go, one call per line. */
export type LogSink = (line: string) => void;

/** A minimal leveled logger. */
export interface Logger {
  /**
   * Detail for diagnosis (such as a stack); written only by a logger created with `debug: true`.
   * Optional, so that a hand-made logger (a test's) need not have it.
   */
  debug?(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Defaults to standard error. */
  readonly sink?: LogSink;
  /** Values that must never be printed (tokens, the client secret, the auth key). */
  readonly secrets?: () => Iterable<string>;
  /** Time source for the line prefix. */
  readonly now?: () => number;
  /** Writes debug lines too; off by default. */
  readonly debug?: boolean;
}

// C0 controls (line breaks included), DEL and C1 controls: an ESC from Monzo's error text could
// recolour or rewrite the operator's terminal, and a lone \r hides what came before it on the line.
// Unicode line and paragraph separators break lines in some viewers too.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

function escapeControl(character: string): string {
  if (character === "\n") return "\\n";
  if (character === "\r") return "\\r";
  if (character === "\t") return "\\t";
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** Creates a logger that writes `time LEVEL message` lines and masks known secrets. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const sink = options.sink ?? ((line: string) => console.error(line));
  const now = options.now ?? Date.now;
  function write(level: string, message: string): void {
    // Masking first, so that a secret split by a line break is still found.
    let text = message.replace(/\r\n?|\n/g, " ");
    // A second line of defence: messages are built without secrets, but a stray one is masked.
    for (const secret of options.secrets?.() ?? []) {
      if (secret.length >= 8) text = text.replaceAll(secret, "[redacted]");
    }
    // Every message is text from somewhere else in the end; no control character reaches the sink raw.
    sink(`${new Date(now()).toISOString()} ${level} ${text.replace(CONTROL, escapeControl)}`);
  }
  return {
    debug: options.debug ? (message) => write("DEBUG", message) : () => {},
    info: (message) => write("INFO", message),
    warn: (message) => write("WARN", message),
    error: (message) => write("ERROR", message),
  };
}
