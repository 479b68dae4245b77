// A real Prometheus holding a backfill, as the README's "Your history in Prometheus" makes one:
// promtool turns the OpenMetrics file into blocks in Prometheus' data folder, with the block duration
// and the retention the README gives, and Prometheus is asked about times in the backfilled past.

import { join } from "node:path";
import { get, PROMTOOL, spawn, startPrometheus, waitFor } from "./e2e.ts";

/** The README's flag: blocks of about half a year, so years of history are a few blocks. */
export const MAX_BLOCK_DURATION = "--max-block-duration=8760h";
/** A retention longer than any history here: the default 15 days deletes backfilled blocks within a minute. */
export const LONG_RETENTION = "--storage.tsdb.retention.time=100y";

/** Runs `promtool tsdb create-blocks-from openmetrics` on `file` into `dataDir`; throws with what it said. */
export async function createBlocks(file: string, dataDir: string): Promise<string> {
  const args = ["tsdb", "create-blocks-from", "openmetrics", MAX_BLOCK_DURATION, file, dataDir];
  const output = await new Deno.Command(PROMTOOL, { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  const said = decoder.decode(output.stdout) + decoder.decode(output.stderr);
  if (output.code !== 0) throw new Error(`promtool ${args.join(" ")} exited ${output.code}: ${said}`);
  return said;
}

/**
 * Makes blocks from `file` in `dir`/data, then starts Prometheus on them (a long retention; scraping
 * `scrapeConfigs`, the YAML lines under `scrape_configs:`, if any) and waits until it is ready. Stop it
 * with `process.stop`.
 */
export async function startBackfilledPrometheus(
  dir: string,
  file: string,
  scrapeConfigs: readonly string[] = [],
): Promise<{ url: string; process: ReturnType<typeof spawn> }> {
  await createBlocks(file, join(dir, "data"));
  const started = await startPrometheus(dir, scrapeConfigs, [LONG_RETENTION]);
  try {
    await waitFor("Prometheus to be ready", async () => (await get(`${started.url}/-/ready`)).status === 200, {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
  } catch (error) {
    await started.process.stop("SIGKILL");
    throw new Error(
      `${error instanceof Error ? error.message : error}; Prometheus said:\n${started.process.stderr.text}`,
    );
  }
  return started;
}

/** One series of a query's answer: its labels and its value (instant) or values (range). */
export interface Answer {
  readonly metric: Record<string, string>;
  readonly value?: [number, string];
  readonly values?: [number, string][];
}

/** An instant query at `seconds` (a time in the past); an error answer throws, naming the query. */
export async function queryAt(prometheus: string, promql: string, seconds: number): Promise<Answer[]> {
  return await api(prometheus, "query", { query: promql, time: String(seconds) });
}

/** A range query from `start` to `end` (seconds) every `step` seconds, as Grafana sends a panel's query. */
export async function queryRange(
  prometheus: string,
  promql: string,
  start: number,
  end: number,
  step: number,
): Promise<Answer[]> {
  return await api(prometheus, "query_range", {
    query: promql,
    start: String(start),
    end: String(end),
    step: String(step),
  });
}

async function api(prometheus: string, path: string, params: Record<string, string>): Promise<Answer[]> {
  const answer = await get(`${prometheus}/api/v1/${path}?${new URLSearchParams(params)}`);
  const body = JSON.parse(answer.text);
  if (answer.status !== 200 || body.status !== "success") throw new Error(`${params.query}: ${answer.text}`);
  return body.data.result;
}

/** The UTC instant a London calendar month starts (its 1st, 00:00 Europe/London), worked out by Intl. */
export function londonMonthStart(year: number, month: number): number {
  const midnightUtc = Date.UTC(year, month - 1, 1);
  // London is UTC or UTC+1: its midnight is at 00:00 or 23:00 UTC; the one London reads as 00:00.
  const hour = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/London", hour: "2-digit", hourCycle: "h23" });
  return Number(hour.format(midnightUtc)) === 0 ? midnightUtc : midnightUtc - 3_600_000;
}

/** The London calendar month containing `ms`, as [year, month 1–12]. */
export function londonMonthOf(ms: number): [number, number] {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/London", year: "numeric", month: "numeric" })
    .formatToParts(ms);
  const part = (type: string) => Number(parts.find((one) => one.type === type)?.value);
  return [part("year"), part("month")];
}
