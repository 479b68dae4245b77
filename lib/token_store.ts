import type { Logger } from "./log.ts";
import { ok, type Result } from "./result.ts";
import type { StoredLogin, TokenPersistence } from "./token_file.ts";

/** The key of a login in the store: its user id, or "" while the id is not known yet. */
export function loginKey(login: Pick<StoredLogin, "userId">): string {
  return login.userId ?? "";
}

/** What may be shown about a login: never its tokens. */
export type LoginStatus =
  | { readonly userId: string | null; readonly loggedIn: true; readonly expiresAt: number }
  | { readonly userId: string; readonly loggedIn: false; readonly reason: string };

/** The one place tokens live: in memory, and persisted through a {@link TokenPersistence}. */
export class TokenStore {
  readonly #persistence: TokenPersistence;
  readonly #log: Logger;
  readonly #logins = new Map<string, StoredLogin>();
  readonly #loggedOut = new Map<string, string>();
  readonly #listeners: Array<() => void> = [];
  #loadError: string | null = null;
  /** Why the last write failed; null once the logins are safely on disk. */
  #writeError: string | null = null;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(persistence: TokenPersistence, log: Logger) {
    this.#persistence = persistence;
    this.#log = log;
  }

  /** Loads the stored logins; an unreadable store starts empty and keeps its error for display. */
  static async open(persistence: TokenPersistence, log: Logger): Promise<TokenStore> {
    const store = new TokenStore(persistence, log);
    const loaded = await persistence.read();
    if (loaded.ok) {
      for (const login of loaded.value.logins) store.#logins.set(loginKey(login), login);
      if (loaded.value.notice) log.warn(loaded.value.notice);
    } else {
      store.#loadError = `${loaded.error}; log in again (the file is kept aside at the next login)`;
      log.error(store.#loadError);
    }
    return store;
  }

  /** Why the stored logins could not be read at start, if they could not. */
  get loadError(): string | null {
    return this.#loadError;
  }

  /** Why the logins could not be written, while they are held in memory only. */
  get writeError(): string | null {
    return this.#writeError;
  }

  /** Every current login, tokens included (for the exporter's own use only). */
  logins(): StoredLogin[] {
    return [...this.#logins.values()];
  }

  /** The login under `key` (see {@link loginKey}). */
  get(key: string): StoredLogin | undefined {
    return this.#logins.get(key);
  }

  /** What can be shown about every login, past ones included. */
  statuses(): LoginStatus[] {
    const current: LoginStatus[] = this.logins().map((login) => ({
      userId: login.userId,
      loggedIn: true,
      expiresAt: login.expiresAt,
    }));
    const past: LoginStatus[] = [...this.#loggedOut].map(([userId, reason]) => ({
      userId,
      loggedIn: false,
      reason,
    }));
    return [...current, ...past];
  }

  /** Calls `listener` after every change of the logins. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Stores `login`, replacing the one under `replacing` (default: its own key), and persists
   * the whole set before returning. If persisting fails the login is still kept in memory,
   * because Monzo may already have revoked the tokens it replaces, and writing is retried.
   */
  save(login: StoredLogin, replacing: string = loginKey(login)): Promise<Result<void>> {
    return this.#change(() => {
      this.#logins.delete(replacing);
      this.#logins.set(loginKey(login), login);
      if (login.userId) this.#loggedOut.delete(login.userId);
    });
  }

  /** Forgets the login under `key` because Monzo ended it, remembering why for display. */
  logOut(key: string, reason: string): Promise<Result<void>> {
    return this.#change(() => {
      this.#logins.delete(key);
      if (key) this.#loggedOut.set(key, reason);
    });
  }

  /** Writes the logins again if an earlier write failed. */
  flush(): Promise<Result<void>> {
    return this.#serial(() => this.#writeError !== null ? this.#persist() : Promise.resolve(ok(undefined)));
  }

  #change(apply: () => void): Promise<Result<void>> {
    return this.#serial(async () => {
      apply();
      const written = await this.#persist();
      for (const listener of this.#listeners) listener();
      return written;
    });
  }

  async #persist(): Promise<Result<void>> {
    const written = await this.#persistence.write(this.logins());
    if (written.ok) {
      if (this.#writeError !== null) this.#log.info(`The tokens file "${this.#persistence.name}" is written again`);
      if (this.#loadError) {
        this.#log.info(`The unreadable tokens file was kept as "${this.#persistence.name}.unreadable"`);
        this.#loadError = null;
      }
      this.#writeError = null;
    } else {
      // The poller reports it with the poll's other problems: once in the log, and on the page until fixed.
      this.#writeError = `${written.error}; the logins are kept in memory and writing is retried every poll`;
    }
    return written;
  }

  /** Runs `task` after every earlier one, so writes never interleave. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
