// deploy/grafana/monzo.json against the real program and a real Prometheus: the demo exporter runs as
// its own process, Prometheus scrapes it every second, and every panel's query (template variables
// substituted as Grafana would) must return data and name only metrics the exporter serves; and the
// History row's queries, asked of a Prometheus holding a backfill made by the real promtool, give the
// figures worked out from the transactions at times in the backfilled past.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Answer,
  londonMonthOf,
  londonMonthStart,
  queryAt,
  queryRange,
  startBackfilledPrometheus,
} from "./helpers/backfill_prometheus.ts";
import { type BackfillAccount, memorySource } from "../lib/backfill/source.ts";
import { writeOpenMetrics } from "../lib/backfill/openmetrics.ts";
import { MONZO_VIEW } from "../lib/spending/classify.ts";
import { backfillHelp } from "../lib/backfill/help.ts";
import type { StoredTransaction } from "../lib/monzo/transaction.ts";
import {
  ALICE_CURRENT,
  binaryExists,
  explainSkip,
  freePort,
  get,
  PROGRAM,
  PROMETHEUS,
  PROMTOOL,
  ROOT,
  spawn,
  startPrometheus,
  waitFor,
} from "./helpers/e2e.ts";
import { startDemo } from "../lib/run/demo.ts";
import { createExporter } from "../lib/run/exporter.ts";
import { memoryTokens } from "../lib/logins/token_file.ts";
import { AWKWARD_INSTANTS } from "./helpers/dates.ts";
import { TEST_HISTORY_DAYS, TestClock } from "./helpers/harness.ts";
import { storedTransaction } from "./helpers/stored.ts";

const hasPrometheus = binaryExists(PROMETHEUS);
if (!hasPrometheus) explainSkip(PROMETHEUS, "the dashboard's queries against a real Prometheus");

const FAKETIME = "/usr/bin/faketime";
// ld.so expands $LIB (lib/x86_64-linux-gnu and the like), as the faketime command's own setting does.
const LIBFAKETIME = "/usr/$LIB/faketime/libfaketime.so.1";
const hasFaketime = binaryExists(FAKETIME);
if (!hasFaketime) explainSkip(FAKETIME, "the demo program on a faked date (Debian's faketime)");

const DASHBOARD_PATH = join(ROOT, "deploy/grafana/monzo.json");
const JOB = "monzo";
const DATASOURCE_REF = "${datasource}";

interface Target {
  readonly expr: string;
  readonly refId: string;
  readonly datasource?: { type?: string; uid?: string };
}

interface GridPos {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

interface Panel {
  readonly type: string;
  readonly title: string;
  // Writable: the layout test moves a copy's panels to prove its check.
  id?: unknown;
  gridPos?: GridPos;
  readonly datasource?: { type?: string; uid?: string };
  readonly targets?: Target[];
  readonly panels?: Panel[];
}

interface Variable {
  readonly type: string;
  readonly name: string;
  readonly query: unknown;
  readonly datasource?: { type?: string; uid?: string };
  readonly current?: { value?: unknown };
}

interface Dashboard {
  readonly __inputs: Array<{ name: string; type: string; pluginId: string }>;
  readonly id: unknown;
  readonly uid: string;
  readonly version: unknown;
  readonly panels: Panel[];
  readonly templating: { list: Variable[] };
}

async function loadDashboard(): Promise<Dashboard> {
  return JSON.parse(await Deno.readTextFile(DASHBOARD_PATH));
}

/** Every panel that runs queries, rows' nested panels included. */
function queryPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]).filter((panel) => panel.type !== "row");
}

/** Substitutes `$name` and `${name}` (and `${name:format}`); an unknown variable throws, naming it. */
function substitute(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(
    /\$\{(\w+)(?::\w+)?\}|\$(\w+)/g,
    (whole, braced: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? "";
      const value = values[name];
      if (value === undefined) throw new Error(`unknown template variable ${whole} in ${expr}`);
      return value;
    },
  );
}

// Words in a PromQL expression that are neither metric names nor label names.
const PROMQL_WORDS = new Set([
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
]);
/** Series Prometheus makes itself, not the exporter. */
const PROMETHEUS_SERIES = new Set(["up"]);

/** The metric names a PromQL expression selects (label names, functions, strings and ranges left out). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings may hold anything
    .replace(/\{[^}]*\}/g, "") // label matchers
    .replace(/\[[^\]]*\]/g, "") // ranges
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ""); // label lists
  const names: string[] = [];
  for (const match of bare.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const isFunction = /^\s*\(/.test(bare.slice(match.index + match[0].length));
    if (!isFunction && !PROMQL_WORDS.has(match[0])) names.push(match[0]);
  }
  return names;
}

/** The families an exposition serves (from its TYPE lines). */
function families(exposition: string): Set<string> {
  return new Set([...exposition.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
}

/** Every metric name a panel or variable query uses that the exporter does not serve, as one line each naming the panel. */
function unknownMetrics(dashboard: Dashboard, served: Set<string>): string[] {
  const problems: string[] = [];
  const check = (where: string, expr: string) => {
    for (const name of metricNames(expr)) {
      if (!served.has(name) && !PROMETHEUS_SERIES.has(name)) problems.push(`${where}: ${name} is not served`);
    }
  };
  for (const panel of queryPanels(dashboard)) {
    for (const target of panel.targets ?? []) check(`panel "${panel.title}" query ${target.refId}`, target.expr);
  }
  for (const variable of dashboard.templating.list) {
    if (variable.type === "query") check(`variable $${variable.name}`, labelValues(variable).selector);
  }
  return problems;
}

/** The parts of a query variable's `label_values(selector, label)`; anything else throws. */
function labelValues(variable: Variable): { selector: string; label: string } {
  const match = variableQuery(variable).match(/^label_values\((.+), (\w+)\)$/);
  if (!match) throw new Error(`$${variable.name} is not label_values(selector, label)`);
  return { selector: match[1], label: match[2] };
}

function variableQuery(variable: Variable): string {
  const query = variable.query;
  if (typeof query === "string") return query;
  if (typeof query === "object" && query !== null && "query" in query && typeof query.query === "string") {
    return query.query;
  }
  throw new Error(`variable $${variable.name} has no query`);
}

interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/** An instant query against Prometheus' HTTP API; an error answer is an error naming the query. */
async function instant(prometheus: string, promql: string): Promise<Sample[]> {
  const answer = await get(`${prometheus}/api/v1/query?${new URLSearchParams({ query: promql })}`);
  const body = JSON.parse(answer.text);
  if (answer.status !== 200 || body.status !== "success") throw new Error(`${promql}: ${answer.text}`);
  return body.data.result;
}

/** Every panel query that fails or returns nothing under `values`, as one line each naming the panel. */
async function emptyPanels(
  dashboard: Dashboard,
  values: Readonly<Record<string, string>>,
  prometheus: string,
): Promise<string[]> {
  const problems: string[] = [];
  for (const panel of queryPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      const where = `panel "${panel.title}" query ${target.refId}`;
      try {
        const result = await instant(prometheus, substitute(target.expr, values));
        if (result.length === 0) problems.push(`${where} returned no data: ${substitute(target.expr, values)}`);
      } catch (error) {
        problems.push(`${where} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  return problems;
}

/** What Grafana substitutes, with `account` and `currency` as given (".*" is the dashboard's "All"). */
function grafanaValues(account: string, currency: string, job = JOB): Record<string, string> {
  return {
    datasource: "prometheus",
    job,
    account,
    currency,
    // The dashboard's default range is 30 days. $__rate_interval is what Grafana computes for Prometheus'
    // 1 s scrape here at a 1 minute step: never shorter than four scrapes, so rate() has two samples.
    __range: "30d",
    __interval: "1m",
    __rate_interval: "1m",
  };
}

Deno.test("the dashboard follows grafana.com conventions: __inputs, id null, a version, every query on the datasource variable", async () => {
  const dashboard = await loadDashboard();
  assert.deepEqual(
    dashboard.__inputs.map(({ name, type, pluginId }) => ({ name, type, pluginId })),
    [{ name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus" }],
  );
  assert.equal(dashboard.id, null);
  assert.ok(Number.isInteger(dashboard.version) && (dashboard.version as number) >= 1, "no version");
  assert.ok(dashboard.uid, "no uid");

  const variables = dashboard.templating.list;
  const datasource = variables.filter((variable) => variable.type === "datasource");
  assert.equal(datasource.length, 1, "one datasource variable");
  assert.equal(datasource[0].name, "datasource");
  assert.equal(datasource[0].query, "prometheus");
  // Imported, Grafana replaces ${DS_PROMETHEUS} with the chosen datasource; provisioned, the value
  // matches nothing and the variable falls back to the default Prometheus.
  assert.equal(datasource[0].current?.value, "${DS_PROMETHEUS}");
  for (const name of ["job", "account", "currency"]) {
    const variable = variables.find((v) => v.name === name);
    assert.ok(variable, `no $${name} variable`);
    assert.equal(variable.type, "query");
    assert.equal(variable.datasource?.uid, DATASOURCE_REF, `variable $${name} does not use $datasource`);
  }

  const panels = queryPanels(dashboard);
  assert.ok(panels.length >= 15, `only ${panels.length} panels`);
  for (const panel of panels) {
    assert.equal(panel.datasource?.uid, DATASOURCE_REF, `panel "${panel.title}" does not use $datasource`);
    assert.ok((panel.targets ?? []).length > 0, `panel "${panel.title}" has no query`);
    for (const target of panel.targets ?? []) {
      assert.equal(target.datasource?.uid, DATASOURCE_REF, `panel "${panel.title}" ${target.refId}: not $datasource`);
    }
  }
  // Nothing else names the input: a panel bound to it would break when provisioned by file.
  const text = await Deno.readTextFile(DASHBOARD_PATH);
  assert.equal(text.split("${DS_PROMETHEUS}").length - 1, 1, "${DS_PROMETHEUS} is used beyond the variable");
});

/** Every panel (rows and their nested panels included) with its id and place, as Grafana lays them out. */
function placedPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

/** What is wrong with the dashboard's layout, one line each: ids, places on the 24-column grid, overlaps. */
function layoutProblems(dashboard: Dashboard): string[] {
  const problems: string[] = [];
  const panels = placedPanels(dashboard);
  const ids = new Map<unknown, string>();
  for (const panel of panels) {
    if (!Number.isInteger(panel.id)) problems.push(`panel "${panel.title}" has no integer id`);
    else if (ids.has(panel.id)) problems.push(`panel "${panel.title}" has the id of "${ids.get(panel.id)}"`);
    else ids.set(panel.id, panel.title);
    const g = panel.gridPos;
    if (!g || ![g.x, g.y, g.w, g.h].every((n) => Number.isInteger(n) && n >= 0) || g.w === 0 || g.h === 0) {
      problems.push(`panel "${panel.title}" has no place: ${JSON.stringify(g)}`);
    } else if (g.x + g.w > 24) problems.push(`panel "${panel.title}" runs past the 24 columns`);
    else if (panel.type === "row" && (g.x !== 0 || g.w !== 24 || g.h !== 1)) {
      problems.push(`row "${panel.title}" is not one full-width line`);
    }
  }
  for (const [i, a] of panels.entries()) {
    for (const b of panels.slice(i + 1)) {
      const p = a.gridPos;
      const q = b.gridPos;
      if (p && q && p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h) {
        problems.push(`panels "${a.title}" and "${b.title}" overlap`);
      }
    }
  }
  return problems;
}

/** The title of the row a panel sits under: the last row at or above it. */
function rowOf(dashboard: Dashboard, title: string): string | undefined {
  const panels = placedPanels(dashboard);
  const panel = panels.find((p) => p.title === title);
  assert.ok(panel?.gridPos, `no panel "${title}"`);
  const y = panel.gridPos.y;
  return panels.filter((p) => p.type === "row" && p.gridPos && p.gridPos.y <= y)
    .sort((a, b) => (b.gridPos?.y ?? 0) - (a.gridPos?.y ?? 0))[0]?.title;
}

Deno.test("the dashboard's panels have unique ids and their own places on the 24-column grid, the Pace panels under the Pace row", async () => {
  const dashboard = await loadDashboard();
  assert.deepEqual(layoutProblems(dashboard), []);
  assert.equal(rowOf(dashboard, PROJECTED), "Pace");
  assert.equal(rowOf(dashboard, PER_DAY), "Pace");

  // The check catches a repeated id, a panel on top of another and one past the grid's edge.
  const broken = structuredClone(dashboard) as Dashboard & {
    panels: Array<Panel & { id?: unknown; gridPos?: GridPos }>;
  };
  const perDay = broken.panels.find((p) => p.title === PER_DAY);
  const projected = broken.panels.find((p) => p.title === PROJECTED);
  assert.ok(perDay?.gridPos && projected?.gridPos);
  perDay.id = projected.id;
  perDay.gridPos = { ...projected.gridPos, x: projected.gridPos.x + 6 };
  assert.deepEqual(layoutProblems(broken), [
    `panel "${PER_DAY}" has the id of "${PROJECTED}"`,
    `panels "${PROJECTED}" and "${PER_DAY}" overlap`,
  ]);
  perDay.gridPos = { ...projected.gridPos, x: 16 };
  assert.ok(layoutProblems(broken).includes(`panel "${PER_DAY}" runs past the 24 columns`));
});

Deno.test("the metric-name check finds names in PromQL and leaves functions, labels and keywords out", () => {
  assert.deepEqual(
    metricNames(
      'sum by (currency) (increase(monzo_spent_total{job=~"$job", x="a{b}"}[1d])) / on (category) group_left ' +
        "monzo_budget unless on (account_id) monzo_account_info and time() - up",
    ),
    ["monzo_spent_total", "monzo_budget", "monzo_account_info", "up"],
  );
});

/** Families the dashboard uses that may, rightly, have no series when the test runs (see their use). */
const MAY_HAVE_NO_SERIES = ["monzo_received_this_month"];

Deno.test({
  name:
    "every dashboard panel returns data from a real Prometheus scraping the demo exporter, and names only served metrics",
  ignore: !hasPrometheus,
  async fn() {
    const dashboard = await loadDashboard();
    const dir = await Deno.makeTempDir({ prefix: "monzo-dashboard-" });
    const exporterPort = freePort();
    const exporterUrl = `http://127.0.0.1:${exporterPort}`;
    const exporter = spawn(Deno.execPath(), [
      ...PROGRAM,
      "--demo",
      "--web.listen-address",
      `127.0.0.1:${exporterPort}`,
    ]);
    let prometheus: ReturnType<typeof spawn> | undefined;
    try {
      // The first poll imports the demo's history: every family is served once it is over.
      const used = new Set(
        queryPanels(dashboard).flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))),
      );
      const exposition = await waitFor("the demo exporter to serve a successful poll", async () => {
        const answer = await get(`${exporterUrl}/metrics`).catch(() => null);
        return answer?.status === 200 && /^monzo_up 1$/m.test(answer.text) && answer.text;
      }, { timeoutMs: 30_000, intervalMs: 200 });
      // A family with no series is not announced at all, and one can be without: early in a budget month
      // nothing may have been received yet. It counts as served when the README's metrics table has it.
      const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
      const served = families(exposition);
      for (const name of MAY_HAVE_NO_SERIES) {
        assert.ok(readme.includes(`| \`${name}\` `), `the README's metrics table has no ${name}`);
        served.add(name);
      }

      // Every metric a query names exists; and the check itself catches a panel naming one that does not.
      assert.deepEqual(unknownMetrics(dashboard, served), []);
      const broken = structuredClone(dashboard);
      const spendToday = queryPanels(broken).find((p) => p.title === "Spend today");
      assert.ok(spendToday?.targets);
      spendToday.targets[0] = {
        ...spendToday.targets[0],
        expr: spendToday.targets[0].expr.replace("spend_today", "spent_today"),
      };
      assert.deepEqual(unknownMetrics(broken, served), [
        'panel "Spend today" query A: monzo_spent_today is not served',
      ]);

      const started = await startPrometheus(dir, [
        `  - job_name: ${JOB}`,
        "    static_configs:",
        `      - targets: ["127.0.0.1:${exporterPort}"]`,
      ]);
      prometheus = started.process;
      const prometheusUrl = started.url;

      // increase() and rate() need two samples in their range to return anything: wait for three
      // scrapes of every counter the dashboard uses (they are what it applies them to, and a counter's
      // series stay, where a gauge's may come and go: nothing received yet as a budget month begins).
      // Over a few seconds increase(monzo_spent_total[1d]) then returns the (extrapolated) growth so
      // far, usually 0: that proves the series and the query, not the size of a day's spending.
      const counters = new Set([...exposition.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]));
      await waitFor("Prometheus to hold three scrapes of every counter the dashboard uses", async () => {
        for (const name of [...used].filter((one) => counters.has(one))) {
          const counts = await instant(prometheusUrl, `min(count_over_time(${name}{job="${JOB}"}[1m]))`);
          if (counts.length === 0 || Number(counts[0].value[1]) < 3) return false;
        }
        return true;
      }, { timeoutMs: 30_000, intervalMs: 250 });

      // Every panel with "All" selected, then with one account and one currency, as a user picks them.
      assert.deepEqual(await emptyPanels(dashboard, grafanaValues(".*", ".*"), prometheusUrl), []);
      assert.deepEqual(await emptyPanels(dashboard, grafanaValues(ALICE_CURRENT, "GBP"), prometheusUrl), []);

      // The variables' label_values() queries offer the values substituted above.
      for (
        const [name, label, expected] of [["job", "job", JOB], ["account", "account_id", ALICE_CURRENT], [
          "currency",
          "currency",
          "GBP",
        ]]
      ) {
        const variable = dashboard.templating.list.find((v) => v.name === name);
        assert.ok(variable);
        const query = labelValues(variable);
        assert.equal(query.label, label);
        const selector = substitute(query.selector, { job: JOB });
        const answer = await get(
          `${prometheusUrl}/api/v1/label/${label}/values?${new URLSearchParams({ "match[]": selector })}`,
        );
        assert.ok(
          JSON.parse(answer.text).data.includes(expected),
          `$${name} does not offer ${expected}: ${answer.text}`,
        );
      }

      // And a panel whose query selects nothing is reported by name.
      const empty = structuredClone(dashboard);
      const balances = queryPanels(empty).find((p) => p.title === "Balance per account");
      assert.ok(balances?.targets);
      balances.targets[0] = { ...balances.targets[0], expr: 'monzo_balance{account_id="acc_nobody"}' };
      assert.deepEqual(
        (await emptyPanels(empty, grafanaValues(".*", ".*"), prometheusUrl)).map((line) => line.split(" returned")[0]),
        ['panel "Balance per account" query A'],
      );
    } catch (error) {
      console.error(`Prometheus' log:\n${prometheus?.stderr.text ?? ""}\nThe exporter's log:\n${exporter.stderr.text}`);
      throw error;
    } finally {
      await prometheus?.stop("SIGTERM", 10_000);
      await exporter.stop("SIGTERM", 10_000);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The demo's simulated Monzo and its exporter in this process on a clock stopped at `at`, served on loopback. */
async function demoAt(at: number): Promise<{ port: number; lines: string[]; close(): Promise<void> }> {
  const clock = new TestClock();
  clock.set(at);
  let handler: (request: Request) => Response | Promise<Response> = () => new Response("starting", { status: 503 });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => handler(request));
  const lines: string[] = [];
  const quiet = { info() {}, warn: (message: string) => void lines.push(message) };
  // The live panels read balances, the budget month and counters that start at the login: a year of history
  // fills them as the demo's three years do, and eleven demos import it quicker.
  const demo = await startDemo({ hostname: "127.0.0.1", port: server.addr.port }, quiet, {
    clock,
    historyDays: TEST_HISTORY_DAYS,
  });
  const made = await createExporter({
    config: demo.config,
    build: { version: "0.0.0-test", mode: "demo" },
    clock,
    sink: (line) => lines.push(line),
    persistence: memoryTokens(),
  });
  if (!made.ok) throw new Error(made.error);
  const exporter = made.value;
  await demo.logInEveryone(exporter.sessions);
  await exporter.poller.poll();
  handler = exporter.handler;
  return {
    port: server.addr.port,
    lines,
    async close() {
      await server.shutdown();
      await exporter.close();
      await demo.close();
    },
  };
}

Deno.test({
  name: "every dashboard panel returns data from the demo on the 1st and 2nd, last days, 29 February, " +
    "both UK clock changes and New Year's Eve (injected clock)",
  ignore: !hasPrometheus,
  async fn() {
    const dashboard = await loadDashboard();
    const dir = await Deno.makeTempDir({ prefix: "monzo-dashboard-dates-" });
    // One demo per instant, each its own job in one Prometheus.
    const demos: Array<{ job: string; name: string; demo: Awaited<ReturnType<typeof demoAt>> }> = [];
    let prometheus: ReturnType<typeof spawn> | undefined;
    try {
      for (const [i, instant] of AWKWARD_INSTANTS.entries()) {
        demos.push({
          job: `demo_${i}`,
          name: `${instant.name} (${instant.utc})`,
          demo: await demoAt(Date.parse(instant.utc)),
        });
      }
      const started = await startPrometheus(
        dir,
        demos.flatMap(({ job, demo }) => [
          `  - job_name: ${job}`,
          "    static_configs:",
          `      - targets: ["127.0.0.1:${demo.port}"]`,
        ]),
      );
      prometheus = started.process;
      const prometheusUrl = started.url;
      const used = new Set(
        queryPanels(dashboard).flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))),
      );
      // Three scrapes of every used metric in every job (so increase() and rate() have two samples),
      // or 30 s: after that the panels below say what is missing, by name.
      const deadline = Date.now() + 30_000;
      const ready = async () => {
        for (const name of used) {
          const counts = await instant(prometheusUrl, `min by (job) (count_over_time(${name}{job=~"demo_.*"}[1m]))`);
          if (counts.length < demos.length || counts.some((c) => Number(c.value[1]) < 3)) return false;
        }
        return true;
      };
      while (!(await ready().catch(() => false)) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }

      const problems: string[] = [];
      for (const { job, name } of demos) {
        for (const [account, currency] of [[".*", ".*"], [ALICE_CURRENT, "GBP"]]) {
          for (const line of await emptyPanels(dashboard, grafanaValues(account, currency, job), prometheusUrl)) {
            problems.push(`${name}, account ${account}: ${line}`);
          }
        }
      }
      assert.deepEqual(problems, []);
    } catch (error) {
      console.error(`Prometheus' log:\n${prometheus?.stderr.text ?? ""}`);
      for (const { name, demo } of demos) console.error(`The log of the demo at ${name}:\n${demo.lines.join("\n")}`);
      throw error;
    } finally {
      await prometheus?.stop("SIGTERM", 10_000);
      for (const { demo } of demos) await demo.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the demo program started under libfaketime in the first minute of a month serves money in and out for the month",
  ignore: !hasFaketime,
  async fn() {
    const port = freePort();
    // libfaketime preloaded straight into the program, as the faketime command does but without its
    // semaphore shared between processes (see tools/date_matrix.sh): the program's clock starts at the
    // instant (read in TZ) and runs on. This overrides the suite's own faked clock under the date matrix.
    const program = spawn("/usr/bin/env", [
      "-u",
      "FAKETIME_SHARED",
      `LD_PRELOAD=${LIBFAKETIME}`,
      "FAKETIME=@2027-01-01 00:01:00",
      "TZ=UTC",
      Deno.execPath(),
      ...PROGRAM,
      "--demo",
      "--web.listen-address",
      `127.0.0.1:${port}`,
    ]);
    try {
      const text = await waitFor("the demo's first poll on /metrics", async () => {
        const answer = await get(`http://127.0.0.1:${port}/metrics`).catch(() => null);
        return answer?.status === 200 && /^monzo_up 1$/m.test(answer.text) && answer.text;
      }, { timeoutMs: 30_000, intervalMs: 200 });
      // The program saw the faked date: its budget month is January 2027.
      const start = text.match(/^monzo_budget_month_start_timestamp_seconds (\S+)$/m)?.[1];
      assert.equal(Number(start), Date.UTC(2027, 0, 1) / 1000);
      const month = (name: string) =>
        [...text.matchAll(new RegExp(`^${name}\\{account_id="${ALICE_CURRENT}",[^}]*\\} (\\S+)$`, "gm"))]
          .reduce((sum, match) => sum + Number(match[1]), 0);
      assert.ok(month("monzo_received_this_month") > 0, `no money in:\n${text}`);
      assert.ok(month("monzo_spent_this_month") > 0, `no money out:\n${text}`);
    } catch (error) {
      console.error(`The demo's log:\n${program.stderr.text}`);
      throw error;
    } finally {
      await program.stop("SIGTERM", 10_000);
    }
  },
});

// ---- The History row against a real Prometheus holding a backfill ----

const hasPromtool = binaryExists(PROMTOOL);
if (!hasPromtool) explainSkip(PROMTOOL, "the History row's queries against a backfilled Prometheus");

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const HISTORY_CATEGORIES = ["groceries", "eating_out", "transport", "bills"];
/** The scrape config's labels, passed as --backfill.label so the backfill continues the live series. */
const HISTORY_LABELS: [string, string][] = [["instance", "monzo-exporter:8080"], ["job", JOB]];

/**
 * Fourteen months of two accounts (a fixed past, so any run date gives the same answer): card
 * payments every few hours in four categories, settling a day later, and a salary each month. No
 * refunds, so each month's figure only climbs and its top is the month's total.
 */
function historyFixture(): { accounts: BackfillAccount[]; transactions: StoredTransaction[] } {
  const historyStart = Date.UTC(2024, 0, 1, 0, 0);
  const countingStart = Date.UTC(2025, 2, 1, 0, 0);
  let state = 12345;
  const next = () => (state = (state * 16807) % 2147483647) / 2147483647;
  const transactions: StoredTransaction[] = [];
  const accounts: BackfillAccount[] = [];
  for (const [n, accountId] of ["acc_history_a", "acc_history_b"].entries()) {
    let i = 0;
    const add = (createdMs: number, amount: number, category: string) =>
      transactions.push(storedTransaction({
        id: `tx_${accountId}_${String(i++).padStart(6, "0")}`,
        accountId,
        createdMs,
        settledMs: createdMs + DAY_MS,
        amount,
        category,
      }));
    for (let t = historyStart + 17 * 60_000 * (n + 1); t < countingStart; t += Math.floor((3 + next() * 9) * HOUR_MS)) {
      add(t, -(100 + Math.floor(next() * 4_900)), HISTORY_CATEGORIES[Math.floor(next() * HISTORY_CATEGORIES.length)]);
    }
    for (let month = 0; month < 14; month++) add(Date.UTC(2024, month, 27, 9, 0), 250_000 + n * 10_000, "income");
    accounts.push({
      accountId,
      currency: "GBP",
      historyStart,
      countingStart,
      balance: { balanceMinor: 123_456 + n * 1_000, at: countingStart + HOUR_MS },
    });
  }
  return { accounts, transactions };
}

/** The balance at `t`, from the last poll's balance less everything created after `t`. */
function balanceAt(account: BackfillAccount, transactions: readonly StoredTransaction[], t: number): number {
  return transactions.filter((tx) => tx.accountId === account.accountId && tx.createdMs > t)
    .reduce((balance, tx) => balance - tx.amount, account.balance.balanceMinor);
}

/** Spending per category created from the start of `t`'s London month up to `t`, minor units (0 left out). */
function monthToDate(accountId: string, transactions: readonly StoredTransaction[], t: number): Map<string, number> {
  const start = londonMonthStart(...londonMonthOf(t));
  const spent = new Map<string, number>();
  for (const tx of transactions) {
    if (tx.accountId !== accountId || tx.amount >= 0 || tx.createdMs < start || tx.createdMs > t) continue;
    spent.set(tx.category, (spent.get(tx.category) ?? 0) - tx.amount);
  }
  return spent;
}

/** The one target of the panel titled `title`, and its query with Grafana's variables at the target's minimum interval. */
function historyQuery(dashboard: Dashboard, title: string): { expr: string; intervalMs: number } {
  const panel = queryPanels(dashboard).find((p) => p.title === title);
  assert.ok(panel?.targets?.length === 1, `no panel "${title}" with one query`);
  const target = panel.targets[0] as Target & { interval?: string };
  const interval = target.interval ?? "";
  const match = /^(\d+)([hd])$/.exec(interval);
  assert.ok(match, `panel "${title}" has no minimum interval in hours or days: "${interval}"`);
  const intervalMs = Number(match[1]) * (match[2] === "h" ? HOUR_MS : DAY_MS);
  return { expr: substitute(target.expr, { ...grafanaValues(".*", ".*"), __interval: interval }), intervalMs };
}

Deno.test({
  name: "the History row reads the backfill: balance over time and each budget month's spending by category, " +
    "from a real Prometheus at times in the backfilled past, match figures worked out from the transactions",
  ignore: !hasPrometheus || !hasPromtool,
  async fn() {
    const dashboard = await loadDashboard();
    const dir = await Deno.makeTempDir({ prefix: "monzo-dashboard-history-" });
    let prometheus: ReturnType<typeof spawn> | undefined;
    try {
      const { accounts, transactions } = historyFixture();
      const file = join(dir, "history.om");
      const out = await Deno.open(file, { write: true, create: true });
      const summary = await writeOpenMetrics(memorySource(accounts, transactions), {
        stepMs: HOUR_MS,
        untilMs: null,
        monthStartDay: 1,
        budgeted: new Set(),
        counting: MONZO_VIEW,
        labels: HISTORY_LABELS,
        help: backfillHelp({ historyDays: 0, monthStartDay: 1, budgets: new Map(), budgetCurrency: "GBP" }),
      }, { write: async (chunk) => void await out.write(chunk) });
      out.close();
      assert.ok(summary.firstMs !== null && summary.lastMs !== null);
      const first = summary.firstMs;
      const last = summary.lastMs;
      const started = await startBackfilledPrometheus(dir, file);
      prometheus = started.process;

      // Balance over time: at times between the hourly samples (a panel's points need not fall on
      // them), the last sample in the interval, per account.
      const balance = historyQuery(dashboard, "Balance over time");
      assert.equal(balance.intervalMs, HOUR_MS, "the balance panel's interval is the backfill's step");
      const wrongBalances: string[] = [];
      let checked = 0;
      for (let t = first + 37 * 60_000; t < last; t += 97 * HOUR_MS + 11 * 60_000) {
        const sample = Math.floor(t / HOUR_MS) * HOUR_MS;
        const got = new Map(
          (await queryAt(started.url, balance.expr, t / 1000)).map((s) => [s.metric.account_id, Number(s.value?.[1])]),
        );
        const want = new Map(accounts.map((a) => [a.accountId, balanceAt(a, transactions, sample) / 100]));
        if (JSON.stringify([...got].sort()) !== JSON.stringify([...want].sort())) {
          wrongBalances.push(
            `at ${new Date(t).toISOString()}: ${JSON.stringify([...got])} != ${JSON.stringify([...want])}`,
          );
        }
        checked++;
      }
      assert.deepEqual(wrongBalances, []);
      assert.ok(checked >= 90, `only ${checked} times checked`);

      // Spending by category per budget month: the panel's daily points over the history, as Grafana
      // asks for them (steps of the interval, aligned to it), each the largest month-to-date figure of
      // the day just gone, summed over the accounts.
      const monthly = historyQuery(dashboard, "Spending by category per budget month");
      assert.equal(monthly.intervalMs, DAY_MS);
      const step = monthly.intervalMs;
      const from = Math.ceil((first + step) / step) * step;
      const to = Math.floor(last / step) * step;
      const series = await queryRange(started.url, monthly.expr, from / 1000, to / 1000, step / 1000);
      const got = new Map<number, Map<string, number>>();
      for (const one of series) {
        for (const [seconds, value] of one.values ?? []) {
          if (!got.has(seconds * 1000)) got.set(seconds * 1000, new Map());
          got.get(seconds * 1000)!.set(one.metric.category, Math.round(Number(value) * 100));
        }
      }
      const wantAt = (t: number): Map<string, number> => {
        const want = new Map<string, number>();
        for (const account of accounts) {
          const top = new Map<string, number>();
          for (let s = t - step; s <= t; s += HOUR_MS) {
            for (const [category, minor] of monthToDate(account.accountId, transactions, s)) {
              top.set(category, Math.max(top.get(category) ?? 0, minor));
            }
          }
          for (const [category, minor] of top) want.set(category, (want.get(category) ?? 0) + minor);
        }
        return want;
      };
      const wrongDays: string[] = [];
      for (let t = from; t <= to; t += step) {
        const want = wantAt(t);
        const have = got.get(t) ?? new Map();
        if (JSON.stringify([...have].sort()) !== JSON.stringify([...want].sort())) {
          wrongDays.push(
            `at ${new Date(t).toISOString()}: ${JSON.stringify([...have])} != ${JSON.stringify([...want])}`,
          );
        }
      }
      assert.deepEqual(wrongDays, []);

      // What a user reads there: on the first day of each month that starts at midnight UTC (London in
      // winter), the whole month before it by category.
      let months = 0;
      for (let month = 1; month < 14; month++) {
        const start = londonMonthStart(2024 + Math.floor(month / 12), (month % 12) + 1);
        if (start % step !== 0 || start < from || start > to) continue;
        const previous = londonMonthStart(2024 + Math.floor((month - 1) / 12), ((month - 1) % 12) + 1);
        const total = new Map<string, number>();
        for (const tx of transactions) {
          if (tx.amount >= 0 || tx.createdMs < previous || tx.createdMs >= start) continue;
          total.set(tx.category, (total.get(tx.category) ?? 0) - tx.amount);
        }
        assert.deepEqual(
          [...(got.get(start) ?? new Map())].sort(),
          [...total].sort(),
          `the bar on ${new Date(start).toISOString()} is not the month before it`,
        );
        months++;
      }
      assert.ok(months >= 5, `only ${months} month ends checked`);
    } catch (error) {
      console.error(`Prometheus' log:\n${prometheus?.stderr.text ?? ""}`);
      throw error;
    } finally {
      await prometheus?.stop("SIGTERM", 10_000);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---- The Pace row against a real Prometheus holding known series ----

/** One moment the Pace row is read at: the series' values then, per account and category, in major units. */
interface PaceMoment {
  readonly name: string;
  readonly at: number;
  readonly spent: ReadonlyArray<{ account: string; category: string; amount: number }>;
}

/**
 * March 2025 in London: 00:00 GMT on the 1st to 00:00 BST on 1 April, an hour short of 31 days (the
 * clock change), so a month taken as 31 days or as 30 gives other figures. Two accounts spend in the
 * budgeted groceries (under budget), eating_out (over it) and transport (nothing yet: the exporter
 * serves 0 for a budgeted category), and in the unbudgeted shopping. Another job's exporter has a
 * pay-day month (24 March to 25 April), later than this one, and spends too: a query that forgets
 * `$job` reads it.
 */
function paceFixture() {
  const start = londonMonthStart(2025, 3);
  const end = londonMonthStart(2025, 4);
  const budgets = new Map([["groceries", 300], ["eating_out", 100], ["transport", 50]]);
  const moments: PaceMoment[] = [
    {
      name: "12 March, 15:30",
      at: Date.UTC(2025, 2, 12, 15, 30),
      spent: [
        { account: "acc_pace_a", category: "groceries", amount: 60 },
        { account: "acc_pace_b", category: "groceries", amount: 40.5 },
        { account: "acc_pace_a", category: "eating_out", amount: 90 },
        { account: "acc_pace_b", category: "eating_out", amount: 35.25 },
        { account: "acc_pace_a", category: "transport", amount: 0 },
        { account: "acc_pace_b", category: "transport", amount: 0 },
        { account: "acc_pace_a", category: "shopping", amount: 20 },
      ],
    },
    {
      // The last day: six hours left, under a day.
      name: "31 March, 17:00 BST",
      at: end - 7 * HOUR_MS,
      spent: [
        { account: "acc_pace_a", category: "groceries", amount: 150 },
        { account: "acc_pace_b", category: "groceries", amount: 80 },
        { account: "acc_pace_a", category: "eating_out", amount: 130 },
        { account: "acc_pace_b", category: "eating_out", amount: 35.25 },
        { account: "acc_pace_a", category: "transport", amount: 12.4 },
        { account: "acc_pace_b", category: "transport", amount: 0 },
        { account: "acc_pace_a", category: "shopping", amount: 45 },
      ],
    },
  ];
  const other = {
    start: Date.UTC(2025, 2, 24, 8, 0),
    end: londonMonthStart(2025, 4) + 24 * DAY_MS,
    spent: 5_000,
  };
  return { start, end, budgets, moments, other };
}

/** The fixture as OpenMetrics: every series sampled 30 s before each moment (well inside the 5 minute lookback). */
function paceOpenMetrics(fixture: ReturnType<typeof paceFixture>): string {
  const lines: string[] = [];
  const sample = (name: string, labels: Record<string, string>, value: number, at: number) => {
    const all = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",");
    lines.push(`${name}{${all}} ${value} ${(at - 30_000) / 1000}`);
  };
  const job = { instance: "monzo-exporter:8080", job: JOB };
  const otherJob = { instance: "other-exporter:8080", job: "other" };
  const times = fixture.moments.map((m) => m.at);
  lines.push("# TYPE monzo_budget_month_start_timestamp_seconds gauge");
  for (const at of times) sample("monzo_budget_month_start_timestamp_seconds", job, fixture.start / 1000, at);
  for (const at of times) {
    sample("monzo_budget_month_start_timestamp_seconds", otherJob, fixture.other.start / 1000, at);
  }
  lines.push("# TYPE monzo_budget_month_end_timestamp_seconds gauge");
  for (const at of times) sample("monzo_budget_month_end_timestamp_seconds", job, fixture.end / 1000, at);
  for (const at of times) sample("monzo_budget_month_end_timestamp_seconds", otherJob, fixture.other.end / 1000, at);
  // Balances, and nothing received this month: "In and out" must still show 0 in.
  lines.push("# TYPE monzo_balance gauge");
  for (const account of ["acc_pace_a", "acc_pace_b"]) {
    for (const at of times) sample("monzo_balance", { ...job, account_id: account, currency: "GBP" }, 1_234.5, at);
  }
  lines.push("# TYPE monzo_budget gauge");
  for (const [category, amount] of fixture.budgets) {
    for (const at of times) sample("monzo_budget", { ...job, category, currency: "GBP" }, amount, at);
    for (const at of times) sample("monzo_budget", { ...otherJob, category, currency: "GBP" }, amount * 10, at);
  }
  lines.push("# TYPE monzo_spent_this_month gauge");
  const keys = [...new Set(fixture.moments.flatMap((m) => m.spent.map((s) => `${s.account} ${s.category}`)))];
  for (const key of keys) {
    const [account, category] = key.split(" ");
    for (const moment of fixture.moments) {
      const one = moment.spent.find((s) => s.account === account && s.category === category);
      if (one) {
        sample(
          "monzo_spent_this_month",
          { ...job, account_id: account, category, currency: "GBP" },
          one.amount,
          moment.at,
        );
      }
    }
  }
  for (const at of times) {
    sample(
      "monzo_spent_this_month",
      { ...otherJob, account_id: "acc_other", category: "groceries", currency: "GBP" },
      fixture.other.spent,
      at,
    );
  }
  lines.push("# EOF", "");
  return lines.join("\n");
}

/** What the Pace row should show at `moment`, worked out from the fixture: per category, in major units. */
function paceExpected(fixture: ReturnType<typeof paceFixture>, moment: PaceMoment) {
  const spent = new Map<string, number>();
  for (const { category, amount } of moment.spent) spent.set(category, (spent.get(category) ?? 0) + amount);
  const gone = (moment.at - fixture.start) / (fixture.end - fixture.start);
  const projected = new Map([...spent].map(([category, amount]) => [category, amount / gone]));
  // Shared over the whole days left, or over one day once under a day is left.
  const days = Math.max((fixture.end - moment.at) / DAY_MS, 1);
  const perDay = new Map(
    [...fixture.budgets].map(([category, budget]) => [
      category,
      Math.max(budget - (spent.get(category) ?? 0), 0) / days,
    ]),
  );
  return { projected, budgets: new Map(fixture.budgets), perDay };
}

/** Per category, an answer's values (rounded to a millionth), sorted; more than one series for a category throws. */
function byCategory(answer: readonly Answer[]): [string, number][] {
  const seen = new Map<string, number>();
  for (const one of answer) {
    const category = one.metric.category;
    if (seen.has(category)) throw new Error(`two series for ${category}: ${JSON.stringify(answer)}`);
    seen.set(category, Number(one.value?.[1]));
  }
  return rounded(seen);
}

function rounded(values: ReadonlyMap<string, number>): [string, number][] {
  return [...values].map(([k, v]): [string, number] => [k, Math.round(v * 1e6) / 1e6]).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0
  );
}

/** The Pace row's panels' queries, template variables filled: projected, its budget, and per day. */
function paceQueries(dashboard: Dashboard): PaceQueries {
  const values = grafanaValues(".*", ".*");
  const target = (title: string, refId: string) => {
    const panel = queryPanels(dashboard).find((p) => p.title === title);
    const found = panel?.targets?.find((t) => t.refId === refId);
    assert.ok(found, `no panel "${title}" with a query ${refId}`);
    return substitute(found.expr, values);
  };
  return { projected: target(PROJECTED, "A"), budgets: target(PROJECTED, "B"), perDay: target(PER_DAY, "A") };
}

/** The pace queries one reader shows: the dashboard's (with the budget beside) or the README's. */
interface PaceQueries {
  readonly projected: string;
  readonly budgets?: string;
  readonly perDay: string;
  /** Where the queries answer per `job` (the README's), the job whose rows are read. */
  readonly job?: string;
}

/** The README's two pace queries, from the `promql` block after "**Pace.**": projected, then per day. */
async function readmePaceQueries(): Promise<PaceQueries> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const after = readme.slice(readme.indexOf("**Pace.**"));
  const block = /```promql\n([\s\S]*?)```/.exec(after)?.[1];
  assert.ok(block, "the README's Pace paragraph has no promql block");
  // Each expression starts at a line that is not indented; its continuation lines are.
  const exprs = block.trimEnd().split(/\n(?=\S)/);
  assert.equal(exprs.length, 2, `the README's Pace block holds ${exprs.length} queries, not 2`);
  return { projected: exprs[0], perDay: exprs[1], job: JOB };
}

/** Pace queries at each moment against what they should show, as one line per difference. */
async function paceProblems(
  queries: PaceQueries,
  fixture: ReturnType<typeof paceFixture>,
  prometheus: string,
): Promise<string[]> {
  const problems: string[] = [];
  for (const moment of fixture.moments) {
    const want = paceExpected(fixture, moment);
    const checks: [string, string | undefined, Map<string, number>][] = [
      ["projected", queries.projected, want.projected],
      ["budget", queries.budgets, want.budgets],
      ["per day", queries.perDay, want.perDay],
    ];
    for (const [what, expr, expected] of checks) {
      if (expr === undefined) continue;
      let got: [string, number][];
      try {
        const answer = await queryAt(prometheus, expr, moment.at / 1000);
        got = byCategory(queries.job === undefined ? answer : answer.filter((one) => one.metric.job === queries.job));
      } catch (error) {
        problems.push(`${moment.name}, ${what}: ${error instanceof Error ? error.message : error}`);
        continue;
      }
      const expectedRows = rounded(expected);
      if (JSON.stringify(got) !== JSON.stringify(expectedRows)) {
        problems.push(`${moment.name}, ${what}: ${JSON.stringify(got)} != ${JSON.stringify(expectedRows)}`);
      }
    }
  }
  return problems;
}

/** The "In and out this budget month" panel at each moment against the fixture, as one line per difference. */
async function inAndOut(
  dashboard: Dashboard,
  fixture: ReturnType<typeof paceFixture>,
  prometheus: string,
): Promise<string[]> {
  const panel = queryPanels(dashboard).find((p) => p.title === "In and out this budget month");
  assert.ok(panel?.targets, 'no panel "In and out this budget month"');
  const problems: string[] = [];
  for (const moment of fixture.moments) {
    const spent = moment.spent.reduce((sum, one) => sum + one.amount, 0);
    for (const [refId, want] of [["A", 0], ["B", spent]] as const) {
      const target = panel.targets.find((t) => t.refId === refId);
      assert.ok(target, `"In and out" has no query ${refId}`);
      const answer = await queryAt(prometheus, substitute(target.expr, grafanaValues(".*", ".*")), moment.at / 1000);
      const got = answer.map((one) => `${one.metric.currency} ${Math.round(Number(one.value?.[1]) * 100) / 100}`);
      if (JSON.stringify(got) !== JSON.stringify([`GBP ${want}`])) {
        problems.push(`${moment.name}, "In and out" ${refId}: ${JSON.stringify(got)} != GBP ${want}`);
      }
    }
  }
  return problems;
}

const PROJECTED = "Projected month-end spending by category against budget";
const PER_DAY = "Left to spend per day by category";

/** A copy of `dashboard` with `from` replaced by `to` in the query `refId` of the panel titled `title` (which must hold it). */
function breakQuery(dashboard: Dashboard, title: string, refId: string, from: string | RegExp, to: string): Dashboard {
  const broken = structuredClone(dashboard);
  const target = queryPanels(broken).find((p) => p.title === title)?.targets?.find((t) => t.refId === refId);
  assert.ok(target, `no panel "${title}" query ${refId}`);
  const expr = target.expr.replace(from, to);
  assert.notEqual(expr, target.expr, `"${title}" ${refId} has no ${from} to break`);
  (target as { expr: string }).expr = expr;
  return broken;
}

Deno.test({
  name:
    "the Pace row and the README's pace queries read known series in a real Prometheus: projected month-end spending (accounts summed, " +
    "over the fraction of the month gone) beside the budget, and what is left per day to the month's end, 0 over budget; " +
    "with nothing received yet, 'In and out' shows 0 in",
  ignore: !hasPrometheus || !hasPromtool,
  async fn() {
    const dashboard = await loadDashboard();
    const dir = await Deno.makeTempDir({ prefix: "monzo-dashboard-pace-" });
    let prometheus: ReturnType<typeof spawn> | undefined;
    try {
      const fixture = paceFixture();
      // The fixture holds what the test is for: two accounts in a category, one over budget, under a day left.
      const first = paceExpected(fixture, fixture.moments[0]);
      assert.equal(first.perDay.get("eating_out"), 0);
      assert.ok(fixture.moments[0].spent.filter((s) => s.category === "groceries" && s.amount > 0).length === 2);
      assert.ok(fixture.end - fixture.moments[1].at < DAY_MS);
      assert.notEqual(fixture.end - fixture.start, 31 * DAY_MS, "the month has no clock change");

      const file = join(dir, "pace.om");
      await Deno.writeTextFile(file, paceOpenMetrics(fixture));
      const started = await startBackfilledPrometheus(dir, file);
      prometheus = started.process;

      assert.deepEqual(await paceProblems(paceQueries(dashboard), fixture, started.url), []);
      // The README's queries, which users copy, show the same.
      assert.deepEqual(await paceProblems(await readmePaceQueries(), fixture, started.url), []);
      // Nothing received yet this month (the fixture has no monzo_received_this_month): 0 in, not no data.
      assert.deepEqual(await inAndOut(dashboard, fixture, started.url), []);

      // And each way of getting it wrong is caught.
      const broken: [string, Dashboard][] = [
        [
          "one account's spending, not the accounts' sum",
          breakQuery(
            dashboard,
            PROJECTED,
            "A",
            "sum by (category, currency) (monzo_spent",
            "max by (category, currency) (monzo_spent",
          ),
        ],
        [
          "per day: one account's spending",
          breakQuery(
            dashboard,
            PER_DAY,
            "A",
            "sum by (category, currency) (monzo_spent",
            "max by (category, currency) (monzo_spent",
          ),
        ],
        [
          "a 30-day month instead of the exported end",
          breakQuery(
            dashboard,
            PROJECTED,
            "A",
            /max\(monzo_budget_month_end_timestamp_seconds\{[^}]*\}\)/,
            '(max(monzo_budget_month_start_timestamp_seconds{job=~"$job"}) + 30 * 86400)',
          ),
        ],
        [
          "per day: days to a 31-day month's end",
          breakQuery(
            dashboard,
            PER_DAY,
            "A",
            /max\(monzo_budget_month_end_timestamp_seconds\{[^}]*\}\)/,
            '(max(monzo_budget_month_start_timestamp_seconds{job=~"$job"}) + 31 * 86400)',
          ),
        ],
        [
          "another job's month end",
          breakQuery(
            dashboard,
            PER_DAY,
            "A",
            /monzo_budget_month_end_timestamp_seconds\{[^}]*\}/,
            "monzo_budget_month_end_timestamp_seconds",
          ),
        ],
        [
          "another job's month start",
          breakQuery(
            dashboard,
            PROJECTED,
            "A",
            /monzo_budget_month_start_timestamp_seconds\{[^}]*\}/g,
            "monzo_budget_month_start_timestamp_seconds",
          ),
        ],
        ["no clamp at 0 over budget", breakQuery(dashboard, PER_DAY, "A", /^clamp_min\((.*), 0\) \//, "($1) /")],
        [
          "per day: under a day left, not shared over one day",
          breakQuery(dashboard, PER_DAY, "A", /clamp_min\((\(max\(monzo_budget_month_end.* \/ 86400), 1\)$/, "($1)"),
        ],
        ["what is left, not per day", breakQuery(dashboard, PER_DAY, "A", / \/ on \(\) group_left \(\) .*$/, "")],
        ["spent so far, not projected", breakQuery(dashboard, PROJECTED, "A", / \/ on \(\) group_left \(\) .*$/, "")],
      ];
      const missed = [];
      for (const [how, dashboardBroken] of broken) {
        if ((await paceProblems(paceQueries(dashboardBroken), fixture, started.url)).length === 0) missed.push(how);
      }
      assert.deepEqual(missed, [], "broken queries the check does not catch");
    } catch (error) {
      console.error(`Prometheus' log:\n${prometheus?.stderr.text ?? ""}`);
      throw error;
    } finally {
      await prometheus?.stop("SIGTERM", 10_000);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
