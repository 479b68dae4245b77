import { err, ok, type Result } from "../shared/result.ts";
import { type CashFlow, cashFlow } from "../spending/rules.ts";
import { classify, type Counting, MONZO_VIEW, type OwnAccount } from "../spending/classify.ts";
import type { StoredTransaction } from "../monzo/transaction.ts";
import { hasUnsafeCharacters } from "../shared/hostile_text.ts";
import { fileErrorMessage } from "../shared/error_message.ts";
import { compareText } from "../shared/compare.ts";
import { type Clock, systemClock } from "../shared/clock.ts";

/** How far back an account's stored history reaches. */
export interface AccountHistory {
  /** The oldest time the stored history covers, epoch ms. */
  readonly start: number;
  /** True when the whole history asked for (since the account was opened, or `history_days`) was imported. */
  readonly complete: boolean;
}

/** What is known of an account's stored transactions as a whole. */
export interface AccountSummary {
  /** How many are stored. */
  readonly count: number;
  /**
   * Cash flow per currency (rule 2 of lib/spending/rules.ts: settled at or after the account's
   * counting start), kept as each transaction is stored.
   */
  readonly flows: readonly CashFlow[];
}

/** The balance of an account as the last poll read it, kept so the stored history can be replayed without Monzo. */
export interface StoredBalance {
  /** `balance` of `GET /balance`, in minor units of `currency`. */
  readonly balanceMinor: number;
  readonly currency: string;
  /** When it was read, epoch ms. */
  readonly at: number;
}

/** One write: transactions stored (or replaced), pending ones dropped, and the account's history. */
export interface TransactionChange {
  readonly put?: readonly StoredTransaction[];
  /** Pending transactions Monzo stopped returning; only pending ones are ever dropped. */
  readonly remove?: readonly StoredTransaction[];
  readonly history?: AccountHistory;
}

/** Options of {@link TransactionStore.open}. */
export interface TransactionStoreOptions {
  /** Checks a stored value: an entry that is not a transaction any more (an older format) is left out. */
  readonly decode: (value: unknown) => StoredTransaction | null;
  /** Transactions created from this time on (the budget month's start) are held in memory. */
  readonly recentSince: number;
  /** The path or URL of the store, named in its errors; none for a store the errors need not name. */
  readonly location?: string;
  /** The time of an account's first write, its counting start; the wall clock unless given. */
  readonly clock?: Clock;
}

/** What {@link TransactionStore.setCounting} found. */
export interface Recount {
  /** Accounts whose counters started again from 0 (a new counting start, now): the new counting changed their totals. */
  readonly restarted: readonly string[];
}

type Mutation = (op: Deno.AtomicOperation) => Deno.AtomicOperation;

// Deno KV commits at most 1,000 mutations at once, and reads at most 10 keys in one getMany.
const BATCH = 400;
const GET_MANY = 10;
const TX = "tx";
// Later than any time a Date can hold: the end of a key range over every creation time.
const LATEST = 8.64e15 + 1;
const PENDING = "pending";
const SUMMARY = "summary";
const HISTORY = "history";
const COUNTING_START = "counting_start";
// The first counting start the store recorded for an account: when its live figures began. Never moved.
const LIVE_SINCE = "live_since";
const BALANCE = "balance";
// Every account `/accounts` has listed (closed ones too): transfers to them stay internal after a restart.
const OWN_ACCOUNTS = "own_accounts";
const MAX_OWN_ACCOUNTS = 1_000;
// A balance read but not yet explained by the stored transactions: kept until a read of them covers its time.
const UNEXPLAINED_BALANCE = "balance_unexplained";
// The bounds lib/monzo/monzo_schemas.ts puts on a balance read from Monzo: beyond them, a corrupt entry.
const MAX_BALANCE_MINOR = 1e15;
const MAX_CURRENCY_LENGTH = 64;

type TxKey = [typeof TX, string, number, string];
const txKey = (tx: StoredTransaction): TxKey => [TX, tx.accountId, tx.createdMs, tx.id];
const pendingKey = (tx: StoredTransaction) => [PENDING, tx.accountId, tx.createdMs, tx.id];
const isPending = (tx: StoredTransaction) => tx.settledMs === null && !tx.declined;

/** What the store holds in memory of one account. */
interface Held {
  count: number;
  flows: CashFlow[];
  /** Every pending transaction, and every one created since `recentSince`, by id. */
  readonly active: Map<string, StoredTransaction>;
  newest: StoredTransaction | undefined;
  history: AccountHistory | undefined;
  /** When the counters began, epoch ms: set at the account's first write, or at open for an older store. */
  countingStart: number | undefined;
  /** The first counting start recorded, kept when the counters start again: where the backfill ends. */
  liveSince: number | undefined;
  /** False until the counting start is on disk (it is written with the next write). */
  countingStored: boolean;
  balance: StoredBalance | undefined;
  /** A balance newer than the last complete read of the transactions: it becomes `balance` once one covers it. */
  unexplained: StoredBalance | undefined;
}

/**
 * The stored transactions of every account, one Deno KV entry per transaction keyed by account,
 * creation time and id, so nothing is fetched twice and every figure survives a restart. Memory holds
 * only what a poll needs: each account's cash-flow totals and count (kept up to date with every
 * write, and stored beside the transactions), its pending transactions, those of the current budget
 * month, and its newest one; so memory does not grow with the years of history stored. The store is
 * read whole once, at start, over the one `Deno.Kv` the caller opened and closes.
 *
 * Each account has a counting start: the time of its first write, kept beside its transactions and
 * never moved while the store lives. The cash-flow totals count only what settled at or after it,
 * so older history imported later never changes them. A store from before counting starts (or
 * whose counting start is unreadable, or later than now) gets one at open, now, and its totals
 * start again from 0: one counter reset, which Prometheus handles; {@link restarted} names them.
 *
 * The totals are what was counted, under a {@link Counting} (rules, shares, the household's own
 * accounts: lib/spending/classify.ts). Counters never go down: when the counting changes
 * ({@link setCounting}) the totals of what settled since each counting start are worked out again,
 * and an account whose totals would change starts counting again, now, from 0 (Prometheus reads a
 * reset to 0 exactly, but a drop to a lower non-zero value as a spike); so does an account a write
 * would take below what it counted (a settled transaction re-categorised into a rule that excludes it).
 */
export class TransactionStore {
  readonly #kv: Deno.Kv;
  readonly #decode: (value: unknown) => StoredTransaction | null;
  readonly #where: string;
  #held = new Map<string, Held>();
  #dropped = 0;
  #recentSince: number;
  readonly #clock: Clock;
  #restarted: string[] = [];
  /** Accounts whose counters started again because a write would have taken them down; taken by {@link takeRecounted}. */
  #recounted: string[] = [];
  /** The first error a store operation threw in the running {@link session}, if any. */
  #failure: string | null = null;
  #counting: Counting = MONZO_VIEW;
  /** False until {@link setCounting} has worked the totals out under a counting: the kept ones are used as they are. */
  #counted = false;
  /** Per rule label, how many stored transactions it decides; kept with every write once counted. */
  #matched = new Map<string, number>();
  #own: OwnAccount[] = [];

  private constructor(kv: Deno.Kv, options: TransactionStoreOptions) {
    this.#kv = kv;
    this.#decode = options.decode;
    this.#where = options.location === undefined ? "" : ` "${options.location}"`;
    this.#recentSince = options.recentSince;
    this.#clock = options.clock ?? systemClock;
  }

  /** Loads each account's totals, history, newest, pending and recent transactions; never closes `kv`. */
  static async open(kv: Deno.Kv, options: TransactionStoreOptions): Promise<Result<TransactionStore>> {
    const store = new TransactionStore(kv, options);
    try {
      store.#held = await store.#load(kv);
    } catch (error) {
      return err(`Cannot read the data store${store.#where}: ${fileErrorMessage(error)}`);
    }
    return ok(store);
  }

  /**
   * Runs `work` (a poll's reads and writes through {@link stored} and {@link write}); the error is
   * the first failure of the store itself during it (a read or write that threw: a disk gone or
   * full), so that the caller tells a failing store apart from `work`'s own failures, its result.
   */
  async session<T>(work: () => Promise<T>): Promise<Result<T>> {
    this.#failure = null;
    const done = await work();
    const failure = this.#failure;
    this.#failure = null;
    return failure === null ? ok(done) : err(failure);
  }

  /** How many stored entries were unreadable when read and were left out (they are read again from Monzo). */
  get dropped(): number {
    return this.#dropped;
  }

  /** How far back the account's history reaches, if anything was imported. */
  history(accountId: string): AccountHistory | undefined {
    return this.#held.get(accountId)?.history;
  }

  /** When the account's counters began (epoch ms), if anything of its transactions was ever written. */
  countingStart(accountId: string): number | undefined {
    return this.#held.get(accountId)?.countingStart;
  }

  /**
   * When the account's live figures began (epoch ms): the first counting start this store recorded.
   * A later start of the counters again (a changed rule, an older store) does not move it, since
   * Prometheus holds the live series from then on.
   */
  liveSince(accountId: string): number | undefined {
    const held = this.#held.get(accountId);
    return held?.liveSince ?? held?.countingStart;
  }

  /**
   * Accounts whose counting start was missing (an older store), unreadable or later than now at
   * open: it is now, and their totals started again from 0.
   */
  get restarted(): readonly string[] {
    return this.#restarted;
  }

  /** Accounts whose counters started again from 0 since the last call, because a write would have taken them down. */
  takeRecounted(): string[] {
    const taken = this.#recounted;
    this.#recounted = [];
    return taken;
  }

  /** Every account the exporter has seen in `/accounts` (kept by {@link setCounting}), closed ones too. */
  get ownAccounts(): readonly OwnAccount[] {
    return this.#own;
  }

  /** Per rule label, how many stored transactions the rule decides (first match; left out and internal ones not). */
  get rulesMatched(): ReadonlyMap<string, number> {
    return this.#matched;
  }

  /**
   * Counts under `counting` from now on. The first time, and whenever the rules, the shares or the
   * known accounts differ from the last, every stored transaction is read: the rules' matches are
   * counted, and each account's totals of what settled since its counting start are worked out again;
   * where they differ from the kept ones, the account's counting start becomes now and its totals 0.
   * The known accounts are kept, so a transfer stays internal after a restart.
   */
  setCounting(counting: Counting): Promise<Result<Recount>> {
    return this.#use("write", async (kv) => {
      if (this.#counted && sameCounting(this.#counting, counting)) return ok({ restarted: [] });
      const now = this.#clock.now();
      const matched = new Map<string, number>();
      const restarted: string[] = [];
      for (const [accountId, held] of this.#held) {
        const start = held.countingStart ?? now;
        let again: CashFlow[] = [];
        let fresh: CashFlow[] = [];
        for await (const tx of this.transactionsOf(accountId)) {
          countMatch(matched, tx, counting, 1);
          again = addFlows(again, cashFlow([tx], counting, start), []);
          fresh = addFlows(fresh, cashFlow([tx], counting, now), []);
        }
        if (held.countingStart === undefined || sameFlows(held.flows, again)) continue;
        const flows = addFlows(held.flows.map((flow) => ({ ...flow, spentMinor: 0, receivedMinor: 0 })), fresh, []);
        held.liveSince ??= held.countingStart;
        const committed = await kv.atomic()
          .set([COUNTING_START, accountId], now)
          .set([LIVE_SINCE, accountId], held.liveSince)
          .set([SUMMARY, accountId], { count: held.count, flows })
          .commit();
        if (!committed.ok) return err("Cannot write the data store: a write was not committed");
        held.countingStart = now;
        held.countingStored = true;
        held.flows = flows;
        restarted.push(accountId);
      }
      const own = mergeOwn(this.#own, counting.own.accounts);
      if (own.length !== this.#own.length || own.some((account, i) => !sameOwn(account, this.#own[i]))) {
        await kv.set([OWN_ACCOUNTS], own);
        this.#own = own;
      }
      this.#counting = counting;
      this.#counted = true;
      this.#matched = matched;
      return ok({ restarted });
    });
  }

  /** The accounts the store holds anything of (transactions, history, a balance), sorted. */
  accountIds(): string[] {
    return [...this.#held.keys()].sort(compareText);
  }

  /**
   * Every stored transaction of the account, oldest first by creation time (then id), read from the
   * store in batches as they are consumed, so memory holds only a batch; unreadable entries are left
   * out. A failing store throws what Deno KV throws.
   */
  async *transactionsOf(accountId: string): AsyncIterable<StoredTransaction> {
    for await (const entry of this.#kv.list({ prefix: [TX, accountId] })) {
      const tx = this.#valid(entry.key, entry.value);
      if (tx) yield tx;
    }
  }

  /**
   * The newest balance the stored transactions explain: read no later than the start of the last
   * complete read of the account's transactions ({@link markRead}). A balance read a moment before
   * the transactions it includes are stored would make every past balance worked back from it wrong.
   */
  lastBalance(accountId: string): StoredBalance | undefined {
    return this.#held.get(accountId)?.balance;
  }

  /**
   * Keeps `balance` as the account's last one read; it becomes {@link lastBalance} once a complete
   * read of the transactions that began at or after its time is stored ({@link markRead}).
   */
  saveBalance(accountId: string, balance: StoredBalance): Promise<Result<void>> {
    return this.#use("write", async (kv) => {
      const checked = decodeBalance(balance);
      if (checked === null) return err(`Cannot write the data store: the balance of ${accountId} is not one`);
      await kv.set([UNEXPLAINED_BALANCE, accountId], checked);
      heldOf(this.#held, accountId).unexplained = checked;
      return ok(undefined);
    });
  }

  /**
   * Records that every transaction of the account created before `at` (epoch ms) is stored: a read of
   * them that began then has ended and been stored. A balance saved at or before `at` becomes
   * {@link lastBalance}, in one commit.
   */
  markRead(accountId: string, at: number): Promise<Result<void>> {
    return this.#use("write", async (kv) => {
      const held = heldOf(this.#held, accountId);
      const waiting = held.unexplained;
      if (waiting === undefined || waiting.at > at) return ok(undefined);
      const committed = await kv.atomic()
        .set([BALANCE, accountId], waiting)
        .delete([UNEXPLAINED_BALANCE, accountId])
        .commit();
      if (!committed.ok) return err("Cannot write the data store: a write was not committed");
      held.balance = waiting;
      held.unexplained = undefined;
      return ok(undefined);
    });
  }

  /** The account's newest stored transaction. */
  newest(accountId: string): StoredTransaction | undefined {
    return this.#held.get(accountId)?.newest;
  }

  /** The account's count and cash-flow totals. */
  summary(accountId: string): AccountSummary {
    const held = this.#held.get(accountId);
    return { count: held?.count ?? 0, flows: held?.flows ?? [] };
  }

  /** The account's pending transactions, oldest first. */
  pending(accountId: string): StoredTransaction[] {
    return this.#active(accountId).filter(isPending);
  }

  /** The account's transactions created at `since` or later (since the budget month began, at most), oldest first. */
  recent(accountId: string, since: number): StoredTransaction[] {
    return this.#active(accountId).filter((tx) => tx.createdMs >= since);
  }

  /** The stored versions of `transactions` (by account, creation time and id), where stored. */
  stored(transactions: readonly StoredTransaction[]): Promise<Result<Map<string, StoredTransaction>>> {
    return this.#use("read", async (kv) => {
      const found = new Map<string, StoredTransaction>();
      const missing: TxKey[] = [];
      for (const tx of transactions) {
        const held = this.#held.get(tx.accountId)?.active.get(tx.id);
        if (held) found.set(tx.id, held);
        else missing.push(txKey(tx));
      }
      for (const tx of await this.#getMany(kv, missing)) found.set(tx.id, tx);
      return ok(found);
    });
  }

  /**
   * Stores `put` (replacing stored versions, which the caller has looked up with {@link stored}
   * and passes as `previous`), drops `remove`, and records the history; the account's totals change
   * with them in the same commit.
   */
  write(
    accountId: string,
    change: TransactionChange,
    previous: ReadonlyMap<string, StoredTransaction> = new Map(),
  ): Promise<Result<void>> {
    return this.#use("write", (kv) => this.#write(kv, accountId, change, previous));
  }

  async #write(
    kv: Deno.Kv,
    accountId: string,
    change: TransactionChange,
    previous: ReadonlyMap<string, StoredTransaction>,
  ): Promise<Result<void>> {
    const held = heldOf(this.#held, accountId);
    // Set in memory at once, so a write that fails and is done again keeps the same start.
    held.countingStart ??= this.#clock.now();
    const start = held.countingStart;
    if (!held.countingStored) {
      // On disk before any transaction that its totals depend on; with the totals as they stand.
      held.liveSince ??= start;
      const committed = await kv.atomic()
        .set([COUNTING_START, accountId], start)
        .set([LIVE_SINCE, accountId], held.liveSince)
        .set([SUMMARY, accountId], { count: held.count, flows: held.flows })
        .commit();
      if (!committed.ok) return err("Cannot write the data store: a write was not committed");
      held.countingStored = true;
    }
    const counting = this.#counting;
    let count = held.count;
    let flows = held.flows;
    let batches: Array<{ mutations: Mutation[]; summary: { count: number; flows: CashFlow[] } }> = [];
    // Each batch commits whole groups (a transaction and its pending mark) and the totals after them.
    const group = (mutations: Mutation[]) => {
      const last = batches[batches.length - 1];
      if (last && last.mutations.length + mutations.length <= BATCH) {
        last.mutations.push(...mutations);
        last.summary = { count, flows };
      } else {
        batches.push({ mutations, summary: { count, flows } });
      }
    };
    const fill = (from: number, base: CashFlow[]) => {
      count = held.count;
      flows = base;
      batches = [];
      for (const tx of change.put ?? []) {
        const before = previous.get(tx.id);
        if (!before) count++;
        flows = addFlows(flows, cashFlow([tx], counting, from), before ? cashFlow([before], counting, from) : []);
        group([
          (op) => op.set(txKey(tx), tx),
          (op) => isPending(tx) ? op.set(pendingKey(tx), true) : op.delete(pendingKey(tx)),
        ]);
      }
      for (const tx of change.remove ?? []) {
        count--;
        flows = addFlows(flows, [], cashFlow([tx], counting, from));
        group([(op) => op.delete(txKey(tx)), (op) => op.delete(pendingKey(tx))]);
      }
    };
    fill(start, held.flows);
    let restartAt: number | null = null;
    if (this.#counted && wentDown(held.flows, flows)) {
      // What was counted would go down (a settled transaction now excluded by a rule): counters start again from 0.
      restartAt = this.#clock.now();
      held.liveSince ??= held.countingStart;
      const zeros = held.flows.map((flow) => ({ ...flow, spentMinor: 0, receivedMinor: 0 }));
      fill(restartAt, zeros);
      const committed = await kv.atomic()
        .set([COUNTING_START, accountId], restartAt)
        .set([LIVE_SINCE, accountId], held.liveSince ?? restartAt)
        .set([SUMMARY, accountId], { count: held.count, flows: zeros })
        .commit();
      if (!committed.ok) return err("Cannot write the data store: a write was not committed");
      // Memory follows what is on disk now, so a batch below that fails is done again from the new start.
      held.countingStart = restartAt;
      held.flows = zeros;
    }
    const history = change.history;
    group(history ? [(op) => op.set([HISTORY, accountId], history)] : []);
    for (const batch of batches) {
      let op = kv.atomic();
      for (const mutate of batch.mutations) op = mutate(op);
      // Each commit carries the totals as they stand after it, so a crash between two leaves them true.
      op = op.set([SUMMARY, accountId], batch.summary);
      const committed = await op.commit();
      if (!committed.ok) return err("Cannot write the data store: a write was not committed");
    }
    // Memory follows the store only once it is on disk, so a failed write is simply done again.
    if (restartAt !== null) this.#recounted.push(accountId);
    if (this.#counted) {
      for (const tx of change.put ?? []) {
        const before = previous.get(tx.id);
        if (before) countMatch(this.#matched, before, counting, -1);
        countMatch(this.#matched, tx, counting, 1);
      }
      for (const tx of change.remove ?? []) countMatch(this.#matched, tx, counting, -1);
    }
    held.count = count;
    held.flows = flows;
    if (history) held.history = history;
    for (const tx of change.put ?? []) {
      held.active.set(tx.id, tx);
      if (!held.newest || byCreated(tx, held.newest) > 0) held.newest = tx;
    }
    for (const tx of change.remove ?? []) {
      held.active.delete(tx.id);
      if (held.newest?.id === tx.id) held.newest = this.#newestActive(accountId);
    }
    return ok(undefined);
  }

  /** Lets go of settled transactions created before `since` (a month that has ended); they stay stored. */
  forget(since: number): void {
    this.#recentSince = Math.max(this.#recentSince, since);
    for (const held of this.#held.values()) {
      for (const [id, tx] of held.active) if (!isPending(tx) && tx.createdMs < since) held.active.delete(id);
    }
  }

  #active(accountId: string): StoredTransaction[] {
    return [...(this.#held.get(accountId)?.active.values() ?? [])].sort(byCreated);
  }

  #newestActive(accountId: string): StoredTransaction | undefined {
    const active = this.#active(accountId);
    return active[active.length - 1];
  }

  /** Runs `work` on the store; a read or write that throws is the one-line error, noted for {@link session}. */
  async #use<T>(doing: "read" | "write", work: (kv: Deno.Kv) => Promise<Result<T>>): Promise<Result<T>> {
    try {
      return await work(this.#kv);
    } catch (error) {
      const failure = `Cannot ${doing} the data store${this.#where}: ${fileErrorMessage(error)}`;
      this.#failure ??= failure;
      return err(failure);
    }
  }

  /** Reads each account's totals, history, counting start, balance, newest, pending and recent transactions. */
  async #load(kv: Deno.Kv): Promise<Map<string, Held>> {
    const accounts = new Map<string, Held>();
    const now = this.#clock.now();
    const starts = new Map<string, number>();
    for await (const entry of kv.list({ prefix: [COUNTING_START] })) {
      const start = entry.value;
      if (typeof entry.key[1] === "string" && isEpochMs(start) && start <= now) starts.set(entry.key[1], start);
    }
    const own = await kv.get([OWN_ACCOUNTS]);
    this.#own = decodeOwn(own.value);
    for await (const entry of kv.list({ prefix: [BALANCE] })) {
      const balance = decodeBalance(entry.value);
      if (typeof entry.key[1] === "string" && balance) heldOf(accounts, entry.key[1]).balance = balance;
    }
    for await (const entry of kv.list({ prefix: [UNEXPLAINED_BALANCE] })) {
      const balance = decodeBalance(entry.value);
      if (typeof entry.key[1] === "string" && balance) heldOf(accounts, entry.key[1]).unexplained = balance;
    }
    const lives = new Map<string, number>();
    for await (const entry of kv.list({ prefix: [LIVE_SINCE] })) {
      const since = entry.value;
      if (typeof entry.key[1] === "string" && isEpochMs(since) && since <= now) lives.set(entry.key[1], since);
    }
    for await (const entry of kv.list({ prefix: [SUMMARY] })) {
      const summary = decodeSummary(entry.value);
      if (typeof entry.key[1] === "string" && summary) Object.assign(heldOf(accounts, entry.key[1]), summary);
    }
    for await (const entry of kv.list({ prefix: [HISTORY] })) {
      const history = decodeHistory(entry.value);
      if (typeof entry.key[1] === "string" && history) heldOf(accounts, entry.key[1]).history = history;
    }
    for (const [accountId, held] of accounts) {
      const start = starts.get(accountId);
      // A store written before live_since was kept: its counting start then is the first one known.
      held.liveSince = lives.get(accountId) ?? start;
      if (start !== undefined) {
        held.countingStart = start;
        held.countingStored = true;
      } else if (held.count > 0 || held.flows.length > 0 || held.history) {
        // Totals kept since the stored history starts (an older store), or against a start that
        // cannot be trusted: counting starts again now, from 0, in the currencies it had.
        held.countingStart = now;
        held.flows = held.flows.map((flow) => ({ ...flow, spentMinor: 0, receivedMinor: 0 }));
        this.#restarted.push(accountId);
      }
      // The newest readable one; unreadable entries are counted where they are read in full, below.
      for await (const entry of kv.list({ prefix: [TX, accountId] }, { reverse: true })) {
        held.newest = this.#valid(entry.key, entry.value) ?? undefined;
        if (held.newest) break;
      }
      const recent = kv.list({ start: [TX, accountId, this.#recentSince], end: [TX, accountId, LATEST] });
      for await (const entry of recent) {
        const tx = this.#check(entry.key, entry.value);
        if (tx) held.active.set(tx.id, tx);
      }
      const pendingKeys: TxKey[] = [];
      for await (const entry of kv.list({ prefix: [PENDING, accountId] })) {
        const [, , createdMs, id] = entry.key;
        if (typeof createdMs === "number" && typeof id === "string") pendingKeys.push([TX, accountId, createdMs, id]);
      }
      for (const tx of await this.#getMany(kv, pendingKeys)) if (isPending(tx)) held.active.set(tx.id, tx);
    }
    return accounts;
  }

  async #getMany(kv: Deno.Kv, keys: readonly TxKey[]): Promise<StoredTransaction[]> {
    const found: StoredTransaction[] = [];
    for (let i = 0; i < keys.length; i += GET_MANY) {
      for (const entry of await kv.getMany(keys.slice(i, i + GET_MANY))) {
        if (entry.value === null) continue;
        const tx = this.#check(entry.key, entry.value);
        if (tx) found.push(tx);
      }
    }
    return found;
  }

  /** The transaction stored under `key`, or null when the entry is not one, or not filed under its own key. */
  #valid(key: Deno.KvKey, value: unknown): StoredTransaction | null {
    const tx = this.#decode(value);
    return tx === null || key[1] !== tx.accountId || key[2] !== tx.createdMs || key[3] !== tx.id ? null : tx;
  }

  /** {@link #valid}, counting the entries left out. */
  #check(key: Deno.KvKey, value: unknown): StoredTransaction | null {
    const tx = this.#valid(key, value);
    if (tx === null) this.#dropped++;
    return tx;
  }
}

/** What memory holds of the account, made empty if nothing yet. */
function heldOf(accounts: Map<string, Held>, accountId: string): Held {
  let held = accounts.get(accountId);
  if (!held) {
    held = {
      count: 0,
      flows: [],
      active: new Map(),
      newest: undefined,
      history: undefined,
      countingStart: undefined,
      liveSince: undefined,
      countingStored: false,
      balance: undefined,
      unexplained: undefined,
    };
    accounts.set(accountId, held);
  }
  return held;
}

/** `base` plus `plus` minus `minus`, per currency. */
function addFlows(base: readonly CashFlow[], plus: readonly CashFlow[], minus: readonly CashFlow[]): CashFlow[] {
  const rows = new Map(base.map((flow) => [flow.currency, { ...flow }]));
  const apply = (flows: readonly CashFlow[], sign: 1 | -1) => {
    for (const flow of flows) {
      const row = rows.get(flow.currency) ?? { ...flow, spentMinor: 0, receivedMinor: 0 };
      row.spentMinor += sign * flow.spentMinor;
      row.receivedMinor += sign * flow.receivedMinor;
      rows.set(flow.currency, row);
    }
  };
  apply(plus, 1);
  apply(minus, -1);
  return [...rows.values()].sort((a, b) => compareText(a.currency, b.currency));
}

/** Adds `sign` to the count of the rule that decides `tx` under `counting`, if one does. */
function countMatch(matched: Map<string, number>, tx: StoredTransaction, counting: Counting, sign: 1 | -1): void {
  if (counting.rules.length === 0) return;
  const decided = classify(tx, counting);
  if (decided.rule === null || (decided.kind !== "counted" && decided.kind !== "excluded")) return;
  matched.set(decided.rule.label, (matched.get(decided.rule.label) ?? 0) + sign);
}

/** Two countings count alike: the same rules and shares (as loaded once at start) and the same known accounts. */
function sameCounting(a: Counting, b: Counting): boolean {
  return a.rules === b.rules && a.accountShares === b.accountShares && a.own.key === b.own.key;
}

/** Per currency, `[spent, received]`. */
function byCurrency(flows: readonly CashFlow[]): Map<string, [number, number]> {
  return new Map(flows.map((flow) => [flow.currency, [flow.spentMinor, flow.receivedMinor]]));
}

/** True when the two give the same figures in every currency (a missing currency is 0). */
function sameFlows(a: readonly CashFlow[], b: readonly CashFlow[]): boolean {
  const [x, y] = [byCurrency(a), byCurrency(b)];
  for (const currency of new Set([...x.keys(), ...y.keys()])) {
    const [s1, r1] = x.get(currency) ?? [0, 0];
    const [s2, r2] = y.get(currency) ?? [0, 0];
    if (s1 !== s2 || r1 !== r2) return false;
  }
  return true;
}

/** True when some figure of `after` is below the one of `before`. */
function wentDown(before: readonly CashFlow[], after: readonly CashFlow[]): boolean {
  const later = byCurrency(after);
  return before.some((flow) => {
    const [spent, received] = later.get(flow.currency) ?? [0, 0];
    return spent < flow.spentMinor || received < flow.receivedMinor;
  });
}

const sameOwn = (a: OwnAccount, b: OwnAccount | undefined) =>
  b !== undefined && a.id === b.id && a.sortCode === b.sortCode && a.accountNumber === b.accountNumber;

/** `kept` with `seen` added (the newest details of an account win), in id order, at most {@link MAX_OWN_ACCOUNTS}. */
function mergeOwn(kept: readonly OwnAccount[], seen: readonly OwnAccount[]): OwnAccount[] {
  const byId = new Map(kept.map((account) => [account.id, account]));
  for (const account of seen) {
    if (byId.size < MAX_OWN_ACCOUNTS || byId.has(account.id)) {
      const { id, sortCode, accountNumber } = account;
      byId.set(id, { id, sortCode, accountNumber });
    }
  }
  return [...byId.values()].sort((a, b) => compareText(a.id, b.id));
}

/** The known accounts read back from the store; anything unusable in it is left out. */
function decodeOwn(value: unknown): OwnAccount[] {
  if (!Array.isArray(value)) return [];
  const digits = (text: unknown, length: number): text is string | null =>
    text === null || (typeof text === "string" && text.length === length && /^\d+$/.test(text));
  return value.slice(0, MAX_OWN_ACCOUNTS).flatMap((entry): OwnAccount[] => {
    if (typeof entry !== "object" || entry === null) return [];
    const { id, sortCode, accountNumber } = entry as Record<string, unknown>;
    if (typeof id !== "string" || id === "" || id.length > 256 || hasUnsafeCharacters(id)) return [];
    return digits(sortCode, 6) && digits(accountNumber, 8) ? [{ id, sortCode, accountNumber }] : [];
  });
}

function byCreated(a: StoredTransaction, b: StoredTransaction): number {
  return a.createdMs - b.createdMs || compareText(a.id, b.id);
}

const isEpochMs = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 0 && (value as number) <= LATEST - 1;

/** A balance read back from the store (or about to be written), or null when it is not one. */
function decodeBalance(value: unknown): StoredBalance | null {
  if (typeof value !== "object" || value === null) return null;
  const { balanceMinor, currency, at } = value as Record<string, unknown>;
  if (!Number.isInteger(balanceMinor) || Math.abs(balanceMinor as number) > MAX_BALANCE_MINOR) return null;
  if (typeof currency !== "string" || currency.length === 0 || currency.length > MAX_CURRENCY_LENGTH) return null;
  if (hasUnsafeCharacters(currency) || !isEpochMs(at)) return null;
  return { balanceMinor: balanceMinor as number, currency, at };
}

function decodeHistory(value: unknown): AccountHistory | null {
  if (typeof value !== "object" || value === null) return null;
  const { start, complete } = value as Record<string, unknown>;
  if (typeof start !== "number" || typeof complete !== "boolean") return null;
  return { start, complete };
}

function decodeSummary(value: unknown): { count: number; flows: CashFlow[] } | null {
  if (typeof value !== "object" || value === null) return null;
  const { count, flows } = value as Record<string, unknown>;
  if (!Number.isInteger(count) || !Array.isArray(flows)) return null;
  return flows.every(isFlow) ? { count: count as number, flows } : null;
}

function isFlow(value: unknown): value is CashFlow {
  if (typeof value !== "object" || value === null) return false;
  const { accountId, currency, spentMinor, receivedMinor } = value as Record<string, unknown>;
  return typeof accountId === "string" && typeof currency === "string" && Number.isInteger(spentMinor) &&
    Number.isInteger(receivedMinor);
}
