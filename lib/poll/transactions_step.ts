import { FROM_LAST_POLL, major, MONEY, type Sample } from "../metric_family.ts";
import type { MonzoFailure, TransactionQuery } from "../monzo_client.ts";
import { isoTime, type Problem, problem } from "../problems.ts";
import { err, ok, type Result } from "../result.ts";
import { type BudgetMonth, budgetMonth } from "../spending/budget_month.ts";
import { budget, type BudgetRow, type CashFlow } from "../spending/rules.ts";
import { type StoredTransaction, toStored } from "../spending/transaction.ts";
import type { AccountHistory, TransactionStore } from "../transaction_store.ts";
import type { AccountEntry, AccountRead, CallFailure, StepContext, StepDefinition } from "./step.ts";

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

/** The config the transactions step follows. */
export interface TransactionsConfig {
  /** How many days of history to import at login; 0 for everything. */
  readonly historyDays: number;
  /** Day of the month (1–28) the budget month starts, at 00:00 Europe/London. */
  readonly monthStartDay: number;
  /** Monthly budget per category, in major units of `budgetCurrency`. */
  readonly budgets: ReadonlyMap<string, number>;
  readonly budgetCurrency: string;
}

/** What the step remembers between polls; the transactions themselves are in the store. */
export interface TransactionsMemory {
  /** When each account's budget month and pending transactions were last read again, in this process. */
  readonly rereadAt: ReadonlyMap<string, number>;
  readonly month: BudgetMonth | null;
  readonly flows: readonly CashFlow[];
  readonly rows: readonly BudgetRow[];
  readonly stored: ReadonlyMap<string, { readonly count: number; readonly history: AccountHistory | undefined }>;
}

/** Why an account could not be brought up to date. */
interface SyncFailure {
  /** `skipped`: the poll has said why (login, rate limit); `failed`: Monzo's answer; `store`: the data store. */
  readonly kind: "skipped" | "failed" | "store";
  readonly detail: string;
  /** Monzo refused history older than 90 days because the 5 minutes after the login have passed. */
  readonly windowClosed: boolean;
}

/** The transactions step: keeps the store in step with Monzo and turns it into spending figures. */
export function transactionsStep(
  store: TransactionStore,
  config: TransactionsConfig,
): StepDefinition<TransactionsMemory> {
  return {
    name: "transactions",
    initial: { rereadAt: new Map(), month: null, flows: [], rows: [], stored: new Map() },
    families: families(config),
    async run(context, memory) {
      const rereadAt = new Map(memory.rereadAt);
      const reads = new Map<string, AccountRead>();
      const problems: Problem[] = [];
      let complete = true;
      const syncAll = async () => {
        for (const account of context.accounts) {
          const reader = context.readerOf(account);
          const synced = reader === undefined
            ? err<SyncFailure>({ kind: "skipped", detail: "no login that can read it is working", windowClosed: false })
            : await syncAccount(context, store, config, account, reader, rereadAt);
          if (synced.ok) {
            reads.set(account.id, { ok: true, at: context.now(), note: historyNote(store.history(account.id)) });
            continue;
          }
          complete = false;
          reads.set(account.id, { ok: false, detail: synced.error.detail });
          if (synced.error.kind === "failed") {
            problems.push(problem("account_failed", account.id, { detail: synced.error.detail }));
          } else if (synced.error.kind === "store") {
            problems.push(problem("data_unwritable", account.id, { detail: synced.error.detail }));
          }
        }
      };
      // The store is opened only when an account can be read, and held for the whole run: one opening per poll.
      const readable = context.accounts.some((account) => context.readerOf(account) !== undefined);
      const opened = readable ? await store.session(syncAll) : ok(await syncAll());
      if (!opened.ok) {
        // Nothing was read: the figures of the last poll stay as they are.
        const reads = new Map(
          context.accounts.map((a): [string, AccountRead] => [a.id, { ok: false, detail: opened.error }]),
        );
        return {
          memory,
          problems: [problem("data_unavailable", "", { detail: opened.error })],
          reads,
          complete: false,
        };
      }
      const month = budgetMonth(context.now(), config.monthStartDay);
      // Settled transactions of months that have ended are needed no more: only the store keeps them.
      store.forget(month.start);
      const listed = new Set(context.accounts.map((account) => account.id));
      const thisMonth = context.accounts.flatMap((account) => store.recent(account.id, month.start));
      return {
        memory: {
          rereadAt: new Map([...rereadAt].filter(([id]) => listed.has(id))),
          month,
          flows: context.accounts.flatMap((account) => store.summary(account.id).flows),
          rows: budget(thisMonth, month),
          stored: new Map(context.accounts.map((account) => [account.id, {
            count: store.summary(account.id).count,
            history: store.history(account.id),
          }])),
        },
        problems,
        reads,
        complete,
      };
    },
  };
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
  reader: string,
  rereadAt: Map<string, number>,
): Promise<Result<void, SyncFailure>> {
  const now = context.now();
  const granted = context.grantedAt(reader);
  const windowOpen = granted !== null && now < granted + FULL_HISTORY_MS;
  const floor = Math.max(
    account.created ?? EARLIEST,
    config.historyDays > 0 ? now - config.historyDays * DAY_MS : EARLIEST,
  );
  let history = store.history(account.id);

  if (!history) {
    // First the last 89 days, which Monzo always allows; older windows only while the window is open.
    const start = Math.max(windowStart(now), floor);
    const first = await readWindow(context, account.id, reader, start, now);
    if (!first.ok) return first;
    history = { start, complete: start <= floor };
    const written = await save(store, account.id, first.value, [], history);
    if (!written.ok) return written;
    rereadAt.set(account.id, now);
  } else {
    const newest = store.newest(account.id);
    // After a long stop the newest stored one may be older than Monzo lets us ask about: then the last 89 days.
    const since = newest && newest.createdMs >= windowStart(now)
      ? newest.id
      : new Date(Math.max(history.start, windowStart(now)) - 1).toISOString();
    const recent = await readPages(context, reader, { accountId: account.id, since });
    if (!recent.ok) return recent;
    const written = await save(store, account.id, recent.value, [], history);
    if (!written.ok) return written;
  }

  if (windowOpen && !history.complete) {
    const imported = await importOlder(context, store, account.id, reader, history, floor);
    if (!imported.ok && !imported.error.windowClosed) return imported;
  }

  const last = rereadAt.get(account.id);
  if (last === undefined || now - last >= REREAD_EVERY_MS) {
    const reread = await rereadRecent(context, store, config, account.id, reader);
    if (!reread.ok) return reread;
    rereadAt.set(account.id, now);
  }
  return ok(undefined);
}

/** Imports history older than the stored start, newest window first, until `floor` or Monzo closes the window. */
async function importOlder(
  context: StepContext,
  store: TransactionStore,
  accountId: string,
  reader: string,
  history: AccountHistory,
  floor: number,
): Promise<Result<void, SyncFailure>> {
  let start = history.start;
  while (start > floor) {
    const from = Math.max(windowStart(start), floor);
    const window = await readWindow(context, accountId, reader, from, start);
    if (!window.ok) return window;
    const next = { start: from, complete: from <= floor };
    const written = await save(store, accountId, window.value, [], next);
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
async function rereadRecent(
  context: StepContext,
  store: TransactionStore,
  config: TransactionsConfig,
  accountId: string,
  reader: string,
): Promise<Result<void, SyncFailure>> {
  const now = context.now();
  const pending = store.pending(accountId);
  const oldestPending = pending[0]?.createdMs ?? now;
  const from = Math.max(Math.min(budgetMonth(now, config.monthStartDay).start, oldestPending), windowStart(now));
  const fresh = await readWindow(context, accountId, reader, from, now);
  if (!fresh.ok) return fresh;
  const seen = new Set(fresh.value.map((tx) => tx.id));
  // Only pending ones can vanish (a released authorisation); a settled transaction is never dropped.
  const gone = pending.filter((tx) => tx.createdMs >= from && tx.createdMs < now && !seen.has(tx.id));
  return save(store, accountId, fresh.value, gone, store.history(accountId));
}

/** Reads every page of the window from `from` (included) to `to` (left out), epoch ms. */
function readWindow(
  context: StepContext,
  accountId: string,
  reader: string,
  from: number,
  to: number,
): Promise<Result<StoredTransaction[], SyncFailure>> {
  // Monzo's `since` and `before` both leave out their own instant: one millisecond earlier keeps `from` in.
  return readPages(context, reader, {
    accountId,
    since: new Date(from - 1).toISOString(),
    before: new Date(to).toISOString(),
  });
}

/** Reads pages of at most 100, each from the last id of the one before, until a page comes back short. */
async function readPages(
  context: StepContext,
  reader: string,
  query: Omit<TransactionQuery, "limit">,
): Promise<Result<StoredTransaction[], SyncFailure>> {
  const found: StoredTransaction[] = [];
  let since = query.since;
  for (;;) {
    const page = await context.call(
      reader,
      (token) => context.client.transactions(token, { ...query, since, limit: PAGE_LIMIT }, context.signal),
    );
    if (!page.ok) {
      return err({ kind: page.error.kind, detail: page.error.detail, windowClosed: isWindowClosed(page.error) });
    }
    for (const tx of page.value) found.push(toStored(tx, query.accountId));
    if (page.value.length < PAGE_LIMIT) return ok(found);
    since = page.value[page.value.length - 1].id;
  }
}

/** Monzo's 403 on history older than 90 days once the 5 minutes after a login have passed. */
function isWindowClosed(failure: CallFailure): boolean {
  if (failure.kind !== "failed") return false;
  const monzo: MonzoFailure = failure.failure;
  return monzo.status === 403 && (monzo.code ?? "").startsWith("forbidden.verification_required");
}

/**
 * Writes what was read: new transactions as they are; for one stored already settled, only its
 * category changes, so the cash-flow counters only ever grow.
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

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function families(config: TransactionsConfig): StepDefinition<TransactionsMemory>["families"] {
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
  const COUNTED = "Declined transactions and moves to or from the account's own pots are left out.";
  return [
    {
      name: "monzo_spent_total",
      type: "counter",
      help: `Money spent from the account since its stored history starts, ${MONEY}: settled debits that ` +
        `count as spending (never pending ones, so it only grows). ${COUNTED} ${FROM_LAST_POLL}`,
      samples: perAccount((flow) => flow.spentMinor),
    },
    {
      name: "monzo_received_total",
      type: "counter",
      help: `Money received into the account since its stored history starts, ${MONEY}: every settled credit, ` +
        `refunds included. ${COUNTED} ${FROM_LAST_POLL}`,
      samples: perAccount((flow) => flow.receivedMinor),
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
        [...config.budgets].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([category, amount]) => ({
          labels: [["category", category], ["currency", config.budgetCurrency]],
          value: amount,
        })),
    },
    {
      name: "monzo_budget_month_start_timestamp_seconds",
      type: "gauge",
      help: "Unix time at which the current budget month began (00:00 Europe/London on month_start_day).",
      samples: (memory) => memory.month === null ? [] : [{ labels: [], value: memory.month.start / 1000 }],
    },
    {
      name: "monzo_transactions_stored",
      type: "gauge",
      help: "Transactions of the account kept in the exporter's store.",
      samples: (memory) =>
        [...memory.stored].map(([id, held]) => ({ labels: [["account_id", id]], value: held.count })),
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
