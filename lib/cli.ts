import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { type ListenAddress, parseListenAddress } from "./listen_address.ts";
import { err, ok, type Result } from "./result.ts";

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

/** Parses the command line; the error is one line naming the bad option. */
export function parseCli(args: readonly string[]): Result<CliOptions> {
  const taken = takeHealthcheck(args);
  if (!taken.ok) return taken;
  let values;
  try {
    ({ values } = parseArgs({
      args: taken.value.rest,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string" },
        "web.listen-address": { type: "string" },
        "web.config.file": { type: "string" },
        "log.level": { type: "string", default: "info" },
        "check-config": { type: "boolean", default: false },
        demo: { type: "boolean", default: false },
        version: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return err(`${message} (see --help)`);
  }
  let listen: ListenAddress | null = null;
  const address = values["web.listen-address"];
  if (address !== undefined) {
    const parsed = parseListenAddress(address);
    if (!parsed.ok) return err(`--web.listen-address ${parsed.error}`);
    listen = parsed.value;
  }
  if (values.config !== undefined && values.config.trim() === "") return err("--config needs a file path");
  if (values["web.config.file"]?.trim() === "") return err("--web.config.file needs a file path");
  const logLevel = LOG_LEVELS.find((level) => level === values["log.level"]);
  if (logLevel === undefined) {
    return err(`--log.level ${JSON.stringify(values["log.level"])} is not one of ${LOG_LEVELS.join(", ")}`);
  }
  return ok({
    help: values.help,
    version: values.version,
    checkConfig: values["check-config"],
    demo: values.demo,
    configPath: values.config ?? null,
    listen,
    logLevel,
    healthcheck: taken.value.healthcheck,
    webConfigFile: values["web.config.file"] ?? null,
  });
}

/** Takes `--healthcheck [URL]` out of the arguments, since parseArgs has no option with an optional value. */
function takeHealthcheck(
  args: readonly string[],
): Result<{ healthcheck: CliOptions["healthcheck"]; rest: string[] }> {
  const rest: string[] = [];
  let healthcheck: CliOptions["healthcheck"] = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    if (arg !== "--healthcheck" && !arg.startsWith("--healthcheck=")) {
      rest.push(arg);
      continue;
    }
    if (healthcheck !== null) return err("--healthcheck is given twice (see --help)");
    const next = args[i + 1];
    if (arg !== "--healthcheck") healthcheck = { url: arg.slice("--healthcheck=".length) };
    else if (next !== undefined && !next.startsWith("-")) healthcheck = { url: args[++i] };
    else healthcheck = { url: null };
    if (healthcheck.url?.trim() === "") return err("--healthcheck= needs a URL, or no = to use the listen address");
  }
  return ok({ healthcheck, rest });
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
