// The release workflow's smoke test of a compiled binary: `--version`, then the demo on a free port,
// scraped until `monzo_up 1` and a balance show, then `--healthcheck` against it, then SIGTERM, which
// must end it with exit 0. Exits 0 when all of that held, else 1 with the reason and the program's log.
//
//   deno run --allow-run --allow-net tools/smoke_test.ts BINARY [EXPECTED_VERSION]

/** How long the demo may take to serve its first poll, and to stop after SIGTERM. */
const START_MS = 30_000;
const STOP_MS = 20_000;

/** Deadlines, shorter in tests of the smoke test itself. */
export interface SmokeOptions {
  readonly startMs?: number;
  readonly stopMs?: number;
}

/** What one smoke test found: the reason it failed, or null, and the lines it passed. */
export interface SmokeReport {
  readonly failure: string | null;
  readonly passed: readonly string[];
}

/** Runs the smoke test of `binary`; `expectedVersion` also checks `--version` and `monzo_exporter_build_info`. */
export async function smokeTest(
  binary: string,
  expectedVersion: string | null,
  options: SmokeOptions = {},
): Promise<SmokeReport> {
  const startMs = options.startMs ?? START_MS;
  const stopMs = options.stopMs ?? STOP_MS;
  const passed: string[] = [];
  const fail = (reason: string): SmokeReport => ({ failure: reason, passed });

  const version = await new Deno.Command(binary, { args: ["--version"], stdin: "null" }).output();
  const printed = new TextDecoder().decode(version.stdout).trim();
  if (!version.success) return fail(`--version exited ${version.code}`);
  if (!/^monzo-exporter \S+$/.test(printed)) return fail(`--version printed ${JSON.stringify(printed)}`);
  if (expectedVersion !== null && printed !== `monzo-exporter ${expectedVersion}`) {
    return fail(`--version printed ${JSON.stringify(printed)}, expected "monzo-exporter ${expectedVersion}"`);
  }
  passed.push(`--version: ${printed}`);

  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(binary, {
    args: ["--demo", "--web.listen-address", `127.0.0.1:${port}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = collect(child);
  let exited = false;
  const status = child.status.finally(() => exited = true);
  const withLog = async (reason: string) => {
    if (!exited) child.kill("SIGKILL");
    await status;
    return fail(`${reason}\n--- the program's output ---\n${(await output).trimEnd()}`);
  };

  const deadline = Date.now() + startMs;
  let metrics = "";
  while (!(isUp(metrics) && balance(metrics) !== null)) {
    if (exited) return await withLog(`the demo exited (${(await status).code}) before serving metrics`);
    if (Date.now() > deadline) {
      return await withLog(`no "monzo_up 1" with a balance on ${base}/metrics within ${startMs / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
    // Refused while the demo starts: asked again until the deadline.
    metrics = await fetch(`${base}/metrics`).then((response) => response.text(), () => "");
  }
  passed.push(`/metrics: monzo_up 1, ${balance(metrics)}`);
  if (expectedVersion !== null) {
    const info = `monzo_exporter_build_info{version=${JSON.stringify(expectedVersion)},mode="demo"} 1`;
    if (!metrics.split("\n").includes(info)) return await withLog(`/metrics lacks ${info}`);
    passed.push(`/metrics: ${info}`);
  }

  const health = await new Deno.Command(binary, { args: ["--healthcheck", `${base}/healthz`], stdin: "null" }).output();
  if (!health.success) {
    const said = new TextDecoder().decode(health.stderr).trim();
    return await withLog(`--healthcheck exited ${health.code} against the running demo: ${said}`);
  }
  passed.push("--healthcheck: exit 0");

  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), stopMs);
  const stopped = await status.finally(() => clearTimeout(timer));
  if (stopped.signal === "SIGKILL") return await withLog(`SIGTERM did not stop it within ${stopMs / 1000} s`);
  if (stopped.code !== 0) return await withLog(`SIGTERM stopped it with exit ${stopped.code}, not 0`);
  await output;
  passed.push("SIGTERM: exit 0");
  return { failure: null, passed };
}

function isUp(metrics: string): boolean {
  return metrics.split("\n").includes("monzo_up 1");
}

/** The first `monzo_balance` sample with a finite value, or null. */
function balance(metrics: string): string | null {
  return metrics.split("\n").find((line) =>
    /^monzo_balance\{[^}]*\} \S+$/.test(line) && Number.isFinite(Number(line.split(" ").at(-1)))
  ) ?? null;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Everything the child writes, stdout and stderr in one text, once both close. */
async function collect(child: Deno.ChildProcess): Promise<string> {
  const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  return stdout + stderr;
}

if (import.meta.main) {
  const [binary, expected] = Deno.args;
  if (binary === undefined || Deno.args.length > 2) {
    console.error("Usage: tools/smoke_test.ts BINARY [EXPECTED_VERSION]");
    Deno.exit(2);
  }
  const report = await smokeTest(binary, expected ?? null);
  for (const line of report.passed) console.log(`ok: ${line}`);
  if (report.failure !== null) {
    console.error(`Smoke test of ${binary} failed: ${report.failure}`);
    Deno.exit(1);
  }
  console.log(`Smoke test of ${binary} passed`);
}
