import { type Context, Hono } from "hono";
import type { Result } from "../shared/result.ts";
import { err, ok } from "../shared/result.ts";
import { constantTimeEqual } from "../shared/secrets.ts";
import {
  accountsBody,
  balanceBody,
  insufficientPermissions,
  invalidGrant,
  json,
  missingParam,
  potsBody,
  tokenBody,
} from "./bodies.ts";
import type { FakeAccount, FakeData } from "./data.ts";
import type { Drift } from "./drift.ts";
import type { Grant, Grants } from "./grants.ts";
import { allowOnly, bearer, type Env } from "./http.ts";
import type { Ledger } from "./ledger.ts";

/** What {@link apiRoutes} serves from. */
export interface ApiOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly data: FakeData;
  readonly grants: Grants;
  /** Access token lifetime, sent as `expires_in`. */
  readonly expiresInSeconds: number;
  /** Whether a token from a code exchange is approved at once, skipping the SCA step. */
  readonly autoApprove: boolean;
  /** Moves amounts on each read, or null to keep them as the data says. */
  readonly drift: Drift | null;
  /** The accounts' transactions. */
  readonly ledger: Ledger;
}

/** The fake's JSON API (api.monzo.com): the token endpoint and the data calls the exporter makes. */
export function apiRoutes(options: ApiOptions): Hono<Env> {
  const { clientId, data, grants, drift, ledger } = options;
  const app = new Hono<Env>();

  app.post("/oauth2/token", async (c) => {
    const form = new URLSearchParams(await c.req.text());
    const clientOk = await constantTimeEqual(form.get("client_id") ?? "", clientId) &&
      await constantTimeEqual(form.get("client_secret") ?? "", options.clientSecret);
    if (!clientOk) return json(401, { error: "invalid_client", error_description: "Client authentication failed" });
    const grantType = form.get("grant_type");
    let grant: Grant;
    if (grantType === "authorization_code") {
      const redeemed = grants.redeemCode(form.get("code") ?? "", form.get("redirect_uri"));
      if (!redeemed.ok) return json(400, invalidGrant(redeemed.error));
      grant = grants.issueGrant(redeemed.value, options.autoApprove);
    } else if (grantType === "refresh_token") {
      const refreshed = grants.refresh(form.get("refresh_token") ?? "");
      if (!refreshed) return json(401, invalidGrant("Could not refresh access token: the refresh token is not valid"));
      grant = refreshed;
    } else {
      return json(400, {
        error: "unsupported_grant_type",
        error_description: `grant_type ${JSON.stringify(grantType ?? "")} is not supported`,
      });
    }
    c.get("record").userId = grant.userId;
    return json(200, tokenBody(grant, clientId, options.expiresInSeconds));
  });

  /** The grant behind the request's token, noting its user in the request log even when it is refused. */
  function authenticate(c: Context<Env>, needsApproval: boolean): Result<Grant, Response> {
    const token = bearer(c.req.header("authorization"));
    c.get("record").userId = grants.ownerOf(token);
    return grants.authenticate(token, needsApproval);
  }

  /** The account named by query parameter `param` if the grant's user may see it, or the error answer. */
  function visibleAccount(c: Context<Env>, param: string, grant: Grant): Result<FakeAccount, Response> {
    const accountId = c.req.query(param);
    if (!accountId) return err(json(400, missingParam(param)));
    const account = data.accounts.find((a) => a.id === accountId && a.owners.includes(grant.userId));
    return account ? ok(account) : err(json(403, insufficientPermissions(grant.userId)));
  }

  /** {@link visibleAccount} by `account_id`, refused like Monzo when it is a Flex backing loan (no money of its own). */
  function moneyAccount(c: Context<Env>, grant: Grant): Result<FakeAccount, Response> {
    const account = visibleAccount(c, "account_id", grant);
    if (account.ok && account.value.type === "uk_monzo_flex_backing_loan") {
      return err(json(403, insufficientPermissions(grant.userId)));
    }
    return account;
  }

  app.get("/ping/whoami", (c) => {
    const grant = authenticate(c, false);
    if (!grant.ok) return grant.error;
    return json(200, { authenticated: true, client_id: clientId, user_id: grant.value.userId });
  });

  app.get("/accounts", (c) => {
    const grant = authenticate(c, true);
    if (!grant.ok) return grant.error;
    return json(200, accountsBody(data, grant.value.userId, c.req.query("account_type") ?? null));
  });

  app.get("/balance", (c) => {
    const grant = authenticate(c, true);
    if (!grant.ok) return grant.error;
    const account = moneyAccount(c, grant.value);
    if (!account.ok) return account.error;
    drift?.balance(account.value);
    return json(200, balanceBody(account.value));
  });

  app.get("/pots", (c) => {
    const grant = authenticate(c, true);
    if (!grant.ok) return grant.error;
    const account = visibleAccount(c, "current_account_id", grant.value);
    if (!account.ok) return account.error;
    drift?.pots(account.value);
    return json(200, potsBody(account.value));
  });

  app.get("/transactions", (c) => {
    const grant = authenticate(c, true);
    if (!grant.ok) return grant.error;
    const account = moneyAccount(c, grant.value);
    if (!account.ok) return account.error;
    drift?.transactions(account.value);
    const page = ledger.page(account.value, new URL(c.req.url).searchParams, grants.fullHistoryOpen(grant.value));
    return page.ok ? json(200, page.value) : page.error;
  });

  allowOnly(app, "POST", "/oauth2/token");
  allowOnly(app, "GET", "/ping/whoami", "/accounts", "/balance", "/pots", "/transactions");
  return app;
}
