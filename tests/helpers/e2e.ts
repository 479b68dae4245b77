// Shared pieces of the end-to-end tests: ports, deadlines, config files, child processes and an
// in-process exporter served over real HTTP, logged in to a fake Monzo.

import { join } from "node:path";
import { type Config, configFromObject } from "../../lib/config/config.ts";
import { createExporter, type Exporter } from "../../lib/run/exporter.ts";
import type { FakeMonzo } from "../../lib/fake_monzo/mod.ts";
import { memoryTokens, tokenFile, type TokenPersistence } from "../../lib/logins/token_file.ts";
import { VERSION } from "../../lib/shared/version.ts";
import { AUTH_KEY, CLIENT_ID, CLIENT_SECRET } from "./harness.ts";
import { runtimeFlags, taskRunArgs } from "./tasks.ts";

/** The project root: child processes run here, as a user would run `deno task`. */
export const ROOT: string = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

// The OAuth client and the household's ids are the in-process harness's, so they are defined once.
export {
  ALICE,
  ALICE_CURRENT,
  AUTH_KEY,
  BOB,
  BOB_CURRENT,
  CLIENT_ID,
  CLIENT_SECRET,
  HOLIDAY_POT,
  JOINT,
  RAINY_POT,
} from "./harness.ts";

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** True while something accepts connections on 127.0.0.1:port. */
export async function isListening(port: number): Promise<boolean> {
  try {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port });
    connection.close();
    return true;
  } catch {
    return false;
  }
}

/** Calls `probe` until it returns something other than undefined/false/null, or fails after the deadline. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown = null;
  while (true) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
      lastError = null;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`Timed out after ${options.timeoutMs ?? 10_000} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

/** Whether `promise` settles within `ms`; leaves no timer behind. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether an executable file exists (for `ignore:` of tests needing a Debian binary). */
export function binaryExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Prints why a test is skipped, so a skip is never silent. */
export function explainSkip(missing: string, why: string): void {
  console.warn(`SKIPPED: ${missing} is not installed, so ${why} cannot run here (.ci/run installs it)`);
}

/** Where Debian's package puts promtool. */
export const PROMTOOL = "/usr/bin/promtool";

/** Runs `promtool check metrics` on `text`: its exit code and everything it said, trimmed. */
export async function promtoolCheck(text: string): Promise<{ code: number; complaints: string }> {
  const child = new Deno.Command(PROMTOOL, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const output = await child.output();
  const decoder = new TextDecoder();
  return { code: output.code, complaints: (decoder.decode(output.stdout) + decoder.decode(output.stderr)).trim() };
}

/** Writes a TOML config; every value is a string or number (JSON string escapes are valid TOML). */
export async function writeConfig(dir: string, fields: Record<string, string | number>, name = "config.toml") {
  const text = Object.entries(fields).map(([key, value]) => `${key} = ${JSON.stringify(value)}`).join("\n") + "\n";
  const path = join(dir, name);
  await Deno.writeTextFile(path, text);
  return path;
}

/** The keys every config needs, for an exporter at 127.0.0.1:port with no Monzo behind it. */
export function bareConfigFields(port: number): Record<string, string> {
  return {
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    server_addr: `127.0.0.1:${port}`,
    redirect_uri: `http://127.0.0.1:${port}`,
    auth_key: AUTH_KEY,
  };
}

/** The six original keys plus the new ones, pointed at `fake`, for an exporter at 127.0.0.1:port. */
export function configFields(fake: FakeMonzo, port: number): Record<string, string | number> {
  return {
    ...bareConfigFields(port),
    api_url: fake.url,
    auth_url: fake.authUrl,
    tokens_path: "tokens.json",
  };
}

/** Output of a child process, read as it comes so pipes never fill. */
export class Output {
  text = "";
  readonly done: Promise<void>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
    this.done = this.#pump();
  }

  async #pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        this.text += decoder.decode(value, { stream: true });
      }
    } catch {
      // Cancelled by stop().
    }
    this.text += decoder.decode();
  }

  /** Stops reading (for a process whose descendants might keep the pipe open). */
  async stop(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.done;
  }
}

/** A running child with its output. */
export interface Running {
  readonly child: Deno.ChildProcess;
  readonly stdout: Output;
  readonly stderr: Output;
  /** Settles when the child exits. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Signals the child (if still running) and waits for it and its output; SIGKILL after `graceMs`. */
  stop(signal?: Deno.Signal, graceMs?: number): Promise<Deno.CommandStatus>;
}

/**
 * Starts a program with piped output (stdin closed) in a process group of its own, so that stopping it
 * also ends whatever it started (`deno task` runs the program as its child); call `stop()` in a finally.
 */
export function spawn(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Running {
  const child = new Deno.Command(command, {
    args: [...args],
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const stdout = new Output(child.stdout);
  const stderr = new Output(child.stderr);
  let finished = false;
  const status = child.status.then((s) => {
    finished = true;
    return s;
  });
  const signal = (target: number, signo: Deno.Signal) => {
    try {
      Deno.kill(target, signo);
    } catch {
      // Already gone.
    }
  };
  return {
    child,
    stdout,
    stderr,
    status,
    async stop(signo: Deno.Signal = "SIGTERM", graceMs = 5_000) {
      if (!finished) {
        // A graceful signal goes to the command itself, as a service manager sends it; SIGKILL to all.
        signal(signo === "SIGKILL" ? -child.pid : child.pid, signo);
        const timer = setTimeout(() => signal(-child.pid, "SIGKILL"), graceMs);
        await status.finally(() => clearTimeout(timer));
      }
      // Nothing the command started may outlive it.
      signal(-child.pid, "SIGKILL");
      if (!await settlesWithin(Promise.all([stdout.done, stderr.done]), 2_000)) {
        await Promise.all([stdout.stop(), stderr.stop()]);
      }
      return await status;
    },
  };
}

/** Runs `deno task <task> …args` in the project, as a user would (the bundle built once); waits for the end. */
export async function runTask(
  task: "start" | "demo",
  args: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string; stderrLines: string[] }> {
  const running = spawn(Deno.execPath(), [...await taskRunArgs(task), ...args]);
  const timer = setTimeout(() => running.child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  await running.status.finally(() => clearTimeout(timer));
  const status = await running.stop();
  return {
    code: status.code,
    stdout: running.stdout.text,
    stderr: running.stderr.text,
    stderrLines: programLines(running.stderr.text),
  };
}

/** The lines of standard error the program wrote: without deno task's own `Task …` echoes (one per task it
 * runs, before the program starts) and blank lines. */
export function programLines(stderr: string): string[] {
  const lines = stderr.split("\n").filter((line) => line.trim() !== "");
  const echoes = lines.findIndex((line) => !line.startsWith("Task "));
  return echoes < 0 ? [] : lines.slice(echoes);
}

/** An exporter in this process, served on a real loopback port. */
export interface ServedExporter {
  readonly exporter: Exporter;
  readonly config: Config;
  readonly url: string;
  readonly port: number;
  /** Log lines the exporter wrote. */
  readonly logs: string[];
  close(): Promise<void>;
}

/**
 * Serves an exporter pointed at `fake` on 127.0.0.1 (port 0 by default). The server starts first so
 * that `redirect_uri` can name the real port, as a user's config would.
 */
export async function serveExporter(
  fake: FakeMonzo,
  options: { dir?: string; port?: number; persistence?: TokenPersistence; extra?: Record<string, unknown> } = {},
): Promise<ServedExporter> {
  let handler: (request: Request) => Response | Promise<Response> = () => new Response("starting", { status: 503 });
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen: (addr) => listening.resolve(addr) },
    (request) => handler(request),
  );
  const port = (await listening.promise).port;
  try {
    const dir = options.dir ?? "/nonexistent-e2e";
    const made = configFromObject({
      ...configFields(fake, port),
      ...(options.dir ? {} : { data_path: ":memory:" }),
      ...options.extra,
    }, { path: join(dir, "config.toml") });
    if (!made.ok) throw new Error(made.error);
    const config = made.value;
    const logs: string[] = [];
    const built = await createExporter({
      config,
      build: { version: VERSION, mode: "live" },
      sink: (line) => logs.push(line),
      persistence: options.persistence ?? (options.dir ? tokenFile(config.tokensPath) : memoryTokens()),
    });
    if (!built.ok) throw new Error(built.error);
    const exporter = built.value;
    handler = exporter.handler;
    return {
      exporter,
      config,
      url: `http://127.0.0.1:${port}`,
      port,
      logs,
      async close() {
        await exporter.close();
        await server.shutdown();
      },
    };
  } catch (error) {
    await server.shutdown();
    throw error;
  }
}

/** Logs `userId` in as the browser flow would, without a browser. */
export async function logInDirectly(served: ServedExporter, fake: FakeMonzo, userId: string): Promise<void> {
  const loggedIn = await served.exporter.sessions.logIn(fake.issueCode(userId, served.config.callbackUrl));
  if (!loggedIn.ok) throw new Error(`login of ${userId} failed: ${loggedIn.error}`);
}

/** GETs a URL and returns status, headers and text. */
export async function get(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** The value of the one sample `name{labels}` in an exposition, or undefined. Labels must be given in full order. */
export function sampleValue(exposition: string, name: string, labels: string): number | undefined {
  const prefix = `${name}{${labels}} `;
  const line = exposition.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

/**
 * `deno run`, the start task's permission, unstable and V8 flags, and main.ts: the program as `deno task
 * start` runs it, from the source (the task runs the same code bundled; tests/bundle_test.ts checks that).
 */
export const PROGRAM: readonly string[] = ["run", ...runtimeFlags("start"), "main.ts"];

/**
 * Starts the program (`deno run … main.ts`, the start task's permissions) with `args`; waits until
 * 127.0.0.1:port serves /healthz, or kills it and fails with what it said. Call `stop()` in a finally.
 */
export async function startServing(args: readonly string[], port: number, timeoutMs = 20_000): Promise<Running> {
  const program = spawn(Deno.execPath(), [...PROGRAM, ...args]);
  try {
    await waitFor("the exporter to serve /healthz", async () => {
      return (await get(`http://127.0.0.1:${port}/healthz`)).status === 200;
    }, { timeoutMs });
  } catch (error) {
    await program.stop("SIGKILL");
    throw new Error(`${error instanceof Error ? error.message : error}; stderr:\n${program.stderr.text}`);
  }
  return program;
}

/** How a program run to its end went, and whether anything ever answered on its port. */
export interface Ended {
  readonly code: number;
  readonly listened: boolean;
  readonly stdout: string;
  readonly stderrLines: string[];
}

/** Runs `command args` to its end (30 s at most) while knocking on `port` the whole time. */
export async function runWhileProbing(command: string, args: readonly string[], port: number): Promise<Ended> {
  const running = spawn(command, args);
  let exited = false;
  let listened = false;
  const status = running.status.finally(() => exited = true);
  const timer = setTimeout(() => running.child.kill("SIGKILL"), 30_000);
  while (!exited && !listened) {
    if (await isListening(port)) listened = true;
    await settlesWithin(status, 10);
  }
  clearTimeout(timer);
  const { code } = await running.stop();
  if (await isListening(port)) listened = true;
  return { code, listened, stdout: running.stdout.text, stderrLines: programLines(running.stderr.text) };
}

/** Debian's Prometheus server, for the tests that scrape with the real one. */
export const PROMETHEUS = "/usr/bin/prometheus";

/**
 * Starts a real Prometheus on a free port with its data (`dir`/data) and config in `dir`, scraping and
 * evaluating every second; `scrapeConfigs` are the YAML lines under `scrape_configs:`, `flags` more
 * command-line flags (a retention). Stop it with `process.stop`.
 */
export async function startPrometheus(
  dir: string,
  scrapeConfigs: readonly string[],
  flags: readonly string[] = [],
): Promise<{ url: string; process: ReturnType<typeof spawn> }> {
  const port = freePort();
  const configPath = join(dir, "prometheus.yml");
  const global = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "  evaluation_interval: 1s"];
  await Deno.writeTextFile(configPath, [...global, "scrape_configs:", ...scrapeConfigs, ""].join("\n"));
  const process = spawn(PROMETHEUS, [
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    ...flags,
  ], { cwd: dir });
  return { url: `http://127.0.0.1:${port}`, process };
}
