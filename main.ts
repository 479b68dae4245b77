// The command line: parse the arguments, pick the mode, run that mode's function.

import { type CliOptions, configPathFor, parseCli, USAGE } from "./lib/config/cli.ts";
import { type Config, loadConfig, summarizeConfig } from "./lib/config/config.ts";
import { systemClock } from "./lib/shared/clock.ts";
import { createExporter, type Exporter } from "./lib/run/exporter.ts";
import { formatListenAddress, type ListenAddress } from "./lib/config/listen_address.ts";
import { createLogger, type Logger } from "./lib/shared/log.ts";
import { checkTokenPath, memoryTokens } from "./lib/logins/token_file.ts";
import { type ResilientServer, serveResilient } from "./lib/http/serve.ts";
import { VERSION } from "./lib/shared/version.ts";
import { err } from "./lib/shared/result.ts";
import { type InstanceLock, lockExporterFiles } from "./lib/store/instance_lock.ts";
import { checkDataPath } from "./lib/store/kv.ts";
import type { WebConfig } from "./lib/config/web_config.ts";
import type { BackfillRequest } from "./lib/config/backfill_options.ts";
import type { WebGate } from "./lib/http/basic_auth.ts";

/** The locks of a live exporter's files, held until the process ends (the kernel then lets go of them). */
const heldLocks: InstanceLock[] = [];

/** Where the demo listens unless told otherwise. */
const DEMO_LISTEN: ListenAddress = { hostname: "127.0.0.1", port: 8080 };

/** Added to the request timeout for the rest of a shutdown (a token write, closing the server). */
const SHUTDOWN_MARGIN_MS = 5_000;

/** The cron schedule for polling every `minutes` minutes (a divisor of 60). */
function pollSchedule(minutes: number): string {
  if (minutes === 1) return "* * * * *";
  if (minutes === 60) return "0 * * * *";
  return `*/${minutes} * * * *`;
}

function fail(message: string, code = 1): never {
  console.error(message);
  Deno.exit(code);
}

/** The config file to read: `--config`, else config.toml in the working folder or beside the binary. */
function configPath(cli: CliOptions): Promise<string> {
  return configPathFor(cli.configPath, { cwd: Deno.cwd(), execPath: Deno.execPath() });
}

/** `--healthcheck`: probes /healthz once. Every failure exits 1, bad arguments included: Docker reserves 2. */
async function healthcheck(cli: CliOptions, url: string | null): Promise<void> {
  const { healthcheckTarget, probeHealth } = await import("./lib/run/healthcheck.ts");
  const target = await healthcheckTarget(url, {
    listen: cli.listen ?? (cli.demo ? DEMO_LISTEN : null),
    configPath: cli.demo ? null : await configPath(cli),
    fallback: DEMO_LISTEN,
    webConfigFile: cli.webConfigFile,
  });
  const probed = target.ok ? await probeHealth(target.value.url, { caCerts: target.value.caCerts }) : target;
  return probed.ok ? console.log(probed.value) : fail(probed.error, 1);
}

/** The config of a live exporter, with what it names checked before anything listens; a problem exits. */
async function liveConfig(cli: CliOptions): Promise<Config> {
  const loaded = await loadConfig(await configPath(cli), { env: (name) => Deno.env.get(name) });
  if (!loaded.ok) fail(loaded.error);
  const config = cli.listen ? { ...loaded.value, listen: cli.listen } : loaded.value;
  // A login answered "Logged in" must never be one that cannot be saved.
  const usable = await checkTokenPath(config.tokensPath);
  if (!usable.ok) fail(usable.error);
  const store = await checkDataPath(config.dataPath);
  if (!store.ok) fail(store.error);
  return config;
}

/** A loaded web config and the module that watches and describes it. */
interface Web {
  readonly config: WebConfig;
  readonly module: typeof import("./lib/config/web_config.ts");
}

/**
 * The web config (TLS, basic auth) at `file`, checked against the config's public URL; null without
 * one; a problem exits. Its modules load only when used, like the demo's and the health check's: a module
 * loaded is resident memory for the life of the process, and most runs need none of them.
 */
async function loadWeb(file: string | null, config: Config | null): Promise<Web | null> {
  if (file === null) return null;
  const module = await import("./lib/config/web_config.ts");
  const loaded = await module.loadWebConfig(file);
  if (!loaded.ok) fail(loaded.error.message);
  const consistent = config ? module.checkPublicUrl(config.publicUrl, loaded.value) : null;
  if (consistent && !consistent.ok) fail(consistent.error.message);
  return { config: loaded.value, module };
}

/** `--check-config`: loads the config and the web config, says what they set, and exits. */
async function checkConfig(cli: CliOptions): Promise<void> {
  if (cli.demo) fail("--check-config and --demo do not go together: the demo has no config file", 2);
  const config = await liveConfig(cli);
  const web = await loadWeb(cli.webConfigFile ?? config.webConfigFile, config);
  console.log(summarizeConfig(config));
  if (web) console.log(web.module.summarizeWebConfig(web.config));
}

/** The config as the file says, with nothing it names checked: a problem exits. */
async function storedConfig(cli: CliOptions): Promise<Config> {
  const loaded = await loadConfig(await configPath(cli), { env: (name) => Deno.env.get(name) });
  return loaded.ok ? loaded.value : fail(loaded.error);
}

/**
 * `--backfill FILE`: the stored history as OpenMetrics, one summary line, exit. It reads the config but
 * checks nothing a live exporter needs (the tokens file, a writable store), takes no lock and writes
 * nothing but FILE, so it runs beside the exporter; with `--demo`, the demo's history.
 */
async function backfill(cli: CliOptions, request: BackfillRequest): Promise<void> {
  const { runBackfill, runDemoBackfill } = await import("./lib/run/backfill.ts");
  const written = cli.demo ? await runDemoBackfill(request) : await runBackfill(await storedConfig(cli), request);
  return written.ok ? console.log(written.value) : fail(written.error);
}

/** The server's half of a web config: its watcher, and the gate in front of the pages. */
interface Guard {
  readonly watch: { close(): void };
  readonly gate: WebGate;
}

/** Watches the web config's files; a new certificate makes `server()`, once there, listen with it. */
async function guard(web: Web | null, logger: Logger, server: () => ResilientServer | null): Promise<Guard | null> {
  if (!web) return null;
  const watch = web.module.watchWebConfig(web.config, {
    log: logger,
    onTls: (tls) => server()?.setTls(tls) ?? err("the server is not listening yet"),
  });
  const { createWebGate } = await import("./lib/http/basic_auth.ts");
  return {
    watch,
    gate: createWebGate({ config: watch.current, problem: watch.problem, log: logger, clock: systemClock }),
  };
}

/** Binds the server; a taken or forbidden address is a one-line error. */
function serve(
  listen: ListenAddress,
  handler: (request: Request) => Response | Promise<Response>,
  logger: Logger,
  web: Web | null,
): ResilientServer {
  const tls = web?.config.tls ?? undefined;
  try {
    return serveResilient({
      hostname: listen.hostname,
      port: listen.port,
      handler,
      log: logger,
      clock: systemClock,
      tls,
    });
  } catch (error) {
    const reason = error instanceof Deno.errors.AddrInUse
      ? "the address is already in use"
      : error instanceof Error
      ? error.message
      : String(error);
    return fail(`Cannot listen on ${formatListenAddress(listen)}: ${reason}`);
  }
}

/** The default mode: the exporter of the config file, built before anything listens so a problem stops the start. */
async function live(cli: CliOptions): Promise<void> {
  const config = await liveConfig(cli);
  // A second exporter on these files would end the first one's logins.
  const locked = await lockExporterFiles(config);
  if (!locked.ok) fail(locked.error);
  heldLocks.push(...locked.value);
  const web = await loadWeb(cli.webConfigFile ?? config.webConfigFile, config);
  const debug = cli.logLevel === "debug";
  // Lines about the process and the server; the exporter's own logger also masks its secrets.
  const logger = createLogger({ debug });
  let server: ResilientServer | null = null;
  const guarded = await guard(web, logger, () => server);
  const built = await createExporter({ config, build: { version: VERSION, mode: "live" }, debug, gate: guarded?.gate });
  if (!built.ok) fail(built.error);
  const exporter = built.value;
  server = serve(config.listen, exporter.handler, logger, web);
  logger.info(summarizeConfig(config));
  await run({ config, exporter, server, logger, web, guarded, close: async () => {} });
}

/** `--demo`: the exporter against a simulated Monzo, every login done, no config file. */
async function demo(cli: CliOptions): Promise<void> {
  const web = await loadWeb(cli.webConfigFile, null);
  const debug = cli.logLevel === "debug";
  const logger = createLogger({ debug });
  let server: ResilientServer | null = null;
  const guarded = await guard(web, logger, () => server);
  // The simulated Monzo sends the browser back to the bound port (`:0` picks one), so the server listens
  // before the exporter exists; a request that comes first waits for it.
  const exporterReady = Promise.withResolvers<Exporter>();
  server = serve(
    cli.listen ?? DEMO_LISTEN,
    async (request) => (await exporterReady.promise).handler(request),
    logger,
    web,
  );
  const { startDemo } = await import("./lib/run/demo.ts");
  const bound = { hostname: server.addr.hostname, port: server.addr.port };
  const simulated = await startDemo(bound, logger, { https: Boolean(web?.config.tls) });
  const made = await createExporter({
    config: simulated.config,
    build: { version: VERSION, mode: "demo" },
    persistence: memoryTokens(),
    debug,
    gate: guarded?.gate,
  });
  if (!made.ok) fail(made.error);
  const exporter = made.value;
  exporterReady.resolve(exporter);
  logger.info(`DEMO MODE: serving a simulated Monzo at ${simulated.fake.url}; no real bank is involved`);
  await simulated.logInEveryone(exporter.sessions);
  await run({ config: simulated.config, exporter, server, logger, web, guarded, close: () => simulated.close() });
}

/** What {@link run} serves, and what it stops. */
interface Running {
  readonly config: Config;
  readonly exporter: Exporter;
  readonly server: ResilientServer;
  readonly logger: Logger;
  readonly web: Web | null;
  readonly guarded: Guard | null;
  /** Stops what the mode started besides these (the demo's simulated Monzo). */
  readonly close: () => Promise<void>;
}

/** Polls on the config's schedule and serves until SIGINT or SIGTERM, then stops within the grace time. */
async function run({ config, exporter, server, logger, web, guarded, close }: Running): Promise<void> {
  const scheme = web?.config.tls ? "https" : "http";
  const base = config.publicUrl;
  const address = formatListenAddress({ hostname: server.addr.hostname, port: server.addr.port });
  logger.info(`Listening on ${scheme}://${address}: status page ${base}/, metrics ${base}/metrics`);
  if (web) logger.info(web.module.summarizeWebConfig(web.config));

  const stopCron = new AbortController();
  // The promise settles only when the cron stops, so it is kept, not awaited here.
  const cron = Deno.cron("monzo-poll", pollSchedule(config.pollIntervalMinutes), {
    backoffSchedule: [],
    signal: stopCron.signal,
  }, () => exporter.poller.poll());
  // Checks the tokens and fills the metrics now rather than at the first cron tick.
  void exporter.poller.poll();

  const graceMs = config.requestTimeoutMs + SHUTDOWN_MARGIN_MS;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`Received ${signal}: stopping`);
    // A Monzo request in flight (a token refresh, a login's code exchange) ends within the request
    // timeout; the margin is for writing its tokens and closing. Running out is a failure, not a stop.
    setTimeout(() => {
      logger.error(`Shutdown took longer than ${graceMs / 1000} s; exiting`);
      Deno.exit(1);
    }, graceMs);
    stopCron.abort();
    guarded?.watch.close();
    await exporter.close();
    await cron;
    await server.shutdown();
    await close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
  await server.finished;
}

async function main(): Promise<void> {
  const parsed = parseCli(Deno.args);
  if (!parsed.ok) fail(parsed.error, 2);
  const cli = parsed.value;
  if (cli.help) return console.log(USAGE);
  if (cli.version) return console.log(`monzo-exporter ${VERSION}`);
  if (cli.healthcheck) return await healthcheck(cli, cli.healthcheck.url);
  if (cli.checkConfig) return await checkConfig(cli);
  if (cli.backfill) return await backfill(cli, cli.backfill);
  if (cli.demo) return await demo(cli);
  return await live(cli);
}

if (import.meta.main) await main();
