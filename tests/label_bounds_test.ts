// The rest of the class of issue 15's finding 8: labels whose number or length is Monzo's choice.
// A hostile or buggy Monzo, served by the fake over real HTTP, lists thousands of pots or accounts,
// or names as long as it likes; the exporter keeps the series, the requests and the label values
// bounded, keeps the sums, and says so once in the log and on the status page.

import assert from "node:assert/strict";
import { type FakeData, householdData, manyAccounts, manyPots } from "../lib/fake_monzo/mod.ts";
import { MAX_ACCOUNTS, MAX_OWNERS, MAX_OWNERS_LABEL, REDISCOVER_AFTER_MS } from "../lib/poll/accounts_step.ts";
import { MAX_OTHER_CURRENCIES, MAX_POTS, OTHER_POT } from "../lib/poll/pot_cap.ts";
import {
  ALICE,
  ALICE_CURRENT,
  DELETED_POT,
  type Harness,
  logIn,
  metrics,
  MINUTE,
  page,
  poll,
  sample,
  T0,
  TEST_HISTORY_DAYS,
  withHarness,
} from "./helpers/harness.ts";

/** One sample of the exposition: its family, its labels (unescaped) and its value. */
interface Row {
  readonly name: string;
  readonly labels: ReadonlyMap<string, string>;
  readonly key: string;
  readonly value: number;
}

/** Every sample of the exposition, label values unescaped. */
function rows(text: string): Row[] {
  const out: Row[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const brace = line.indexOf("{");
    const space = line.lastIndexOf(" ");
    const name = brace === -1 ? line.slice(0, space) : line.slice(0, brace);
    const labels = new Map<string, string>();
    if (brace !== -1) {
      const body = line.slice(brace + 1, line.lastIndexOf("}"));
      for (const match of body.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) {
        labels.set(match[1], match[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c)));
      }
    }
    out.push({ name, labels, key: line.slice(0, space), value: Number(line.slice(space + 1)) });
  }
  return out;
}

const pence = (pounds: number) => Math.round(pounds * 100);
const codePoints = (text: string) => [...text].length;

/** Alice's current account in `data`. */
function aliceCurrent(data: FakeData) {
  const account = data.accounts.find((a) => a.id === ALICE_CURRENT);
  assert.ok(account);
  return account;
}

/** Alice's current account's rows of `family`, each label set at most once. */
function potRows(text: string, family: string): Row[] {
  const found = rows(text).filter((row) => row.name === family && row.labels.get("account_id") === ALICE_CURRENT);
  const keys = new Set(found.map((row) => row.key));
  assert.equal(keys.size, found.length, `a label set appears twice in ${family}`);
  return found;
}

// ---------------------------------------------------------------- pots

Deno.test("5,000 pots from Monzo: at most 100 by name and other per family, the same sums, a bounded scrape", async () => {
  const data = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  const account = aliceCurrent(data);
  // 5,000 made-up pots with 300-character names.
  const flood = manyPots("Flood", 5_000, 300);
  account.pots.push(...flood);
  await withHarness({ fake: { data } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1);
    const live = account.pots.filter((p) => !p.deleted);
    const balances = potRows(text, "monzo_pot_balance");
    const goals = potRows(text, "monzo_pot_goal");
    assert.ok(balances.length <= MAX_POTS + 1, `${balances.length} pot balances`);
    assert.ok(goals.length <= MAX_POTS + 1, `${goals.length} pot goals`);
    // The sums over every live pot, from the fake's own figures.
    const balanceSum = live.reduce((sum, p) => sum + p.balance, 0);
    const goalSum = live.reduce((sum, p) => sum + (p.goalAmount ?? 0), 0);
    assert.equal(balances.reduce((sum, row) => sum + pence(row.value), 0), balanceSum);
    assert.equal(goals.reduce((sum, row) => sum + pence(row.value), 0), goalSum);
    // The largest pots keep their id and name (the household's own first); the smallest do not.
    const kept = new Set(balances.map((row) => row.labels.get("pot_id")));
    const largest = [...live].sort((a, b) => b.balance - a.balance || (a.id < b.id ? -1 : 1));
    for (const pot of largest.slice(0, MAX_POTS)) assert.ok(kept.has(pot.id), `${pot.id} is not exported`);
    assert.ok(!kept.has(flood[0].id));
    assert.ok(kept.has(OTHER_POT));
    assert.ok(!kept.has(DELETED_POT));
    // Names are cut: at most 200 characters and the ellipsis.
    for (const row of balances) assert.ok(codePoints(row.labels.get("pot_name") ?? "") <= 201, row.key);
    // With every pot kept it held 10,000 series of 300-character names (about 3.5 MB); now about 200.
    assert.ok(text.length < 150_000, `the scrape is ${text.length} characters`);
  });
});

Deno.test("a pot listed twice, or one Monzo calls other, never gives two series of one label set", async () => {
  const data = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  const account = aliceCurrent(data);
  const flood = manyPots("Flood", 150);
  account.pots.push(...flood, flood[142], { ...flood[0], id: OTHER_POT, name: OTHER_POT, balance: 9_999_999 });
  await withHarness({ fake: { data } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1);
    const balances = potRows(text, "monzo_pot_balance");
    potRows(text, "monzo_pot_goal");
    // The pot listed twice counts once; Monzo's "other", the largest pot, is added up with the rest all the same.
    const unique = new Map(account.pots.filter((p) => !p.deleted).map((p) => [p.id, p]));
    const sum = [...unique.values()].reduce((total, p) => total + p.balance, 0);
    assert.equal(balances.reduce((total, row) => total + pence(row.value), 0), sum);
    assert.equal(balances.filter((row) => row.labels.get("pot_id") === flood[142].id).length, 1);
  });
});

Deno.test("pots beyond the bound in thousands of currencies: at most 5 other rows, the rest left out and said", async () => {
  const data = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  const account = aliceCurrent(data);
  // 5,000 made-up pots, each in a currency of its own.
  const flood = manyPots("Money", 5_000).map((pot, i) => ({ ...pot, currency: `X${String(i).padStart(4, "0")}` }));
  account.pots.push(...flood);
  await withHarness({ fake: { data } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1);
    for (const family of ["monzo_pot_balance", "monzo_pot_goal"]) {
      const found = potRows(text, family);
      assert.ok(found.length <= MAX_POTS + MAX_OTHER_CURRENCIES, `${found.length} series of ${family}`);
      const others = found.filter((row) => row.labels.get("pot_id") === OTHER_POT);
      assert.ok(others.length <= MAX_OTHER_CURRENCIES, `${others.length} other rows of ${family}`);
      // Each other row is the sum of the folded pots of its currency: here the one pot of it.
      for (const row of others) {
        const pot = flood.find((p) => p.currency === row.labels.get("currency"));
        assert.ok(pot, row.key);
        const figure = family === "monzo_pot_balance" ? pot.balance : pot.goalAmount;
        assert.equal(pence(row.value), figure, row.key);
      }
    }
    // Kept: the household's 4 live pots and the 96 largest made-up ones; other rows: the next 5.
    const leftOut = account.pots.filter((p) => !p.deleted).length - MAX_POTS - MAX_OTHER_CURRENCIES;
    const said = h.lines.filter((line) => line.includes(`pot_id="${OTHER_POT}"`));
    assert.equal(said.length, 1, h.lines.join("\n"));
    assert.match(said[0], new RegExp(`: ${MAX_OTHER_CURRENCIES} are added up .* and ${leftOut} in more than`));
    assert.ok(
      (await page(h)).includes(`and ${leftOut} in more than ${MAX_OTHER_CURRENCIES} other currencies are left out`),
    );
  });
});

Deno.test("folding pots into other is logged once across polls, noted on the status page, and logged when it ends", async () => {
  const data = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  const account = aliceCurrent(data);
  account.pots.push(...manyPots("Flood", 250));
  await withHarness({ fake: { data } }, async (h) => {
    const folded = () => h.lines.filter((line) => line.includes(`pots: `) && line.includes(`pot_id="${OTHER_POT}"`));
    const foldedCount = account.pots.filter((p) => !p.deleted).length - MAX_POTS;
    await logIn(h, ALICE);
    await poll(h);
    await poll(h, MINUTE);
    await poll(h, MINUTE);
    assert.equal(folded().length, 1, h.lines.join("\n"));
    assert.match(
      folded()[0],
      new RegExp(`WARN Account ${ALICE_CURRENT} has more than ${MAX_POTS} pots: ${foldedCount} `),
    );
    assert.ok((await page(h)).includes(`${foldedCount} of its pots are added up under pot_id=&quot;other&quot;`));
    assert.equal(sample(await metrics(h), "monzo_up"), 1);
    // The user empties the made-up pots away: the bound no longer applies, which is said once.
    account.pots = account.pots.filter((p) => !p.id.includes("Flood"));
    await poll(h, MINUTE);
    await poll(h, MINUTE);
    const ended = h.lines.filter((line) => line.includes(`${MAX_POTS} pots or fewer again`));
    assert.equal(ended.length, 1, h.lines.join("\n"));
    assert.equal(folded().length, 1);
    assert.ok(!(await page(h)).includes("of its pots are added up"));
    assert.ok(!potRows(await metrics(h), "monzo_pot_balance").some((row) => row.labels.get("pot_id") === OTHER_POT));
  });
});

// ---------------------------------------------------------------- accounts

/** The open accounts Alice's login lists in `data`, oldest first (ties by id), as the bound ranks them. */
function aliceOpenAccounts(data: FakeData) {
  return data.accounts
    .filter((a) => a.owners.includes(ALICE) && !a.closed && a.type !== "uk_monzo_flex_backing_loan")
    .sort((a, b) => Date.parse(a.created) - Date.parse(b.created) || (a.id < b.id ? -1 : 1));
}

/** `/path` requests made since the last reset, per account id in the query. */
function accountsAsked(h: Harness, path: string): Set<string> {
  return new Set(
    h.fake.requests.filter((r) => r.path === path)
      .map((r) => r.query.account_id ?? r.query.current_account_id),
  );
}

Deno.test("5,000 accounts from Monzo: the 50 oldest exported, every family and the requests bounded", async () => {
  const data = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  data.accounts.push(...manyAccounts(ALICE, 5_000, T0 - 24 * 60 * MINUTE));
  await withHarness({ fake: { data } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1);
    const expected = aliceOpenAccounts(data).slice(0, MAX_ACCOUNTS).map((a) => a.id).sort();
    const info = rows(text).filter((row) => row.name === "monzo_account_info");
    assert.deepEqual(info.map((row) => row.labels.get("account_id")).sort(), expected);
    // Every family with an account_id label speaks of those accounts only.
    const everyAccount = new Set(
      rows(text).map((row) => row.labels.get("account_id")).filter((id) => id !== undefined),
    );
    assert.deepEqual([...everyAccount].sort(), expected);
    for (const family of ["monzo_balance", "monzo_total_balance", "monzo_spend_today", "monzo_transactions_stored"]) {
      assert.equal(rows(text).filter((row) => row.name === family).length, MAX_ACCOUNTS, family);
    }
    // Nor is Monzo asked about the others: at most 50 accounts' balances, pots and transactions a poll.
    for (const path of ["/balance", "/pots", "/transactions"]) {
      assert.deepEqual([...accountsAsked(h, path)].sort(), expected, path);
    }
    assert.ok(text.length < 100_000, `the scrape is ${text.length} characters`);
  });
});

Deno.test("leaving accounts out is logged once across polls, noted on the status page, and logged when it ends", async () => {
  const data = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  const flood = manyAccounts(ALICE, 60, T0 - 24 * 60 * MINUTE);
  data.accounts.push(...flood);
  await withHarness({ fake: { data } }, async (h) => {
    const leftOutLines = () => h.lines.filter((line) => line.includes(`more than ${MAX_ACCOUNTS}:`));
    const leftOut = aliceOpenAccounts(data).length - MAX_ACCOUNTS;
    await logIn(h, ALICE);
    await poll(h);
    await poll(h, MINUTE);
    // Discovery runs again every hour: the list is the same, so nothing more is said.
    await poll(h, REDISCOVER_AFTER_MS);
    await poll(h, MINUTE);
    assert.equal(leftOutLines().length, 1, h.lines.join("\n"));
    assert.match(leftOutLines()[0], new RegExp(`WARN Monzo lists ${leftOut + MAX_ACCOUNTS} open accounts`));
    assert.match(leftOutLines()[0], new RegExp(`${leftOut} are left out`));
    assert.ok((await page(h)).includes(`${leftOut} more open accounts that Monzo lists are left out`));
    assert.equal(sample(await metrics(h), "monzo_up"), 1);
    // The made-up accounts are closed: every open account is exported again, which is said once.
    for (const account of flood.slice(0, 40)) account.closed = true;
    await poll(h, REDISCOVER_AFTER_MS);
    await poll(h, REDISCOVER_AFTER_MS);
    const ended = h.lines.filter((line) => line.includes(`${MAX_ACCOUNTS} open accounts or fewer again`));
    assert.equal(ended.length, 1, h.lines.join("\n"));
    assert.equal(leftOutLines().length, 1);
    assert.ok(!(await page(h)).includes("more open accounts that Monzo lists are left out"));
    const info = rows(await metrics(h)).filter((row) => row.name === "monzo_account_info");
    assert.equal(info.length, aliceOpenAccounts(data).length);
  });
});

// ---------------------------------------------------------------- label values

Deno.test("label values from Monzo are bounded: owners, descriptions and pot names of any length", async () => {
  const data = householdData(T0, { historyDays: TEST_HISTORY_DAYS });
  const account = aliceCurrent(data);
  const crowd = Array.from({ length: 2_000 }, (_, i) => `user_00009Crowd${String(i).padStart(6, "0")}`);
  account.owners = [ALICE, ...crowd];
  account.description = "d".repeat(10_000);
  account.pots.push({ ...manyPots("Long", 1, 10_000)[0] });
  await withHarness({ fake: { data } }, async (h) => {
    await logIn(h, ALICE);
    await poll(h);
    const text = await metrics(h);
    assert.equal(sample(text, "monzo_up"), 1);
    // No label value longer than an id may be (256); names and lists of names 200 and the ellipsis.
    for (const row of rows(text)) {
      for (const [label, value] of row.labels) {
        const limit = ["owners", "description", "pot_name"].includes(label) ? MAX_OWNERS_LABEL + 1 : 256;
        assert.ok(codePoints(value) <= limit, `${label} of ${row.name} is ${codePoints(value)} characters`);
      }
    }
    const info = rows(text).find((row) =>
      row.name === "monzo_account_info" && row.labels.get("account_id") === ALICE_CURRENT
    );
    assert.ok(info?.labels.get("owners")?.startsWith("Alice Example, user_00009Crowd000000"), info?.key);
    // The status page lists at most 10 owners of an account, not thousands.
    const landing = await page(h);
    assert.ok(landing.includes(crowd[MAX_OWNERS - 2]));
    assert.ok(!landing.includes(crowd[MAX_OWNERS - 1]), "the 11th owner is on the status page");
  });
});
