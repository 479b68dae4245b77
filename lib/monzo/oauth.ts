import type { Config } from "../config/config.ts";
import type { MonzoFailure } from "./monzo_client.ts";

/** The config keys the OAuth flow needs. */
export type OAuthConfig = Pick<Config, "authUrl" | "clientId" | "clientSecret" | "callbackUrl" | "publicUrl">;

/** The Monzo login page URL for a fresh `state`. */
export function authorizeUrl(config: OAuthConfig, state: string): string {
  const query = new URLSearchParams({
    client_id: config.clientId,
    redirect_uri: config.callbackUrl,
    response_type: "code",
    state,
  });
  return `${config.authUrl}/?${query}`;
}

/** The `/authorize` link to show people, with a placeholder where the secret key goes. */
export function loginLink(config: Pick<Config, "publicUrl">): string {
  return `${config.publicUrl}/authorize?key=YOUR_AUTH_KEY`;
}

/** The form that trades an authorization code for tokens. */
export function codeGrant(config: OAuthConfig, code: string): Record<string, string> {
  return {
    grant_type: "authorization_code",
    client_id: config.clientId,
    client_secret: config.clientSecret,
    redirect_uri: config.callbackUrl,
    code,
  };
}

/** The form that trades a refresh token for a new token pair. */
export function refreshGrant(config: OAuthConfig, refreshToken: string): Record<string, string> {
  return {
    grant_type: "refresh_token",
    client_id: config.clientId,
    client_secret: config.clientSecret,
    refresh_token: refreshToken,
  };
}

/** True when Monzo rejected the client id or secret: a config problem, not a dead login. */
export function isClientRejection(failure: MonzoFailure): boolean {
  const words = `${failure.oauthError ?? ""} ${failure.code ?? ""}`;
  return failure.kind === "http" && /invalid_client|bad_client|client_credentials/.test(words);
}

/**
 * True when Monzo definitely refused a refresh token, so the login is over: a 400 or 401 whose body
 * is an OAuth refusal of the grant. A 401 without one (a proxy's HTML page, an outage) is not:
 * ending a login is the one thing that cannot be undone, so it needs Monzo's own words.
 */
export function isDefiniteRejection(failure: MonzoFailure): boolean {
  if (failure.kind !== "http" || isClientRejection(failure)) return false;
  if (failure.status !== 400 && failure.status !== 401) return false;
  return failure.oauthError === "invalid_grant" ||
    /(^|\.)(invalid_grant|bad_refresh_token)(\.|$)/.test(failure.code ?? "");
}
