import type { Clock } from "../shared/clock.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { randomToken } from "../shared/secrets.ts";
import { badToken, insufficientPermissions, json } from "./bodies.ts";
import type { FakeData } from "./data.ts";

/** A token pair issued to a user, and what has happened to it since. */
export interface Grant {
  readonly userId: string;
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly expiresAt: number;
  /** Whether the user approved this token in the app (SCA). */
  approved: boolean;
  /** `revoked`: rotated by a refresh, so Monzo no longer knows it as anyone's current token. */
  access: "active" | "evicted" | "revoked";
  refresh: "valid" | "used" | "revoked";
  /** Set by a test to expire the token before its time. */
  forcedExpiry: boolean;
  /**
   * Until when (ms) `/transactions` may reach back past 90 days; null while the login's window has not
   * started (it starts at approval when {@link GrantOptions.fullHistoryFrom} says so). A refresh
   * carries it over: only a new login opens a new window.
   */
  historyOpenUntil: number | null;
}

/** The token rules of {@link Grants}. */
export interface GrantOptions {
  /** Access token lifetime, sent as `expires_in`. */
  readonly expiresInSeconds: number;
  /** How long after a login `/transactions` may reach back past 90 days. */
  readonly fullHistoryMs: number;
  /** When that window starts: at the code exchange, or when the user approves in the app. */
  readonly fullHistoryFrom: "code_exchange" | "approval";
}

/** Where the browser goes back to once a magic link is opened. */
export interface MagicLink {
  readonly userId: string;
  readonly redirectUri: string;
  readonly state: string;
}

interface Expiring<T> {
  readonly value: T;
  readonly expiresAt: number;
}

// Authorization codes and magic links are short-lived at Monzo too.
const CODE_LIFETIME_MS = 10 * 60_000;

/** The OAuth state of the fake: codes, magic links and tokens, with Monzo's rules for each. */
export class Grants {
  readonly #data: FakeData;
  readonly #clock: Clock;
  readonly #options: GrantOptions;
  readonly #codes = new Map<string, Expiring<{ userId: string; redirectUri: string }>>();
  readonly #links = new Map<string, Expiring<MagicLink>>();
  readonly #byAccess = new Map<string, Grant>();
  readonly #byRefresh = new Map<string, Grant>();
  readonly #current = new Map<string, Grant>();

  /** Grants over the users of `data`, by the rules of `options`. */
  constructor(data: FakeData, clock: Clock, options: GrantOptions) {
    this.#data = data;
    this.#clock = clock;
    this.#options = options;
  }

  /** An authorization code for `userId`, good once for `redirectUri`; throws for an unknown user. */
  issueCode(userId: string, redirectUri: string): string {
    if (!this.#data.users.some((u) => u.id === userId)) throw new Error(`fake Monzo: unknown user ${userId}`);
    const code = randomToken();
    this.#codes.set(code, { value: { userId, redirectUri }, expiresAt: this.#clock.now() + CODE_LIFETIME_MS });
    return code;
  }

  /** The user a code was issued to; the code is gone after the first attempt, right or wrong. */
  redeemCode(code: string, redirectUri: string | null): Result<string> {
    const issued = this.#codes.get(code);
    this.#codes.delete(code);
    if (!issued || issued.expiresAt <= this.#clock.now()) {
      return err("Authorization code is invalid, expired or already used");
    }
    if (issued.value.redirectUri !== redirectUri) {
      return err("redirect_uri does not match the one the code was issued for");
    }
    return ok(issued.value.userId);
  }

  /** A single-use token for the simulated magic link email. */
  issueMagicLink(link: MagicLink): string {
    const token = randomToken();
    this.#links.set(token, { value: link, expiresAt: this.#clock.now() + CODE_LIFETIME_MS });
    return token;
  }

  /** The magic link behind `token`, once, or null if it was used or has expired. */
  openMagicLink(token: string): MagicLink | null {
    const link = this.#links.get(token);
    this.#links.delete(token);
    return link && link.expiresAt > this.#clock.now() ? link.value : null;
  }

  /** A new login's token pair, from a code exchange; it opens the full-history window (see {@link Grant}). */
  issueGrant(userId: string, approved: boolean): Grant {
    const opensNow = this.#options.fullHistoryFrom === "code_exchange" || approved;
    return this.#newGrant(userId, approved, opensNow ? this.#clock.now() + this.#options.fullHistoryMs : null);
  }

  /** The user approves `grant` in the app; under `fullHistoryFrom: "approval"` a first approval opens the window. */
  approve(grant: Grant): void {
    grant.approved = true;
    if (grant.historyOpenUntil === null) grant.historyOpenUntil = this.#clock.now() + this.#options.fullHistoryMs;
  }

  /** Whether `grant` may still read history older than 90 days. */
  fullHistoryOpen(grant: Grant): boolean {
    return grant.historyOpenUntil !== null && this.#clock.now() < grant.historyOpenUntil;
  }

  /** A new token pair; one active access token per user per client, so it evicts the previous one. */
  #newGrant(userId: string, approved: boolean, historyOpenUntil: number | null): Grant {
    const previous = this.#current.get(userId);
    if (previous?.access === "active") previous.access = "evicted";
    const grant: Grant = {
      userId,
      accessToken: randomToken() + randomToken(),
      refreshToken: randomToken() + randomToken(),
      expiresAt: this.#clock.now() + this.#options.expiresInSeconds * 1000,
      approved,
      access: "active",
      refresh: "valid",
      forcedExpiry: false,
      historyOpenUntil,
    };
    this.#byAccess.set(grant.accessToken, grant);
    this.#byRefresh.set(grant.refreshToken, grant);
    this.#current.set(userId, grant);
    return grant;
  }

  /** A new pair for a valid refresh token; rotation kills the old pair and carries the approval over. */
  refresh(refreshToken: string): Grant | null {
    const old = this.#byRefresh.get(refreshToken);
    if (!old || old.refresh !== "valid") return null;
    old.refresh = "used";
    old.access = "revoked";
    return this.#newGrant(old.userId, old.approved, old.historyOpenUntil);
  }

  /** The user an access token was issued to, whatever its state, for the request log. */
  ownerOf(accessToken: string | null): string | null {
    return this.#byAccess.get(accessToken ?? "")?.userId ?? null;
  }

  /** The grant behind a usable access token, or the answer Monzo gives for this one. */
  authenticate(accessToken: string | null, needsApproval: boolean): Result<Grant, Response> {
    const grant = this.#byAccess.get(accessToken ?? "");
    if (!grant || grant.access === "revoked") return err(json(401, badToken("unauthorized.bad_access_token")));
    if (grant.access === "evicted") return err(json(401, badToken("unauthorized.bad_access_token.evicted")));
    if (grant.forcedExpiry || grant.expiresAt <= this.#clock.now()) {
      return err(json(401, badToken("unauthorized.bad_access_token.expired")));
    }
    if (needsApproval && !grant.approved) return err(json(403, insufficientPermissions(grant.userId)));
    return ok(grant);
  }

  /** The pair issued last to `userId`, or undefined if none was. */
  current(userId: string): Grant | undefined {
    return this.#current.get(userId);
  }
}
