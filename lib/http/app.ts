import { Hono, type MiddlewareHandler } from "hono";
import { secureHeaders } from "hono/secure-headers";
import type { WebGate } from "./basic_auth.ts";
import type { Clock } from "../shared/clock.ts";
import type { Config } from "../config/config.ts";
import type { ExpositionAnswer, ExpositionSource } from "../exposition/exposition.ts";
import type { Logger } from "../shared/log.ts";
import type { LoginStates } from "../logins/login_states.ts";
import { authorizeUrl, loginLink } from "../monzo/oauth.ts";
import { HTML_HEADERS, landingPage, messagePage, type PageContext } from "./pages.ts";
import { acceptsGzip, preferredFormat } from "../exposition/negotiation.ts";
import { problem } from "../shared/problems.ts";
import { createAttemptLimiter, createLogThrottle } from "./rate_limit.ts";
import { constantTimeEqual } from "../shared/secrets.ts";
import type { Sessions } from "../logins/sessions.ts";
import { isHealthy, type Snapshot } from "../exposition/snapshot.ts";
import { errorMessage } from "../shared/error_message.ts";

/** The paths that serve the exposition: the standard one and the original exporter's two. */
const METRICS_PATHS: readonly string[] = ["/metrics", "/stats", "/monzo"];

/** Wrong `/authorize` keys taken per window before every attempt is refused until it ends. */
export const AUTHORIZE_ATTEMPTS = 10;
/** The window of {@link AUTHORIZE_ATTEMPTS}, and of the summary lines that log a flood of them. */
export const AUTHORIZE_WINDOW_MS = 60_000;

/**
 * Headers on every answer, `/metrics` included: no sniffing, no referrer, no framing; hono's other
 * defaults are off (HSTS belongs to the web config, and the rest mean nothing to a scraper or these pages).
 */
const SECURITY_HEADERS: MiddlewareHandler = secureHeaders({
  xContentTypeOptions: true,
  referrerPolicy: true,
  xFrameOptions: "DENY",
  crossOriginEmbedderPolicy: false,
  crossOriginResourcePolicy: false,
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  strictTransportSecurity: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
});

/**
 * A Host header as RFC 9112 §3.2 allows it: a host name, IPv4 address or bracketed IPv6 literal, and
 * an optional port. Anything else (a slash, `?`, `#`, a backslash, `@`, a bare `%`, a space) is answered 400
 * as that section asks; this is not what keeps a route guarded (the guard reads no path), but it keeps
 * the path the router reads equal to the request's own.
 */
const HOST_HEADER = /^(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::[0-9]*)?$/;

/**
 * Answers a HEAD request with the GET's status and headers, Content-Length included. Hono answers HEAD
 * by routing it as a GET and dropping the body, and for an empty body Deno would send
 * `Content-Length: 0`, which a HEAD answer must not say unless the GET body is empty too (RFC 9110 §8.6).
 */
const HEAD_LENGTH: MiddlewareHandler = async (c, next) => {
  await next();
  if (c.req.method !== "HEAD" || c.res.body === null || c.res.headers.has("content-length")) return;
  // Hono then sends these headers with no body.
  c.res.headers.set("content-length", String((await c.res.clone().arrayBuffer()).byteLength));
};

/** Dependencies of {@link createApp}. */
export interface AppOptions {
  readonly config: Pick<
    Config,
    "authKey" | "authUrl" | "clientId" | "clientSecret" | "callbackUrl" | "publicUrl" | "pollIntervalMinutes"
  >;
  readonly snapshot: Snapshot;
  /** The exposition of the current snapshot in each format, gzipped or not, made once per change. */
  readonly exposition: ExpositionSource;
  readonly states: LoginStates;
  readonly sessions: Sessions;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called after a successful login, to poll at once. */
  readonly onLogin: () => void;
  readonly version: string;
  readonly demo: boolean;
  /** The web config's basic auth and headers; none without `--web.config.file`. */
  readonly gate?: WebGate;
}

/** The answer to a scrape. */
function toResponse(answer: ExpositionAnswer): Response {
  return new Response(answer.body, { headers: answer.headers });
}

/** Builds the exporter's HTTP routes: landing page, metrics, login, health. */
export function createApp(options: AppOptions): Hono {
  const { config, snapshot, states, sessions, clock, log } = options;
  const context: PageContext = {
    version: options.version,
    demo: options.demo,
    loginLink: loginLink(config),
    demoLoginUrl: options.demo ? `/authorize?key=${encodeURIComponent(config.authKey)}` : undefined,
    webConfigProblem: options.gate?.problem,
  };
  const page = (
    status: 200 | 400 | 401 | 404 | 429 | 500 | 502,
    title: string,
    sentences: string[],
    headers: Record<string, string> = {},
  ) =>
    new Response(messagePage(title, sentences, context).toString(), {
      status,
      headers: { "content-type": "text/html; charset=utf-8", ...HTML_HEADERS, ...headers },
    });
  const attempts = createAttemptLimiter({ clock, limit: AUTHORIZE_ATTEMPTS, windowMs: AUTHORIZE_WINDOW_MS });
  const refusals = createLogThrottle({ clock, windowMs: AUTHORIZE_WINDOW_MS });
  const app = new Hono();
  const failed = (error: unknown) => {
    // One line for the operator; the stack only when asked for (--log.level debug).
    log.error(`A request failed: ${errorMessage(error)}`);
    if (error instanceof Error && error.stack) log.debug?.(`The failed request's stack: ${error.stack}`);
    return page(500, "Something went wrong", ["The exporter could not answer this request; see its log."]);
  };
  app.onError(failed);

  // Everything below is middleware and routes of this one app, in the order they run: the router is
  // the one reader of the request's path, and `app.fetch` is hono's own.
  // The web config's headers go on last, so a configured X-Frame-Options replaces the built-in DENY.
  if (options.gate) app.use(options.gate.headers);
  app.use(SECURITY_HEADERS);
  app.use(async (c, next) => {
    try {
      await next();
    } catch (error) {
      // Hono's onError takes only Error objects; anything else thrown is answered the same way here.
      c.res = failed(error);
    }
  });
  app.use(HEAD_LENGTH);
  app.use(async (c, next) => {
    // No Host header (HTTP/2's :authority, `app.request`): nothing to check, and the guard needs none.
    const host = c.req.header("host");
    if (host !== undefined && !HOST_HEADER.test(host)) {
      return page(400, "Bad request", ["The request's Host header is not a host name."]);
    }
    await next();
  });
  // Registered before the guard, so it answers without credentials: liveness probes cannot send them.
  app.get("/healthz", () => new Response("ok\n", { headers: { "content-type": "text/plain" } }));
  // Every route registered after this is guarded: the router picked the route, the guard reads no path.
  if (options.gate) app.use(options.gate.guard);

  const scrape = (request: Request) => {
    const headers = request.headers;
    const answer = options.exposition(
      preferredFormat(headers.get("accept")),
      acceptsGzip(headers.get("accept-encoding")),
    );
    return answer instanceof Promise ? answer.then(toResponse) : toResponse(answer);
  };
  for (const path of METRICS_PATHS) app.get(path, (c) => scrape(c.req.raw));

  app.get("/", () =>
    new Response(landingPage(snapshot.state, context, clock.now()).toString(), {
      headers: { "content-type": "text/html; charset=utf-8", ...HTML_HEADERS },
    }));

  app.get("/authorize", async (c) => {
    // Refused before the key is even compared, for everyone: guessing cannot go faster than this.
    const waitMs = attempts.retryAfterMs();
    if (waitMs > 0) {
      refusals.note(log.warn, "Refused a login attempt: too many wrong keys, /authorize is paused");
      return page(429, "Too many wrong keys", [
        `Too many wrong keys were tried on this exporter; try again in ${Math.ceil(waitMs / 1000)} s.`,
      ], { "retry-after": String(Math.ceil(waitMs / 1000)) });
    }
    const key = c.req.query("key") ?? "";
    if (!(await constantTimeEqual(key, config.authKey))) {
      attempts.fail();
      refusals.note(log.warn, "Refused a login attempt with a wrong or missing key");
      return page(401, "Wrong or missing key", [
        "This link needs the auth_key from the exporter's config: open /authorize?key=YOUR_AUTH_KEY " +
        "with your own key in place of YOUR_AUTH_KEY.",
      ]);
    }
    return new Response(null, {
      status: 302,
      headers: { location: authorizeUrl(config, states.issue()), "cache-control": "no-store" },
    });
  });

  app.get("/callback", async (c) => {
    const { code, state, error } = c.req.query();
    if (!state || !states.consume(state)) {
      return page(400, "This login link is not valid", [
        "The login link is unknown, has expired (after 10 minutes) or was used already, so nothing was done.",
        "Start again from /authorize?key=YOUR_AUTH_KEY on this exporter.",
      ]);
    }
    if (error || !code) {
      return page(400, "Monzo did not log you in", [
        `Monzo sent you back without a login${error ? ` (${error})` : ""}.`,
        "Start again from /authorize?key=YOUR_AUTH_KEY on this exporter.",
      ]);
    }
    // No request signal: it aborts after every response in Deno (with a warning on stderr), and once
    // Monzo has issued tokens for the code they must be stored even if the browser went away.
    const loggedIn = await sessions.logIn(code);
    if (!loggedIn.ok) {
      log.error(`The login could not be completed: ${loggedIn.error}`);
      return page(502, "The login could not be completed", [
        `Monzo did not accept the login: ${loggedIn.error}.`,
        "Check client_id, client_secret and redirect_uri in the config, then start again from " +
        "/authorize?key=YOUR_AUTH_KEY.",
      ]);
    }
    options.onLogin();
    const { userId, written } = loggedIn.value;
    // Said here and not only in the log: the person who can fix the file is looking at this page.
    const unsaved = written.ok ? [] : [problem("tokens_unwritable", "", { detail: written.error }).message + "."];
    return page(200, written.ok ? "Logged in: now approve in the Monzo app" : "Logged in, but the login is not saved", [
      ...unsaved,
      `The exporter now holds a login for Monzo user ${userId}.`,
      "Open the Monzo app on your phone and allow access for this exporter when it asks (a notification, " +
      "then your PIN or fingerprint). Until then Monzo shares no data.",
      `After that the exporter reads your accounts every ${every(config.pollIntervalMinutes)} by itself; ` +
      "the status page shows when data arrives.",
    ]);
  });

  app.get("/readyz", () => {
    const state = snapshot.state;
    const loggedIn = state.logins.some((login) => login.loggedIn);
    const ready = loggedIn && isHealthy(state);
    const problems = state.lastPoll?.problems.map((p) => p.message) ?? ["no poll has finished yet"];
    const reason = ready ? "ready" : !loggedIn ? "no Monzo login" : problems.join("; ");
    return new Response(`${reason}\n`, { status: ready ? 200 : 503, headers: { "content-type": "text/plain" } });
  });

  // Read from the router itself, so the list cannot drift from what is served.
  const served = [...new Set(app.routes.filter((route) => route.method === "GET").map((route) => route.path))];
  app.notFound(() => page(404, "Not found", [`This exporter serves ${list(served)}.`]));
  return app;
}

function every(minutes: number): string {
  return minutes === 1 ? "minute" : `${minutes} minutes`;
}

function list(items: readonly string[]): string {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}
