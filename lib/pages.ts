import { accountStatus, isHealthy, type SnapshotState } from "./snapshot.ts";

/** Headers for every HTML page: no caching, no referrer (URLs may carry a code), no framing or scripts. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

/** What a page shows besides the snapshot. */
export interface PageContext {
  readonly version: string;
  readonly demo: boolean;
  /** The `/authorize` link with a placeholder for the key. */
  readonly loginLink: string;
  /** Shown only in demo mode, where the login key is not a secret. */
  readonly demoLoginUrl?: string;
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#112;
line-height:1.45}h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:1.6rem}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #dde}.ok{color:#176b2c}.bad{color:#a31818}
.wait{color:#8a5a00}.demo{background:#fff3c4;border:1px solid #e0c060;padding:.5rem .8rem;border-radius:.4rem}
code{background:#f1f1f6;padding:.1rem .3rem;border-radius:.2rem;word-break:break-all}footer{margin-top:2rem;color:#667}`;

function layout(title: string, body: string, context: Pick<PageContext, "version" | "demo">): string {
  const banner = context.demo
    ? `<p class="demo" id="demo-banner"><strong>Demo mode:</strong> these figures come from a simulated Monzo, ` +
      `not a bank.</p>`
    : "";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escapeHtml(title)} · monzo-exporter</title><style>${STYLE}</style></head><body>` +
    `${banner}<h1>${escapeHtml(title)}</h1>${body}` +
    `<footer>monzo-exporter ${escapeHtml(context.version)}${context.demo ? " (demo)" : ""} · ` +
    `<a href="/">status</a> · <a href="/metrics">metrics</a></footer></body></html>`;
}

function time(ms: number | null): string {
  return ms === null ? "never" : new Date(ms).toISOString().replace(".000Z", "Z");
}

/** The landing page: logins, last poll, problems and what to do; never balances or secrets. */
export function landingPage(state: SnapshotState, context: PageContext, now: number): string {
  const poll = state.lastPoll;
  const healthy = isHealthy(state);
  const overall = poll === null
    ? `<p id="overall" class="wait">Waiting for the first poll of Monzo.</p>`
    : healthy
    ? `<p id="overall" class="ok">The last poll succeeded.</p>`
    : `<p id="overall" class="bad">The last poll had problems; the metrics keep the last good values.</p>`;
  const problems = poll && poll.problems.length > 0
    ? `<h2>Problems</h2><ul id="problems">${
      poll.problems.map((p) => `<li>${escapeHtml(p.message)}</li>`).join("")
    }</ul>`
    : "";
  const backoff = state.backoffUntil !== null && state.backoffUntil > now
    ? `<p class="wait">Polling is paused until ${time(state.backoffUntil)} because Monzo asked to slow down.</p>`
    : "";
  const rows = state.logins.map((login) => {
    const user = login.userId ?? "(user id not known yet)";
    const status = state.users.get(login.userId ?? "");
    let cell: string;
    if (!login.loggedIn) cell = `<span class="bad">logged out</span>: ${escapeHtml(login.reason)}`;
    else if (status?.status === "awaiting_approval") {
      cell = `<span class="wait">waiting for approval in the Monzo app</span>`;
    } else if (status && status.status !== "ok") {
      cell = `<span class="bad">${escapeHtml(status.problem.message)}</span>`;
    } else if (status?.status === "ok") cell = `<span class="ok">logged in, polling</span>`;
    else cell = `<span class="wait">logged in, not polled yet</span>`;
    const expiry = login.loggedIn ? time(login.expiresAt) : "—";
    return `<tr><td><code>${escapeHtml(user)}</code></td><td>${cell}</td><td>${expiry}</td></tr>`;
  }).join("");
  const logins = state.logins.length > 0
    ? `<table id="logins"><tr><th>Monzo user</th><th>Status</th><th>Token expires</th></tr>${rows}</table>`
    : `<p id="logins">Nobody is logged in yet.</p>`;
  const loginsError = state.loginsError ? `<p class="bad">${escapeHtml(state.loginsError)}</p>` : "";
  const accounts = state.accounts.length > 0 ? accountsTable(state) : "";
  const demoLogin = context.demoLoginUrl
    ? `<p>In demo mode you can try the login too: <a id="demo-login" href="${escapeHtml(context.demoLoginUrl)}">` +
      `log in to the simulated Monzo</a>.</p>`
    : "";
  const body = overall + problems + backoff +
    `<p>Last poll: ${time(poll?.startedAt ?? null)}` +
    (poll ? ` (took ${poll.durationSeconds.toFixed(2)} s)` : "") +
    `. Last successful poll: ${time(state.lastSuccessAt)}.</p>` +
    `<h2>Logins</h2>${loginsError}${logins}` +
    `<p>To log in, or to add another member of the household, open <code>${escapeHtml(context.loginLink)}</code> ` +
    `with your <code>auth_key</code> in place of <code>YOUR_AUTH_KEY</code>, then approve the access in the ` +
    `Monzo app.</p>${demoLogin}${accounts}` +
    `<h2>Metrics</h2><p><a href="/metrics">/metrics</a> serves the values of the last poll for Prometheus ` +
    `(also at <a href="/stats">/stats</a> and <a href="/monzo">/monzo</a>, the original exporter's paths).</p>`;
  return layout("Monzo exporter", body, context);
}

const ACCOUNT_KINDS: Readonly<Record<string, string>> = {
  uk_retail: "Current account",
  uk_retail_joint: "Joint account",
  uk_monzo_flex: "Monzo Flex",
  uk_rewards: "Rewards",
  uk_business: "Business account",
  uk_loan: "Loan",
  uk_prepaid: "Prepaid",
};

// Which accounts are exported and whether the last poll could read them; figures stay in /metrics.
function accountsTable(state: SnapshotState): string {
  const rows = state.accounts.map((account) => {
    const { error, readAt: read } = accountStatus(state, account.id);
    const status = error ? `<span class="bad">not read: ${escapeHtml(error)}</span>` : `<span class="ok">read</span>`;
    return `<tr><td>${escapeHtml(ACCOUNT_KINDS[account.type] ?? account.type)}<br><code>${escapeHtml(account.id)}` +
      `</code></td><td>${escapeHtml(account.owners.join(", "))}</td><td>${status}</td><td>${time(read)}</td></tr>`;
  }).join("");
  return `<h2>Accounts</h2><table id="accounts"><tr><th>Account</th><th>Owners</th><th>Last poll</th>` +
    `<th>Last read</th></tr>${rows}</table>`;
}

/** A short page for a person who followed a link: a title and a few sentences. */
export function messagePage(
  title: string,
  sentences: readonly string[],
  context: Pick<PageContext, "version" | "demo">,
): string {
  return layout(title, sentences.map((s) => `<p>${escapeHtml(s)}</p>`).join(""), context);
}
