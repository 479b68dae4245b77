// The backfill generator (lib/backfill/): its OpenMetrics text against figures worked out by brute
// force, per sample time, from the transaction list; promtool's verdict on it; its bytes, its sample
// times, its labels, and that it streams.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type BackfillAccount, type BackfillSource, memorySource } from "../lib/backfill/source.ts";
import {
  BACKFILLED_FAMILIES,
  type BackfillSummary,
  CHUNK_CHARS,
  type OpenMetricsOptions,
  OWN_LABELS,
  writeOpenMetrics,
} from "../lib/backfill/openmetrics.ts";
import { paydaySalaries } from "../lib/backfill/timeline.ts";
import { BACKFILLED_NOTE, backfillHelp } from "../lib/backfill/help.ts";
import { budgetMonth } from "../lib/spending/budget_month.ts";
import { budget, cashFlow, categoryParts } from "../lib/spending/rules.ts";
import { type Counting, MONZO_VIEW, OwnAccounts } from "../lib/spending/classify.ts";
import type { StoredTransaction } from "../lib/monzo/transaction.ts";
import { balanceFamilies } from "../lib/poll/balances_step.ts";
import { FROM_LAST_POLL } from "../lib/shared/metric_family.ts";
import { binaryExists, explainSkip, PROMTOOL } from "./helpers/e2e.ts";
import { ruleWith as rule, storedTransaction } from "./helpers/stored.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A deterministic random sequence (Park–Miller), so every run builds the same history. */
function random(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 16807) % 2147483647) / 2147483647;
}

const CATEGORIES = ["groceries", "eating_out", "transport", "bills", "general", "shopping"];

/**
 * A history of `count` transactions over `days` from `start`: card payments (some pending, some
 * settling days later, across month ends), salaries, refunds, declines, pot moves, debits left out
 * of spending, splits, and a few in a second currency.
 */
function history(accountId: string, start: number, days: number, count: number, seed: number): StoredTransaction[] {
  const next = random(seed);
  const list: StoredTransaction[] = [];
  for (let i = 0; i < count; i++) {
    const createdMs = start + Math.floor(next() * days * DAY);
    const kind = next();
    const category = CATEGORIES[Math.floor(next() * CATEGORIES.length)];
    let amount = -1 - Math.floor(next() * 8_000);
    let includeInSpending: boolean | null = null;
    let categories: StoredTransaction["categories"] = null;
    if (kind < 0.08) amount = 150_000 + Math.floor(next() * 100_000); // salary
    else if (kind < 0.14) {
      amount = 1 + Math.floor(next() * 3_000); // refund
      includeInSpending = true;
    } else if (kind < 0.18) includeInSpending = false;
    else if (kind < 0.24) {
      const part = Math.floor(amount / 3);
      categories = [["groceries", part], ["bills", amount - part]];
    }
    const pending = next() < 0.07;
    list.push({
      id: `tx_${accountId}_${String(i).padStart(5, "0")}`,
      accountId,
      createdMs,
      settledMs: pending ? null : createdMs + Math.floor(next() * 4 * DAY),
      amount,
      currency: next() < 0.03 ? "EUR" : "GBP",
      category,
      categories,
      declined: next() < 0.04,
      includeInSpending,
      potMove: next() < 0.05,
      isLoad: false,
      description: "",
      merchant: null,
      counterparty: null,
    });
  }
  return list;
}

const CONFIG = { historyDays: 0, monthStartDay: 25, budgets: new Map<string, number>(), budgetCurrency: "GBP" };

function options(overrides: Partial<OpenMetricsOptions> = {}): OpenMetricsOptions {
  return {
    stepMs: HOUR,
    untilMs: null,
    monthStartDay: CONFIG.monthStartDay,
    budgeted: new Set(),
    counting: MONZO_VIEW,
    labels: [],
    help: backfillHelp(CONFIG),
    ...overrides,
  };
}

/** Two accounts of a few months that take in both UK clock changes and several month-start days. */
function fixture(): { accounts: BackfillAccount[]; transactions: StoredTransaction[] } {
  const b = Date.UTC(2024, 1, 3, 7, 41, 13);
  const a = Date.UTC(2024, 9, 1, 0, 0, 0);
  const accounts: BackfillAccount[] = [
    {
      accountId: "acc_b",
      currency: "GBP",
      historyStart: b,
      countingStart: b + 80 * DAY + 17 * MINUTE,
      balance: { balanceMinor: 1_234_567, at: b + 85 * DAY },
    },
    {
      accountId: "acc_a",
      currency: "GBP",
      historyStart: a,
      countingStart: a + 60 * DAY,
      balance: { balanceMinor: -9_876, at: a + 60 * DAY + 3 * HOUR },
    },
  ];
  const transactions = [...history("acc_b", b, 88, 500, 7), ...history("acc_a", a, 63, 300, 11)];
  return { accounts, transactions };
}

/** Collects what a sink is given, as text. */
function textSink(): { sink: { write(chunk: Uint8Array): Promise<void> }; text: () => string } {
  const chunks: Uint8Array[] = [];
  return {
    sink: {
      write: (chunk) => {
        chunks.push(chunk.slice());
        return Promise.resolve();
      },
    },
    text: () => {
      const decoder = new TextDecoder();
      return chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join("") + decoder.decode();
    },
  };
}

async function generate(source: BackfillSource, opts = options()): Promise<{ text: string; summary: BackfillSummary }> {
  const { sink, text } = textSink();
  const summary = await writeOpenMetrics(source, opts, sink);
  return { text: text(), summary };
}

/** One parsed sample line. */
interface Line {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
  readonly seconds: number;
}

/** Parses a sample line of OpenMetrics text, unescaping label values by the spec. */
function parseLine(line: string): Line {
  const brace = line.indexOf("{");
  const name = line.slice(0, brace);
  const labels: Record<string, string> = {};
  let i = brace + 1;
  while (line[i] !== "}") {
    const eq = line.indexOf("=", i);
    const label = line.slice(i, eq);
    assert.equal(line[eq + 1], '"');
    let value = "";
    let j = eq + 2;
    for (; line[j] !== '"'; j++) {
      if (line[j] === "\\") {
        j++;
        value += line[j] === "n" ? "\n" : line[j];
      } else value += line[j];
    }
    labels[label] = value;
    i = line[j + 1] === "," ? j + 2 : j + 1;
  }
  const [value, seconds] = line.slice(i + 2).split(" ");
  return { name, labels, value: Number(value), seconds: Number(seconds) };
}

/** The file as families (TYPE, HELP, samples), checking its shape on the way. */
function parse(text: string): Map<string, { type: string; help: string; lines: Line[] }> {
  assert.ok(text.endsWith("# EOF\n"), "the file does not end in # EOF");
  const families = new Map<string, { type: string; help: string; lines: Line[] }>();
  let current: { name: string; type: string; help: string; lines: Line[] } | null = null;
  for (const line of text.slice(0, -"# EOF\n".length).split("\n").slice(0, -1)) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      assert.ok(!families.has(type[1]), `family ${type[1]} appears twice: its lines are not together`);
      current = { name: type[1], type: type[2], help: "", lines: [] };
      families.set(type[1], current);
      continue;
    }
    assert.ok(current, `a line before any TYPE: ${line}`);
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    if (help) {
      assert.equal(help[1], current.name);
      current.help = help[2];
      continue;
    }
    const sample = parseLine(line);
    const expected: string = current.type === "counter" ? `${current.name}_total` : current.name;
    assert.equal(sample.name, expected, `a sample of another family inside ${current.name}: ${line}`);
    current.lines.push(sample);
  }
  return families;
}

/** Samples by series (its labels as JSON), checking each series' samples are together and in time order. */
function bySeries(lines: readonly Line[]): Map<string, Map<number, number>> {
  const series = new Map<string, Map<number, number>>();
  let previous: string | null = null;
  let lastSeconds = -Infinity;
  for (const line of lines) {
    const key = JSON.stringify(Object.entries(line.labels).sort());
    if (key !== previous) {
      assert.ok(!series.has(key), `the samples of ${key} are not together`);
      series.set(key, new Map());
      previous = key;
      lastSeconds = -Infinity;
    }
    assert.ok(line.seconds > lastSeconds, `${key}: samples out of time order at ${line.seconds}`);
    lastSeconds = line.seconds;
    series.get(key)!.set(line.seconds * 1000, line.value);
  }
  return series;
}

function key(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort());
}

/** The sample times of an account, found by testing every minute-aligned time in range against the step. */
function expectedTimes(account: BackfillAccount, stepMs: number, untilMs: number | null): number[] {
  const end = Math.min(account.countingStart, untilMs ?? Infinity);
  const times: number[] = [];
  // Every multiple of a minute from a step before the start; each kept when it is on the step's grid.
  const from = Math.floor((account.historyStart - stepMs) / MINUTE) * MINUTE;
  for (let t = from; t < end; t += MINUTE) if (t >= account.historyStart && t % stepMs === 0) times.push(t);
  return times;
}

/** What the live families would read at `t`, worked out from the whole list for that one time. */
function bruteForce(account: BackfillAccount, all: readonly StoredTransaction[], t: number) {
  const txs = all.filter((tx) => tx.accountId === account.accountId);
  let balance = account.balance.balanceMinor;
  for (const tx of txs) {
    if (tx.declined || tx.currency !== account.currency) continue;
    if (tx.createdMs > t && tx.createdMs <= account.balance.at) balance -= tx.amount;
    if (tx.createdMs <= t && tx.createdMs > account.balance.at) balance += tx.amount;
  }
  const spent = new Map<string, number>();
  const received = new Map<string, number>();
  for (const tx of txs) {
    spent.set(tx.currency, spent.get(tx.currency) ?? 0);
    received.set(tx.currency, received.get(tx.currency) ?? 0);
    const counted = !tx.declined && !tx.potMove && tx.settledMs !== null && tx.settledMs >= account.historyStart &&
      Math.max(tx.settledMs, tx.createdMs) <= t;
    if (!counted) continue;
    if (tx.amount < 0 && tx.includeInSpending !== false) spent.set(tx.currency, spent.get(tx.currency)! - tx.amount);
    if (tx.amount > 0) received.set(tx.currency, received.get(tx.currency)! + tx.amount);
  }
  const month = budgetMonth(t, CONFIG.monthStartDay);
  const spentMonth = new Map<string, number>();
  const receivedMonth = new Map<string, number>();
  for (const tx of txs) {
    if (tx.createdMs < month.start || tx.createdMs > t || tx.declined || tx.potMove) continue;
    const spending = tx.amount < 0 && tx.includeInSpending !== false;
    const refund = tx.amount > 0 && tx.includeInSpending === true;
    if (!spending && tx.amount <= 0) continue;
    for (const [category, part] of categoryParts(tx)) {
      const at = JSON.stringify([tx.currency, category]);
      if (spending || refund) spentMonth.set(at, (spentMonth.get(at) ?? 0) - part);
      else receivedMonth.set(at, (receivedMonth.get(at) ?? 0) + part);
    }
  }
  return { balance, spent, received, spentMonth, receivedMonth };
}

Deno.test("at every sample time the file holds the balance, the counters and the month's figures worked out by brute force", async () => {
  const { accounts, transactions } = fixture();
  const { text, summary } = await generate(memorySource(accounts, transactions));
  const families = parse(text);
  assert.deepEqual([...families.keys()], [
    "monzo_balance",
    "monzo_spent",
    "monzo_received",
    "monzo_spent_this_month",
    "monzo_received_this_month",
  ]);
  assert.deepEqual([...families.values()].map((family) => family.type), [
    "gauge",
    "counter",
    "counter",
    "gauge",
    "gauge",
  ]);
  const series = new Map([...families].map(([name, family]) => [name, bySeries(family.lines)]));
  // Every expected sample, found in the file; then nothing else is there.
  const expected = new Map<string, Map<string, Map<number, number>>>(
    [...series.keys()].map((name) => [name, new Map()]),
  );
  const put = (family: string, labels: Record<string, string>, t: number, minor: number) => {
    const of = expected.get(family)!;
    const k = key(labels);
    if (!of.has(k)) of.set(k, new Map());
    of.get(k)!.set(t, minor / 100);
  };
  let samples = 0;
  for (const account of accounts) {
    const id = account.accountId;
    for (const t of expectedTimes(account, HOUR, null)) {
      const figures = bruteForce(account, transactions, t);
      put("monzo_balance", { account_id: id, currency: account.currency }, t, figures.balance);
      for (const [currency, minor] of figures.spent) put("monzo_spent", { account_id: id, currency }, t, minor);
      for (const [currency, minor] of figures.received) put("monzo_received", { account_id: id, currency }, t, minor);
      for (const [at, minor] of figures.spentMonth) {
        const [currency, category] = JSON.parse(at);
        if (minor !== 0) put("monzo_spent_this_month", { account_id: id, category, currency }, t, minor);
      }
      for (const [at, minor] of figures.receivedMonth) {
        const [currency, category] = JSON.parse(at);
        if (minor !== 0) put("monzo_received_this_month", { account_id: id, category, currency }, t, minor);
      }
    }
  }
  for (const [family, want] of expected) {
    const got = series.get(family)!;
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${family}: the series differ`);
    for (const [k, points] of want) {
      assert.deepEqual(got.get(k), points, `${family} ${k}: the samples differ`);
      samples += points.size;
    }
  }
  // The data reaches every case: pending, splits, refunds, a second currency, a month with a refund only.
  assert.ok(expected.get("monzo_spent")!.size === 4, "both accounts have counters in GBP and EUR");
  assert.ok(expected.get("monzo_spent_this_month")!.size >= 12);
  const times = accounts.flatMap((account) => expectedTimes(account, HOUR, null));
  assert.deepEqual(summary, {
    accounts: 2,
    series: [...expected.values()].reduce((sum, of) => sum + of.size, 0),
    samples,
    firstMs: Math.min(...times),
    lastMs: Math.max(...times),
  });
});

Deno.test("each family's HELP is the live family's, without 'from the last poll', saying it is backfilled", async () => {
  const { accounts, transactions } = fixture();
  const families = parse((await generate(memorySource(accounts, transactions))).text);
  const live = balanceFamilies.find((family) => family.name === "monzo_balance")!.help;
  assert.ok(live.includes(FROM_LAST_POLL), "the live HELP says it comes from the last poll");
  assert.equal(families.get("monzo_balance")!.help, `${live.replace(FROM_LAST_POLL, "").trim()} ${BACKFILLED_NOTE}`);
  for (const [name, family] of families) {
    assert.ok(!family.help.includes(FROM_LAST_POLL), `${name}: the backfill does not come from a poll`);
    assert.ok(family.help.endsWith(BACKFILLED_NOTE), `${name}: HELP does not say it is backfilled`);
  }
});

if (!binaryExists(PROMTOOL)) explainSkip(PROMTOOL, "the backfill's promtool test");

Deno.test({
  name: "promtool tsdb create-blocks-from openmetrics takes the file as it is, every sample of it",
  ignore: !binaryExists(PROMTOOL),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "monzo-backfill-promtool-" });
    try {
      const { accounts, transactions } = fixture();
      const labels: [string, string][] = [["job", "monzo"], ["instance", 'host:9 "quoted" \\ back\nslash £']];
      const { text, summary } = await generate(memorySource(accounts, transactions), options({ labels }));
      const file = join(dir, "history.om");
      await Deno.writeTextFile(file, text);
      const blocks = join(dir, "blocks");
      const run = async (args: string[]) => {
        const output = await new Deno.Command(PROMTOOL, { args, stdout: "piped", stderr: "piped" }).output();
        const said = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
        assert.equal(output.code, 0, `promtool ${args.join(" ")} failed: ${said}`);
        return said;
      };
      await run(["tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=8760h", file, blocks]);
      // `tsdb list` prints a row per block: ULID, min time, max time, duration, samples, chunks, series.
      const listed = await run(["tsdb", "list", blocks]);
      const rows = listed.trim().split("\n").slice(1).map((row) => row.trim().split(/\s+/));
      assert.ok(rows.length >= 1, `promtool made no block: ${listed}`);
      const stored = rows.reduce((sum, row) => sum + Number(row[4]), 0);
      assert.equal(stored, summary.samples);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("the same history gives the same bytes, whatever order the source lists the accounts in", async () => {
  const { accounts, transactions } = fixture();
  const first = await generate(memorySource(accounts, transactions));
  const again = await generate(memorySource([...accounts].reverse(), [...transactions].reverse()));
  assert.equal(again.text, first.text);
  assert.ok(first.text.length > 100_000);
});

Deno.test("samples fall on multiples of the step since the Unix epoch, from the history start to before the counting start", async () => {
  const { accounts, transactions } = fixture();
  for (const stepMs of [5 * MINUTE, 7 * MINUTE, HOUR, 90 * MINUTE, DAY]) {
    const { text, summary } = await generate(memorySource(accounts, transactions), options({ stepMs }));
    const balances = bySeries(parse(text).get("monzo_balance")!.lines);
    for (const account of accounts) {
      const times = [...balances.get(key({ account_id: account.accountId, currency: "GBP" }))!.keys()];
      assert.deepEqual(
        times,
        expectedTimes(account, stepMs, null),
        `step ${stepMs / MINUTE} min, ${account.accountId}`,
      );
    }
    const all = accounts.flatMap((account) => expectedTimes(account, stepMs, null));
    assert.equal(summary.firstMs, Math.min(...all));
    assert.equal(summary.lastMs, Math.max(...all));
  }
});

Deno.test("a history start on the step's grid is itself a sample; a counting start on it is not", async () => {
  const start = Date.UTC(2025, 2, 30, 0, 0, 0); // the day the UK clocks went forward
  const account: BackfillAccount = {
    accountId: "acc",
    currency: "GBP",
    historyStart: start,
    countingStart: start + 5 * HOUR,
    balance: { balanceMinor: 100, at: start + 6 * HOUR },
  };
  const { text } = await generate(memorySource([account], []));
  const times = [...bySeries(parse(text).get("monzo_balance")!.lines).values()][0];
  assert.deepEqual([...times.keys()], [0, 1, 2, 3, 4].map((h) => start + h * HOUR));
});

Deno.test("--backfill.until ends the samples before it when it is earlier than the counting start, never later", async () => {
  const { accounts, transactions } = fixture();
  const source = memorySource(accounts, transactions);
  const full = await generate(source);
  const untilMs = Date.UTC(2024, 2, 20, 12, 30);
  const cut = await generate(source, options({ untilMs }));
  const balances = bySeries(parse(cut.text).get("monzo_balance")!.lines);
  for (const account of accounts) {
    const times = [...balances.get(key({ account_id: account.accountId, currency: "GBP" }))?.keys() ?? []];
    assert.deepEqual(times, expectedTimes(account, HOUR, untilMs));
    assert.ok(times.every((t) => t < untilMs));
  }
  // One account is cut short, the other (whose history starts later) left out.
  assert.deepEqual([...balances.keys()], [key({ account_id: "acc_b", currency: "GBP" })]);
  assert.equal(cut.summary.accounts, 1);
  assert.equal(cut.summary.lastMs, Date.UTC(2024, 2, 20, 12));
  // Later than every counting start: the same file as without it.
  const late = await generate(source, options({ untilMs: Date.UTC(2030, 0, 1) }));
  assert.equal(late.text, full.text);
});

Deno.test("--backfill.label adds its labels to every series, values escaped, after none of the exporter's own", async () => {
  const { accounts, transactions } = fixture();
  const labels: [string, string][] = [["zone", 'a "b" \\c\nd ✓'], ["instance", "host:9100"], ["job", "monzo"]];
  const { text } = await generate(memorySource(accounts, transactions), options({ labels }));
  const families = parse(text);
  let lines = 0;
  for (const [, family] of families) {
    for (const line of family.lines) {
      lines++;
      assert.equal(line.labels.zone, 'a "b" \\c\nd ✓');
      assert.equal(line.labels.instance, "host:9100");
      assert.equal(line.labels.job, "monzo");
    }
  }
  assert.ok(lines > 1000);
  // The series keep the exporter's labels; those added never name one of them.
  const names = new Set([...families.values()].flatMap((f) => f.lines.flatMap((l) => Object.keys(l.labels))));
  assert.deepEqual([...names].filter((name) => !["zone", "instance", "job"].includes(name)).sort(), [...OWN_LABELS]);
});

Deno.test("without labels the series carry only the exporter's own", async () => {
  const { accounts, transactions } = fixture();
  const families = parse((await generate(memorySource(accounts, transactions))).text);
  for (const [name, family] of families) {
    const own = name === "monzo_spent_this_month" || name === "monzo_received_this_month"
      ? ["account_id", "category", "currency"]
      : ["account_id", "currency"];
    for (const line of family.lines) assert.deepEqual(Object.keys(line.labels), own);
  }
  assert.equal(families.size, BACKFILLED_FAMILIES.length);
});

Deno.test("it streams: chunks stay small and are written while the history is still being read", async () => {
  const { accounts, transactions } = fixture();
  const inner = memorySource(accounts, transactions);
  let open = 0;
  let reads = 0;
  // Counts the passes under way: a chunk written while one is under way was not held back until the end.
  const source: BackfillSource = {
    accounts: () => inner.accounts(),
    async *transactions(accountId) {
      reads++;
      open++;
      try {
        yield* inner.transactions(accountId);
      } finally {
        open--;
      }
    },
  };
  const chunks: { bytes: number; during: boolean; reads: number }[] = [];
  const summary = await writeOpenMetrics(source, options({ labels: [["job", "x".repeat(500)]] }), {
    write: (chunk) => {
      chunks.push({ bytes: chunk.byteLength, during: open > 0, reads });
      return Promise.resolve();
    },
  });
  const total = chunks.reduce((sum, chunk) => sum + chunk.bytes, 0);
  assert.ok(total > 20 * CHUNK_CHARS, `too little output to tell: ${total} bytes`);
  // A chunk is cut at the first line that fills it: at most one line (under 1,000 characters) more.
  const longest = Math.max(...chunks.map((chunk) => chunk.bytes));
  assert.ok(longest <= CHUNK_CHARS + 1_000, `a chunk of ${longest} bytes`);
  const during = chunks.filter((chunk) => chunk.during).length;
  assert.ok(during >= chunks.length - summary.series - 1, `${during} of ${chunks.length} chunks written during a pass`);
  // And they come through the run, not at its end: half the chunks are out before half the passes are done.
  const half = chunks[Math.floor(chunks.length / 2)];
  assert.ok(half.reads < reads * 0.75, `half the output came after ${half.reads} of ${reads} passes`);
});

Deno.test("an account whose history starts at or after its counting start, or after --backfill.until, has no samples", async () => {
  const start = Date.UTC(2025, 0, 1);
  const account = (accountId: string, historyStart: number, countingStart: number): BackfillAccount => ({
    accountId,
    currency: "GBP",
    historyStart,
    countingStart,
    balance: { balanceMinor: 0, at: countingStart },
  });
  const source = memorySource([account("later", start + HOUR, start + HOUR), account("ok", start, start + 2 * HOUR)], [
    ...history("later", start, 1, 10, 3),
    ...history("ok", start, 1, 10, 5),
  ]);
  const { text, summary } = await generate(source);
  const families = parse(text);
  const ids = new Set([...families.values()].flatMap((f) => f.lines.map((l) => l.labels.account_id)));
  assert.deepEqual([...ids], ["ok"]);
  assert.equal(summary.accounts, 1);
  const none = await generate(source, options({ untilMs: start }));
  assert.equal(none.text, "# EOF\n");
  assert.deepEqual(none.summary, { accounts: 0, series: 0, samples: 0, firstMs: null, lastMs: null });
});

// ---------------------------------------------------------------- issue 18: the same counting as live

Deno.test("the backfill counts under the live rules and own accounts: a shared rent, an excluded coffee, an internal transfer", async () => {
  const start = Date.UTC(2025, 2, 20, 6);
  const account: BackfillAccount = {
    accountId: "acc_a",
    currency: "GBP",
    historyStart: start,
    countingStart: start + 20 * DAY,
    balance: { balanceMinor: 500_000, at: start + 20 * DAY },
  };
  const made = (n: number, amount: number, description: string, fields: Partial<StoredTransaction> = {}) => ({
    id: `tx_${n}`,
    accountId: "acc_a",
    createdMs: start + n * DAY + 3 * HOUR,
    settledMs: start + n * DAY + 9 * HOUR,
    amount,
    currency: "GBP",
    category: "general",
    categories: null,
    declined: false,
    includeInSpending: null,
    potMove: false,
    isLoad: false,
    description,
    merchant: null,
    counterparty: null,
    ...fields,
  });
  const transactions: StoredTransaction[] = [
    made(1, -1_000, "TESCO", { category: "groceries" }),
    made(2, -120_001, "RENT APRIL", { category: "bills" }),
    made(3, 50_000, "FROM BOB", { counterparty: { accountId: "acc_b", sortCode: null, accountNumber: null } }),
    made(4, -350, "PRET A MANGER", { category: "eating_out" }),
    made(8, -2_000, "TO JOINT", { counterparty: { accountId: null, sortCode: "040004", accountNumber: "22222222" } }),
    made(9, 250_000, "SALARY", { category: "income" }),
  ];
  const counting: Counting = {
    rules: [rule(1, { description: /rent/i, share: 0.5 }), rule(2, { description: /pret/i, exclude: true })],
    accountShares: new Map(),
    own: new OwnAccounts([
      { id: "acc_a", sortCode: "040004", accountNumber: "11111111" },
      { id: "acc_b", sortCode: null, accountNumber: null },
      { id: "acc_joint", sortCode: "040004", accountNumber: "22222222" },
    ]),
  };
  const families = parse((await generate(memorySource([account], transactions), options({ counting }))).text);
  const series = (name: string) => bySeries(families.get(name)?.lines ?? []);
  const times = expectedTimes(account, HOUR, null);
  const live = (t: number, view: Counting) => {
    const settled = transactions.filter((tx) => Math.max(tx.settledMs ?? Infinity, tx.createdMs) <= t);
    const created = transactions.filter((tx) => tx.createdMs <= t);
    return {
      flow: cashFlow(settled, view, account.historyStart).find((flow) => flow.currency === "GBP"),
      rows: budget(created, budgetMonth(t, CONFIG.monthStartDay), view),
    };
  };
  const last = times[times.length - 1];
  // Worked by hand: 1,000 + 120,001 × 0.5 = 60,000.5 → 60,001, the coffee excluded, both transfers
  // internal; received only the salary.
  assert.deepEqual(live(last, counting).flow, {
    accountId: "acc_a",
    currency: "GBP",
    spentMinor: 1_000 + 60_001,
    receivedMinor: 250_000,
  });
  // Monzo's own view would have counted them all: the test is not vacuous.
  assert.notDeepEqual(live(last, MONZO_VIEW).flow, live(last, counting).flow);
  const labels = key({ account_id: "acc_a", currency: "GBP" });
  for (const t of times) {
    const { flow, rows } = live(t, counting);
    assert.equal(series("monzo_spent").get(labels)?.get(t), (flow?.spentMinor ?? 0) / 100, `spent at ${t}`);
    assert.equal(series("monzo_received").get(labels)?.get(t), (flow?.receivedMinor ?? 0) / 100, `received at ${t}`);
    for (const row of rows) {
      const at = key({ account_id: "acc_a", category: row.category, currency: "GBP" });
      if (row.spentMinor !== 0) {
        assert.equal(series("monzo_spent_this_month").get(at)?.get(t), row.spentMinor / 100, `${row.category} at ${t}`);
      }
      if (row.receivedMinor !== 0) {
        assert.equal(series("monzo_received_this_month").get(at)?.get(t), row.receivedMinor / 100);
      }
    }
  }
  // No category row for the transfers or the coffee, ever; the transfers still move the balance.
  const categories = [...series("monzo_spent_this_month").keys(), ...series("monzo_received_this_month").keys()];
  assert.ok(!categories.some((k) => k.includes("eating_out")), "the excluded coffee has a row");
  assert.ok(!categories.some((k) => k.includes('"general"')), "a transfer has a row");
  const balance = series("monzo_balance").get(labels);
  const before = times.find((t) => t >= start + 3 * DAY + 3 * HOUR && t < start + 4 * DAY) ?? 0;
  assert.equal(
    (balance?.get(before) ?? 0) - (balance?.get(before - HOUR) ?? 0),
    500,
    "the transfer in moved the balance",
  );
});

Deno.test("the backfill's salaries: the first in each month's window across accounts; none outside a window, internal, small, declined or in another currency", async () => {
  const account = (accountId: string): BackfillAccount => ({
    accountId,
    currency: "GBP",
    historyStart: Date.UTC(2025, 0, 1),
    countingStart: Date.UTC(2025, 4, 1),
    balance: { balanceMinor: 0, at: Date.UTC(2025, 4, 1) },
  });
  let n = 0;
  const credit = (accountId: string, iso: string, amount: number, fields: Partial<StoredTransaction> = {}) =>
    storedTransaction({
      id: `tx_${n++}`,
      accountId,
      createdMs: Date.parse(iso),
      amount,
      category: "income",
      ...fields,
    });
  const transactions: StoredTransaction[] = [
    credit("acc_a", "2025-01-10T09:00:00Z", 400_000), // before the window (20th–24th for the 25th)
    credit("acc_a", "2025-01-23T09:00:00Z", 300_000),
    credit("acc_b", "2025-01-22T09:00:00Z", 250_000), // the first of January's window, on the other account
    credit("acc_a", "2025-02-21T09:00:00Z", 500_000, {
      counterparty: { accountId: "acc_b", sortCode: null, accountNumber: null },
    }),
    credit("acc_b", "2025-02-24T23:30:00Z", 300_000), // 23:30 London (GMT) on the 24th: still the window
    credit("acc_a", "2025-03-21T09:00:00Z", 199_999),
    credit("acc_a", "2025-03-22T09:00:00Z", 300_000, { declined: true }),
    credit("acc_a", "2025-03-23T09:00:00Z", 300_000, { currency: "EUR" }),
    credit("acc_a", "2025-03-25T00:30:00Z", 300_000), // the start day itself: after the window
  ];
  const counting: Counting = {
    rules: [],
    accountShares: new Map(),
    own: new OwnAccounts([
      { id: "acc_a", sortCode: null, accountNumber: null },
      { id: "acc_b", sortCode: null, accountNumber: null },
    ]),
  };
  const source = memorySource([account("acc_a"), account("acc_b")], transactions);
  const found = await paydaySalaries(source, { minMinor: 200_000, currency: "GBP" }, { monthStartDay: 25, counting });
  assert.deepEqual(found.map((salary) => [new Date(salary.createdMs).toISOString(), salary.amountMinor]), [
    ["2025-01-22T09:00:00.000Z", 250_000],
    ["2025-02-24T23:30:00.000Z", 300_000],
  ]);
});
