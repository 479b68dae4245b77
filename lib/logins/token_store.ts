import type { Logger } from "../shared/log.ts";
import type { DeclaredFamily } from "../shared/metric_family.ts";
import type { Problem } from "../shared/problems.ts";
import { ok, type Result } from "../shared/result.ts";
import type { StoredLogin, TokenPersistence } from "./token_file.ts";

/** How many access tokens a store remembers having held: far more than the logins and refreshes between two reads. */
const MAX_KNOWN_TOKENS = 1000;

/** The key of a login in the store: its user id, or "" while the id is not known yet. */
export function loginKey(login: Pick<StoredLogin, "userId">): string {
  return login.userId ?? "";
}

/** What may be shown about a login: never its tokens. */
export type LoginStatus =
  | {
    readonly userId: string | null;
    readonly loggedIn: true;
    readonly expiresAt: number;
    /** When the user last authorised in the browser (epoch ms); absent for a login stored before that was kept. */
    readonly grantedAt?: number;
  }
  | { readonly userId: string; readonly loggedIn: false; readonly reason: string; readonly problem: Problem };

/**
 * Every way a login is written, replaced or deleted. These four are the only ones: the store
 * applies nothing else, and {@link TokenStore.apply} is the one place that changes the logins.
 *
 * - `logged_in`: a browser login; replaces whatever the user had (Monzo has revoked it anyway).
 * - `renewed`: a refresh; replaces `from` only if `from` is still the stored login.
 * - `identified`: `/ping/whoami` named the user of `from`, a login stored without a user id; when
 *   that user has a newer login already, `from` is dropped (the newer one evicted it at Monzo).
 * - `ended`: Monzo refused to renew `from`; deletes it only if it is still the stored login, so a
 *   refusal that lands after a new browser login of the same user never deletes the new login, nor
 *   one that another program (another exporter) has since written to the file.
 */
export type LoginChange =
  | { readonly kind: "logged_in"; readonly login: StoredLogin }
  | { readonly kind: "renewed"; readonly from: StoredLogin; readonly login: StoredLogin }
  | { readonly kind: "identified"; readonly from: StoredLogin; readonly login: StoredLogin }
  | { readonly kind: "ended"; readonly from: StoredLogin; readonly problem: Problem };

/** What {@link TokenStore.apply} did. */
export interface ChangeOutcome {
  /** False when the login changed meanwhile, so the change no longer applied and nothing was done. */
  readonly applied: boolean;
  /** Whether newer logins written to the file by another program were taken first (see {@link TokenStore.apply}). */
  readonly adopted: boolean;
  /** Whether the logins are on disk; when not, they are held in memory and writing is retried. */
  readonly written: Result<void>;
}

/** The one place tokens live: in memory, and persisted through a {@link TokenPersistence}. */
export class TokenStore {
  readonly #persistence: TokenPersistence;
  readonly #log: Logger;
  readonly #logins = new Map<string, StoredLogin>();
  /** Why Monzo ended each past login, by user id. */
  readonly #loggedOut = new Map<string, Problem>();
  readonly #listeners: Array<() => void> = [];
  #loadError: string | null = null;
  /** Why the last write failed; null once the logins are safely on disk. */
  #writeError: string | null = null;
  /** The logins as this store last read (at start) or wrote them: one that differs in memory is a change not yet written. */
  #onDisk = new Map<string, StoredLogin>();
  /** Access tokens this store has held (see {@link TokenStore.#adoptFromDisk}): one seen again is nothing new. */
  readonly #known = new Set<string>();
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
      store.#onDisk = new Map(store.#logins);
      for (const login of loaded.value.logins) store.#remember(login);
      if (loaded.value.notice) log.warn(loaded.value.notice);
    } else {
      store.#loadError = `${loaded.error}; log in again (the file is kept aside at the next login)`;
      log.error(store.#loadError);
    }
    return store;
  }

  /** Why the stored logins could not be read at start, until a new file replaces them. */
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
      ...(login.grantedAt === undefined ? {} : { grantedAt: login.grantedAt }),
    }));
    const past: LoginStatus[] = [...this.#loggedOut].map(([userId, problem]) => ({
      userId,
      loggedIn: false,
      reason: problem.message,
      problem,
    }));
    return [...current, ...past];
  }

  /** Calls `listener` after every change of the logins or of whether they are safely written. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Applies one {@link LoginChange} and persists the whole set before returning. When persisting
   * fails the change is still kept in memory, because Monzo has already revoked the tokens it
   * replaces, and writing is retried by {@link flush}; the file keeps the previous set meanwhile.
   */
  apply(change: LoginChange): Promise<ChangeOutcome> {
    return this.#serial(async () => {
      // A refusal ends nothing the file holds in a newer form: its key is open to what the file says.
      // Every other change replaces its own key, whatever the file holds there.
      const own = change.kind === "ended" ? null : loginKey(change.kind === "logged_in" ? change.login : change.from);
      const adopted = await this.#adoptFromDisk(own);
      if (!this.#mutate(change)) {
        if (adopted) this.#notify();
        return { applied: false, adopted, written: ok(undefined) };
      }
      const written = await this.#persist();
      this.#notify();
      return { applied: true, adopted, written };
    });
  }

  /** Writes the logins again if an earlier write failed. */
  flush(): Promise<Result<void>> {
    return this.#serial(async () => {
      if (this.#writeError === null) return ok(undefined);
      await this.#adoptFromDisk(null);
      const written = await this.#persist();
      this.#notify();
      return written;
    });
  }

  /** Settles once every change asked for so far is applied and its write has ended. */
  async idle(): Promise<void> {
    await this.#queue;
  }

  #mutate(change: LoginChange): boolean {
    if (change.kind === "logged_in") {
      this.#put(change.login, loginKey(change.login));
      return true;
    }
    const key = loginKey(change.from);
    if (this.#logins.get(key) !== change.from) return false;
    if (change.kind === "ended") {
      this.#logins.delete(key);
      if (key) this.#loggedOut.set(key, change.problem);
    } else if (change.kind === "identified" && this.#logins.has(loginKey(change.login))) {
      // The user has logged in through the browser since: that login evicted this older one.
      this.#logins.delete(key);
    } else {
      this.#put(change.login, key);
    }
    return true;
  }

  #put(login: StoredLogin, replacing: string): void {
    this.#remember(login);
    this.#logins.delete(replacing);
    this.#logins.set(loginKey(login), login);
    if (login.userId) this.#loggedOut.delete(login.userId);
  }

  /**
   * Reads the file again and takes every login there that holds tokens this store has never held: another
   * program (another exporter) rotated it or logged it in. Not under `own`, and not where this store has
   * a change of its own not yet written, which is Monzo's latest. So a write never puts back tokens another
   * writer replaced, nor drops a login it added. A file that cannot be read is left to the write, which
   * keeps it aside. Whether anything was taken.
   */
  async #adoptFromDisk(own: string | null): Promise<boolean> {
    const read = await this.#persistence.read();
    if (!read.ok) return false;
    let adopted = false;
    for (const theirs of read.value.logins) {
      const key = loginKey(theirs);
      if (key === own || this.#known.has(theirs.accessToken)) continue;
      const mine = this.#logins.get(key);
      const written = this.#onDisk.get(key);
      if (mine !== undefined && (written === undefined || !sameTokens(mine, written))) continue;
      this.#logins.set(key, theirs);
      this.#remember(theirs);
      if (theirs.userId) this.#loggedOut.delete(theirs.userId);
      this.#log.warn(
        `The tokens file "${this.#persistence.name}" holds newer tokens of ${key || "the stored login"} than this ` +
          "exporter, written by another program; they are used",
      );
      adopted = true;
    }
    return adopted;
  }

  /** Notes `login`'s access token as one this store has held, forgetting the oldest beyond a bound. */
  #remember(login: StoredLogin): void {
    this.#known.delete(login.accessToken);
    this.#known.add(login.accessToken);
    if (this.#known.size > MAX_KNOWN_TOKENS) this.#known.delete(this.#known.values().next().value ?? "");
  }

  async #persist(): Promise<Result<void>> {
    const logins = this.logins();
    const written = await this.#persistence.write(logins);
    // Named only once the file exists, and by the name it really has: an earlier copy is never replaced.
    if (written.keptAside) this.#log.warn(`The unreadable tokens file was kept as "${written.keptAside}"`);
    if (written.ok) {
      this.#onDisk = new Map(logins.map((login) => [loginKey(login), login]));
      if (this.#writeError !== null) this.#log.info(`The tokens file "${this.#persistence.name}" is written again`);
      this.#loadError = null;
      this.#writeError = null;
    } else {
      // The poller reports it with the poll's other problems: once in the log, and on the page until fixed.
      this.#writeError = written.error;
    }
    return written;
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Runs `task` after every earlier one, so writes never interleave. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/** Whether two logins hold the same tokens (the file's copy of a login is a new object at each read). */
function sameTokens(a: StoredLogin, b: StoredLogin): boolean {
  return a.accessToken === b.accessToken && a.refreshToken === b.refreshToken;
}

const userLabel = (userId: string | null) => [["user_id", userId ?? "unknown"]] as const;

/** The store's own families, from {@link TokenStore.statuses}: each login's token expiry, whether it is held, when it was granted. */
export const LOGIN_FAMILIES: readonly DeclaredFamily<readonly LoginStatus[]>[] = [
  {
    name: "monzo_token_expiry_timestamp_seconds",
    type: "gauge",
    help: "Unix time at which the user's access token expires; it is refreshed 30 minutes before.",
    samples: (logins) =>
      logins.flatMap((login) =>
        login.loggedIn ? [{ labels: userLabel(login.userId), value: login.expiresAt / 1000 }] : []
      ),
  },
  {
    name: "monzo_logged_in",
    type: "gauge",
    help: "1 while the exporter holds a login for the user, 0 after Monzo ended it (log in again).",
    samples: (logins) => logins.map((login) => ({ labels: userLabel(login.userId), value: login.loggedIn ? 1 : 0 })),
  },
  {
    name: "monzo_login_timestamp_seconds",
    type: "gauge",
    help: "Unix time at which the user last authorised the exporter in the browser (refreshes keep it); " +
      "Monzo asks people to re-authorise about every 90 days. Absent for a login stored before the " +
      "exporter kept this time (log in again to get it).",
    samples: (logins) =>
      logins.flatMap((login) =>
        login.loggedIn && login.grantedAt !== undefined
          ? [{ labels: userLabel(login.userId), value: login.grantedAt / 1000 }]
          : []
      ),
  },
];
