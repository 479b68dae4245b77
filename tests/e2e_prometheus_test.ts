// A real Prometheus scrapes the exporter (backed by the fake Monzo) and answers queries about it;
// promtool lints the live exposition.

import assert from "node:assert/strict";
import { type FakeData, type FakePot, householdData, startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import {
  ALICE,
  ALICE_CURRENT,
  binaryExists,
  BOB,
  BOB_CURRENT,
  CLIENT_ID,
  CLIENT_SECRET,
  explainSkip,
  get,
  HOLIDAY_POT,
  JOINT,
  logInDirectly,
  PROMETHEUS,
  PROMTOOL,
  promtoolCheck,
  RAINY_POT,
  serveExporter,
  startPrometheus,
  waitFor,
} from "./helpers/e2e.ts";

const hasPrometheus = binaryExists(PROMETHEUS);
const hasPromtool = binaryExists(PROMTOOL);
if (!hasPrometheus) explainSkip(PROMETHEUS, "the real Prometheus end-to-end test");
if (!hasPromtool) explainSkip(PROMTOOL, "`promtool check metrics` on the live exposition");

const JOB = "monzo";
// Every character that needs care somewhere: quote and backslash (escaped in label values), newline,
// and characters that mean something in the exposition or PromQL syntax, plus non-ASCII.
const AWKWARD_POT = "pot_00009AliceAwkward00006";
const AWKWARD_NAME = 'Kids\' "fund" \\ {a="b"}, 100% ünïcødé 🐷 \\n';

function awkwardHousehold(): FakeData {
  const data = householdData();
  const alice = data.accounts.find((account) => account.id === ALICE_CURRENT);
  assert.ok(alice);
  alice.pots.push({
    id: AWKWARD_POT,
    name: AWKWARD_NAME,
    balance: 98765,
    goalAmount: 100001,
    deleted: false,
    type: "default",
    currency: "GBP",
  });
  return data;
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** Runs an instant query against Prometheus' HTTP API. */
async function query(prometheus: string, promql: string): Promise<Sample[]> {
  const answer = await get(`${prometheus}/api/v1/query?${new URLSearchParams({ query: promql })}`);
  assert.equal(answer.status, 200, answer.text);
  const body = JSON.parse(answer.text);
  assert.equal(body.status, "success", answer.text);
  return body.data.result;
}

/** The exporter served, logged in (Alice and Bob) and polled once, backed by a fake with the awkward pot. */
async function withPolledExporter(
  body: (context: {
    fake: Awaited<ReturnType<typeof startFakeMonzo>>;
    served: Awaited<ReturnType<typeof serveExporter>>;
  }) => Promise<void>,
): Promise<void> {
  const fake = await startFakeMonzo({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    data: awkwardHousehold(),
    autoApprove: true,
  });
  try {
    const served = await serveExporter(fake);
    try {
      await logInDirectly(served, fake, ALICE);
      await logInDirectly(served, fake, BOB);
      await served.exporter.poller.poll();
      const metrics = (await get(`${served.url}/metrics`)).text;
      assert.match(metrics, /^monzo_up 1$/m, `the poll did not succeed:\n${served.logs.join("\n")}`);
      await body({ fake, served });
    } finally {
      await served.close();
    }
  } finally {
    await fake.close();
  }
}

Deno.test({
  name: "a real Prometheus scrapes the exporter: up, balances and an awkward pot name round-trip exactly",
  ignore: !hasPrometheus,
  async fn() {
    await withPolledExporter(async ({ fake, served }) => {
      const dir = await Deno.makeTempDir({ prefix: "monzo-prometheus-" });
      const started = await startPrometheus(dir, [
        `  - job_name: ${JOB}`,
        "    metrics_path: /metrics",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${served.port}"]`,
      ]);
      const prometheus = started.process;
      const prometheusUrl = started.url;
      try {
        const started = performance.now();
        await waitFor("Prometheus to report up == 1 and monzo_balance", async () => {
          const up = await query(prometheusUrl, `up{job="${JOB}"}`);
          const balances = await query(prometheusUrl, "monzo_balance");
          return up.length === 1 && up[0].value[1] === "1" && balances.length > 0;
        }, { timeoutMs: 30_000, intervalMs: 200 });
        console.log(`Prometheus saw the exporter after ${Math.round(performance.now() - started)} ms`);

        const up = await query(prometheusUrl, `up{job="${JOB}"}`);
        assert.equal(up.length, 1);
        assert.equal(up[0].metric.instance, `127.0.0.1:${served.port}`);
        assert.equal(up[0].value[1], "1");

        // Balances: the fake's pence as pounds, per account, with the currency label.
        for (const accountId of [ALICE_CURRENT, JOINT]) {
          const account = fake.data.accounts.find((a) => a.id === accountId);
          assert.ok(account);
          const samples = await query(prometheusUrl, `monzo_balance{account_id="${accountId}"}`);
          assert.equal(samples.length, 1, `monzo_balance for ${accountId}: ${JSON.stringify(samples)}`);
          assert.equal(samples[0].metric.currency, "GBP");
          assert.equal(samples[0].metric.job, JOB);
          assert.equal(Number(samples[0].value[1]), account.balance / 100);
        }
        // The overdrawn account is negative in Prometheus too.
        const bob = await query(prometheusUrl, `monzo_balance{account_id="${BOB_CURRENT}"}`);
        assert.equal(Number(bob[0]?.value[1]), -42.1);

        // Pot names that needed escaping in the exposition arrive in Prometheus exactly as Monzo has them.
        const alice = fake.data.accounts.find((a) => a.id === ALICE_CURRENT);
        assert.ok(alice);
        for (const potId of [AWKWARD_POT, HOLIDAY_POT, RAINY_POT]) {
          const pot: FakePot | undefined = alice.pots.find((p) => p.id === potId);
          assert.ok(pot);
          const samples = await query(prometheusUrl, `monzo_pot_balance{pot_id="${potId}"}`);
          assert.equal(samples.length, 1, `monzo_pot_balance for ${potId}: ${JSON.stringify(samples)}`);
          assert.equal(samples[0].metric.pot_name, pot.name);
          assert.equal(samples[0].metric.account_id, ALICE_CURRENT);
          assert.equal(Number(samples[0].value[1]), pot.balance / 100);
        }
        // And the name works as a query selector, escaped the PromQL way.
        const byName = await query(prometheusUrl, `monzo_pot_balance{pot_name=${JSON.stringify(AWKWARD_NAME)}}`);
        assert.equal(byName.length, 1);
        assert.equal(byName[0].metric.pot_id, AWKWARD_POT);
        assert.equal(Number(byName[0].value[1]), 987.65);

        const status = await prometheus.stop("SIGTERM", 10_000);
        assert.equal(status.code, 0, `Prometheus exited with ${status.code}:\n${prometheus.stderr.text}`);
      } catch (error) {
        console.error(`Prometheus' log:\n${prometheus.stderr.text}`);
        throw error;
      } finally {
        await prometheus.stop("SIGKILL");
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: "promtool check metrics passes the live /metrics exposition",
  ignore: !hasPromtool,
  async fn() {
    await withPolledExporter(async ({ served }) => {
      const metrics = await get(`${served.url}/metrics`);
      assert.equal(metrics.status, 200);
      // The exposition is full: the lint runs on balances, pots, goals and health series.
      for (const name of ["monzo_balance{", "monzo_pot_balance{", "monzo_pot_goal{", "monzo_api_requests_total{"]) {
        assert.ok(metrics.text.includes(name), `no ${name} in the exposition`);
      }
      const { code, complaints } = await promtoolCheck(metrics.text);
      assert.equal(code, 0, `promtool check metrics failed:\n${complaints}`);
      assert.equal(complaints, "", `promtool had remarks:\n${complaints}`);
    });
  },
});
