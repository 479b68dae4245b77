import { type ParsedOptions, parseOptions } from "./cli_args.ts";
import { basename, dirname, join } from "../shared/file_path.ts";
import { type ListenAddress, parseListenAddress } from "./listen_address.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { type BackfillRequest, DEFAULT_STEP_MS, parseLabels, parseStep, parseUntil } from "./backfill_options.ts";

/** What the command line asks for. */
export interface CliOptions {
  readonly help: boolean;
  readonly version: boolean;
  readonly checkConfig: boolean;
  readonly demo: boolean;
  /** The `--config` path, or null for the default. */
  readonly configPath: string | null;
  /** The `--web.listen-address`, overriding `server_addr`. */
  readonly listen: ListenAddress | null;
  /** `--log.level`: `debug` adds the stack of a failed request to the log. */
  readonly logLevel: LogLevel;
  /** `--healthcheck [URL]`: probe `/healthz` and exit; a null URL is found from the listen address. */
  readonly healthcheck: { readonly url: string | null } | null;
  /** `--web.config.file`: TLS, basic auth and headers, overriding `web_config_file`. */
  readonly webConfigFile: string | null;
  /** `--backfill FILE` and its options: write the stored history for promtool and exit; null when not asked. */
  readonly backfill: BackfillRequest | null;
}

// The levels `--log.level` takes.
const LOG_LEVELS = ["info", "debug"] as const;

/** A level `--log.level` takes. */
export type LogLevel = typeof LOG_LEVELS[number];

/** The text of `--help`. */
export const USAGE = `Usage: monzo-exporter [options]

A Prometheus exporter for Monzo: balances, pots and spending of every account you can see.

Options:
  --config PATH                    Config file (default: config.toml in the working directory;
                                   for the compiled binary, config.toml beside it when that is missing)
  --web.listen-address HOST:PORT   Address to serve on, overriding server_addr in the config
  --web.config.file PATH           exporter-toolkit web config (TLS, basic auth, headers), overriding
                                   web_config_file in the config; works with --demo too
  --log.level LEVEL                info (default) or debug, which also logs the stack of a failed request
  --check-config                   Validate the config, print a one-line summary without secrets, exit
  --backfill FILE                  Write the stored history as OpenMetrics for promtool, print a summary, exit
  --backfill.label NAME=VALUE      Add this label to every backfilled series (repeatable): your job, instance
  --backfill.step DURATION         Time between backfilled samples, 5m to 1d (default: 1h)
  --backfill.until RFC3339         End the backfill before this time (default: where the live counters began)
  --demo                           Serve a built-in simulated Monzo; needs no config, no secrets
  --healthcheck [URL]              Exit 0 if URL (default: /healthz on the listen address of the config,
                                   --web.listen-address or the demo; over https, trusting its certificate,
                                   when the web config turns TLS on) answers 200 within 5 s, else 1
  --version                        Print the version and exit
  -h, --help                       Print this help and exit

Environment: MONZO_ACCOUNT_ID, MONZO_CLIENT_ID, MONZO_CLIENT_SECRET and MONZO_AUTH_KEY override the
config keys of the same name (without the MONZO_ prefix, in lower case).

Pages: / (status and login), /metrics (also /stats and /monzo), /authorize?key=AUTH_KEY, /callback,
/healthz, /readyz.`;

// The options parseCli takes, by long name.
const OPTIONS = {
  config: { kind: "value" },
  "web.listen-address": { kind: "value" },
  "web.config.file": { kind: "value" },
  "log.level": { kind: "value" },
  "check-config": { kind: "flag" },
  demo: { kind: "flag" },
  healthcheck: { kind: "optional" },
  backfill: { kind: "value" },
  "backfill.label": { kind: "repeated" },
  "backfill.step": { kind: "value" },
  "backfill.until": { kind: "value" },
  version: { kind: "flag" },
  help: { kind: "flag", short: "h" },
} as const;

/** Parses the command line; the error is one line naming the bad option and pointing at `--help`. */
export function parseCli(args: readonly string[]): Result<CliOptions> {
  const parsed = readCli(args);
  return parsed.ok ? parsed : err(`${parsed.error} (see --help)`);
}

function readCli(args: readonly string[]): Result<CliOptions> {
  const parsed = parseOptions(args, OPTIONS);
  if (!parsed.ok) return parsed;
  const options = parsed.value;
  let listen: ListenAddress | null = null;
  const address = options.value("web.listen-address");
  if (address !== undefined) {
    const checked = parseListenAddress(address);
    if (!checked.ok) return err(`--web.listen-address ${checked.error}`);
    listen = checked.value;
  }
  const configPath = options.value("config") ?? null;
  if (configPath?.trim() === "") return err("--config needs a file path");
  const webConfigFile = options.value("web.config.file") ?? null;
  if (webConfigFile?.trim() === "") return err("--web.config.file needs a file path");
  const level = options.value("log.level") ?? "info";
  const logLevel = LOG_LEVELS.find((known) => known === level);
  if (logLevel === undefined) return err(`--log.level ${JSON.stringify(level)} is not one of ${LOG_LEVELS.join(", ")}`);
  const url = options.optional("healthcheck");
  if (url?.trim() === "") return err("--healthcheck= needs a URL, or no = to use the listen address");
  const backfill = readBackfill(options);
  if (!backfill.ok) return backfill;
  if (backfill.value && (options.flag("check-config") || url !== undefined)) {
    return err(`--backfill and ${url === undefined ? "--check-config" : "--healthcheck"} do not go together`);
  }
  return ok({
    help: options.flag("help"),
    version: options.flag("version"),
    checkConfig: options.flag("check-config"),
    demo: options.flag("demo"),
    configPath,
    listen,
    logLevel,
    healthcheck: url === undefined ? null : { url },
    webConfigFile,
    backfill: backfill.value,
  });
}

/** The `--backfill` options, checked; null when `--backfill` is not given (then none of them may be). */
function readBackfill(options: ParsedOptions<typeof OPTIONS>): Result<BackfillRequest | null> {
  const file = options.value("backfill");
  if (file === undefined) {
    const stray = (["backfill.step", "backfill.until"] as const).find((name) => options.value(name) !== undefined) ??
      (options.values("backfill.label").length > 0 ? "backfill.label" : undefined);
    return stray === undefined ? ok(null) : err(`--${stray} needs --backfill FILE`);
  }
  if (file.trim() === "") return err("--backfill needs a file path");
  const labels = parseLabels(options.values("backfill.label"));
  if (!labels.ok) return labels;
  const stepText = options.value("backfill.step");
  const step = stepText === undefined ? ok(DEFAULT_STEP_MS) : parseStep(stepText);
  if (!step.ok) return step;
  const untilText = options.value("backfill.until");
  const until = untilText === undefined ? ok(null) : parseUntil(untilText);
  if (!until.ok) return until;
  return ok({ file, labels: labels.value, stepMs: step.value, untilMs: until.value });
}

/**
 * The config file to load: `--config` when given, else `config.toml` in the working folder, else, for a
 * compiled binary (not `deno` itself), `config.toml` beside the executable when that one exists.
 */
export async function configPathFor(
  configPath: string | null,
  where: { readonly cwd: string; readonly execPath: string },
): Promise<string> {
  if (configPath !== null) return configPath;
  const local = join(where.cwd, "config.toml");
  if (await isFile(local) || /^deno(\.exe)?$/.test(basename(where.execPath))) return local;
  const beside = join(dirname(where.execPath), "config.toml");
  return await isFile(beside) ? beside : local;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return false;
    // Present but unreadable: loading it then says so in one line.
    if (error instanceof Deno.errors.PermissionDenied) return true;
    throw error;
  }
}
