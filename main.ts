import { configPathFor, parseCli, USAGE } from "./lib/cli.ts";
import { type Config, loadConfig, summarizeConfig } from "./lib/config.ts";
import { type Demo, startDemo } from "./lib/demo.ts";
import { createExporter, type Exporter } from "./lib/exporter.ts";
import { formatListenAddress, type ListenAddress } from "./lib/listen_address.ts";
import { checkTokenPath, memoryTokens } from "./lib/token_file.ts";
import { VERSION } from "./lib/version.ts";

/** Where the demo listens unless told otherwise. */
const DEMO_LISTEN: ListenAddress = { hostname: "127.0.0.1", port: 8080 };

/** How long shutdown may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 5_000;

/** The cron schedule for polling every `minutes` minutes (a divisor of 60). */
export function pollSchedule(minutes: number): string {
  if (minutes === 1) return "* * * * *";
  if (minutes === 60) return "0 * * * *";
  return `*/${minutes} * * * *`;
}

function fail(message: string, code = 1): never {
  console.error(message);
  Deno.exit(code);
}

function log(message: string): void {
  console.error(`${new Date().toISOString()} INFO ${message}`);
}

/** Binds the server; a taken or forbidden address is a one-line error. */
function serve(listen: ListenAddress, handler: Deno.ServeHandler): Deno.HttpServer<Deno.NetAddr> {
  try {
    return Deno.serve({ hostname: listen.hostname, port: listen.port, onListen() {} }, handler);
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
    if (cli.checkConfig) return console.log(summarizeConfig(config));
  } else if (cli.checkConfig) {
    return fail("--check-config and --demo do not go together: the demo has no config file", 2);
  }

  // A live exporter is built before anything listens, so a bad tokens path or config stops the start
  // cleanly; the demo needs the bound port for its redirect URL, so it is built after.
  const built = config ? await createExporter({ config, build: { version: VERSION, mode: "live" } }) : null;
  if (built && !built.ok) fail(built.error);
  const live = built?.ok ? built.value : null;
  let handler: Deno.ServeHandler = live?.handler ?? (() => new Response("Starting\n", { status: 503 }));
  const server = serve(config?.listen ?? cli.listen ?? DEMO_LISTEN, (request, info) => handler(request, info));
  const address: ListenAddress = { hostname: server.addr.hostname, port: server.addr.port };

  let exporter: Exporter;
  let demo: Demo | null = null;
  if (live && config) {
    exporter = live;
    log(summarizeConfig(config));
  } else {
    demo = await startDemo(address);
    config = demo.config;
    const made = await createExporter({
      config,
      build: { version: VERSION, mode: "demo" },
      persistence: memoryTokens(),
    });
    if (!made.ok) return fail(made.error);
    exporter = made.value;
    log(`DEMO MODE: serving a simulated Monzo at ${demo.fake.url}; no real bank is involved`);
    await demo.logInEveryone(exporter.sessions);
  }
  handler = exporter.handler;
  const base = config.publicUrl;
  log(`Listening on http://${formatListenAddress(address)}: status page ${base}/, metrics ${base}/metrics`);

  const stopCron = new AbortController();
  // The promise settles only when the cron stops, so it is kept, not awaited here.
  const cron = Deno.cron("monzo-poll", pollSchedule(config.pollIntervalMinutes), {
    backoffSchedule: [],
    signal: stopCron.signal,
  }, () => exporter.poller.poll());
  // Checks the tokens and fills the metrics now rather than at the first cron tick.
  void exporter.poller.poll();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`Received ${signal}: stopping`);
    setTimeout(() => fail("Shutdown took too long; exiting", 0), SHUTDOWN_GRACE_MS);
    stopCron.abort();
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
