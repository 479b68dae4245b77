import type { Clock } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { isBadAccessToken, type MonzoClient, type MonzoFailure } from "../monzo/monzo_client.ts";
import type { TokenResponse } from "../monzo/monzo_schemas.ts";
import {
  codeGrant,
  isClientRejection,
  isDefiniteRejection,
  loginLink,
  type OAuthConfig,
  refreshGrant,
} from "../monzo/oauth.ts";
import { type Problem, problem } from "../shared/problems.ts";
import { err, ok, type Result } from "../shared/result.ts";
import type { StoredLogin } from "./token_file.ts";
import { loginKey, type TokenStore } from "./token_store.ts";

// Refresh when less than this is left on the access token.
const REFRESH_MARGIN_MS = 30 * 60_000;

/** Why no usable access token could be had for a login. */
export interface SessionFailure {
  /** `logged_out`: Monzo ended the login; `unavailable`: try again later. */
  readonly kind: "logged_out" | "unavailable";
  readonly problem: Problem;
}

/** A login with a token that is good for a while, and why a refresh failed when it did. */
export interface Fresh {
  readonly login: StoredLogin;
  /** Set when a due refresh failed for now but the token still works, so the poll can say so. */
  readonly problem: Problem | null;
}

/** What a browser login gave. */
export interface LoggedIn {
  readonly userId: string;
  /** Whether the login reached the tokens file; when not, it is held in memory and writing is retried. */
  readonly written: Result<void>;
}

/** The life of logins: code exchange, refresh before expiry, renewal after a 401, learning the user id. */
export interface Sessions {
  /** Trades an OAuth code for tokens and stores them. */
  logIn(code: string): Promise<Result<LoggedIn, string>>;
  /** The login under `key` with a token that is good for a while, refreshed if needed or forced. */
  fresh(key: string, options?: { force?: boolean }): Promise<Result<Fresh, SessionFailure>>;
  /** Asks Monzo whose login `key` is and stores it under that user id. */
  identify(key: string, signal?: AbortSignal): Promise<Result<StoredLogin, MonzoFailure | SessionFailure>>;
  /**
   * Calls Monzo with the token of login `key`; when Monzo answers 401 (expired early, evicted) the
   * token is renewed once and the call made again.
   */
  call<T>(
    key: string,
    request: (token: string) => Promise<Result<T, MonzoFailure>>,
  ): Promise<Result<T, MonzoFailure | SessionFailure>>;
  /**
   * Settles once no browser login, refresh or identification is in flight and every token write has
   * ended: shutdown waits for it, and a poll reads the logins only then, never a set one of them is changing.
   */
  idle(): Promise<void>;
}

/** Options of {@link createSessions}. */
export interface SessionsOptions {
  readonly config: OAuthConfig;
  readonly client: MonzoClient;
  readonly store: TokenStore;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Creates the session manager; at most one refresh per login runs at a time. */
export function createSessions(options: SessionsOptions): Sessions {
  const { config, client, store, clock, log } = options;
  const link = loginLink(config);
  // The only state kept here: what is in flight, so one refresh runs per login and shutdown and polls
  // can wait, and where a login stored without a user id went once Monzo named its user.
  const refreshing = new Map<string, Promise<Result<Fresh, SessionFailure>>>();
  const inFlight = new Set<Promise<unknown>>();
  const movedTo = new Map<string, string>();

  /**
   * The login under `key`, or under the user id it moved to: a poll that began with the key "" of a
   * login from the original exporter's file keeps reaching it after a refresh or whoami named its user.
   */
  function current(key: string): StoredLogin | undefined {
    const moved = movedTo.get(key);
    return store.get(key) ?? (moved === undefined ? undefined : store.get(moved));
  }

  /**
   * Why there is no login under `key`: the reason Monzo ended it when it did (a refusal that landed
   * while a poll was reading it), or else that none was ever stored.
   */
  function missing(key: string): SessionFailure {
    const ended = store.statuses().find((status) => !status.loggedIn && status.userId === key);
    if (ended && !ended.loggedIn) return { kind: "logged_out", problem: ended.problem };
    return { kind: "logged_out", problem: problem("no_login", key, { loginLink: link }) };
  }

  /** Remembers where the login under `key` went, when a change stored it under its user id. */
  function follow(key: string, login: StoredLogin): void {
    if (login.userId !== null && login.userId !== key) movedTo.set(key, login.userId);
  }

  /** Keeps `work` in {@link inFlight} until it settles, so shutdown can wait for it. */
  function track<T>(work: Promise<T>): Promise<T> {
    inFlight.add(work);
    const done = () => inFlight.delete(work);
    work.then(done, done);
    return work;
  }

  function loginFrom(grant: TokenResponse, previous?: StoredLogin): StoredLogin {
    return {
      userId: grant.user_id,
      accessToken: grant.access_token,
      // RFC 6749 §6: without a new refresh token in the answer, the old one stays valid.
      refreshToken: grant.refresh_token ?? previous?.refreshToken ?? null,
      expiresAt: clock.now() + grant.expires_in * 1000,
      grantedAt: previous ? previous.grantedAt : clock.now(),
    };
  }

  /** The login now stored under `key`, when a newer one replaced `login` while Monzo was asked. */
  function superseded(key: string): Result<Fresh, SessionFailure> {
    const current = store.get(key);
    if (current) {
      log.info(`A newer login of ${key || "the stored login"} arrived while its tokens were renewed; it is kept`);
      return ok({ login: current, problem: null });
    }
    return err({ kind: "logged_out", problem: problem("no_login", key, { loginLink: link }) });
  }

  async function end(key: string, login: StoredLogin, ended: Problem): Promise<Result<Fresh, SessionFailure>> {
    // The poller logs the problem once, with the other problems of the poll.
    const outcome = await store.apply({ kind: "ended", from: login, problem: ended });
    if (!outcome.applied) {
      const current = store.get(key);
      // Tokens another program rotated and wrote to the file (the store said so): renewed now if due,
      // rather than handed to a poll that would find them expired.
      if (outcome.adopted && current && current.expiresAt - clock.now() <= REFRESH_MARGIN_MS) {
        return refresh(key, current);
      }
      return outcome.adopted && current ? ok({ login: current, problem: null }) : superseded(key);
    }
    return err({ kind: "logged_out", problem: ended });
  }

  // No abort signal here: once Monzo has the refresh token, the answer must be stored.
  async function refresh(key: string, login: StoredLogin): Promise<Result<Fresh, SessionFailure>> {
    if (!login.refreshToken) {
      if (login.expiresAt > clock.now()) return ok({ login, problem: null });
      return end(key, login, problem("no_refresh_token", key, { loginLink: link }));
    }
    const answer = await client.token(refreshGrant(config, login.refreshToken));
    if (answer.ok) {
      // Monzo has already revoked the old pair: store the new one before anything uses it.
      const renewed = loginFrom(answer.value, login);
      const outcome = await store.apply({ kind: "renewed", from: login, login: renewed });
      if (!outcome.applied) return superseded(key);
      follow(key, renewed);
      log.info(
        `Refreshed the tokens of ${renewed.userId}; they expire at ${new Date(renewed.expiresAt).toISOString()}`,
      );
      return ok({ login: renewed, problem: null });
    }
    const failure = answer.error;
    if (isDefiniteRejection(failure)) {
      return end(key, login, problem("logged_out", key, { detail: failure.detail, loginLink: link }));
    }
    const code = isClientRejection(failure) ? "client_rejected" : "refresh_failed";
    const failed = problem(code, key, { detail: failure.detail });
    if (login.expiresAt > clock.now()) return ok({ login, problem: failed });
    return err({ kind: "unavailable", problem: failed });
  }

  function fresh(key: string, { force = false } = {}): Promise<Result<Fresh, SessionFailure>> {
    const login = current(key);
    if (!login) return Promise.resolve(err(missing(key)));
    if (!force && login.expiresAt - clock.now() > REFRESH_MARGIN_MS) {
      return Promise.resolve(ok({ login, problem: null }));
    }
    const at = loginKey(login);
    const running = refreshing.get(at);
    if (running) return running;
    const started = track(refresh(at, login).finally(() => refreshing.delete(at)));
    refreshing.set(at, started);
    return started;
  }

  async function call<T>(
    key: string,
    request: (token: string) => Promise<Result<T, MonzoFailure>>,
  ): Promise<Result<T, MonzoFailure | SessionFailure>> {
    // The stored token as it is: refreshing ahead of expiry is fresh()'s job, once per poll, not per call.
    const stored = current(key);
    if (!stored) return err(missing(key));
    const answer = await request(stored.accessToken);
    if (answer.ok || !isBadAccessToken(answer.error)) return answer;
    // Only renew when nothing else has since: a second 401 on a token renewed a moment ago is
    // not cured by renewing it again.
    const now = current(key);
    const renewed = now && now.accessToken !== stored.accessToken
      ? ok({ login: now, problem: null })
      : await fresh(key, { force: true });
    if (!renewed.ok) return renewed;
    // A refresh that failed for now hands back the same token: asking again would only repeat the 401.
    if (renewed.value.login.accessToken === stored.accessToken) return answer;
    return request(renewed.value.login.accessToken);
  }

  async function identify(
    key: string,
    signal?: AbortSignal,
  ): Promise<Result<StoredLogin, MonzoFailure | SessionFailure>> {
    const answer = await call(key, (token) => client.whoami(token, signal));
    if (!answer.ok) return answer;
    const userId = answer.value.user_id;
    const login = store.get(key);
    // A refresh during the call learns the user id too, and moves the login under it.
    if (login && login.userId === null) {
      const identified = { ...login, userId };
      if ((await store.apply({ kind: "identified", from: login, login: identified })).applied) follow(key, identified);
    }
    const identified = store.get(userId);
    if (!identified) return err(missing(userId));
    log.info(`The stored login belongs to ${userId}`);
    return ok(identified);
  }

  return {
    // No abort signal: once Monzo has issued the tokens (evicting the user's old ones) they must be stored.
    logIn(code) {
      return track((async (): Promise<Result<LoggedIn, string>> => {
        const answer = await client.token(codeGrant(config, code));
        if (!answer.ok) return err(answer.error.detail);
        const login = loginFrom(answer.value);
        const { written } = await store.apply({ kind: "logged_in", login });
        log.info(`Received new tokens for ${login.userId}` + (written.ok ? "" : " (held in memory only for now)"));
        return ok({ userId: login.userId ?? "", written });
      })());
    },

    fresh,

    // Tracked like a refresh: it moves the login under its user id, which a poll must wait for.
    identify: (key, signal) => track(identify(key, signal)),

    call,

    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      await store.idle();
    },
  };
}
