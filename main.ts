import { configPathFor, parseCli, USAGE } from "./lib/cli.ts";
import { type Config, loadConfig, summarizeConfig } from "./lib/config.ts";
import type { Demo } from "./lib/demo.ts";
import { systemClock } from "./lib/clock.ts";
import { createExporter, type Exporter } from "./lib/exporter.ts";
import { formatListenAddress, type ListenAddress } from "./lib/listen_address.ts";
import { createLogger, type Logger } from "./lib/log.ts";
import { checkTokenPath, memoryTokens } from "./lib/token_file.ts";
import { type ResilientServer, serveResilient } from "./lib/serve.ts";
import { VERSION } from "./lib/version.ts";
import { err } from "./lib/result.ts";
import { type InstanceLock, lockExporterFiles } from "./lib/instance_lock.ts";
import { checkDataPath } from "./lib/kv.ts";

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

/** Binds the server; a taken or forbidden address is a one-line error. */
function serve(
  listen: ListenAddress,
  handler: (request: Request) => Response | Promise<Response>,
  log: Logger,
  tls?: { cert: string; key: string },
): ResilientServer {
  try {
    return serveResilient({ hostname: listen.hostname, port: listen.port, handler, log, clock: systemClock, tls });
  } catch (error) {
    const reason = error instanceof Deno.errors.AddrInUse
      ? "the address is already in use"
      : error instanceof Error
      ? error.message
      : String(error);
    return fail(`Cannot listen on ${formatListenAddress(listen)}: ${reason}`);
  }
}

async function main(): Promise<void> {
  const parsed = parseCli(Deno.args);
  if (!parsed.ok) fail(parsed.error, 2);
  const cli = parsed.value;
  if (cli.help) return console.log(USAGE);
  if (cli.version) return console.log(`monzo-exporter ${VERSION}`);
  if (cli.healthcheck) {
    const { healthcheckTarget, probeHealth } = await import("./lib/healthcheck.ts");
    // Exit 1 for every failure, bad arguments included: Docker reserves 2.
    const target = await healthcheckTarget(cli.healthcheck.url, {
      listen: cli.listen ?? (cli.demo ? DEMO_LISTEN : null),
      configPath: cli.demo ? null : await configPathFor(cli.configPath, { cwd: Deno.cwd(), execPath: Deno.execPath() }),
      fallback: DEMO_LISTEN,
      webConfigFile: cli.webConfigFile ?? null,
    });
    const probed = target.ok ? await probeHealth(target.value.url, { caCerts: target.value.caCerts }) : target;
    return probed.ok ? console.log(probed.value) : fail(probed.error, 1);
  }

  let config: Config | null = null;
  if (!cli.demo) {
    const loaded = await loadConfig(
      await configPathFor(cli.configPath, { cwd: Deno.cwd(), execPath: Deno.execPath() }),
      { env: (name) => Deno.env.get(name) },
    );
    if (!loaded.ok) fail(loaded.error);
    config = cli.listen ? { ...loaded.value, listen: cli.listen } : loaded.value;
    // Before anything listens: a login answered "Logged in" must never be one that cannot be saved.
    const usable = await checkTokenPath(config.tokensPath);
    if (!usable.ok) fail(usable.error);
    const store = await checkDataPath(config.dataPath);
    if (!store.ok) fail(store.error);
    // Before anything listens or polls: a second exporter on these files would end the first one's logins.
    if (!cli.checkConfig) {
      const locked = await lockExporterFiles(config);
      if (!locked.ok) fail(locked.error);
      heldLocks.push(...locked.value);
    }
  } else if (cli.checkConfig) {
    return fail("--check-config and --demo do not go together: the demo has no config file", 2);
  }
  // TLS and basic auth, checked before anything listens like the config itself.
  const webConfigFile = cli.webConfigFile ?? config?.webConfigFile ?? null;
  // Loaded only when used, like the demo and the health check: a module loaded is resident memory for
  // the life of the process, and most runs need none of them.
  const webModules = webConfigFile === null
    ? null
    : { config: await import("./lib/web_config.ts"), auth: await import("./lib/basic_auth.ts") };
  const web = webConfigFile === null || !webModules ? null : await webModules.config.loadWebConfig(webConfigFile);
  if (web && !web.ok) fail(web.error.message);
  const webConfig = web?.ok ? web.value : null;
  const scheme = webConfig?.tls ? "https" : "http";
  if (config && webConfig && webModules) {
    const consistent = webModules.config.checkPublicUrl(config.publicUrl, webConfig);
    if (!consistent.ok) fail(consistent.error.message);
  }
  if (config && cli.checkConfig) {
    console.log(summarizeConfig(config));
    return webConfig && webModules ? console.log(webModules.config.summarizeWebConfig(webConfig)) : undefined;
  }

  // A live exporter is built before anything listens, so a bad tokens path or config stops the start
  // cleanly; the demo needs the bound port for its redirect URL, so it is built after.
  const debug = cli.logLevel === "debug";
  // Lines about the process and the server; the exporter's own logger also masks its secrets.
  const logger = createLogger({ debug });
  const log = (message: string) => logger.info(message);
  // Re-read when its files change; a new certificate makes the server listen again with it.
  const listening: { server?: ResilientServer } = {};
  const watch = webConfig && webModules
    ? webModules.config.watchWebConfig(webConfig, {
      log: logger,
      onTls: (tls) => listening.server?.setTls(tls) ?? err("the server is not listening yet"),
    })
    : null;
  const gate = watch && webModules
    ? webModules.auth.createWebGate({ config: watch.current, problem: watch.problem, log: logger, clock: systemClock })
    : undefined;
  const built = config
    ? await createExporter({ config, build: { version: VERSION, mode: "live" }, debug, gate })
    : null;
  if (built && !built.ok) fail(built.error);
  const live = built?.ok ? built.value : null;
  let handler: (request: Request) => Response | Promise<Response> = live?.handler ??
    (() => new Response("Starting\n", { status: 503 }));
  const server = serve(
    config?.listen ?? cli.listen ?? DEMO_LISTEN,
    (request) => handler(request),
    logger,
    webConfig?.tls ?? undefined,
  );
  listening.server = server;
  const address: ListenAddress = { hostname: server.addr.hostname, port: server.addr.port };

  let exporter: Exporter;
  let demo: Demo | null = null;
  if (live && config) {
    exporter = live;
    log(summarizeConfig(config));
  } else {
    const { startDemo } = await import("./lib/demo.ts");
    demo = await startDemo(address, logger, { https: scheme === "https" });
    config = demo.config;
    const made = await createExporter({
      config,
      build: { version: VERSION, mode: "demo" },
      persistence: memoryTokens(),
      debug,
      gate,
    });
    if (!made.ok) return fail(made.error);
    exporter = made.value;
    log(`DEMO MODE: serving a simulated Monzo at ${demo.fake.url}; no real bank is involved`);
    await demo.logInEveryone(exporter.sessions);
  }
  handler = exporter.handler;
  const base = config.publicUrl;
  log(`Listening on ${scheme}://${formatListenAddress(address)}: status page ${base}/, metrics ${base}/metrics`);
  if (webConfig && webModules) log(webModules.config.summarizeWebConfig(webConfig));

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
    log(`Received ${signal}: stopping`);
    // A Monzo request in flight (a token refresh, a login's code exchange) ends within the request
    // timeout; the margin is for writing its tokens and closing. Running out is a failure, not a stop.
    setTimeout(() => {
      logger.error(`Shutdown took longer than ${graceMs / 1000} s; exiting`);
      Deno.exit(1);
    }, graceMs);
    stopCron.abort();
    watch?.close();
    await exporter.close();
    await cron;
    await server.shutdown();
    await demo?.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
  await server.finished;
}

if (import.meta.main) await main();
