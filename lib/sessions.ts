import type { Clock } from "./clock.ts";
import type { Logger } from "./log.ts";
import type { MonzoClient, MonzoFailure } from "./monzo_client.ts";
import type { TokenResponse } from "./monzo_schemas.ts";
import {
  codeGrant,
  isClientRejection,
  isDefiniteRejection,
  loginLink,
  type OAuthConfig,
  refreshGrant,
} from "./oauth.ts";
import { err, ok, type Result } from "./result.ts";
import type { StoredLogin } from "./token_file.ts";
import { loginKey, type TokenStore } from "./token_store.ts";

/** Refresh when less than this is left on the access token. */
export const REFRESH_MARGIN_MS = 30 * 60_000;

/** Why no usable access token could be had for a login. */
export interface SessionFailure {
  /** `logged_out`: Monzo ended the login; `unavailable`: try again later. */
  readonly kind: "logged_out" | "unavailable";
  readonly message: string;
}

/** The life of logins: code exchange, refresh before expiry, learning the user id. */
export interface Sessions {
  /** Trades an OAuth code for tokens and stores them; the value is the user id. */
  logIn(code: string): Promise<Result<string, string>>;
  /** The login under `key` with a token that is good for a while, refreshed if needed or forced. */
  fresh(key: string, options?: { force?: boolean }): Promise<Result<StoredLogin, SessionFailure>>;
  /** Why the last refresh of `key` failed while its token still works, or null. */
  refreshProblem(key: string): string | null;
  /** Asks Monzo whose login `key` is and stores it under that user id. */
  identify(key: string, signal?: AbortSignal): Promise<Result<StoredLogin, MonzoFailure>>;
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
  const refreshing = new Map<string, Promise<Result<StoredLogin, SessionFailure>>>();
  const refreshProblems = new Map<string, string>();

  function loginFrom(grant: TokenResponse): StoredLogin {
    return {
      userId: grant.user_id,
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token ?? null,
      expiresAt: clock.now() + grant.expires_in * 1000,
    };
  }

  // No abort signal here: once Monzo has the refresh token, the answer must be stored.
  async function refresh(key: string, login: StoredLogin) {
    const who = login.userId ?? "the stored login";
    if (!login.refreshToken) {
      if (login.expiresAt > clock.now()) return ok(login);
      const message = `The login of ${who} has expired and Monzo gave no refresh token ` +
        `(is the OAuth client confidential?): log in again at ${loginLink(config)}`;
      await store.logOut(key, message);
      return err({ kind: "logged_out" as const, message });
    }
    const answer = await client.token(refreshGrant(config, login.refreshToken));
    if (answer.ok) {
      // Monzo has already revoked the old pair: store the new one before anything uses it.
      const renewed = loginFrom(answer.value);
      refreshProblems.delete(key);
      await store.save(renewed, key);
      log.info(
        `Refreshed the tokens of ${renewed.userId}; they expire at ${new Date(renewed.expiresAt).toISOString()}`,
      );
      return ok(renewed);
    }
    const failure = answer.error;
    if (isDefiniteRejection(failure)) {
      const message = `Monzo refused to renew the login of ${who} (${failure.detail}): ` +
        `log in again at ${loginLink(config)}`;
      // The poller logs the message once, with the other problems of the poll.
      await store.logOut(key, message);
      return err({ kind: "logged_out" as const, message });
    }
    const advice = isClientRejection(failure)
      ? "check client_id and client_secret in the config"
      : "the stored tokens are kept and the refresh is retried at the next poll";
    const message = `Cannot refresh the login of ${who}: ${failure.detail}; ${advice}`;
    refreshProblems.set(key, message);
    if (login.expiresAt > clock.now()) return ok(login);
    return err({ kind: "unavailable" as const, message });
  }

  return {
    // No abort signal: once Monzo has issued the tokens (evicting the user's old ones) they must be stored.
    async logIn(code) {
      const answer = await client.token(codeGrant(config, code));
      if (!answer.ok) return err(answer.error.detail);
      const login = loginFrom(answer.value);
      const saved = await store.save(login);
      log.info(`Received new tokens for ${login.userId}` + (saved.ok ? "" : " (kept in memory only for now)"));
      return ok(login.userId ?? "");
    },

    fresh(key, { force = false } = {}) {
      const login = store.get(key);
      if (!login) {
        const message = `No login for ${key || "the stored user"}: log in at ${loginLink(config)}`;
        return Promise.resolve(err({ kind: "logged_out" as const, message }));
      }
      if (!force && login.expiresAt - clock.now() > REFRESH_MARGIN_MS) return Promise.resolve(ok(login));
      const running = refreshing.get(key);
      if (running) return running;
      const started = refresh(key, login).finally(() => refreshing.delete(key));
      refreshing.set(key, started);
      return started;
    },

    refreshProblem(key) {
      return store.get(key) ? refreshProblems.get(key) ?? null : null;
    },

    async identify(key, signal) {
      const login = store.get(key);
      if (!login) return err({ kind: "invalid_response", endpoint: "/ping/whoami", detail: "no such login" });
      const answer = await client.whoami(login.accessToken, signal);
      if (!answer.ok) return answer;
      const identified = { ...login, userId: answer.value.user_id };
      // The login may have been refreshed meanwhile; only fill in the id of the one asked about.
      if (store.get(key) === login) await store.save(identified, key);
      log.info(`The stored login belongs to ${identified.userId}`);
      return ok(store.get(loginKey(identified)) ?? identified);
    },
  };
}
