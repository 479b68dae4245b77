/**
 * The stored history as OpenMetrics 1.0 text with timestamps, for `promtool tsdb
 * create-blocks-from openmetrics`: the live families' names, labels and meanings, one sample per
 * step. Each family's lines are together, each series' samples together and in time order (what
 * OpenMetrics asks and promtool needs), so the generator walks the history once per series and
 * writes as it goes: memory holds the series' names, never their samples.
 *
 * @module
 */
import { formatValue, openMetricsHeader, seriesName } from "../exposition/exposition.ts";
import { type FamilyInfo, type Labels, major } from "../shared/metric_family.ts";
import type { BackfillAccount, BackfillSource } from "./source.ts";
import { type Moment, paydaySalaries, sampleTimes, type Survey, survey, type TimelinePlan, walk } from "./timeline.ts";
import { compareText } from "../shared/compare.ts";

/** The live families the backfill writes, in the order it writes them. */
export const BACKFILLED_FAMILIES = [
  "monzo_balance",
  "monzo_spent_total",
  "monzo_received_total",
  "monzo_spent_this_month",
  "monzo_received_this_month",
] as const;

/** A family the backfill writes. */
export type BackfilledFamily = typeof BACKFILLED_FAMILIES[number];

/** The label names the backfilled series carry of their own; `--backfill.label` may add any other. */
export const OWN_LABELS: readonly string[] = ["account_id", "category", "currency"];

/** What {@link writeOpenMetrics} needs besides the source. */
export interface OpenMetricsOptions extends TimelinePlan {
  /** Labels added to every series (`--backfill.label`), checked by the command line's reader. */
  readonly labels: Labels;
  /** The HELP text of each family. */
  readonly help: Readonly<Record<BackfilledFamily, string>>;
}

/** Where the text goes, in chunks of at most about {@link CHUNK_CHARS} characters. */
export interface ChunkSink {
  write(chunk: Uint8Array): Promise<void>;
}

/** The characters gathered before a chunk is written. */
export const CHUNK_CHARS = 64 * 1024;

/** What was written, for the one summary line. */
export interface BackfillSummary {
  readonly accounts: number;
  readonly series: number;
  readonly samples: number;
  /** The first and last sample time, epoch ms; null when there is no sample. */
  readonly firstMs: number | null;
  readonly lastMs: number | null;
}

/** Gathers lines and writes them as UTF-8 chunks. */
class ChunkWriter {
  readonly #sink: ChunkSink;
  readonly #encoder = new TextEncoder();
  #parts: string[] = [];
  #size = 0;

  constructor(sink: ChunkSink) {
    this.#sink = sink;
  }

  /** Adds a line. */
  line(text: string): void {
    this.#parts.push(text, "\n");
    this.#size += text.length + 1;
  }

  /** Writes the chunk once it is full: a promise to await before the next line, else undefined. */
  spill(): Promise<void> | undefined {
    return this.#size >= CHUNK_CHARS ? this.flush() : undefined;
  }

  async flush(): Promise<void> {
    if (this.#size === 0) return;
    const chunk = this.#encoder.encode(this.#parts.join(""));
    this.#parts = [];
    this.#size = 0;
    await this.#sink.write(chunk);
  }
}

/** One series of a family: its labels, and how its value at a moment is read (undefined: no sample then). */
interface Series {
  readonly labels: Labels;
  readonly value: (moment: Moment) => number | undefined;
}

/** The series of a family for one surveyed account, in the live order (currency, then category). */
function seriesOf(family: BackfilledFamily, account: BackfillAccount, found: Survey, extra: Labels): Series[] {
  const id: [string, string] = ["account_id", account.accountId];
  switch (family) {
    case "monzo_balance":
      return [{ labels: [id, ["currency", account.currency], ...extra], value: (m) => m.balanceMinor() }];
    case "monzo_spent_total":
    case "monzo_received_total":
      return found.currencies.map((currency) => ({
        labels: [id, ["currency", currency], ...extra],
        value: (m) => family === "monzo_spent_total" ? m.flow(currency).spentMinor : m.flow(currency).receivedMinor,
      }));
    case "monzo_spent_this_month":
    case "monzo_received_this_month": {
      const spent = family === "monzo_spent_this_month";
      // As live: a category shows while its month's figure is not 0.
      return (spent ? found.spentRows : found.receivedRows).map(([currency, category]) => ({
        labels: [id, ["category", category], ["currency", currency], ...extra],
        value: (m) => {
          const row = m.row(currency, category);
          const minor = row === undefined ? 0 : spent ? row.spentMinor : row.receivedMinor;
          return minor === 0 ? undefined : minor;
        },
      }));
    }
  }
}

/**
 * Writes the history of every account of `source` as OpenMetrics text to `sink`, ending in `# EOF`.
 * The same source and options give the same bytes.
 */
export async function writeOpenMetrics(
  source: BackfillSource,
  options: OpenMetricsOptions,
  sink: ChunkSink,
): Promise<BackfillSummary> {
  // Salaries on any account start the household's month: found once, before any account is walked.
  const payday = options.payday ?? null;
  const plan: OpenMetricsOptions = payday === null
    ? options
    : { ...options, salaries: await paydaySalaries(source, payday, options) };
  const out = new ChunkWriter(sink);
  const accounts = [...source.accounts()].sort((a, b) => compareText(a.accountId, b.accountId));
  const extra = [...options.labels].sort(([a], [b]) => compareText(a, b));
  const surveys = new Map<string, Survey>();
  let first: number | null = null;
  let last: number | null = null;
  for (const account of accounts) {
    const { first: from, end } = sampleTimes(account, options);
    if (from >= end) continue;
    surveys.set(account.accountId, await survey(source, account, plan));
    first = first === null ? from : Math.min(first, from);
    const final = from + Math.floor((end - 1 - from) / options.stepMs) * options.stepMs;
    last = last === null ? final : Math.max(last, final);
  }
  let series = 0;
  let samples = 0;
  for (const family of BACKFILLED_FAMILIES) {
    const info: FamilyInfo = {
      name: family,
      type: family.endsWith("_total") ? "counter" : "gauge",
      help: options.help[family],
    };
    let headed = false;
    for (const account of accounts) {
      const found = surveys.get(account.accountId);
      if (found === undefined) continue;
      for (const one of seriesOf(family, account, found, extra)) {
        const name = seriesName(family, one.labels);
        let written = 0;
        await walk(
          source,
          account,
          plan,
          (moment) => {
            const value = one.value(moment);
            if (value === undefined) return;
            if (!headed) {
              headed = true;
              for (const line of openMetricsHeader(info)) out.line(line);
            }
            written++;
            // Times are whole seconds for any step of whole seconds; minor units print to the penny.
            out.line(`${name} ${formatValue(major(value))} ${moment.at / 1000}`);
            return out.spill();
          },
          undefined,
          found.movedByBalanceTime,
        );
        if (written > 0) series++;
        samples += written;
      }
    }
  }
  out.line("# EOF");
  await out.flush();
  return { accounts: surveys.size, series, samples, firstMs: first, lastMs: last };
}
