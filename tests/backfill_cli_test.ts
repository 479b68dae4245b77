// `--backfill FILE` on the command line (issue 17, section 2): the option parsers in process; then the
// real program (the bundle `deno task start` runs) on a store filled by a real login and poll against
// the fake Monzo, beside a live exporter that polls the same store and holds its locks; the demo's
// history; and every bad input, each one line and a non-zero exit with nothing left in FILE's folder.

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseOptions } from "../lib/config/cli_args.ts";
import { parseCli } from "../lib/config/cli.ts";
import { DEFAULT_STEP_MS, parseDuration, parseRfc3339 } from "../lib/config/backfill_options.ts";
import { OWN_LABELS } from "../lib/backfill/openmetrics.ts";
import { storeSource } from "../lib/backfill/store_source.ts";
import { TransactionStore } from "../lib/store/transaction_store.ts";
import { decodeStoredTransaction, type StoredTransaction } from "../lib/monzo/transaction.ts";
import { lockExporterFiles } from "../lib/store/instance_lock.ts";
import { ALICE, ALICE_CURRENT, BOB, type Harness, logIn, MINUTE, poll, T0, withHarness } from "./helpers/harness.ts";
import {
  bareConfigFields,
  binaryExists,
  explainSkip,
  freePort,
  PROMTOOL,
  runTask,
  spawn,
  waitFor,
  writeConfig,
} from "./helpers/e2e.ts";
import { taskRunArgs } from "./helpers/tasks.ts";
import { cannotMount, notRoot, withMount, withReadOnly } from "./helpers/mounts.ts";
import { storedTransaction } from "./helpers/stored.ts";

const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The parsed `--backfill` request of `args`, or the one-line error. */
function backfillOf(args: string[]) {
  const parsed = parseCli(args);
  return parsed.ok ? { request: parsed.value.backfill } : { error: parsed.error };
}

/** The error `args` give, which must be one line naming `option` (and pointing at --help). */
function refused(args: string[], ...words: string[]): string {
  const parsed = parseCli(args);
  assert.ok(!parsed.ok, `${args.join(" ")} was accepted`);
  assert.ok(!parsed.error.includes("\n"), parsed.error);
  assert.match(parsed.error, /\(see --help\)$/);
  for (const word of words) assert.ok(parsed.error.includes(word), `"${parsed.error}" does not say ${word}`);
  return parsed.error;
}

Deno.test("a repeated option keeps every value in order, = and separate alike; a value option still keeps its last", () => {
  const specs = { tag: { kind: "repeated" }, one: { kind: "value" } } as const;
  const parsed = parseOptions(["--tag", "a=1", "--one", "x", "--tag=b=2", "--one=y", "--tag", "c"], specs);
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.value.values("tag"), ["a=1", "b=2", "c"]);
  assert.equal(parsed.value.value("one"), "y");
  const none = parseOptions([], specs);
  assert.ok(none.ok);
  assert.deepEqual(none.value.values("tag"), []);
  const missing = parseOptions(["--tag"], specs);
  assert.ok(!missing.ok && missing.error.includes("--tag needs a value"));
  const dashed = parseOptions(["--tag", "-x"], specs);
  assert.ok(!dashed.ok && dashed.error.includes("--tag=VALUE"));
});

Deno.test("--backfill FILE alone: the default step of 1h, no labels, no end", () => {
  assert.deepEqual(backfillOf(["--backfill", "out.om"]), {
    request: { file: "out.om", labels: [], stepMs: DEFAULT_STEP_MS, untilMs: null },
  });
  assert.equal(DEFAULT_STEP_MS, HOUR);
  assert.deepEqual(backfillOf([]), { request: null });
  refused(["--backfill", " "], "--backfill needs a file path");
  refused(["--backfill"], "--backfill needs a value");
});

Deno.test("Prometheus durations: units largest first, each once, combined; anything else is not one", () => {
  const cases: Array<[string, number]> = [
    ["5m", 5 * MINUTE],
    ["90m", 90 * MINUTE],
    ["1h", HOUR],
    ["1h30m", 90 * MINUTE],
    ["1d", DAY],
    ["1w", 7 * DAY],
    ["1y", 365 * DAY],
    ["3600s", HOUR],
    ["1s500ms", 1_500],
    ["0", 0],
  ];
  for (const [text, ms] of cases) {
    assert.equal(parseDuration(text), ms, text);
  }
  for (const text of ["", "5", "1.5h", "m5", "1m1h", "-5m", "5 m", "1H", "1h1h", "5min", " 5m", "1d\n"]) {
    assert.equal(parseDuration(text), null, JSON.stringify(text));
  }
});

Deno.test("--backfill.step takes a whole-second duration from 5m to 1d; outside that it is one line saying why", () => {
  for (
    const [text, ms] of [["5m", 5 * MINUTE], ["90m", 90 * MINUTE], ["1d", DAY], ["86400s", DAY], [
      "7m30s",
      450_000,
    ]] as const
  ) {
    assert.equal(backfillOf(["--backfill", "f", "--backfill.step", text]).request?.stepMs, ms, text);
  }
  refused(["--backfill", "f", "--backfill.step", "hourly"], "--backfill.step", '"hourly"', "not a Prometheus duration");
  refused(["--backfill", "f", "--backfill.step", "4m59s"], "shorter than 5m");
  refused(["--backfill", "f", "--backfill.step", "1d1s"], "longer than 1d");
  refused(["--backfill", "f", "--backfill.step", "1w"], "longer than 1d");
  refused(["--backfill", "f", "--backfill.step", "5m500ms"], "whole number of seconds");
  refused(["--backfill", "f", "--backfill.step", "9".repeat(400) + "d"], "longer than 1d");
});

Deno.test("--backfill.until takes an RFC 3339 time, Z or an offset, with a fraction; a date or time that does not exist is refused", () => {
  const cases: Array<[string, string]> = [
    ["2026-01-31T00:00:00Z", "2026-01-31T00:00:00.000Z"],
    ["2026-06-01T09:30:00+01:00", "2026-06-01T08:30:00.000Z"],
    ["2026-06-01t09:30:00-05:30", "2026-06-01T15:00:00.000Z"],
    ["2024-02-29T23:59:59.250z", "2024-02-29T23:59:59.250Z"],
  ];
  for (const [text, iso] of cases) {
    assert.equal(parseRfc3339(text), Date.parse(iso), text);
    assert.equal(backfillOf(["--backfill", "f", `--backfill.until=${text}`]).request?.untilMs, Date.parse(iso));
  }
  for (
    const text of [
      "2026-01-31",
      "2026-01-31T00:00:00",
      "2026-02-29T00:00:00Z",
      "2026-04-31T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T00:60:00Z",
      "2026-01-01T00:00:60Z",
      "2026-01-01T00:00:00+24:00",
      "2026-01-01 00:00:00Z",
      "yesterday",
      "1767225600",
    ]
  ) {
    assert.equal(parseRfc3339(text), null, text);
    refused(["--backfill", "f", "--backfill.until", text], "--backfill.until", "not an RFC 3339 time");
  }
});

Deno.test("--backfill.label is repeatable, NAME=VALUE with the value's own = kept; a bad name, reserved or own label, a second one, an empty or control value are refused", () => {
  const given = backfillOf([
    "--backfill",
    "f",
    "--backfill.label",
    "job=monzo",
    "--backfill.label=instance=nas.local:9100",
    "--backfill.label",
    "note=a=b £ ünïcode",
  ]);
  assert.deepEqual(given.request?.labels, [["job", "monzo"], ["instance", "nas.local:9100"], [
    "note",
    "a=b £ ünïcode",
  ]]);
  const label = (...words: string[]) => ["--backfill", "f", ...words.flatMap((word) => ["--backfill.label", word])];
  refused(label("job"), '"job"', "not NAME=VALUE");
  refused(label("=x"), "label name");
  refused(label("1job=x"), "label name");
  refused(label("my-job=x"), "label name");
  refused(label("jöb=x"), "label name");
  refused(label("__name__=x"), "__");
  refused(label("__x=y"), "__");
  for (const own of OWN_LABELS) refused(label(`${own}=x`), own, "of their own");
  refused(label("job=a", "job=b"), "job", "second time");
  refused(label("job="), "empty value");
  refused(label("job=a\nb"), "control");
  refused(label("job=a\u001b[31mb"), "control");
  refused(label("job=a\u202eb"), "bidi");
  // The refused value is shown escaped: the line stays one line and prints nothing a terminal acts on.
  const shown = refused(label("job=a\u001b[31m\nb"), "--backfill.label");
  assert.ok(!/\p{Cc}/u.test(shown), JSON.stringify(shown));
});

Deno.test("the --backfill options without --backfill are refused, as is --backfill with --check-config or --healthcheck", () => {
  refused(["--backfill.step", "1h"], "--backfill.step needs --backfill FILE");
  refused(["--backfill.until", "2026-01-01T00:00:00Z"], "--backfill.until needs --backfill FILE");
  refused(["--backfill.label", "job=x"], "--backfill.label needs --backfill FILE");
  refused(["--backfill", "f", "--check-config"], "--backfill and --check-config do not go together");
  refused(["--backfill", "f", "--healthcheck"], "--backfill and --healthcheck do not go together");
  assert.ok(parseCli(["--demo", "--backfill", "f"]).ok);
});

/** A settled debit on `accountId` created at `createdMs`. */
function debit(accountId: string, id: string, createdMs: number, amount = -500): StoredTransaction {
  return storedTransaction({ id, accountId, createdMs, settledMs: createdMs + HOUR, amount });
}

Deno.test("the store's source: accounts with a history and a saved balance; one with a history but no balance is named; one with only a balance is left out", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const opened = await TransactionStore.open(kv, {
      decode: decodeStoredTransaction,
      recentSince: T0,
      clock: { now: () => T0 },
    });
    assert.ok(opened.ok);
    const store = opened.value;
    const start = T0 - 30 * DAY;
    for (const account of ["acc_polled", "acc_unpolled"]) {
      const put = [debit(account, `tx_${account}_1`, start + DAY), debit(account, `tx_${account}_2`, start + 2 * DAY)];
      assert.ok((await store.write(account, { put, history: { start, complete: true } })).ok);
    }
    const balance = { balanceMinor: 12_345, currency: "EUR", at: T0 };
    for (const account of ["acc_polled", "acc_balance_only"]) {
      assert.ok((await store.saveBalance(account, balance)).ok);
      assert.ok((await store.markRead(account, T0)).ok);
    }

    const { source, withoutBalance } = storeSource(store);
    assert.deepEqual(source.accounts(), [{
      accountId: "acc_polled",
      currency: "EUR",
      historyStart: start,
      countingStart: T0,
      balance: { balanceMinor: 12_345, at: T0 },
    }]);
    assert.deepEqual(withoutBalance, ["acc_unpolled"]);
    const read: string[] = [];
    for await (const tx of source.transactions("acc_polled")) read.push(tx.id);
    assert.deepEqual(read, ["tx_acc_polled_1", "tx_acc_polled_2"]);
  } finally {
    kv.close();
  }
});

// The real program, as `deno task start` runs it.

/** The sample lines of an OpenMetrics text: series, value, timestamp in seconds. */
function samplesOf(text: string): Array<{ series: string; labels: string; time: number }> {
  return text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).map((line) => {
    const match = /^([a-z_]+)\{(.*)\} (\S+) (\d+)$/.exec(line);
    assert.ok(match, `not a sample line with labels and a timestamp: ${line}`);
    return { series: `${match[1]}{${match[2]}}`, labels: match[2], time: Number(match[4]) };
  });
}

/** The names in a folder, sorted (to see that nothing was left behind). */
async function namesIn(folder: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(folder)) names.push(entry.name);
  return names.sort();
}

/** A config for the program whose store is `dataPath`. */
function configFor(dir: string, dataPath: string): Promise<string> {
  return writeConfig(
    dir,
    { ...bareConfigFields(freePort()), data_path: dataPath },
    `config-${crypto.randomUUID()}.toml`,
  );
}

/** Runs the program with `args`, expecting one summary line on stdout and exit 0; the line. */
async function backfillOk(args: string[]): Promise<string> {
  const ran = await runTask("start", args, { timeoutMs: 60_000 });
  assert.equal(ran.code, 0, `exit ${ran.code}: ${ran.stderr}`);
  assert.deepEqual(ran.stderrLines, [], ran.stderr);
  const lines = ran.stdout.trim().split("\n");
  assert.equal(lines.length, 1, ran.stdout);
  return lines[0];
}

/** Checks the summary line against the file: its path, and the counts and first and last times found in it. */
function assertSummary(line: string, file: string, text: string): void {
  const samples = samplesOf(text);
  const accounts = new Set(samples.map((sample) => /account_id="([^"]*)"/.exec(sample.labels)?.[1])).size;
  const times = samples.map((sample) => sample.time);
  const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
  const expected = `Wrote ${file}: ${accounts} account${accounts === 1 ? "" : "s"}, ` +
    `${new Set(samples.map((s) => s.series)).size} series, ` +
    `${samples.length} samples, samples from ${iso(Math.min(...times))} to ${iso(Math.max(...times))}`;
  assert.equal(line, expected);
}

Deno.test("--backfill on a store from a real login and poll: one summary line true to the file, labels on every series, promtool takes it, same bytes again; all beside a live exporter that polls the same store and holds its locks", async () => {
  await withHarness({}, async (h: Harness) => {
    await logIn(h, ALICE);
    await logIn(h, BOB);
    await poll(h);
    assert.deepEqual(h.exporter.snapshot.state.lastPoll?.problems, []);
    const dir = join(h.config.dataPath, "..");
    const out = await Deno.makeTempDir({ prefix: "monzo-backfill-out-" });
    // As `main.ts` holds them for a live exporter: the backfill must not need them.
    const locks = await lockExporterFiles(h.config);
    assert.ok(locks.ok, locks.ok ? "" : locks.error);
    try {
      const configPath = await configFor(dir, h.config.dataPath);
      const file = join(out, "history.om");
      const args = [
        "--config",
        configPath,
        "--backfill",
        file,
        "--backfill.label",
        "job=monzo",
        "--backfill.label=instance=nas.local:9100",
        "--backfill.step",
        "1d",
      ];
      const storeFiles = await namesIn(dir);
      // The live exporter polls and writes (new transactions, each poll's balance) while the backfill reads.
      let running = true;
      let polls = 0;
      const live = (async () => {
        while (running) {
          const amount = -100 - polls;
          // Created after the last balance was read, as a real one is.
          h.clock.advance(1_000);
          h.fake.addTransaction(ALICE_CURRENT, {
            created: new Date(h.clock.now()).toISOString(),
            amount,
            description: `Coffee ${polls}`,
            category: "eating_out",
          });
          // The fake's balance is a number of its own: it moves with the coffee, as Monzo's would.
          const account = h.fake.data.accounts.find((one) => one.id === ALICE_CURRENT);
          assert.ok(account);
          account.balance += amount;
          await poll(h, MINUTE);
          assert.deepEqual(h.exporter.snapshot.state.lastPoll?.problems, [], `poll ${polls} failed`);
          polls++;
        }
      })();
      let first: string;
      try {
        first = await backfillOk(args);
      } finally {
        running = false;
        await live;
      }
      assert.ok(polls >= 2, `the live exporter polled only ${polls} times during the backfill`);
      assert.deepEqual(await namesIn(out), ["history.om"], "something besides FILE is left in its folder");
      assert.deepEqual(await namesIn(dir), storeFiles, "the backfill changed the store's folder");
      const text = await Deno.readTextFile(file);
      assert.ok(text.endsWith("# EOF\n"));
      assertSummary(first, file, text);

      const samples = samplesOf(text);
      assert.ok(samples.length > 365, `only ${samples.length} samples`);
      for (const sample of samples) {
        assert.ok(
          sample.labels.includes('job="monzo"') && sample.labels.includes('instance="nas.local:9100"'),
          sample.series,
        );
        assert.equal(sample.time % (DAY / 1000), 0, `${sample.series} at ${sample.time} is not on the 1d step`);
        assert.ok(sample.time * 1000 < T0, `${sample.series} at ${sample.time} is not before the counting start`);
      }
      const families = new Set(samples.map((sample) => sample.series.split("{")[0]));
      assert.deepEqual([...families].sort(), [
        "monzo_balance",
        "monzo_received_this_month",
        "monzo_received_total",
        "monzo_spent_this_month",
        "monzo_spent_total",
      ]);

      // After the live exporter wrote more (later than the counting start), the past reads the same,
      // balances included: the store gives a balance only once the transactions it includes are stored.
      // Run again with the store at rest, twice: the same bytes each time.
      const quiet = await backfillOk(args);
      const quietText = await Deno.readTextFile(file);
      assert.equal(await backfillOk(args), quiet);
      assert.ok(quietText === await Deno.readTextFile(file), "a second run gave other bytes");
      assert.ok(text === quietText, "the backfill beside the polls differs from the one at rest");
      assert.equal(quiet, first);

      if (!binaryExists(PROMTOOL)) return explainSkip(PROMTOOL, "the backfill's promtool check");
      const blocks = join(out, "blocks");
      const made = await new Deno.Command(PROMTOOL, {
        args: ["tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=87600h", file, blocks],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(made.stdout) + new TextDecoder().decode(made.stderr);
      assert.equal(made.code, 0, `promtool refused the file: ${said}`);
      assert.ok((await namesIn(blocks)).some((name) => /^[0-9A-Z]{26}$/.test(name)), `no block made: ${said}`);
    } finally {
      if (locks.ok) { for (const lock of locks.value) lock.release(); }
      await Deno.remove(out, { recursive: true });
    }
  });
});

Deno.test("--demo --backfill FILE writes the demo's history and exits", async () => {
  const out = await Deno.makeTempDir({ prefix: "monzo-backfill-demo-" });
  try {
    const file = join(out, "demo.om");
    const line = await backfillOk(["--demo", "--backfill", file, "--backfill.step", "1d"]);
    const text = await Deno.readTextFile(file);
    assertSummary(line, file, text);
    const times = samplesOf(text).map((sample) => sample.time * 1000);
    assert.ok(Math.max(...times) - Math.min(...times) > 365 * DAY, "the demo has less than a year of history");
    assert.deepEqual(await namesIn(out), ["demo.om"]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

/**
 * Fills a store at `path`: Alice's current account with 30 days of daily debits, its history, and a
 * balance when `polled`; each of `unpolled` with a debit and a history but no balance.
 */
async function fillStore(
  path: string,
  { polled, unpolled = [] }: { polled: boolean; unpolled?: readonly string[] },
): Promise<void> {
  const kv = await Deno.openKv(path);
  try {
    const opened = await TransactionStore.open(kv, {
      decode: decodeStoredTransaction,
      recentSince: T0,
      clock: { now: () => T0 },
    });
    assert.ok(opened.ok);
    const start = T0 - 30 * DAY;
    const put = Array.from({ length: 30 }, (_, i) => debit(ALICE_CURRENT, `tx_${i}`, start + i * DAY + HOUR));
    assert.ok((await opened.value.write(ALICE_CURRENT, { put, history: { start, complete: true } })).ok);
    for (const account of unpolled) {
      const history = { start, complete: true };
      assert.ok((await opened.value.write(account, { put: [debit(account, `tx_${account}`, start)], history })).ok);
    }
    if (polled) {
      const balance = { balanceMinor: 100_000, currency: "GBP", at: T0 };
      assert.ok((await opened.value.saveBalance(ALICE_CURRENT, balance)).ok);
      assert.ok((await opened.value.markRead(ALICE_CURRENT, T0)).ok);
    }
  } finally {
    kv.close();
  }
}

/** Runs the program, which must refuse in one line saying each of `words`, with exit `code`. */
async function assertRefusal(args: string[], code: number, words: string[]): Promise<void> {
  const ran = await runTask("start", args, { timeoutMs: 30_000 });
  const what = `${args.join(" ")}: exit ${ran.code}, ${JSON.stringify(ran.stderr)}`;
  assert.equal(ran.code, code, what);
  assert.equal(ran.stderrLines.length, 1, what);
  assert.equal(ran.stdout, "", what);
  for (const word of words) assert.ok(ran.stderrLines[0].includes(word), `${what} does not say ${word}`);
}

Deno.test("bad input to the real program: one line naming it, a non-zero exit, nothing left in FILE's folder, no store made or changed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "monzo-backfill-bad-" });
  try {
    const stores = join(dir, "stores");
    const out = join(dir, "out");
    await Deno.mkdir(stores);
    await Deno.mkdir(join(out, "sub"), { recursive: true });
    const empty = join(stores, "empty.kv");
    (await Deno.openKv(empty)).close();
    const unpolled = join(stores, "unpolled.kv");
    await fillStore(unpolled, { polled: false });
    const polled = join(stores, "polled.kv");
    await fillStore(polled, { polled: true });
    const missing = join(stores, "missing.kv");
    const config = async (dataPath: string) => ["--config", await configFor(dir, dataPath)];
    const file = join(out, "history.om");
    const polledConfig = await config(polled);
    const before = { stores: await namesIn(stores), out: await namesIn(out), polled: await Deno.readFile(polled) };
    const cases: Array<[string[], number, string[]]> = [
      [[...await config(polled), "--backfill", file, "--backfill.step", "4m"], 2, [
        "--backfill.step",
        "shorter than 5m",
      ]],
      [[...await config(polled), "--backfill", file, "--backfill.step", "1x"], 2, ["not a Prometheus duration"]],
      [[...await config(polled), "--backfill", file, "--backfill.until", "yesterday"], 2, ["not an RFC 3339 time"]],
      [[...await config(polled), "--backfill", file, "--backfill.label", "currency=GBP"], 2, ["currency", "own"]],
      [[...await config(polled), "--backfill.step", "1h"], 2, ["--backfill.step needs --backfill FILE"]],
      [[...await config(polled), "--backfill", join(out, "nope", "h.om")], 1, [
        `"${join(out, "nope")}"`,
        "does not exist",
      ]],
      [[...await config(polled), "--backfill", join(out, "sub")], 1, [`"${join(out, "sub")}"`, "is a folder"]],
      [[...await config(missing), "--backfill", file], 1, [`"${missing}"`, "log in first"]],
      [[...await config(empty), "--backfill", file], 1, [`"${empty}"`, "no history", "log in first"]],
      [[...await config(unpolled), "--backfill", file], 1, [`"${unpolled}"`, "no balance", "poll once"]],
      [[...await config(":memory:"), "--backfill", file], 1, [":memory:", "keeps no history"]],
      // A slip of the keyboard must not rename the backfill over the exporter's own files.
      [[...polledConfig, "--backfill", polled], 1, [`"${polled}"`, "it is the data store"]],
      [[...polledConfig, "--backfill", polledConfig[1]], 1, [`"${polledConfig[1]}"`, "it is the config file"]],
    ];
    for (const [args, code, words] of cases) {
      await assertRefusal(args, code, words);
      assert.deepEqual(await namesIn(out), before.out, `${args.join(" ")} left something in FILE's folder`);
      assert.deepEqual(await namesIn(stores), before.stores, `${args.join(" ")} changed the stores' folder`);
      assert.deepEqual(await Deno.readFile(polled), before.polled, `${args.join(" ")} changed the store`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "a FILE folder that cannot be written (read-only), or that fills up midway: one line, FILE as it was, no temporary file left",
  ignore: notRoot !== null,
  async fn() {
    if (await cannotMount("backfill_cli_test's tests that mount")) return;
    const dir = await Deno.makeTempDir({ prefix: "monzo-backfill-fs-" });
    try {
      const store = join(dir, "polled.kv");
      await fillStore(store, { polled: true });
      const out = join(dir, "out");
      await Deno.mkdir(out);
      const file = join(out, "history.om");
      const args = ["--config", await configFor(dir, store), "--backfill", file, "--backfill.step", "5m"];
      await withReadOnly(out, async () => {
        await assertRefusal(args, 1, [`"${out}"`, "cannot create a file", "read-only"]);
        assert.deepEqual(await namesIn(out), []);
      });
      // 30 days at 5m is far more than 16 KiB: the disk fills while writing.
      await withMount(["-t", "tmpfs", "-o", "size=16k", "tmpfs"], out, async () => {
        await Deno.writeTextFile(file, "the last backfill\n");
        await assertRefusal(args, 1, [`"${file}"`, "no space"]);
        assert.deepEqual(await namesIn(out), ["history.om"]);
        assert.equal(await Deno.readTextFile(file), "the last backfill\n");
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("an account with a history but no saved balance yet is left out, and the summary line names it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "monzo-backfill-unpolled-" });
  try {
    const store = join(dir, "data.kv");
    await fillStore(store, { polled: true, unpolled: ["acc_00009NotPolledYet0000001"] });
    const file = join(dir, "history.om");
    const line = await backfillOk(["--config", await configFor(dir, store), "--backfill", file]);
    const text = await Deno.readTextFile(file);
    assert.ok(!text.includes("acc_00009NotPolledYet0000001"));
    assert.ok(text.includes(ALICE_CURRENT));
    assert.ok(line.startsWith(`Wrote ${file}: 1 account, `), line);
    assert.ok(
      line.endsWith("; left out, no balance saved yet (let the exporter poll once): acc_00009NotPolledYet0000001"),
      line,
    );
    // The default step: samples on the hour.
    for (const sample of samplesOf(text)) assert.equal(sample.time % 3600, 0, sample.series);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM while FILE is being written: exit 130, no temporary file in FILE's folder, no demo store left", async () => {
  const dir = await Deno.makeTempDir({ prefix: "monzo-backfill-signal-" });
  try {
    const out = join(dir, "out");
    const scratch = join(dir, "tmp");
    await Deno.mkdir(out);
    await Deno.mkdir(scratch);
    const file = join(out, "history.om");
    // The demo's store is made under TMPDIR; at the default step its file takes seconds to write.
    const program = spawn(Deno.execPath(), [...await taskRunArgs("start"), "--demo", "--backfill", file], {
      env: { TMPDIR: scratch },
    });
    try {
      const temp = await waitFor(
        "the temporary file",
        async () => (await namesIn(out)).find((name) => name.endsWith(".tmp")),
        {
          timeoutMs: 60_000,
        },
      );
      assert.ok(temp.startsWith(".history.om."), temp);
      assert.equal((await namesIn(scratch)).length, 1, "the demo's store is not under TMPDIR");
    } finally {
      const status = await program.stop("SIGTERM");
      assert.equal(status.code, 130, program.stderr.text);
    }
    assert.deepEqual(await namesIn(out), []);
    assert.deepEqual(await namesIn(scratch), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
