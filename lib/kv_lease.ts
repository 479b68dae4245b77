import { type OpenedKv, openKv } from "./kv.ts";
import { err, ok, type Result } from "./result.ts";

/** One user's hold on the open store, until it calls {@link KvHold.release}. */
export interface KvHold {
  readonly kv: Deno.Kv;
  /** Which opening of the store this is (1, 2, …): a new number means a new connection, maybe to a new file. */
  readonly connection: number;
  /** Lets go of the store; after the last user's release it is closed. Releasing twice does nothing. */
  release(): void;
}

/** Options of {@link KvLease}. */
export interface KvLeaseOptions {
  /** Opens the store at `location`; {@link openKv} by default (tests count the calls). */
  readonly open?: (location: string) => Promise<Result<OpenedKv>>;
  /** Told when an opening found a file that was not a store and moved it aside to `aside` (the exporter logs it). */
  readonly onMovedAside?: (aside: string) => void;
}

/**
 * Owns the connection to the Deno KV store: opens it on first use, shares it among users whose work
 * overlaps, and closes it when the last of them is done, because an open SQLite store holds its page
 * cache and WAL index in memory between polls that need none of it. It closes at once, with no idle
 * delay: the users are the read at start and the transactions step, which holds the store for its
 * whole run, so a poll opens it once; polls are a minute or more apart, so a delay shorter than that
 * saves no opening and a longer one keeps the store open for good. A `":memory:"` store is never
 * closed before {@link KvLease.close}: closing it would lose what it holds. Failing to open is a value,
 * and the next use tries again.
 */
export class KvLease {
  /** The path, `":memory:"` or URL given to the opener. */
  readonly location: string;
  readonly #open: (location: string) => Promise<Result<OpenedKv>>;
  readonly #onMovedAside: ((aside: string) => void) | undefined;
  /** False for a store the caller opened and closes itself ({@link KvLease.over}). */
  #owned = true;
  #keepOpen: boolean;
  #kv: Deno.Kv | null = null;
  #opening: Promise<Result<Deno.Kv>> | null = null;
  #users = 0;
  #connection = 0;
  #closed = false;

  constructor(location: string, options: KvLeaseOptions = {}) {
    this.location = location;
    this.#open = options.open ?? ((at) => openKv(at));
    this.#onMovedAside = options.onMovedAside;
    this.#keepOpen = location === ":memory:";
  }

  /** A lease over a store the caller opened and will close: it is used as it is, never opened again nor closed. */
  static over(kv: Deno.Kv): KvLease {
    const lease = new KvLease("", { open: () => Promise.resolve(ok({ kv })) });
    lease.#kv = kv;
    lease.#connection = 1;
    lease.#owned = false;
    lease.#keepOpen = true;
    return lease;
  }

  /** Opens the store unless a user holds it open already; the error is one line naming the store. */
  async acquire(): Promise<Result<KvHold>> {
    if (this.#closed) return err(`Cannot open the data store "${this.location}": it has been closed`);
    this.#users++;
    let kv = this.#kv;
    if (kv === null) {
      this.#opening ??= this.#openNow();
      let opened: Result<Deno.Kv>;
      try {
        opened = await this.#opening;
      } catch (error) {
        this.#users--;
        throw error;
      }
      if (!opened.ok) {
        this.#users--;
        return opened;
      }
      kv = opened.value;
    }
    let held = true;
    return ok({
      kv,
      connection: this.#connection,
      release: () => {
        if (!held) return;
        held = false;
        this.#release();
      },
    });
  }

  /** Runs `work` on the open store and lets go of it after, however `work` ends; an error opening is the value. */
  async use<T>(work: (kv: Deno.Kv, connection: number) => Promise<T>): Promise<Result<T>> {
    const hold = await this.acquire();
    if (!hold.ok) return hold;
    try {
      return ok(await work(hold.value.kv, hold.value.connection));
    } finally {
      hold.value.release();
    }
  }

  /** Whether the store is open now. */
  get isOpen(): boolean {
    return this.#kv !== null;
  }

  /** Closes the store for good: now if no one holds it, else when the last user lets go; later uses fail. */
  close(): void {
    this.#closed = true;
    if (this.#users === 0) this.#shut();
  }

  async #openNow(): Promise<Result<Deno.Kv>> {
    try {
      const opened = await this.#open(this.location);
      if (!opened.ok) return opened;
      if (opened.value.movedAside) this.#onMovedAside?.(opened.value.movedAside);
      this.#kv = opened.value.kv;
      this.#connection++;
      return ok(opened.value.kv);
    } finally {
      this.#opening = null;
    }
  }

  #release(): void {
    this.#users--;
    if (this.#users === 0 && (this.#closed || !this.#keepOpen)) this.#shut();
  }

  #shut(): void {
    if (this.#kv === null) return;
    if (this.#owned) this.#kv.close();
    this.#kv = null;
  }
}
