import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import { isoTime, type Problem } from "../shared/problems.ts";
import { accountStatus, isHealthy, type SnapshotState } from "../exposition/snapshot.ts";

/**
 * Every page is written with hono's `html` tag, which escapes each interpolated value unless it is
 * itself `html`: text from Monzo, the browser or the config cannot become markup.
 */
export type Html = HtmlEscapedString;

/** `html` for parts that interpolate nothing asynchronous, which is every part here. */
function h(strings: TemplateStringsArray, ...values: unknown[]): Html {
  const out = html(strings, ...values);
  // Only a Promise among the values makes a Promise; none of the callers passes one.
  if (out instanceof Promise) throw new TypeError("A page part was asynchronous");
  return out;
}

/** Headers for HTML pages only: no caching (URLs may carry a code), no scripts, no framing. */
export const HTML_HEADERS: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** What a page shows besides the snapshot. */
export interface PageContext {
  readonly version: string;
  readonly demo: boolean;
  /** The `/authorize` link with a placeholder for the key. */
  readonly loginLink: string;
  /** Shown only in demo mode, where the login key is not a secret. */
  readonly demoLoginUrl?: string;
  /** Why the web config file on disk is not in force (the last valid one is), or null. */
  readonly webConfigProblem?: () => Problem | null;
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#112;
line-height:1.45}h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:1.6rem}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #dde}.ok{color:#176b2c}.bad{color:#a31818}
.wait{color:#8a5a00}.demo{background:#fff3c4;border:1px solid #e0c060;padding:.5rem .8rem;border-radius:.4rem}
code{background:#f1f1f6;padding:.1rem .3rem;border-radius:.2rem;word-break:break-all}footer{margin-top:2rem;color:#667}`;

function layout(title: string, body: Html, context: Pick<PageContext, "version" | "demo">): Html {
  const banner = context.demo
    ? h`<p class="demo" id="demo-banner"><strong>Demo mode:</strong> these figures come from a simulated Monzo, not a bank.</p>`
    : "";
  return h`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title} · monzo-exporter</title><style>${
    raw(STYLE)
  }</style></head><body>${banner}<h1>${title}</h1>${body}<footer>monzo-exporter ${context.version}${
    context.demo ? " (demo)" : ""
  } · <a href="/">status</a> · <a href="/metrics">metrics</a></footer></body></html>`;
}

/** A time as shown on pages; total: a time far out of range is shown as such, not thrown. */
function time(ms: number | null): string {
  return ms === null ? "never" : isoTime(ms).replace(".000Z", "Z");
}

/** The sentence of a problem; the one line to change when problems become values (`problem.message`). */
function problemText(problem: Problem): string {
  return problem.message;
}

function loginCell(state: SnapshotState, login: SnapshotState["logins"][number]): Html {
  if (!login.loggedIn) return h`<span class="bad">logged out</span>: ${login.reason}`;
  const status = state.users.get(login.userId ?? "");
  if (status?.status === "awaiting_approval") {
    return h`<span class="wait">waiting for approval in the Monzo app</span>`;
  }
  if (status && status.status !== "ok") return h`<span class="bad">${status.problem.message}</span>`;
  if (status?.status === "ok") return h`<span class="ok">logged in, polling</span>`;
  return h`<span class="wait">logged in, not polled yet</span>`;
}

/** The landing page: logins, last poll, problems and what to do; never balances or secrets. */
export function landingPage(state: SnapshotState, context: PageContext, now: number): Html {
  const poll = state.lastPoll;
  const healthy = isHealthy(state);
  const overall = poll === null
    ? h`<p id="overall" class="wait">Waiting for the first poll of Monzo.</p>`
    : healthy
    ? h`<p id="overall" class="ok">The last poll succeeded.</p>`
    : h`<p id="overall" class="bad">The last poll had problems; the metrics keep the last good values.</p>`;
  const problems = poll && poll.problems.length > 0
    ? h`<h2>Problems</h2><ul id="problems">${poll.problems.map((p) => h`<li>${problemText(p)}</li>`)}</ul>`
    : "";
  const backoff = state.backoffUntil !== null && state.backoffUntil > now
    ? h`<p class="wait">Polling is paused until ${time(state.backoffUntil)} because Monzo asked to slow down.</p>`
    : "";
  const rows = state.logins.map((login) =>
    h`<tr><td><code>${login.userId ?? "(user id not known yet)"}</code></td><td>${loginCell(state, login)}</td><td>${
      login.loggedIn ? time(login.expiresAt) : "—"
    }</td></tr>`
  );
  const logins = state.logins.length > 0
    ? h`<table id="logins"><tr><th>Monzo user</th><th>Status</th><th>Token expires</th></tr>${rows}</table>`
    : h`<p id="logins">Nobody is logged in yet.</p>`;
  const loginsError = state.loginsError ? h`<p class="bad">${state.loginsError}</p>` : "";
  const webConfig = context.webConfigProblem?.();
  const accounts = state.accounts.length > 0 ? accountsTable(state) : "";
  const demoLogin = context.demoLoginUrl
    ? h`<p>In demo mode you can try the login too: <a id="demo-login" href="${context.demoLoginUrl}">log in to the simulated Monzo</a>.</p>`
    : "";
  const took = poll ? ` (took ${poll.durationSeconds.toFixed(2)} s)` : "";
  const body = h`${overall}${problems}${backoff}${
    webConfig ? h`<p id="web-config" class="bad">${problemText(webConfig)}; the last valid one is in force.</p>` : ""
  }<p>Last poll: ${time(poll?.startedAt ?? null)}${took}. Last successful poll: ${
    time(state.lastSuccessAt)
  }.</p><h2>Logins</h2>${loginsError}${logins}<p>To log in, or to add another member of the household, open <code>${context.loginLink}</code> with your <code>auth_key</code> in place of <code>YOUR_AUTH_KEY</code>, then approve the access in the Monzo app.</p>${demoLogin}${accounts}<h2>Metrics</h2><p><a href="/metrics">/metrics</a> serves the values of the last poll for Prometheus (also at <a href="/stats">/stats</a> and <a href="/monzo">/monzo</a>, the original exporter's paths).</p>`;
  return layout("Monzo exporter", body, context);
}

/** Readable names of Monzo's account types; a Map, so that a type such as `__proto__` is just unknown. */
const ACCOUNT_KINDS: ReadonlyMap<string, string> = new Map([
  ["uk_retail", "Current account"],
  ["uk_retail_joint", "Joint account"],
  ["uk_monzo_flex", "Monzo Flex"],
  ["uk_rewards", "Rewards"],
  ["uk_business", "Business account"],
  ["uk_loan", "Loan"],
  ["uk_prepaid", "Prepaid"],
]);

// Which accounts are exported and whether the last poll could read them; figures stay in /metrics.
function accountsTable(state: SnapshotState): Html {
  const rows = state.accounts.map((account) => {
    const { error, readAt: read, notes } = accountStatus(state, account.id);
    const status = error
      ? h`<span class="bad">not read: ${error}</span>`
      : h`<span class="ok">read</span>${notes.map((note) => h`<br>${note}`)}`;
    return h`<tr><td>${ACCOUNT_KINDS.get(account.type) ?? account.type}<br><code>${account.id}</code></td><td>${
      account.owners.join(", ")
    }</td><td>${status}</td><td>${time(read)}</td></tr>`;
  });
  // What a step says of the accounts as a whole (some left out), below the ones it speaks of.
  const notes = state.steps.flatMap((step) => step.notes ?? []).map((note) => h`<p class="wait">${note}</p>`);
  return h`<h2>Accounts</h2><table id="accounts"><tr><th>Account</th><th>Owners</th><th>Last poll</th><th>Last read</th></tr>${rows}</table>${notes}`;
}

/** A short page for a person who followed a link: a title and a few sentences. */
export function messagePage(
  title: string,
  sentences: readonly string[],
  context: Pick<PageContext, "version" | "demo">,
): Html {
  return layout(title, h`${sentences.map((s) => h`<p>${s}</p>`)}`, context);
}
