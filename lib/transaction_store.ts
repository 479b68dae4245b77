import { err, ok, type Result } from "./result.ts";

/** What the store needs to know of a transaction; the rest is the caller's. */
export interface KeyedTransaction {
  readonly id: string;
  readonly accountId: string;
  /** When it was created, epoch ms. */
  readonly createdMs: number;
}

/** How far back an account's stored history reaches, and when it was last checked against Monzo. */
export interface AccountHistory {
  /** The oldest time the stored history covers, epoch ms. */
  readonly start: number;
  /** True when the whole history asked for (since the account was opened, or `history_days`) was imported. */
  readonly complete: boolean;
}

/** Options of {@link TransactionStore.open}. */
export interface TransactionStoreOptions<T> {
  /** Checks a stored value: an entry that is not a `T` any more (an older format) is dropped. */
  readonly decode: (value: unknown) => T | null;
}

// Deno KV commits at most 1,000 mutations at once; a page of Monzo's answer is 100.
const BATCH = 500;
const TX = "tx";
const HISTORY = "history";

/**
 * The stored transactions of every account, one Deno KV entry per transaction keyed by account and
 * id, so nothing is fetched twice and every figure survives a restart. Everything is also held in
 * memory (a few hundred bytes per transaction) so a poll's figures need no reads.
 */
export class TransactionStore<T extends KeyedTransaction> {
  readonly #kv: Deno.Kv;
  readonly #byAccount = new Map<string, Map<string, T>>();
  readonly #sorted = new Map<string, readonly T[]>();
  readonly #histories = new Map<string, AccountHistory>();
  #dropped = 0;

  private constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Loads every stored transaction and history into memory. */
  static async open<T extends KeyedTransaction>(
    kv: Deno.Kv,
    options: TransactionStoreOptions<T>,
  ): Promise<Result<TransactionStore<T>>> {
    const store = new TransactionStore<T>(kv);
    try {
      for await (const entry of kv.list({ prefix: [TX] })) {
        const value = options.decode(entry.value);
        if (value === null || entry.key[1] !== value.accountId || entry.key[2] !== value.id) {
          store.#dropped++;
          continue;
        }
        store.#account(value.accountId).set(value.id, value);
      }
      for await (const entry of kv.list<AccountHistory>({ prefix: [HISTORY] })) {
        const history = decodeHistory(entry.value);
        if (typeof entry.key[1] === "string" && history) store.#histories.set(entry.key[1], history);
      }
    } catch (error) {
      return err(`Cannot read the data store: ${error instanceof Error ? error.message : String(error)}`);
    }
    return ok(store);
  }

  /** How many stored entries were not readable at open and were left out (they are read again from Monzo). */
  get dropped(): number {
    return this.#dropped;
  }

  /** The accounts that have stored transactions or a history. */
  accounts(): string[] {
    return [...new Set([...this.#byAccount.keys(), ...this.#histories.keys()])].sort();
  }

  /** The account's transactions, oldest first. */
  transactions(accountId: string): readonly T[] {
    let sorted = this.#sorted.get(accountId);
    if (!sorted) {
      sorted = [...(this.#byAccount.get(accountId)?.values() ?? [])].sort(byCreated);
      this.#sorted.set(accountId, sorted);
    }
    return sorted;
  }

  /** The transaction `id` of the account, if stored. */
  get(accountId: string, id: string): T | undefined {
    return this.#byAccount.get(accountId)?.get(id);
  }

  /** The account's newest stored transaction. */
  newest(accountId: string): T | undefined {
    const sorted = this.transactions(accountId);
    return sorted[sorted.length - 1];
  }

  /** How far back the account's history reaches, if anything was imported. */
  history(accountId: string): AccountHistory | undefined {
    return this.#histories.get(accountId);
  }

  /** Stores (or replaces) transactions and drops `removed` ids, with the account's history, in one go per batch. */
  async write(
    accountId: string,
    change: { put?: readonly T[]; remove?: readonly string[]; history?: AccountHistory },
  ): Promise<Result<void>> {
    const mutations: Array<(op: Deno.AtomicOperation) => Deno.AtomicOperation> = [];
    for (const tx of change.put ?? []) mutations.push((op) => op.set([TX, accountId, tx.id], tx));
    for (const id of change.remove ?? []) mutations.push((op) => op.delete([TX, accountId, id]));
    if (change.history) {
      const history = change.history;
      mutations.push((op) => op.set([HISTORY, accountId], history));
    }
    try {
      for (let i = 0; i < mutations.length; i += BATCH) {
        let op = this.#kv.atomic();
        for (const mutate of mutations.slice(i, i + BATCH)) op = mutate(op);
        const committed = await op.commit();
        if (!committed.ok) return err("Cannot write the data store: a write was not committed");
      }
    } catch (error) {
      return err(`Cannot write the data store: ${error instanceof Error ? error.message : String(error)}`);
    }
    // Memory follows the store only once it is on disk, so a failed write is simply done again.
    const held = this.#account(accountId);
    for (const tx of change.put ?? []) held.set(tx.id, tx);
    for (const id of change.remove ?? []) held.delete(id);
    if (change.history) this.#histories.set(accountId, change.history);
    this.#sorted.delete(accountId);
    return ok(undefined);
  }

  #account(accountId: string): Map<string, T> {
    let held = this.#byAccount.get(accountId);
    if (!held) {
      held = new Map();
      this.#byAccount.set(accountId, held);
    }
    return held;
  }
}

function byCreated(a: KeyedTransaction, b: KeyedTransaction): number {
  return a.createdMs - b.createdMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function decodeHistory(value: unknown): AccountHistory | null {
  if (typeof value !== "object" || value === null) return null;
  const { start, complete } = value as Record<string, unknown>;
  if (typeof start !== "number" || typeof complete !== "boolean") return null;
  return { start, complete };
}
