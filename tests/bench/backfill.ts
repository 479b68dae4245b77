// The backfill's cost, for `deno task bench` (and alone: `deno run -A tests/bench/backfill.ts`).
//
// A fake Monzo holds 3 accounts with 5 years of history each; an in-process exporter logs in, imports it
// all into a store on disk and polls once (so the store keeps the balances). Then the exporter as users
// run it (`deno task start`'s command) writes `--backfill` from that store at the default step (1 h)
// and at 15 m (4 × the samples), timed, with its peak resident memory read by GNU time.
// The baseline, in the same run, is the same command with `--check-config` on the same config: a start
// that reads the config and checks the store's path, and writes nothing.
//
// Budgets (issue 17): "5 years of history for 3 accounts at the default step is written in seconds"
// (here: under 30 s) "with memory bounded by the number of series, not the number of samples" (here:
// the 15 m run, with 4 × the samples, peaks within 10 % of the 1 h run).

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { configFromObject } from "../../lib/config/config.ts";
import { createExporter } from "../../lib/run/exporter.ts";
import { benchData, startFakeMonzo } from "../../lib/fake_monzo/mod.ts";
import { memoryTokens } from "../../lib/logins/token_file.ts";
import { taskRunArgs } from "../helpers/tasks.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ACCOUNTS = 3;
const YEARS = 5;
const CLIENT_ID = "oauth2client_00009BenchBackfill";
const CLIENT_SECRET = "mnzconf.bench-backfill-not-real";
const AUTH_KEY = "bench-backfill-auth-key-0123456789";
/** The default step's run must end within this. */
const TARGET_SECONDS = 30;
/** The 15 m run's peak may exceed the 1 h run's by at most this fraction. */
const TARGET_PEAK_GROWTH = 0.1;
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** One command's wall time, peak resident memory and standard output. */
interface Timed {
  readonly seconds: number;
  readonly peakMb: number;
  readonly stdout: string;
}

/** Runs `command args` under GNU time (`%M`: the peak resident set, kB); throws when it fails. */
async function timed(command: string, args: readonly string[], cwd: string): Promise<Timed> {
  const started = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "peak-kb %M", command, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${args.join(" ")} failed: ${stderr}`);
  const peak = /^peak-kb (\d+)$/m.exec(stderr);
  if (peak === null) throw new Error(`GNU time gave no peak: ${stderr}`);
  return {
    seconds: round(seconds),
    peakMb: round(Number(peak[1]) / 1024, 1),
    stdout: new TextDecoder().decode(out.stdout),
  };
}

/** What the bench reports of the backfill. */
export interface BackfillFigures {
  readonly accounts: number;
  readonly years: number;
  readonly transactions: number;
  readonly baseline: Timed;
  readonly hourly: Timed & { readonly bytes: number };
  readonly quarterHourly: Timed & { readonly bytes: number };
  readonly pass: { readonly time: boolean; readonly memory: boolean };
}

/**
 * Builds the 5-year store in `temp` and times `--backfill` by the exporter as `start` runs it
 * (`deno` and its `run …` words), against `--check-config`.
 */
export async function measureBackfill(
  start: { readonly command: string; readonly args: readonly string[] },
  temp: string,
  perAccount: number,
  say: (message: string) => void,
): Promise<BackfillFigures> {
  const now = Date.now();
  const data = benchData(ACCOUNTS, 0, { transactions: perAccount, now, years: YEARS });
  // The import walks back to an account's opening: date it with its first transaction.
  for (const account of data.accounts) account.created = account.transactions[0]?.created ?? account.created;
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, data, autoApprove: true });
  const configPath = join(temp, "backfill-config.toml");
  const settings = {
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    server_addr: "127.0.0.1:0",
    redirect_uri: "http://127.0.0.1:9",
    auth_key: AUTH_KEY,
    api_url: fake.url,
    auth_url: fake.authUrl,
    data_path: "backfill.kv",
  };
  try {
    const config = configFromObject(settings, { path: configPath });
    if (!config.ok) throw new Error(config.error);
    const made = await createExporter({
      config: config.value,
      build: { version: "bench", mode: "live" },
      sink: () => {},
      persistence: memoryTokens(),
    });
    if (!made.ok) throw new Error(made.error);
    const exporter = made.value;
    try {
      const login = await exporter.sessions.logIn(fake.issueCode(data.users[0].id, config.value.callbackUrl));
      if (!login.ok) throw new Error(`login failed: ${login.error}`);
      say(`backfill: importing ${YEARS} years of ${ACCOUNTS} accounts (${ACCOUNTS * perAccount} transactions)`);
      await exporter.poller.poll();
    } finally {
      await exporter.close();
    }
  } finally {
    await fake.close();
  }
  await Deno.writeTextFile(
    configPath,
    Object.entries(settings).map(([key, value]) => `${key} = ${JSON.stringify(value)}`).join("\n") + "\n",
  );
  const run = (...extra: string[]) => timed(start.command, [...start.args, "--config", configPath, ...extra], ROOT);
  const baseline = await run("--check-config");
  const backfill = async (step: string) => {
    const file = join(temp, `backfill-${step}.om`);
    const figures = await run("--backfill", file, "--backfill.step", step);
    const bytes = (await Deno.stat(file)).size;
    await Deno.remove(file);
    say(
      `backfill at ${step}: ${figures.seconds} s, peak ${figures.peakMb} MB, ${bytes} bytes: ${figures.stdout.trim()}`,
    );
    return { ...figures, bytes };
  };
  const hourly = await backfill("1h");
  const quarterHourly = await backfill("15m");
  return {
    accounts: ACCOUNTS,
    years: YEARS,
    transactions: ACCOUNTS * perAccount,
    baseline,
    hourly,
    quarterHourly,
    pass: {
      time: hourly.seconds < TARGET_SECONDS,
      memory: quarterHourly.peakMb <= hourly.peakMb * (1 + TARGET_PEAK_GROWTH),
    },
  };
}

/** The table rows of {@link measureBackfill}'s figures, with the budgets' verdicts. */
export function backfillRows(figures: BackfillFigures): string[] {
  const verdict = (ok: boolean) => ok ? "PASS" : "FAIL";
  const { baseline, hourly, quarterHourly } = figures;
  return [
    `backfill, ${figures.years} years × ${figures.accounts} accounts (${figures.transactions} transactions):`,
    `  --check-config (baseline): ${baseline.seconds} s, peak ${baseline.peakMb} MB`,
    `  --backfill, step 1h: ${hourly.seconds} s (${round(hourly.seconds / baseline.seconds, 1)} × baseline), ` +
    `peak ${hourly.peakMb} MB (baseline + ${round(hourly.peakMb - baseline.peakMb, 1)} MB), ${hourly.bytes} bytes`,
    `  --backfill, step 15m: ${quarterHourly.seconds} s, peak ${quarterHourly.peakMb} MB ` +
    `(${
      round(quarterHourly.peakMb / hourly.peakMb)
    } × the 1h run's, with 4 × the samples), ${quarterHourly.bytes} bytes`,
    `  budget: the 1h run under ${TARGET_SECONDS} s: ${verdict(figures.pass.time)}`,
    `  budget: the 15m run's peak within ${TARGET_PEAK_GROWTH * 100} % of the 1h run's: ${
      verdict(figures.pass.memory)
    }`,
  ];
}

if (import.meta.main) {
  const temp = await Deno.makeTempDir({ prefix: "monzo-exporter-bench-backfill-" });
  try {
    const figures = await measureBackfill(
      { command: Deno.execPath(), args: await taskRunArgs("start") },
      temp,
      Number(Deno.args[0] ?? 5_555),
      (message) => console.error(`[bench] ${message}`),
    );
    console.log(backfillRows(figures).join("\n"));
  } finally {
    await Deno.remove(temp, { recursive: true });
  }
}
