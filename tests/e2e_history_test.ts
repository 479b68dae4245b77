// Issue 17's "Done when": years of history, from a login to Prometheus. A login against the fake
// Monzo imports three years of history into a store on disk; `deno task start --config … --backfill
// FILE` writes it as OpenMetrics while the exporter keeps running; the real promtool makes blocks of it
// in a Prometheus data folder, as the README's "Your history in Prometheus" says; a real Prometheus with
// a long retention then answers about the past: balances at past sample times, the increase of
// monzo_spent_total between two past times, and a past month's monzo_spent_this_month by category,
// each checked against figures worked out here from the fake's own transactions.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type FakeData, type FakeTransaction, householdData, startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import { accountHistory, type Profile } from "../lib/fake_monzo/history.ts";
import {
  ALICE,
  ALICE_CURRENT,
  binaryExists,
  CLIENT_ID,
  CLIENT_SECRET,
  configFields,
  explainSkip,
  get,
  JOINT,
  logInDirectly,
  PROMETHEUS,
  PROMTOOL,
  runTask,
  serveExporter,
  waitFor,
  writeConfig,
} from "./helpers/e2e.ts";
import { londonMonthOf, londonMonthStart, queryAt, startBackfilledPrometheus } from "./helpers/backfill_prometheus.ts";

const ready = binaryExists(PROMETHEUS) && binaryExists(PROMTOOL);
if (!ready) explainSkip(`${PROMETHEUS} or ${PROMTOOL}`, "the history end-to-end test");

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const YEARS = 3;
const JOB = "monzo";
const CHECKED: Record<string, Profile> = { [ALICE_CURRENT]: "alice", [JOINT]: "joint" };

/** The household with three years of history on Alice's current and joint accounts, up to `now`. */
function threeYears(now: number): FakeData {
  const data = householdData(now);
  for (const account of data.accounts) {
    const profile = CHECKED[account.id];
    if (profile === undefined) continue;
    const pots = account.pots.filter((pot) => !pot.deleted).map((pot) => pot.id);
    account.transactions = accountHistory(profile, { ...account, pots }, now, YEARS * 365);
  }
  return data;
}

/** A fake transaction read by the README's rules, straight from Monzo's fields. */
interface Read {
  readonly created: number;
  readonly settled: number | null;
  readonly amount: number;
  readonly declined: boolean;
  readonly potMove: boolean;
  readonly includeInSpending: boolean | undefined;
  /** The categories it counts in: its split when usable (same signs, adding up), else its category. */
  readonly parts: readonly [string, number][];
}

function read(tx: FakeTransaction): Read {
  const split = Object.entries(tx.categories ?? {});
  const usable = split.length > 0 && tx.amount !== 0 &&
    split.every(([, part]) => Math.sign(part) !== -Math.sign(tx.amount)) &&
    split.reduce((sum, [, part]) => sum + part, 0) === tx.amount;
  return {
    created: Date.parse(tx.created),
    settled: tx.settled === "" ? null : Date.parse(tx.settled),
    amount: tx.amount,
    declined: Boolean(tx.decline_reason),
    potMove: tx.metadata.pot_id !== undefined || tx.scheme === "uk_retail_pot",
    includeInSpending: tx.include_in_spending,
    parts: usable ? split : [[tx.category, tx.amount]],
  };
}

/** The balance at `t`: the balance Monzo gave at the poll less every non-declined transaction created after `t`. */
function balanceAt(balance: number, txs: readonly Read[], t: number): number {
  return txs.filter((tx) => !tx.declined && tx.created > t).reduce((sum, tx) => sum - tx.amount, balance);
}

/** Settled spending (debits not marked out of spending, pot moves and declines left out) settled in (from, to]. */
function spentBetween(txs: readonly Read[], from: number, to: number): number {
  let spent = 0;
  for (const tx of txs) {
    if (tx.declined || tx.potMove || tx.settled === null || tx.amount >= 0 || tx.includeInSpending === false) continue;
    const at = Math.max(tx.settled, tx.created);
    if (at > from && at <= to) spent -= tx.amount;
  }
  return spent;
}

/** Net spending per category of the transactions created in [start, t] (refunds netted), 0s left out. */
function monthToDate(txs: readonly Read[], start: number, t: number): Map<string, number> {
  const spent = new Map<string, number>();
  for (const tx of txs) {
    if (tx.declined || tx.potMove || tx.created < start || tx.created > t) continue;
    const spending = tx.amount < 0 && tx.includeInSpending !== false;
    const refund = tx.amount > 0 && tx.includeInSpending === true;
    if (!spending && !refund) continue;
    for (const [category, part] of tx.parts) spent.set(category, (spent.get(category) ?? 0) - part);
  }
  return new Map([...spent].filter(([, minor]) => minor !== 0));
}

/** The one value of `promql` at `t` (ms), in minor units; fails naming the query when there is not exactly one. */
async function one(prometheus: string, promql: string, t: number): Promise<number> {
  const answer = await queryAt(prometheus, promql, t / 1000);
  assert.equal(answer.length, 1, `${promql} at ${new Date(t).toISOString()}: ${JSON.stringify(answer)}`);
  return Math.round(Number(answer[0].value?.[1]) * 100);
}

Deno.test({
  name: "three years imported at a login reach a real Prometheus through --backfill and promtool: past balances, " +
    "the increase of monzo_spent_total and a past month's spending by category match the fake's transactions",
  ignore: !ready,
  async fn() {
    const now = Date.now();
    const fake = await startFakeMonzo({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      data: threeYears(now),
      autoApprove: true,
    });
    const dir = await Deno.makeTempDir({ prefix: "monzo-history-" });
    let prometheus: Awaited<ReturnType<typeof startBackfilledPrometheus>> | undefined;
    try {
      // The exporter, its store on disk, logged in and polled: the login's import reads the whole history.
      const served = await serveExporter(fake, { dir });
      try {
        await logInDirectly(served, fake, ALICE);
        await served.exporter.poller.poll();
        assert.match((await get(`${served.url}/metrics`)).text, /^monzo_up 1$/m, served.logs.join("\n"));
        const instance = `127.0.0.1:${served.port}`;
        const config = await writeConfig(dir, configFields(fake, served.port));
        const file = join(dir, "history.om");

        // The README's step: stop nothing, pass the scrape config's job and instance.
        const ran = await runTask("start", [
          "--config",
          config,
          "--backfill",
          file,
          "--backfill.label",
          `job=${JOB}`,
          "--backfill.label",
          `instance=${instance}`,
        ], { timeoutMs: 120_000 });
        assert.equal(ran.code, 0, `--backfill exited ${ran.code}: ${ran.stderr}`);
        assert.match(ran.stdout.trim(), /^Wrote .*history\.om: \d+ accounts?, \d+ series, \d+ samples, samples from /);

        const promDir = join(dir, "prometheus");
        await Deno.mkdir(promDir);
        // It also scrapes the running exporter, as the job and instance the backfill was labelled with.
        prometheus = await startBackfilledPrometheus(promDir, file, [
          `  - job_name: ${JOB}`,
          "    static_configs:",
          `      - targets: ["${instance}"]`,
        ]);
        const url = prometheus.url;
        // Prometheus is a Go program: under tools/date_matrix.sh it keeps the real clock while this test and
        // the exporter run on a faked one, and it refuses scrapes older than the (then future) backfill.
        const itsNow = JSON.parse((await get(`${url}/api/v1/query?query=time()`)).text).data.result[0];
        const sameClock = Math.abs(itsNow * 1000 - Date.now()) < HOUR;
        if (sameClock) {
          await waitFor("Prometheus to scrape the exporter", async () => {
            const up = await queryAt(url, `up{job="${JOB}"}`, Date.now() / 1000);
            return up.length === 1 && up[0].value?.[1] === "1";
          }, { timeoutMs: 30_000, intervalMs: 250 });
        } else {
          console.warn("SKIPPED: the live scrape beside the backfill (Prometheus does not share this faked clock)");
        }

        const lastHour = Math.floor(now / HOUR) * HOUR;
        for (const accountId of Object.keys(CHECKED)) {
          const account = fake.data.accounts.find((a) => a.id === accountId);
          assert.ok(account);
          const txs = account.transactions.map(read);
          const oldest = Math.min(...txs.map((tx) => tx.created));
          assert.ok(
            oldest < now - (YEARS * 365 - 31) * DAY,
            `the fake's history of ${accountId} is not ${YEARS} years`,
          );
          const selector = `{account_id="${accountId}", job="${JOB}", instance="${instance}"}`;

          // Balances at past sample times (on the hour), about every five weeks back to the first year.
          let checked = 0;
          for (let t = lastHour - 2 * DAY; t > oldest + DAY; t -= 37 * DAY + 5 * HOUR) {
            assert.equal(
              await one(url, `monzo_balance${selector}`, t),
              balanceAt(account.balance, txs, t),
              `${accountId}: the balance at ${new Date(t).toISOString()}`,
            );
            checked++;
          }
          assert.ok(checked >= 25, `only ${checked} balances checked`);
          // The backfilled past and the live scrapes are one series: the live balance now, the past above.
          if (sameClock) {
            const series = await queryAt(
              url,
              `count_over_time(monzo_balance{account_id="${accountId}"}[${YEARS + 1}y])`,
              Date.now() / 1000,
            );
            assert.equal(
              series.length,
              1,
              `the backfill and the scrapes are not one series: ${JSON.stringify(series)}`,
            );
            assert.deepEqual(series[0].metric, { account_id: accountId, currency: "GBP", instance, job: JOB });
            assert.ok(Number(series[0].value?.[1]) > (YEARS * 365 - 31) * 24, "the series lacks the hourly backfill");
            assert.equal(await one(url, `monzo_balance${selector}`, Date.now()), account.balance);
          }

          // The increase of monzo_spent_total over the year that ended 30 days ago, and over the week before it.
          const t2 = lastHour - 30 * DAY;
          for (const [t1, range] of [[t2 - 365 * DAY, "365d"], [t2 - 7 * DAY, "7d"]] as const) {
            const spent = spentBetween(txs, t1, t2);
            assert.ok(spent > 0, `no spending between ${new Date(t1).toISOString()} and ${new Date(t2).toISOString()}`);
            assert.equal(
              await one(url, `monzo_spent_total${selector} - monzo_spent_total${selector} offset ${range}`, t2),
              spent,
              `${accountId}: spending settled in the ${range} to ${new Date(t2).toISOString()}`,
            );
          }

          // A past month's monzo_spent_this_month by category, at the month's last sample: the month six
          // months back, and the one of the first full year.
          for (const back of [6, 26]) {
            const [year, month] = londonMonthOf(now - back * 30 * DAY);
            const start = londonMonthStart(year, month);
            const end = month === 12 ? londonMonthStart(year + 1, 1) : londonMonthStart(year, month + 1);
            const t = end - HOUR;
            const want = monthToDate(txs, start, t);
            assert.ok(
              want.size >= 3,
              `${accountId}: too few categories in ${year}-${month}: ${JSON.stringify([...want])}`,
            );
            const got = await queryAt(url, `monzo_spent_this_month${selector}`, t / 1000);
            assert.deepEqual(
              new Map(got.map((s) => [s.metric.category, Math.round(Number(s.value?.[1]) * 100)])),
              want,
              `${accountId}: spending by category in ${year}-${month}`,
            );
          }
        }
      } finally {
        await served.close();
      }
    } catch (error) {
      console.error(`Prometheus' log:\n${prometheus?.process.stderr.text ?? ""}`);
      throw error;
    } finally {
      await prometheus?.process.stop("SIGTERM", 10_000);
      await fake.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
