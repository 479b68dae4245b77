import { FROM_LAST_POLL, major, MONEY, type Sample } from "../shared/metric_family.ts";
import type { Logger } from "../shared/log.ts";
import type { MonzoFailure, RejectedTransaction, TransactionPage, TransactionQuery } from "../monzo/monzo_client.ts";
import { isoTime, type Problem, problem } from "../shared/problems.ts";
import { err, ok, type Result } from "../shared/result.ts";
import {
  type BudgetMonth,
  budgetMonth,
  monthStartReason,
  PAYDAY_WINDOW_DAYS,
  paydayHeldFrom,
  type PaydayMonth,
  paydayMonth,
  type Salary,
} from "../spending/budget_month.ts";
import { type PaydayRule, salaryOf } from "../spending/salaries.ts";
import { capCategories, foldedLogLine, foldedNote, unfoldedLogLine } from "../spending/category_cap.ts";
import { AccountCurrencies } from "../spending/currencies.ts";
import { budget, type BudgetRow, type CashFlow } from "../spending/rules.ts";
import { classify, type Counting, type OwnAccount, OwnAccounts } from "../spending/classify.ts";
import type { Rule } from "../config/rules_config.ts";
import { type StoredTransaction, toStored } from "../monzo/transaction.ts";
import type { AccountHistory, TransactionStore } from "../store/transaction_store.ts";
import type { AccountEntry, AccountRead, StepContext, StepDefinition } from "./step.ts";
import { compareText } from "../shared/compare.ts";

const DAY_MS = 24 * 3_600_000;
/** Monzo refuses a `since`..`before` window wider than about 90 days; no request spans more than 89. */
export const WINDOW_MS = 89 * DAY_MS;
// The oldest instant a window ending at `to` can include, `since` being one millisecond before it.
const windowStart = (to: number) => to - WINDOW_MS + 1;
/** Monzo's largest page. */
export const PAGE_LIMIT = 100;
/** How long after a browser login Monzo lets a client read the whole history. */
export const FULL_HISTORY_MS = 5 * 60_000;
/** The current budget month and every pending transaction are read again at least this often. */
export const REREAD_EVERY_MS = 60 * 60_000;
// Monzo opened in 2015: no account's history starts earlier, when Monzo does not say when it was opened.
const EARLIEST = Date.UTC(2015, 0, 1);

/**
 * Most `/transactions` requests one poll makes for one account, retries included. A whole history
 * import fits: Monzo opened in 2015, so twelve years are about 50 windows of 89 days, and 450 pages of
 * 100 are 45,000 transactions (ten a day for twelve years), all inside the 5 minutes after a login.
 * Yet it is finite: a Monzo (or a proxy) that answers full pages for ever costs one poll at most this
 * many requests and this many pages of memory, and the poll ends, so balances and pots are exported.
 */
export const MAX_TRANSACTION_REQUESTS = 500;
/** First pause before a failed request is tried again inside the full-history window; it doubles. */
const RETRY_FIRST_MS = 1_000;
/** Longest pause between two tries (unless Monzo's `Retry-After` asks for longer). */
const RETRY_MAX_MS = 16_000;
/** Rejected transactions remembered per account, so each is counted and logged once; a bound on memory. */
const MAX_REMEMBERED_REJECTED = 10_000;

/** Waits `ms` milliseconds, or less when `signal` aborts; injected so tests need not wait. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** A real pause, cut short when the exporter stops. */
const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

/** The config the transactions step follows. */
export interface TransactionsConfig {
  /** How many days of history to import at login; 0 for everything. */
  readonly historyDays: number;
  /** Day of the month (1–28) the budget month starts, at 00:00 Europe/London. */
  readonly monthStartDay: number;
  /** Monthly budget per category, in major units of `budgetCurrency`. */
  readonly budgets: ReadonlyMap<string, number>;
  readonly budgetCurrency: string;
  /** The `[[rules]]` tables, in order; none unless given. */
  readonly rules?: readonly Rule[];
  /** `[accounts.acc_…] share` per account, in (0, 1]; every account counts whole unless given. */
  readonly accountShares?: ReadonlyMap<string, number>;
  /** The smallest credit (minor units of `budgetCurrency`) that starts a pay-day month; null or absent when off. */
  readonly paydayMinMinor?: number | null;
}

/** The budget month the figures are for, with its nominal end (a pay-day month's `end` may be an early salary). */
export interface ShownMonth extends BudgetMonth {
  readonly nominalEnd: number;
}

const NO_RULES: readonly Rule[] = [];
const NO_SHARES: ReadonlyMap<string, number> = new Map();

/** Money moved between the household's own accounts this budget month, per account and currency. */
export interface InternalRow {
  readonly accountId: string;
  readonly currency: string;
  /** Net, in minor units: positive when more came in from the household's other accounts than went out to them. */
  readonly netMinor: number;
}

/** What the transactions step uses besides its store and config. */
export interface TransactionsOptions {
  /** Where rejected transactions and how far an import got are told; nowhere unless given. */
  readonly log?: Pick<Logger, "info" | "warn">;
  /** The pause between tries inside the full-history window; {@link realSleep} unless given. */
  readonly sleep?: Sleep;
}

/** What the store holds of an account as a whole, as the step last saw it. */
interface StoredFigures {
  readonly count: number;
  readonly history: AccountHistory | undefined;
  /** When the account's counters began, epoch ms. */
  readonly countingStart: number | undefined;
}

/** What the step remembers between polls; the transactions themselves are in the store. */
export interface TransactionsMemory {
  /** When each account's budget month and pending transactions were last read again, in this process. */
  readonly rereadAt: ReadonlyMap<string, number>;
  readonly month: ShownMonth | null;
  /** When the month started and why (pay-day months only), the status page's sentence; null otherwise. */
  readonly monthNote: string | null;
  /** The `[accounts.acc_…]` shares naming no account of the logged-in users (a typo?), in the config's order. */
  readonly unknownShares: readonly string[];
  readonly flows: readonly CashFlow[];
  readonly rows: readonly BudgetRow[];
  readonly stored: ReadonlyMap<string, StoredFigures>;
  /** Transactions left out as unusable, per account, counted once each since the exporter started. */
  readonly rejected: ReadonlyMap<string, number>;
  /** The keys of those transactions (at most {@link MAX_REMEMBERED_REJECTED} per account). */
  readonly rejectedKeys: ReadonlyMap<string, ReadonlySet<string>>;
  /** Per account, the login grant (its time) whose unfinished import has been told about already. */
  readonly importTold: ReadonlyMap<string, number>;
  /** Accounts whose categories this month were folded into "other", and how many: logged once per change. */
  readonly folded: ReadonlyMap<string, number>;
  readonly internal: readonly InternalRow[];
  /** Per rule label (in the rules' order), how many stored transactions it decides. */
  readonly matched: readonly (readonly [string, number])[];
}

/** Why an account could not be brought up to date. */
interface SyncFailure {
  /**
   * `skipped`: the poll has said why (login, rate limit); `failed`: Monzo's answer; `store`: the data
   * store; `stuck`: Monzo kept answering what it had already answered; `limit`: the poll's requests
   * for the account ran out.
   */
  readonly kind: "skipped" | "failed" | "store" | "stuck" | "limit";
  readonly detail: string;
  /**
   * Monzo refused history older than 90 days because the 5 minutes after the login have passed, or
   * the tries of a failing request had to stop because those 5 minutes were ending.
   */
  readonly windowClosed: boolean;
}

/** One account's reading in one poll: through which login, and what it may still spend. */
interface Reading {
  readonly accountId: string;
  readonly reader: string;
  /** Requests it may still make in this poll, retries included. */
  left: number;
  /** When the reader's full-history window closes, epoch ms; null when it is not open (no retries then). */
  readonly retryUntil: number | null;
  /** Unusable entries met in this poll, by key. */
  readonly rejected: Map<string, RejectedTransaction>;
  /** The currencies its transactions may be stored in; one in any other is left out like an unusable entry. */
  readonly currencies: AccountCurrencies;
  /** The import of older history stopped because the full-history window closed. */
  importStopped: boolean;
}

/** The transactions step: keeps the store in step with Monzo and turns it into spending figures. */
export function transactionsStep(
  store: TransactionStore,
  config: TransactionsConfig,
  options: TransactionsOptions = {},
): StepDefinition<TransactionsMemory> {
  const sleep = options.sleep ?? realSleep;
  return {
    name: "transactions",
    initial: {
      rereadAt: new Map(),
      month: null,
      monthNote: null,
      unknownShares: [],
      flows: [],
      rows: [],
      stored: new Map(),
      rejected: new Map(),
      rejectedKeys: new Map(),
      importTold: new Map(),
      folded: new Map(),
      internal: [],
      matched: [],
    },
    families: families(config),
    notes: (memory) => [
      ...(memory.monthNote === null ? [] : [memory.monthNote]),
      ...(memory.unknownShares.length === 0 ? [] : [unknownSharesLine(memory.unknownShares)]),
    ],
    async run(context, memory) {
      const rereadAt = new Map(memory.rereadAt);
      const rejected = new Map(memory.rejected);
      const rejectedKeys = new Map(memory.rejectedKeys);
      const importTold = new Map(memory.importTold);
      const reads = new Map<string, AccountRead>();
      const problems: Problem[] = [];
      let complete = true;
      const syncAll = async () => {
        for (const account of context.accounts) {
          const reader = context.readerOf(account);
          let synced: Result<void, SyncFailure>;
          if (reader === undefined) {
            synced = err({ kind: "skipped", detail: "no login that can read it is working", windowClosed: false });
          } else {
            const granted = context.grantedAt(reader);
            const windowEnd = granted === null ? null : granted + FULL_HISTORY_MS;
            const reading: Reading = {
              accountId: account.id,
              reader,
              left: MAX_TRANSACTION_REQUESTS,
              // Never more than the window's length from now, whatever time the tokens file says the login was.
              retryUntil: windowEnd !== null && context.now() < windowEnd
                ? Math.min(windowEnd, context.now() + FULL_HISTORY_MS)
                : null,
              rejected: new Map(),
              currencies: currenciesOf(store, account),
              importStopped: false,
            };
            const started = context.now();
            synced = await syncAccount(context, store, config, account, reading, rereadAt, sleep);
            if (synced.ok) {
              // Everything created before the read began is stored now: balances read until then are explained.
              const marked = await store.markRead(account.id, started);
              if (!marked.ok) synced = err({ kind: "store", detail: marked.error, windowClosed: false });
            }
            countRejected(reading, rejected, rejectedKeys, options.log);
            tellImport(context, store, reading, granted, importTold, options.log);
          }
          if (synced.ok) {
            reads.set(account.id, { ok: true, at: context.now(), note: historyNote(store.history(account.id)) });
            continue;
          }
          complete = false;
          reads.set(account.id, { ok: false, detail: synced.error.detail });
          const { kind, detail } = synced.error;
          if (kind === "failed") problems.push(problem("account_failed", account.id, { detail }));
          else if (kind === "store") problems.push(problem("data_unwritable", account.id, { detail }));
          else if (kind === "stuck") problems.push(problem("transactions_stuck", account.id, { detail }));
          else if (kind === "limit") {
            problems.push(problem("transactions_request_limit", account.id, { count: MAX_TRANSACTION_REQUESTS }));
          }
        }
      };
      const rules = config.rules ?? NO_RULES;
      // The accounts known before (kept by the store) and those discovery lists now: the set only grows.
      const own = new Map<string, OwnAccount>();
      for (const account of [...store.ownAccounts, ...context.ownAccounts]) own.set(account.id, account);
      // Once anyone's accounts are listed, a share for none of them counts nothing: said, not silently ignored.
      const unknownShares = context.accounts.length === 0
        ? []
        : [...(config.accountShares ?? NO_SHARES).keys()].filter((id) => !own.has(id));
      if (unknownShares.length > 0 && unknownShares.join() !== memory.unknownShares.join()) {
        options.log?.warn(unknownSharesLine(unknownShares));
      }
      const counting: Counting = {
        rules,
        accountShares: config.accountShares ?? NO_SHARES,
        own: new OwnAccounts(own.values()),
      };
      const ran = await store.session(async () => {
        // Before anything is written: what is written next is counted under the counting of this poll.
        const recount = await store.setCounting(counting);
        if (recount.ok) {
          for (const id of recount.value.restarted) options.log?.warn(recountLogLine(id));
        }
        await syncAll();
        for (const id of store.takeRecounted()) options.log?.warn(recountLogLine(id));
      });
      if (!ran.ok) {
        // The store itself failed (a disk gone or full): the figures of the last poll stay as they are.
        const reads = new Map(
          context.accounts.map((a): [string, AccountRead] => [a.id, { ok: false, detail: ran.error }]),
        );
        return {
          memory,
          problems: [problem("data_unavailable", "", { detail: ran.error })],
          reads,
          complete: false,
        };
      }
      const now = context.now();
      const payday = paydayRuleOf(config);
      // Settled transactions of months that have ended are needed no more: only the store keeps them.
      // A pay-day month may start up to PAYDAY_WINDOW_DAYS early, and its salary must stay in sight.
      store.forget(heldFrom(now, config));
      let month: ShownMonth;
      let monthNote: string | null = null;
      if (payday === null) {
        const nominal = budgetMonth(now, config.monthStartDay);
        month = { ...nominal, nominalEnd: nominal.end };
      } else {
        // Salaries on any account the exporter reads: a household's month starts with whoever is paid first.
        const salaries: Salary[] = [];
        for (const account of context.accounts) {
          for (const tx of store.recent(account.id, heldFrom(now, config))) {
            const salary = salaryOf(tx, payday, counting);
            if (salary !== null && salary.createdMs <= now) salaries.push(salary);
          }
        }
        const found = paydayMonth(now, config.monthStartDay, salaries);
        month = found;
        monthNote = monthNoteOf(found, config.monthStartDay);
      }
      const listed = new Set(context.accounts.map((account) => account.id));
      // Only the account's currencies are exported: a store from before the bound may hold others.
      const counted = new Map(context.accounts.map((account) => [account.id, currenciesOf(store, account)]));
      const inCounted = (of: { accountId: string; currency: string }) =>
        counted.get(of.accountId)?.has(of.currency) ?? false;
      const thisMonth = context.accounts.flatMap((account) => store.recent(account.id, month.start)).filter(inCounted);
      // The rules' categories, not Monzo's, are the ones bounded: re-categorising cannot grow the series past it.
      const capped = capCategories(budget(thisMonth, month, counting), new Set(config.budgets.keys()));
      const matched = store.rulesMatched;
      noteFolds(options.log, memory.folded, capped.folded, reads);
      const onlyListed = <V>(map: Map<string, V>) => new Map([...map].filter(([id]) => listed.has(id)));
      return {
        memory: {
          rereadAt: onlyListed(rereadAt),
          month,
          monthNote,
          unknownShares,
          flows: context.accounts.flatMap((account) => store.summary(account.id).flows).filter(inCounted),
          rows: capped.rows,
          stored: new Map(context.accounts.map((account) => [account.id, {
            count: store.summary(account.id).count,
            history: store.history(account.id),
            countingStart: store.countingStart(account.id),
          }])),
          // A counter starts at 0 for every listed account, and goes on while the account is listed.
          rejected: new Map(context.accounts.map((account) => [account.id, rejected.get(account.id) ?? 0])),
          rejectedKeys: onlyListed(rejectedKeys),
          importTold: onlyListed(importTold),
          folded: capped.folded,
          internal: internalTransfers(context.accounts, thisMonth, counting),
          matched: rules.map((rule) => [rule.label, matched.get(rule.label) ?? 0] as const),
        },
        problems,
        reads,
        complete,
      };
    },
  };
}

/** `payday_min_amount` as the salaries' rule, or null when pay-day months are off. */
function paydayRuleOf(config: TransactionsConfig): PaydayRule | null {
  const minMinor = config.paydayMinMinor ?? null;
  return minMinor === null ? null : { minMinor, currency: config.budgetCurrency };
}

/**
 * The earliest creation time the current month's figures may need: the budget month's start, or with
 * pay-day months the start of the salary window before the nominal month's start.
 */
function heldFrom(now: number, config: TransactionsConfig): number {
  return paydayRuleOf(config) === null
    ? budgetMonth(now, config.monthStartDay).start
    : paydayHeldFrom(now, config.monthStartDay);
}

/** The status page's sentence on when the pay-day month started and why. */
function monthNoteOf(month: PaydayMonth, monthStartDay: number): string {
  const reason = monthStartReason(month, monthStartDay);
  return month.startedBy === null
    ? `The budget month started on ${reason} (no salary in the ${PAYDAY_WINDOW_DAYS} days before).`
    : `The budget month started with the ${reason}.`;
}

/** The status page's and the log's sentence on shares for accounts nobody logged in holds. */
function unknownSharesLine(accountIds: readonly string[]): string {
  const tables = accountIds.map((id) => `[accounts.${id}]`).join(", ");
  const one = accountIds.length === 1;
  return `The config's ${tables} ${one ? "share names" : "shares name"} no account of the logged-in users, so ` +
    `${one ? "it counts" : "they count"} nothing: check the account id, or log in the member who holds the account.`;
}

/** The log line when an account's counters start again from 0 because the counting changed. */
function recountLogLine(accountId: string): string {
  return `The rules, shares or known accounts now count account ${accountId}'s past transactions differently: ` +
    "monzo_spent_total and monzo_received_total start again from 0 now (a new counting start)";
}

/**
 * The net moved this month between each listed account and the household's other accounts, with a
 * row (0 when nothing moved) for every listed account's own currency.
 */
function internalTransfers(
  accounts: readonly AccountEntry[],
  thisMonth: readonly StoredTransaction[],
  counting: Counting,
): InternalRow[] {
  const net = new Map<string, { accountId: string; currency: string; netMinor: number }>();
  const rowOf = (accountId: string, currency: string) => {
    const key = JSON.stringify([accountId, currency]);
    let row = net.get(key);
    if (row === undefined) net.set(key, row = { accountId, currency, netMinor: 0 });
    return row;
  };
  for (const account of accounts) if (account.currency !== undefined) rowOf(account.id, account.currency);
  for (const tx of thisMonth) {
    if (classify(tx, counting).kind === "internal") rowOf(tx.accountId, tx.currency).netMinor += tx.amount;
  }
  return [...net.values()].sort((a, b) => compareText(a.accountId, b.accountId) || compareText(a.currency, b.currency));
}

/** The currencies the account's transactions are stored and counted in (lib/spending/currencies.ts). */
function currenciesOf(store: TransactionStore, account: AccountEntry): AccountCurrencies {
  return new AccountCurrencies(account.currency, store.summary(account.id).flows.map((flow) => flow.currency));
}

/**
 * Says once, in the log, when an account's categories start or stop being folded into "other", and
 * on every poll, beside the account on the status page, how many are folded.
 */
function noteFolds(
  log: TransactionsOptions["log"],
  before: ReadonlyMap<string, number>,
  now: ReadonlyMap<string, number>,
  reads: Map<string, AccountRead>,
): void {
  for (const [id, count] of now) {
    if (!before.has(id)) log?.warn(foldedLogLine(id, count));
    const read = reads.get(id);
    if (read?.ok) reads.set(id, { ...read, note: [read.note, foldedNote(count)].filter(Boolean).join(" ") });
  }
  // An account no longer listed says nothing: its figures are gone, not unfolded.
  for (const id of before.keys()) if (!now.has(id) && reads.has(id)) log?.info(unfoldedLogLine(id));
}

/** Counts and logs, once each, the unusable transactions the poll met on the account. */
function countRejected(
  reading: Reading,
  rejected: Map<string, number>,
  rejectedKeys: Map<string, ReadonlySet<string>>,
  log: TransactionsOptions["log"],
): void {
  if (reading.rejected.size === 0) return;
  const known = new Set(rejectedKeys.get(reading.accountId) ?? []);
  let count = rejected.get(reading.accountId) ?? 0;
  for (const [key, entry] of reading.rejected) {
    if (known.has(key)) continue;
    // Past the bound a rejected one is counted and logged again at each poll that reads it: memory stays bounded.
    if (known.size < MAX_REMEMBERED_REJECTED) known.add(key);
    count++;
    const which = entry.id === null ? "a transaction without a usable id" : `transaction ${entry.id}`;
    log?.warn(
      `Left out ${which} of account ${reading.accountId}: ${entry.reason}; the account's other ` +
        "transactions are stored",
    );
  }
  rejected.set(reading.accountId, count);
  rejectedKeys.set(reading.accountId, known);
}

/**
 * Says once per login how far the full-history import got, when the 5 minutes after that login have
 * passed (or Monzo closed them) before the account's whole history was read.
 */
function tellImport(
  context: StepContext,
  store: TransactionStore,
  reading: Reading,
  granted: number | null,
  importTold: Map<string, number>,
  log: TransactionsOptions["log"],
): void {
  const { accountId } = reading;
  const history = store.history(accountId);
  if (granted === null || !history || history.complete || importTold.get(accountId) === granted) return;
  if (context.now() < granted + FULL_HISTORY_MS && !reading.importStopped) return;
  importTold.set(accountId, granted);
  log?.warn(
    `The full-history import of account ${accountId} could not finish within the 5 minutes after the login ` +
      "that Monzo allows it: " +
      `${store.summary(accountId).count} transactions stored, back to ${isoTime(history.start).slice(0, 10)}; ` +
      "log in again to import older history",
  );
}

/** What the status page says of an account's stored history. */
function historyNote(history: AccountHistory | undefined): string | undefined {
  if (!history) return undefined;
  const since = isoTime(history.start).slice(0, 10);
  return history.complete
    ? `Transactions since ${since}, its whole history.`
    : `Transactions since ${since}; log in again to import older history (Monzo allows it only in the 5 minutes ` +
      "after a login).";
}

/** Brings one account's stored transactions up to date; the error is the first failure met. */
async function syncAccount(
  context: StepContext,
  store: TransactionStore,
  config: TransactionsConfig,
  account: AccountEntry,
  reading: Reading,
  rereadAt: Map<string, number>,
  sleep: Sleep,
): Promise<Result<void, SyncFailure>> {
  const now = context.now();
  const windowOpen = reading.retryUntil !== null;
  const floor = Math.max(
    account.created ?? EARLIEST,
    config.historyDays > 0 ? now - config.historyDays * DAY_MS : EARLIEST,
  );
  const read = { context, store, reading, sleep };
  let history = store.history(account.id);

  if (!history) {
    // First the last 89 days, which Monzo always allows; older windows only while the window is open.
    const start = Math.max(windowStart(now), floor);
    const first = await readWindow(read, start, now);
    if (!first.ok) return first;
    history = { start, complete: start <= floor };
    const written = await save(store, account.id, [], [], history);
    if (!written.ok) return written;
    rereadAt.set(account.id, now);
  } else {
    const newest = store.newest(account.id);
    // After a long stop the newest stored one may be older than Monzo lets us ask about: then the last 89 days.
    const since = newest && newest.createdMs >= windowStart(now)
      ? newest.id
      : new Date(Math.max(history.start, windowStart(now)) - 1).toISOString();
    const recent = await readPages(read, { accountId: account.id, since });
    if (!recent.ok) return recent;
  }

  if (windowOpen && !history.complete) {
    const imported = await importOlder(read, history, floor);
    if (!imported.ok && !imported.error.windowClosed) return imported;
    if (!imported.ok) reading.importStopped = true;
  }

  const last = rereadAt.get(account.id);
  if (last === undefined || now - last >= REREAD_EVERY_MS) {
    const reread = await rereadRecent(read, config);
    if (!reread.ok) return reread;
    rereadAt.set(account.id, now);
  }
  return ok(undefined);
}

/** What reading an account's pages needs. */
interface PageReader {
  readonly context: StepContext;
  readonly store: TransactionStore;
  readonly reading: Reading;
  readonly sleep: Sleep;
}

/** Imports history older than the stored start, newest window first, until `floor` or Monzo closes the window. */
async function importOlder(
  read: PageReader,
  history: AccountHistory,
  floor: number,
): Promise<Result<void, SyncFailure>> {
  let start = history.start;
  while (start > floor) {
    const from = Math.max(windowStart(start), floor);
    const window = await readWindow(read, from, start);
    if (!window.ok) return window;
    // The history reaches further back only once the whole window is stored.
    const written = await save(read.store, read.reading.accountId, [], [], { start: from, complete: from <= floor });
    if (!written.ok) return written;
    start = from;
  }
  return ok(undefined);
}

/**
 * Reads the current budget month and every older pending transaction again (as far back as Monzo
 * allows), and updates or drops what changed: settlements, new amounts, new categories, reversed
 * authorisations.
 */
async function rereadRecent(read: PageReader, config: TransactionsConfig): Promise<Result<void, SyncFailure>> {
  const { context, store, reading: { accountId } } = read;
  const now = context.now();
  const pending = store.pending(accountId);
  const oldestPending = pending[0]?.createdMs ?? now;
  const from = Math.max(Math.min(heldFrom(now, config), oldestPending), windowStart(now));
  const fresh = await readWindow(read, from, now);
  if (!fresh.ok) return fresh;
  const seen = fresh.value;
  // Only pending ones can vanish (a released authorisation); a settled transaction is never dropped.
  const gone = pending.filter((tx) => tx.createdMs >= from && tx.createdMs < now && !seen.has(tx.id));
  return gone.length === 0 ? ok(undefined) : save(store, accountId, [], gone, undefined);
}

/**
 * Reads and stores every page of the window from `from` (included) to `to` (left out), epoch ms; the
 * ids Monzo gave.
 */
function readWindow(read: PageReader, from: number, to: number): Promise<Result<Set<string>, SyncFailure>> {
  // Monzo's `since` and `before` both leave out their own instant: one millisecond earlier keeps `from` in.
  return readPages(read, {
    accountId: read.reading.accountId,
    since: new Date(from - 1).toISOString(),
    before: new Date(to).toISOString(),
  });
}

/**
 * Reads pages of at most 100, each from the last id of the one before, until a page comes back short,
 * and stores each page as it comes, so that memory holds one page and what was read is kept whatever
 * comes next. Each id counts once in the read, however often Monzo gives it; a full page that brings
 * nothing new, or whose last id is where it started, ends the read as stuck. The ids Monzo gave.
 */
async function readPages(
  read: PageReader,
  query: Omit<TransactionQuery, "limit">,
): Promise<Result<Set<string>, SyncFailure>> {
  const { reading, store } = read;
  const seen = new Set<string>();
  // Ids given only as unusable entries so far: a usable copy later in the read is stored after all.
  const unusable = new Set<string>();
  let since = query.since;
  for (;;) {
    const page = await fetchPage(read, { ...query, since, limit: PAGE_LIMIT });
    if (!page.ok) return page;
    const fresh: StoredTransaction[] = [];
    // Transactions in a currency the account's figures may not have: left out as unusable entries are.
    const refused: RejectedTransaction[] = [];
    let news = 0;
    for (const tx of page.value.transactions) {
      if (seen.has(tx.id)) continue;
      if (!reading.currencies.admit(tx.currency)) {
        refused.push({ id: tx.id, key: tx.id, reason: reading.currencies.refusal(tx.currency) });
        continue;
      }
      seen.add(tx.id);
      // A transaction given unusable earlier in the poll and usable now is stored, not left out.
      reading.rejected.delete(tx.id);
      if (!unusable.delete(tx.id)) news++;
      fresh.push(toStored(tx, reading.accountId));
    }
    for (const entry of [...page.value.rejected, ...refused]) {
      // A spoilt copy of a transaction already read whole is only a repeat.
      if (entry.id !== null && seen.has(entry.id)) continue;
      if (entry.id !== null && !unusable.has(entry.id)) {
        unusable.add(entry.id);
        news++;
      }
      if (!reading.rejected.has(entry.key)) reading.rejected.set(entry.key, entry);
    }
    if (fresh.length > 0) {
      const written = await save(store, reading.accountId, fresh, [], undefined);
      if (!written.ok) return written;
    }
    if (page.value.size < PAGE_LIMIT) return ok(new Set([...seen, ...unusable]));
    const next = page.value.lastId;
    if (news === 0 || next === null || next === since) {
      const why = news === 0
        ? `a full page of ${page.value.size} brought no transaction not already read`
        : next === null
        ? "a full page with no usable id to go on from"
        : `the page after ${next} ended at ${next} again`;
      return err({ kind: "stuck", detail: why, windowClosed: false });
    }
    since = next;
  }
}

/**
 * One page, through the poll (which renews the token and records what a failure means for the login).
 * Inside the full-history window a transient failure (5xx, 429, timeout, network) is tried again after
 * a pause that doubles and honours `Retry-After`, for as long as the window stays open; every try
 * counts against the account's requests for this poll.
 */
async function fetchPage(read: PageReader, query: TransactionQuery): Promise<Result<TransactionPage, SyncFailure>> {
  const { context, reading, sleep } = read;
  let closing = false;
  const once = async (token: string): Promise<Result<TransactionPage, MonzoFailure>> => {
    for (let attempt = 0;; attempt++) {
      reading.left--;
      const answer = await context.client.transactions(token, query, context.signal);
      if (answer.ok || !isTransient(answer.error) || reading.retryUntil === null || reading.left <= 0) return answer;
      const backoff = Math.min(RETRY_FIRST_MS * 2 ** attempt, RETRY_MAX_MS);
      const pause = Math.max(backoff, (answer.error.retryAfterSeconds ?? 0) * 1000);
      // Never past the window: a try after it could not read the older history anyway.
      if (context.now() + pause >= reading.retryUntil) {
        closing = true;
        return answer;
      }
      await sleep(pause, context.signal);
      if (context.signal.aborted) return answer;
    }
  };
  if (reading.left <= 0) return err({ kind: "limit", detail: "no requests left in this poll", windowClosed: false });
  const page = await context.call(reading.reader, once);
  if (page.ok) return page;
  const failure = page.error;
  if (failure.kind === "failed" && reading.left <= 0) {
    return err({ kind: "limit", detail: failure.detail, windowClosed: false });
  }
  const windowClosed = closing || (failure.kind === "failed" && isWindowClosed(failure.failure));
  return err({ kind: failure.kind, detail: failure.detail, windowClosed });
}

/** A failure that may not happen again: Monzo's own errors, a rate limit, a timeout, a lost connection. */
function isTransient(failure: MonzoFailure): boolean {
  if (failure.kind === "timeout" || failure.kind === "network") return true;
  return failure.kind === "http" && failure.status !== undefined && (failure.status >= 500 || failure.status === 429);
}

/** Monzo's 403 on history older than 90 days once the 5 minutes after a login have passed. */
function isWindowClosed(monzo: MonzoFailure): boolean {
  return monzo.status === 403 && (monzo.code ?? "").startsWith("forbidden.verification_required");
}

/**
 * Writes what was read: new transactions as they are; for one stored already settled, only its
 * category changes, so the cash-flow counters only ever grow (a new category that a rule excludes
 * starts them again from 0 instead: see lib/store/transaction_store.ts).
 */
async function save(
  store: TransactionStore,
  accountId: string,
  read: readonly StoredTransaction[],
  remove: readonly StoredTransaction[],
  history: AccountHistory | undefined,
): Promise<Result<void, SyncFailure>> {
  const previous = await store.stored(read);
  if (!previous.ok) return err({ kind: "store", detail: previous.error, windowClosed: false });
  const put = read.map((tx) => {
    const held = previous.value.get(tx.id);
    return held && held.settledMs !== null ? { ...held, category: tx.category, categories: tx.categories } : tx;
  });
  const written = await store.write(accountId, { put, remove, history }, previous.value);
  return written.ok ? ok(undefined) : err({ kind: "store", detail: written.error, windowClosed: false });
}

/**
 * `spent` and a 0 for every budgeted category an account read this month has not spent in (in the
 * budget's currency), so that "spent against budget" reads 0% on the 1st rather than "No data".
 */
function withUnspentBudgets(spent: Sample[], memory: TransactionsMemory, config: TransactionsConfig): Sample[] {
  if (memory.month === null || config.budgets.size === 0) return spent;
  const key = (labels: Sample["labels"]) => JSON.stringify(labels);
  const shown = new Set(spent.map((sample) => key(sample.labels)));
  const zeros: Sample[] = [...memory.stored.keys()].flatMap((accountId) =>
    [...config.budgets.keys()].map((category): Sample => ({
      labels: [["account_id", accountId], ["category", category], ["currency", config.budgetCurrency]],
      value: 0,
    })).filter((sample) => !shown.has(key(sample.labels)))
  );
  if (zeros.length === 0) return spent;
  // Ordered as the rows are: by account, currency, then category.
  const order = (sample: Sample) => sample.labels.map(([, value]) => value);
  return [...spent, ...zeros].sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    return compareText(x[0], y[0]) || compareText(x[2], y[2]) || compareText(x[1], y[1]);
  });
}

/** The step's families for `config`; the backfill reads their names and help. */
export function families(config: TransactionsConfig): StepDefinition<TransactionsMemory>["families"] {
  const perAccount = (pick: (flow: CashFlow) => number) => (memory: TransactionsMemory): Sample[] =>
    memory.flows.map((flow) => ({
      labels: [["account_id", flow.accountId], ["currency", flow.currency]],
      value: major(pick(flow)),
    }));
  const perCategory = (pick: (row: BudgetRow) => number) => (memory: TransactionsMemory): Sample[] =>
    memory.rows.filter((row) => pick(row) !== 0).map((row) => ({
      labels: [["account_id", row.accountId], ["category", row.category], ["currency", row.currency]],
      value: major(pick(row)),
    }));
  const COUNTED = "Declined transactions, moves to or from the account's own pots and transfers between the " +
    "household's own accounts are left out; the config's [[rules]] and account shares apply.";
  return [
    {
      name: "monzo_spent_total",
      type: "counter",
      help: `Money spent from the account since its counting start, ${MONEY}: debits that count as spending, ` +
        `each counted when it settles, if it settled at or after the counting start (older history never ` +
        `counts, so it only grows). ${COUNTED} ${FROM_LAST_POLL}`,
      samples: perAccount((flow) => flow.spentMinor),
    },
    {
      name: "monzo_received_total",
      type: "counter",
      help: `Money received into the account since its counting start, ${MONEY}: every credit, refunds ` +
        `included, counted when it settles, if it settled at or after the counting start. ${COUNTED} ` +
        FROM_LAST_POLL,
      samples: perAccount((flow) => flow.receivedMinor),
    },
    {
      name: "monzo_counting_start_timestamp_seconds",
      type: "gauge",
      help: "Unix time from which monzo_spent_total and monzo_received_total count: when the exporter's store " +
        "first held the account; it moves when the store is made anew, or when the rules, the account shares or " +
        "the known accounts change what the counters had counted (they then start again from 0, never lower).",
      samples: (memory) =>
        [...memory.stored].flatMap(([id, held]) =>
          held.countingStart === undefined ? [] : [{ labels: [["account_id", id]], value: held.countingStart / 1000 }]
        ),
    },
    {
      name: "monzo_spent_this_month",
      type: "gauge",
      help: `Net spending this budget month by category, ${MONEY}, pending included and refunds subtracted, ` +
        `as the app's Spending tab counts it; 0 for a budgeted category with nothing spent yet. ${COUNTED} ` +
        FROM_LAST_POLL,
      samples: (memory) => withUnspentBudgets(perCategory((row) => row.spentMinor)(memory), memory, config),
    },
    {
      name: "monzo_received_this_month",
      type: "gauge",
      help: `Money received this budget month by category, ${MONEY}, pending included; refunds count in ` +
        `spending instead. ${COUNTED} ${FROM_LAST_POLL}`,
      samples: perCategory((row) => row.receivedMinor),
    },
    {
      name: "monzo_budget",
      type: "gauge",
      help: `The household's monthly budget per category from the config's [budgets] table, ${MONEY}.`,
      samples: () =>
        [...config.budgets].sort(([a], [b]) => compareText(a, b)).map(([category, amount]) => ({
          labels: [["category", category], ["currency", config.budgetCurrency]],
          value: amount,
        })),
    },
    {
      name: "monzo_budget_month_start_timestamp_seconds",
      type: "gauge",
      help: "Unix time at which the current budget month began: 00:00 Europe/London on month_start_day, or " +
        "with payday_min_amount the created time of a salary in the five days before.",
      samples: (memory) => memory.month === null ? [] : [{ labels: [], value: memory.month.start / 1000 }],
    },
    {
      name: "monzo_budget_month_end_timestamp_seconds",
      type: "gauge",
      help: "Unix time at which the current budget month is due to end: 00:00 Europe/London on the " +
        "month_start_day after the one the month is named for (the nominal end).",
      // A pay-day month's `end` may be an early salary; the nominal end is the one known in advance.
      samples: (memory) => memory.month === null ? [] : [{ labels: [], value: memory.month.nominalEnd / 1000 }],
    },
    {
      name: "monzo_internal_transfers_this_month",
      type: "gauge",
      help: `Net money moved this budget month between the account and the household's other accounts, ${MONEY}: ` +
        "positive in, negative out. Such transfers (the counterparty is an account /accounts lists, closed ones " +
        `included) count in no spending or income figure, though they move the balance. ${FROM_LAST_POLL}`,
      samples: (memory) =>
        memory.internal.map((row) => ({
          labels: [["account_id", row.accountId], ["currency", row.currency]],
          value: major(row.netMinor),
        })),
    },
    {
      name: "monzo_rules_matched",
      type: "gauge",
      help: "Stored transactions each [[rules]] table decides (the first rule that matches; declined ones, pot " +
        "moves and internal transfers left out), by the rule's name, else its 1-based index.",
      samples: (memory) => memory.matched.map(([rule, count]) => ({ labels: [["rule", rule]], value: count })),
    },
    {
      name: "monzo_transactions_stored",
      type: "gauge",
      help: "Transactions of the account kept in the exporter's store.",
      samples: (memory) =>
        [...memory.stored].map(([id, held]) => ({ labels: [["account_id", id]], value: held.count })),
    },
    {
      name: "monzo_transactions_rejected_total",
      type: "counter",
      help: "Transactions from Monzo left out because a field is unusable (an amount beyond 10^12 minor units, " +
        "an impossible date, no id, a currency other than the account's…), each counted once since the exporter started; each is logged with its id.",
      samples: (memory) => [...memory.rejected].map(([id, count]) => ({ labels: [["account_id", id]], value: count })),
    },
    {
      name: "monzo_transactions_history_start_timestamp_seconds",
      type: "gauge",
      help: "Unix time from which the account's stored transaction history reaches; log in again to import " +
        "older history.",
      samples: (memory) =>
        [...memory.stored].flatMap(([id, held]) =>
          held.history ? [{ labels: [["account_id", id]], value: held.history.start / 1000 }] : []
        ),
    },
  ];
}
