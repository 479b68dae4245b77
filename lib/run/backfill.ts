/**
 * `--backfill FILE`: the stored history as OpenMetrics for `promtool tsdb create-blocks-from
 * openmetrics`. It reads the store at `data_path` beside a running exporter, without its instance
 * lock and without writing to it (SQLite lets a reader in while another process writes), never calls
 * Monzo, and writes FILE atomically: a temporary file in FILE's folder, renamed over FILE once whole.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import type { BackfillRequest } from "../config/backfill_options.ts";
import { backfillHelp } from "../backfill/help.ts";
import { type BackfillSummary, type ChunkSink, writeOpenMetrics } from "../backfill/openmetrics.ts";
import { storeSource } from "../backfill/store_source.ts";
import { type Counting, type OwnAccount, OwnAccounts } from "../spending/classify.ts";
import { decodeStoredTransaction } from "../monzo/transaction.ts";
import { TransactionStore } from "../store/transaction_store.ts";
import { lockPathFor } from "../store/instance_lock.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { basename, dirname, join } from "../shared/file_path.ts";
import { errorMessage, fileErrorMessage } from "../shared/error_message.ts";
import { describeFileKind } from "../shared/regular_file.ts";
import { isoTime } from "../shared/problems.ts";
import { cleanText } from "../shared/hostile_text.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { startDemo } from "./demo.ts";
import { createExporter } from "./exporter.ts";
import { memoryTokens } from "../logins/token_file.ts";
import { createLogger } from "../shared/log.ts";
import { VERSION } from "../shared/version.ts";

/** The store opened for reading, and how to let go of it. */
interface OpenedStore {
  readonly store: TransactionStore;
  close(): void;
}

/**
 * Writes the backfill `request` asks for from the store of `config`; the value is the one summary line,
 * the error one line naming what is wrong. FILE is whole or untouched, and no temporary file is left.
 */
export async function runBackfill(
  config: Config,
  request: BackfillRequest,
  clock: Clock = systemClock,
): Promise<Result<string>> {
  const target = await checkTarget(request.file);
  if (!target.ok) return target;
  const own = await ownFileAt(request.file, config);
  if (own !== null) return err(`Cannot write --backfill "${request.file}": it is ${own}; name another file`);
  const opened = await openForReading(config.dataPath, clock);
  if (!opened.ok) return opened;
  try {
    const { source, withoutBalance } = storeSource(opened.value.store);
    const where = `The data store "${config.dataPath}"`;
    if (source.accounts().length === 0) {
      return withoutBalance.length === 0
        ? err(`${where} holds no history: log in first (a login imports the history), then run --backfill again`)
        : err(`${where} has no balance yet: let the exporter poll once after the login, then run --backfill again`);
    }
    const options = {
      stepMs: request.stepMs,
      untilMs: request.untilMs,
      monthStartDay: config.monthStartDay,
      budgeted: new Set(config.budgets.keys()),
      counting: countingOf(config, opened.value.store.ownAccounts),
      payday: config.paydayMinMinor === null
        ? null
        : { minMinor: config.paydayMinMinor, currency: config.budgetCurrency },
      labels: request.labels,
      help: backfillHelp(config),
    };
    const written = await writeAtomically(request.file, (sink) => writeOpenMetrics(source, options, sink));
    if (!written.ok) return written;
    const named = withoutBalance.map((id) => cleanText(id)).join(", ");
    const left = named === "" ? "" : `; left out, no balance saved yet (let the exporter poll once): ${named}`;
    return ok(`${summaryLine(request.file, written.value)}${left}`);
  } finally {
    opened.value.close();
  }
}

/**
 * The rules and shares of `config` and the accounts the exporter has seen (kept in the store): the
 * figures are counted as the live ones are.
 */
function countingOf(config: Config, own: readonly OwnAccount[]): Counting {
  return { rules: config.rules, accountShares: config.accountShares, own: new OwnAccounts(own) };
}

/**
 * `--demo --backfill FILE`: the demo's simulated Monzo, everyone logged in and one poll, into a store
 * in a temporary folder; then the backfill of that store, as for a real one; then nothing is left.
 */
export async function runDemoBackfill(request: BackfillRequest, clock: Clock = systemClock): Promise<Result<string>> {
  const target = await checkTarget(request.file);
  if (!target.ok) return target;
  // The demo's own lines (its logins, its poll) are kept back: the summary is this mode's one line.
  const lines: string[] = [];
  const quiet = createLogger({ sink: (line) => lines.push(line) });
  const folder = await Deno.makeTempDir({ prefix: "monzo-exporter-demo-backfill-" });
  const unregister = removedIfInterrupted(folder);
  const simulated = await startDemo({ hostname: "127.0.0.1", port: 0 }, quiet, { clock });
  try {
    const config: Config = { ...simulated.config, dataPath: join(folder, "demo.kv") };
    const made = await createExporter({
      config,
      build: { version: VERSION, mode: "demo" },
      clock,
      persistence: memoryTokens(),
      sink: (line) => lines.push(line),
    });
    if (!made.ok) return err(`The demo could not start: ${made.error}`);
    try {
      await simulated.logInEveryone(made.value.sessions);
      await made.value.poller.poll();
      const problems = made.value.snapshot.state.lastPoll?.problems ?? [];
      if (problems.length > 0) return err(`The demo's poll failed: ${problems[0].message}`);
    } finally {
      await made.value.close();
    }
    return await runBackfill(config, request, clock);
  } finally {
    await simulated.close();
    await Deno.remove(folder, { recursive: true });
    unregister();
  }
}

/** The one line that says what was written. */
export function summaryLine(file: string, summary: BackfillSummary): string {
  const range = summary.firstMs === null || summary.lastMs === null
    ? "no sample time (every history starts at or after its counting start or --backfill.until)"
    : `samples from ${isoTime(summary.firstMs)} to ${isoTime(summary.lastMs)}`;
  const counted = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;
  return `Wrote ${file}: ${counted(summary.accounts, "account")}, ${summary.series} series, ` +
    `${counted(summary.samples, "sample")}, ${range}`;
}

/** FILE's folder must be a folder, and FILE not one: asked before the store is read, so a typo fails at once. */
async function checkTarget(file: string): Promise<Result<void>> {
  const refuse = (why: string) => err(`Cannot write --backfill "${file}": ${why}`);
  const folder = dirname(file);
  try {
    const info = await Deno.stat(folder);
    if (!info.isDirectory) return refuse(`its folder "${folder}" is ${describeFileKind(info)}, not a folder`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return refuse(`its folder "${folder}" does not exist; create it`);
    return refuse(`cannot reach its folder "${folder}" (${fileErrorMessage(error)})`);
  }
  try {
    const info = await Deno.stat(file);
    if (info.isDirectory) return refuse("it is a folder; name a file in it");
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return refuse(fileErrorMessage(error));
  }
  return ok(undefined);
}

/**
 * What of the exporter's own `file` is (the data store or its journal, the tokens file, the config, a
 * lock), links followed; null when none: renaming the backfill over one of them would destroy it.
 */
async function ownFileAt(file: string, config: Config): Promise<string | null> {
  const identity = async (path: string) => {
    try {
      const info = await Deno.stat(path);
      return info.ino === null ? null : `${info.dev}:${info.ino}`;
    } catch {
      // Not there, or not reachable here: no file FILE could name, since FILE itself was reached.
      return null;
    }
  };
  const target = await identity(file);
  if (target === null) return null;
  const owned: Array<[string, string]> = [
    [config.dataPath, "the data store"],
    [`${config.dataPath}-wal`, "the data store's journal"],
    [`${config.dataPath}-shm`, "the data store's journal"],
    [lockPathFor(config.dataPath), "the data store's lock"],
    [config.tokensPath, "the tokens file"],
    [lockPathFor(config.tokensPath), "the tokens file's lock"],
    [config.path, "the config file"],
  ];
  for (const [path, what] of owned) if (await identity(path) === target) return `${what} "${path}"`;
  return null;
}

/**
 * Opens the store at `dataPath` to read it, changing nothing: a store that is not there is not made
 * (opening would create it), a corrupt one is not moved aside, and no instance lock is taken, so a
 * running exporter on the same store goes on undisturbed.
 */
async function openForReading(dataPath: string, clock: Clock): Promise<Result<OpenedStore>> {
  if (dataPath === ":memory:") {
    return err('data_path is ":memory:", which keeps no history to backfill: set data_path, log in, then backfill');
  }
  if (!/^https?:\/\//.test(dataPath)) {
    try {
      const info = await Deno.stat(dataPath);
      if (!info.isFile) {
        return err(`Cannot read the data store "${dataPath}": it is ${describeFileKind(info)}, not a store`);
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        return err(`No data store at data_path "${dataPath}": log in first (a login imports the history there)`);
      }
      return err(`Cannot read the data store "${dataPath}": ${fileErrorMessage(error)}`);
    }
  }
  let kv: Deno.Kv;
  try {
    kv = await Deno.openKv(dataPath);
  } catch (error) {
    return err(`Cannot read the data store "${dataPath}": ${fileErrorMessage(error)}`);
  }
  const store = await TransactionStore.open(kv, {
    decode: decodeStoredTransaction,
    // Nothing of the current month is needed in memory: the backfill reads every transaction as it walks.
    recentSince: clock.now(),
    location: dataPath,
    clock,
  });
  if (!store.ok) {
    kv.close();
    return store;
  }
  return ok({ store: store.value, close: () => kv.close() });
}

/**
 * Runs `write` into a new temporary file beside `file`, then renames it over `file`; on any failure
 * (or SIGINT/SIGTERM meanwhile) the temporary file is removed and `file` is left as it was.
 */
async function writeAtomically<T>(file: string, write: (sink: ChunkSink) => Promise<T>): Promise<Result<T>> {
  const refuse = (why: string) => err(`Cannot write --backfill "${file}": ${why}`);
  const folder = dirname(file);
  const temp = join(folder, `.${basename(file)}.${crypto.randomUUID()}.tmp`);
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
  } catch (error) {
    return refuse(`cannot create a file in its folder "${folder}" (${fileErrorMessage(error)})`);
  }
  let open = true;
  let fileFailure: unknown = null;
  const unregister = removedIfInterrupted(temp);
  try {
    const sink: ChunkSink = {
      async write(chunk) {
        try {
          for (let at = 0; at < chunk.length;) at += await handle.write(chunk.subarray(at));
        } catch (error) {
          fileFailure = error;
          throw error;
        }
      },
    };
    const value = await write(sink);
    try {
      // On disk before the rename, so FILE is never a name for bytes a crash could lose.
      await handle.sync();
      handle.close();
      open = false;
      await Deno.rename(temp, file);
    } catch (error) {
      fileFailure = error;
      throw error;
    }
    return ok(value);
  } catch (error) {
    if (open) handle.close();
    const removed = await removeTemp(temp);
    const why = fileFailure === null
      ? `reading the data store failed: ${errorMessage(error)}`
      : fileErrorMessage(fileFailure);
    return refuse(removed ? why : `${why}; and the temporary file "${temp}" could not be removed`);
  } finally {
    unregister();
  }
}

// What SIGINT or SIGTERM removes before the process ends, so an interrupted run leaves nothing behind.
const SIGNALS = ["SIGINT", "SIGTERM"] as const;
const scratch = new Set<string>();

function interrupted(): void {
  for (const path of scratch) {
    try {
      Deno.removeSync(path, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        console.error(`Cannot remove "${path}": ${fileErrorMessage(error)}`);
      }
    }
  }
  Deno.exit(130);
}

/** Removes `path` (a file or a folder) if the process is interrupted before the returned function is called. */
function removedIfInterrupted(path: string): () => void {
  if (scratch.size === 0) { for (const signal of SIGNALS) Deno.addSignalListener(signal, interrupted); }
  scratch.add(path);
  return () => {
    scratch.delete(path);
    if (scratch.size === 0) { for (const signal of SIGNALS) Deno.removeSignalListener(signal, interrupted); }
  };
}

/** Removes the temporary file; false if it is still there. */
async function removeTemp(temp: string): Promise<boolean> {
  try {
    await Deno.remove(temp);
    return true;
  } catch (error) {
    return error instanceof Deno.errors.NotFound;
  }
}
