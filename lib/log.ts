/** Where log lines go, one call per line. */
export type LogSink = (line: string) => void;

/** A minimal leveled logger. */
export interface Logger {
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
}

/** Creates a logger that writes `time LEVEL message` lines and masks known secrets. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const sink = options.sink ?? ((line: string) => console.error(line));
  const now = options.now ?? Date.now;
  function write(level: string, message: string): void {
    let text = message.replace(/\r\n?|\n/g, " "); // a lone \r would also break the line in most viewers
    // A second line of defence: messages are built without secrets, but a stray one is masked.
    for (const secret of options.secrets?.() ?? []) {
      if (secret.length >= 8) text = text.replaceAll(secret, "[redacted]");
    }
    sink(`${new Date(now()).toISOString()} ${level} ${text}`);
  }
  return {
    info: (message) => write("INFO", message),
    warn: (message) => write("WARN", message),
    error: (message) => write("ERROR", message),
  };
}
