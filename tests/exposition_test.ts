import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import {
  createExpositionCache,
  escapeHelp,
  escapeLabelValue,
  EXPOSITION_CONTENT_TYPE,
  gzipWithCompressionStream,
  OPENMETRICS_CONTENT_TYPE,
  renderExposition,
  renderOpenMetrics,
} from "../lib/exposition/exposition.ts";
import type { Balance, Pot } from "../lib/monzo/monzo_schemas.ts";
import { type MonzoClient, REQUEST_FAMILIES } from "../lib/monzo/monzo_client.ts";
import { startSteps } from "../lib/poll/steps.ts";
import { decodeStoredTransaction, type Transaction, transactionSchema } from "../lib/monzo/transaction.ts";
import { TransactionStore } from "../lib/store/transaction_store.ts";
import { publishStep, type StepContext, type StepState } from "../lib/poll/step.ts";
import { problem } from "../lib/shared/problems.ts";
import { err, ok } from "../lib/shared/result.ts";
import { type AccountEntry, BUILD_FAMILIES, type BuildInfo, Snapshot } from "../lib/exposition/snapshot.ts";
import { APPROVAL_FAMILIES, POLL_FAMILIES } from "../lib/poll/poller.ts";
import { LOGIN_FAMILIES } from "../lib/logins/token_store.ts";
import { binaryExists, PROMTOOL, promtoolCheck } from "./helpers/e2e.ts";

// ---------------------------------------------------------------------------------------------
// A small parser of the text format 0.0.4, written from the format's description, so that tests
// look at series and values rather than at the renderer's exact spelling.

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  /** The value as written. */
  readonly value: string;
  readonly timestamp: string | null;
  /** The line as written. */
  readonly line: string;
}

interface Parsed {
  readonly samples: Sample[];
  /** Every comment line, in order: kind, metric name, rest. */
  readonly comments: Array<{ kind: "HELP" | "TYPE"; name: string; text: string; index: number }>;
  /** Sample and comment lines in order, to check grouping. */
  readonly order: Array<{ kind: "HELP" | "TYPE" | "sample"; name: string }>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseLabels(text: string, line: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let at = 1; // after "{"
  while (text[at] !== "}") {
    const name = LABEL_NAME.exec(text.slice(at))?.[0];
    assert.ok(name, `bad label name in: ${line}`);
    at += name.length;
    assert.equal(text.slice(at, at + 2), '="', `expected =" in: ${line}`);
    at += 2;
    let value = "";
    while (text[at] !== '"') {
      assert.ok(at < text.length, `unterminated label value in: ${line}`);
      if (text[at] === "\\") {
        const next = text[at + 1];
        if (next === "\\") value += "\\";
        else if (next === '"') value += '"';
        else if (next === "n") value += "\n";
        else assert.fail(`invalid escape \\${next} in: ${line}`);
        at += 2;
      } else {
        value += text[at];
        at += 1;
      }
    }
    at += 1; // closing quote
    assert.ok(!(name in labels), `label ${name} repeated in: ${line}`);
    labels[name] = value;
    if (text[at] === ",") at += 1;
    else assert.equal(text[at], "}", `expected , or } in: ${line}`);
  }
  return { labels, rest: text.slice(at + 1) };
}

function parseExposition(text: string): Parsed {
  assert.ok(text.endsWith("\n"), "the exposition must end with a newline");
  const lines = text.slice(0, -1).split("\n");
  const parsed: Parsed = { samples: [], comments: [], order: [] };
  lines.forEach((line, index) => {
    assert.notEqual(line, "", `blank line ${index + 1}`);
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment) {
      const kind = comment[1] as "HELP" | "TYPE";
      parsed.comments.push({ kind, name: comment[2], text: comment[3], index });
      parsed.order.push({ kind, name: comment[2] });
      return;
    }
    assert.ok(!line.startsWith("#"), `unexpected comment: ${line}`);
    const name = METRIC_NAME.exec(line)?.[0];
    assert.ok(name, `bad sample line: ${line}`);
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) ({ labels, rest } = parseLabels(rest, line));
    const fields = /^ (\S+)(?: (\S+))?$/.exec(rest);
    assert.ok(fields, `bad value part in: ${line}`);
    parsed.samples.push({ name, labels, value: fields[1], timestamp: fields[2] ?? null, line });
    parsed.order.push({ kind: "sample", name });
  });
  return parsed;
}

function series(parsed: Parsed, name: string): Sample[] {
  return parsed.samples.filter((sample) => sample.name === name);
}

/** The one sample of `name` whose labels include `labels`. */
function sampleOf(parsed: Parsed, name: string, labels: Record<string, string> = {}): Sample {
  const found = series(parsed, name).filter((sample) =>
    Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  );
  assert.equal(found.length, 1, `expected one ${name} ${JSON.stringify(labels)}, found ${found.length}`);
  return found[0];
}

/** Pence as pounds, written with decimal arithmetic on integers: no floating point involved. */
function poundsText(pence: number): string {
  const sign = pence < 0 ? "-" : "";
  const abs = BigInt(Math.abs(pence));
  const whole = (abs / 100n).toString();
  const fraction = (abs % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return `${sign}${whole}${fraction ? `.${fraction}` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// Building states through the real Snapshot.

const LIVE: BuildInfo = { version: "1.2.3-test", mode: "live" };
const T0 = Date.UTC(2026, 0, 15, 9, 0, 0);

const CURRENT: AccountEntry = {
  id: "acc_00009Current",
  type: "uk_retail",
  description: "user_00009Alice",
  owners: ["Alice"],
  visibleTo: ["user_00009Alice"],
  created: null,
};
const JOINT: AccountEntry = {
  id: "acc_00009Joint",
  type: "uk_retail_joint",
  description: 'Alice & Bob\'s "house" account',
  owners: ["Alice", "Bob"],
  visibleTo: ["user_00009Alice", "user_00009Bob"],
  created: null,
};

function balance(overrides: Partial<Balance> = {}): Balance {
  return {
    balance: 10_000,
    total_balance: 20_000,
    balance_including_flexible_savings: 15_000,
    currency: "GBP",
    spend_today: 0,
    ...overrides,
  };
}

function pot(id: string, overrides: Partial<Pot> = {}): Pot {
  return { id, name: `Pot ${id}`, balance: 1_000, currency: "GBP", deleted: false, ...overrides };
}

interface PollInput {
  readonly at: number;
  /** The accounts discovery finds; when absent, discovery is not due and keeps its list. */
  readonly accounts?: readonly AccountEntry[];
  readonly values?: ReadonlyArray<readonly [string, { balance: Balance; pots: Pot[] }]>;
  readonly problems?: readonly string[];
  /** Accounts whose /balance and /pots fail in this poll. */
  readonly accountErrors?: ReadonlyArray<readonly [string, string]>;
  /** What `/transactions` answers for every query, by account. */
  readonly transactions?: ReadonlyArray<readonly [string, readonly Transaction[]]>;
}

/** A Monzo client answering from `input`; calls the steps do not make are not expected. */
function clientFor(input: PollInput, listed: readonly AccountEntry[]): MonzoClient {
  const values = new Map(input.values ?? []);
  const errors = new Map(input.accountErrors ?? []);
  const fail = (endpoint: string, detail: string) => err({ kind: "http" as const, endpoint, status: 500, detail });
  const unexpected = () => Promise.reject(new Error("not used by the poll steps"));
  return {
    whoami: unexpected,
    token: unexpected,
    accounts: () =>
      Promise.resolve(ok(listed.map((a) => ({
        id: a.id,
        type: a.type,
        description: a.description,
        closed: false,
        owners: a.owners.map((name) => ({ user_id: `user_${name}`, preferred_name: name })),
        sort_code: null,
        account_number: null,
        created: null,
      })))),
    transactions: (_token, query) => {
      const rows = [...(new Map(input.transactions ?? []).get(query.accountId) ?? [])];
      return Promise.resolve(
        ok({ transactions: rows, rejected: [], size: rows.length, lastId: rows.at(-1)?.id ?? null }),
      );
    },
    balance: (_token, id) => {
      const figures = values.get(id);
      return Promise.resolve(
        figures && !errors.has(id) ? ok(figures.balance) : fail("/balance", errors.get(id) ?? "no data"),
      );
    },
    pots: (_token, id) => {
      const figures = values.get(id);
      return Promise.resolve(
        figures && !errors.has(id) ? ok(figures.pots) : fail("/pots", errors.get(id) ?? "no data"),
      );
    },
  };
}

/** Each test snapshot's step states, memory inside: the poller's own memory, which the snapshot never holds. */
const stepMemory = new WeakMap<Snapshot, readonly StepState[]>();

/** Runs the real poll steps against answers from `input`, as the poller does, and applies the poll. */
async function poll(snapshot: Snapshot, input: PollInput): Promise<void> {
  const listed = input.accounts ?? snapshot.state.accounts;
  const client = clientFor(input, listed);
  let accounts = snapshot.state.accounts;
  let ownAccounts: StepContext["ownAccounts"] = [];
  const steps: StepState[] = [];
  for (const step of stepMemory.get(snapshot) ?? []) {
    const context: StepContext = {
      client,
      signal: new AbortController().signal,
      now: () => input.at - 500,
      accountId: null,
      // A login added makes discovery due at once; the same set leaves its list alone.
      logins: input.accounts ? ["reader", `added-${input.at}`] : ["reader"],
      accounts,
      ownAccounts,
      readerOf: () => "reader",
      grantedAt: () => null,
      call: async (_key, request) => {
        const answer = await request("token");
        return answer.ok ? answer : err({ kind: "failed", failure: answer.error, detail: answer.error.detail });
      },
    };
    const next = await step.next(context);
    if (next.accounts) accounts = next.accounts;
    if (next.ownAccounts) ownAccounts = next.ownAccounts;
    steps.push(next);
  }
  snapshot.applyPoll({
    startedAt: input.at - 1_500,
    finishedAt: input.at,
    problems: [
      ...(input.problems ?? []).map((detail) => problem("unreachable", "", { detail })),
      ...steps.flatMap((step) => step.problems),
    ],
    users: new Map(),
    steps: steps.map(publishStep),
    backoffUntil: null,
  });
  stepMemory.set(snapshot, steps);
}

// One store in memory for the whole file: the transactions step reads it, and these tests add nothing to it.
const kv = await Deno.openKv(":memory:");
// Only richSnapshot() polls transactions, always the same ones on the joint account, so tests cannot disturb one another.
const transactions = await TransactionStore.open(kv, { decode: decodeStoredTransaction, recentSince: 0 });
if (!transactions.ok) throw new Error(transactions.error);
const STEPS = {
  config: {
    historyDays: 0,
    monthStartDay: 1,
    budgets: new Map([["eating_out", 250]]),
    budgetCurrency: "GBP",
    // A rule that changes nothing, so monzo_rules_matched has a sample and every other figure is Monzo's.
    rules: [{
      index: 1,
      label: "meals",
      description: null,
      merchant: null,
      category: "eating_out",
      accountId: null,
      amountAbove: null,
      amountBelow: null,
      id: null,
      setCategory: "eating_out",
      exclude: false,
      share: null,
    }],
  },
  transactions: transactions.value,
  // Nothing here is past a bound, so the steps have nothing to log.
  log: { info: () => {}, warn: () => {} },
};

/** A snapshot before any poll, with the exporter's real steps. */
function fresh(build: BuildInfo = LIVE): Snapshot {
  const steps = startSteps(STEPS);
  const snapshot = new Snapshot(build, steps.map(publishStep));
  stepMemory.set(snapshot, steps);
  return snapshot;
}

/** One account with the given balance figures and pots, after one successful poll. */
async function oneAccount(figures: Partial<Balance>, pots: Pot[] = [], build: BuildInfo = LIVE): Promise<Snapshot> {
  const snapshot = fresh(build);
  await poll(snapshot, { at: T0, accounts: [CURRENT], values: [[CURRENT.id, { balance: balance(figures), pots }]] });
  return snapshot;
}

/** A state with something in every family, and awkward label values. */
/** A Monzo transaction on the joint account in the budget month of {@link T0}. */
function monzoTransaction(
  id: string,
  amount: number,
  category: string,
  inSpending = true,
  extra: Record<string, unknown> = {},
): Transaction {
  return transactionSchema.parse({
    id,
    created: "2026-01-10T12:00:00.000Z",
    settled: "2026-01-11T12:00:00.000Z",
    amount,
    currency: "GBP",
    category,
    include_in_spending: inSpending,
    ...extra,
  });
}

async function richSnapshot(): Promise<Snapshot> {
  const snapshot = fresh();
  await poll(snapshot, {
    at: T0,
    transactions: [[JOINT.id, [
      monzoTransaction("tx_00009Dinner", -4_250, "eating_out"),
      monzoTransaction("tx_00009Salary", 250_000, "income", false),
      // From the other account: internal, in no figure but monzo_internal_transfers_this_month.
      monzoTransaction("tx_00009FromCurrent", 50_000, "transfers", false, {
        counterparty: { account_id: CURRENT.id, user_id: "user_00009Alice" },
      }),
    ]]],
    accounts: [CURRENT, JOINT],
    values: [
      [CURRENT.id, {
        balance: balance({ balance: 123_456, spend_today: -2_599 }),
        pots: [
          pot("pot_00009Holiday", { name: 'Holiday "Fund" \\ 2026\nsecond line', goal_amount: 250_000 }),
          pot("pot_00009Rainy", { name: "Rainy day", goal_amount: null }),
        ],
      }],
      [JOINT.id, {
        balance: balance({ balance: -5_001, total_balance: -1, balance_including_flexible_savings: 0 }),
        pots: [pot("pot_00009Bills", { name: "Bills ✓ £", balance: 0, goal_amount: 1 })],
      }],
    ],
  });
  const ended = problem("logged_out", "user_00009Bob", { detail: "invalid_grant" });
  snapshot.countRequest("/accounts", "200");
  snapshot.countRequest("/balance", "200");
  snapshot.countRequest("/balance", "200");
  snapshot.countRequest("/pots", "timeout");
  snapshot.countRequest("/balance", "403");
  snapshot.setLogins([
    { userId: "user_00009Alice", loggedIn: true, expiresAt: T0 + 6 * 3_600_000, grantedAt: T0 - 86_400_000 },
    { userId: null, loggedIn: true, expiresAt: T0 + 3_600_000 },
    { userId: "user_00009Bob", loggedIn: false, reason: ended.message, problem: ended },
  ], null);
  return snapshot;
}

// ---------------------------------------------------------------------------------------------

Deno.test("the HTTP content type is the text format 0.0.4 in UTF-8", () => {
  assert.equal(EXPOSITION_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
});

Deno.test("balances in pence are exported in pounds", async () => {
  const parsed = parseExposition(renderExposition(
    (await oneAccount({ balance: 123_456, total_balance: 200_001, balance_including_flexible_savings: 150_010 })).state,
  ));
  const labels = { account_id: CURRENT.id, currency: "GBP" };
  assert.equal(sampleOf(parsed, "monzo_balance", labels).value, "1234.56");
  assert.equal(sampleOf(parsed, "monzo_total_balance", labels).value, "2000.01");
  assert.equal(sampleOf(parsed, "monzo_balance_including_flexible_savings", labels).value, "1500.1");
});

Deno.test("an overdrawn balance is negative pounds", async () => {
  const parsed = parseExposition(renderExposition((await oneAccount({ balance: -5_001, total_balance: -1 })).state));
  assert.equal(sampleOf(parsed, "monzo_balance").value, "-50.01");
  assert.equal(sampleOf(parsed, "monzo_total_balance").value, "-0.01");
});

Deno.test("pence convert to pounds without floating-point noise, across magnitudes", async () => {
  const amounts = [
    0,
    1,
    7,
    10,
    29,
    57,
    99,
    100,
    101,
    110,
    999,
    1_005,
    33_333,
    123_456,
    10_000_000_00,
    2 ** 31,
    999_999_999_99,
    99_999_999_999_999, // about a trillion pounds; near 10^13 pounds a double stops holding every penny
    -1,
    -29,
    -5_001,
    -999_999,
  ];
  for (let i = 0; i < 200; i++) amounts.push(Math.floor((Math.random() - 0.3) * 10_000_000));
  for (const pence of amounts) {
    const parsed = parseExposition(renderExposition(
      (await oneAccount({ balance: pence }, [pot("pot_1", { balance: pence })]))
        .state,
    ));
    assert.equal(sampleOf(parsed, "monzo_balance").value, poundsText(pence), `${pence} pence`);
    assert.equal(sampleOf(parsed, "monzo_pot_balance").value, poundsText(pence), `${pence} pence in a pot`);
  }
});

Deno.test("spend_today flips Monzo's sign: spending is positive, and zero is 0 not -0", async () => {
  const spent = parseExposition(renderExposition((await oneAccount({ spend_today: -2_599 })).state));
  assert.equal(sampleOf(spent, "monzo_spend_today").value, "25.99");
  const refunded = parseExposition(renderExposition((await oneAccount({ spend_today: 500 })).state));
  assert.equal(sampleOf(refunded, "monzo_spend_today").value, "-5");
  const none = parseExposition(renderExposition((await oneAccount({ spend_today: 0 })).state));
  assert.equal(sampleOf(none, "monzo_spend_today").value, "0");
});

Deno.test("escapeLabelValue escapes backslash, double quote and newline, and nothing else", () => {
  assert.equal(escapeLabelValue("plain text £ ✓"), "plain text £ ✓");
  assert.equal(escapeLabelValue('say "hi"'), 'say \\"hi\\"');
  assert.equal(escapeLabelValue("C:\\pots"), "C:\\\\pots");
  assert.equal(escapeLabelValue("one\ntwo"), "one\\ntwo");
  // A backslash before a quote or an n must not merge into one escape.
  assert.equal(escapeLabelValue('\\"'), '\\\\\\"');
  assert.equal(escapeLabelValue("\\n"), "\\\\n");
  assert.equal(escapeLabelValue("tab\there"), "tab\there");
  assert.equal(escapeLabelValue(""), "");
});

Deno.test("escapeHelp escapes backslash and newline but leaves double quotes", () => {
  assert.equal(escapeHelp("Balance in pounds."), "Balance in pounds.");
  assert.equal(escapeHelp("a\\b"), "a\\\\b");
  assert.equal(escapeHelp("line one\nline two"), "line one\\nline two");
  assert.equal(escapeHelp('the "pot"'), 'the "pot"');
  assert.equal(escapeHelp("\\n"), "\\\\n");
});

Deno.test("pot names with quotes, backslashes and newlines are escaped in label values", async () => {
  const name = 'Holiday "Fund" \\ 2026\nsecond line';
  const text = renderExposition((await oneAccount({}, [pot("pot_00009Holiday", { name, goal_amount: 100 })])).state);
  const parsed = parseExposition(text);
  for (const metric of ["monzo_pot_balance", "monzo_pot_goal"]) {
    const sample = sampleOf(parsed, metric, { pot_id: "pot_00009Holiday" });
    assert.equal(sample.labels.pot_name, name, metric);
    assert.ok(sample.line.includes('pot_name="Holiday \\"Fund\\" \\\\ 2026\\nsecond line"'), sample.line);
  }
});

Deno.test("the account description and owners are label values, escaped", async () => {
  const snapshot = fresh();
  await poll(snapshot, { at: T0, accounts: [JOINT], values: [[JOINT.id, { balance: balance(), pots: [] }]] });
  const info = sampleOf(parseExposition(renderExposition(snapshot.state)), "monzo_account_info");
  assert.deepEqual(info.labels, {
    account_id: JOINT.id,
    account_type: JOINT.type,
    description: JOINT.description,
    owners: "Alice, Bob",
  });
  assert.equal(info.value, "1");
});

Deno.test("pot_goal is exported only for pots with a goal", async () => {
  const pots = [
    pot("pot_goal", { goal_amount: 50_000 }),
    pot("pot_null", { goal_amount: null }),
    pot("pot_absent"),
    pot("pot_zero", { goal_amount: 0 }),
  ];
  const parsed = parseExposition(renderExposition((await oneAccount({}, pots)).state));
  assert.deepEqual(series(parsed, "monzo_pot_balance").map((s) => s.labels.pot_id).sort(), [
    "pot_absent",
    "pot_goal",
    "pot_null",
    "pot_zero",
  ]);
  const goals = series(parsed, "monzo_pot_goal");
  assert.deepEqual(goals.map((s) => [s.labels.pot_id, s.value]), [["pot_goal", "500"]]);
});

Deno.test("a pot deleted since the last poll is no longer exported", async () => {
  const snapshot = await oneAccount({}, [pot("pot_kept"), pot("pot_gone", { goal_amount: 100 })]);
  const before = parseExposition(renderExposition(snapshot.state));
  assert.equal(series(before, "monzo_pot_balance").length, 2);
  // The poller leaves deleted pots out of the figures it reports.
  await poll(snapshot, { at: T0 + 60_000, values: [[CURRENT.id, { balance: balance(), pots: [pot("pot_kept")] }]] });
  const text = renderExposition(snapshot.state);
  assert.ok(!text.includes("pot_gone"), text);
  assert.equal(sampleOf(parseExposition(text), "monzo_pot_balance").labels.pot_id, "pot_kept");
});

Deno.test("an account no longer discovered is no longer exported", async () => {
  const snapshot = fresh();
  await poll(snapshot, {
    at: T0,
    accounts: [CURRENT, JOINT],
    values: [[CURRENT.id, { balance: balance(), pots: [] }], [JOINT.id, { balance: balance(), pots: [pot("p")] }]],
  });
  await poll(snapshot, { at: T0 + 60_000, accounts: [CURRENT], values: [] });
  const text = renderExposition(snapshot.state);
  assert.ok(!text.includes(JOINT.id), text);
  assert.equal(sampleOf(parseExposition(text), "monzo_balance").labels.account_id, CURRENT.id);
});

Deno.test("a failed poll keeps the last values, sets monzo_up 0 and keeps the last success time", async () => {
  const snapshot = await oneAccount({ balance: 123_456 }, [pot("pot_1", { balance: 4_200 })]);
  const first = parseExposition(renderExposition(snapshot.state));
  assert.equal(sampleOf(first, "monzo_up").value, "1");
  assert.equal(sampleOf(first, "monzo_last_successful_poll_timestamp_seconds").value, String(T0 / 1000));

  await poll(snapshot, {
    at: T0 + 60_000,
    problems: ["Monzo did not answer in time; the figures are from the last poll"],
    accountErrors: [[CURRENT.id, "timeout"]],
  });
  const after = parseExposition(renderExposition(snapshot.state));
  assert.equal(sampleOf(after, "monzo_up").value, "0");
  assert.equal(sampleOf(after, "monzo_balance").value, "1234.56");
  assert.equal(sampleOf(after, "monzo_pot_balance").value, "42");
  assert.equal(sampleOf(after, "monzo_last_successful_poll_timestamp_seconds").value, String(T0 / 1000));
  assert.equal(
    sampleOf(after, "monzo_account_last_successful_poll_timestamp_seconds", { account_id: CURRENT.id }).value,
    String((T0 - 500) / 1000),
  );
  // The failed poll is still the last poll, so its duration is reported.
  assert.equal(sampleOf(after, "monzo_poll_duration_seconds").value, "1.5");

  await poll(snapshot, { at: T0 + 120_000, values: [[CURRENT.id, { balance: balance({ balance: 1 }), pots: [] }]] });
  const recovered = parseExposition(renderExposition(snapshot.state));
  assert.equal(sampleOf(recovered, "monzo_up").value, "1");
  assert.equal(sampleOf(recovered, "monzo_balance").value, "0.01");
  assert.equal(
    sampleOf(recovered, "monzo_last_successful_poll_timestamp_seconds").value,
    String((T0 + 120_000) / 1000),
  );
});

Deno.test("before any poll monzo_up is 0 and there is no last-success time", () => {
  const parsed = parseExposition(renderExposition(fresh().state));
  assert.equal(sampleOf(parsed, "monzo_up").value, "0");
  assert.equal(series(parsed, "monzo_last_successful_poll_timestamp_seconds").length, 0);
  assert.equal(series(parsed, "monzo_balance").length, 0);
});

Deno.test("logins: expiry for each held login, logged_in 1 or 0, unknown user ids labelled unknown", async () => {
  const parsed = parseExposition(renderExposition((await richSnapshot()).state));
  assert.equal(
    sampleOf(parsed, "monzo_token_expiry_timestamp_seconds", { user_id: "user_00009Alice" }).value,
    String((T0 + 6 * 3_600_000) / 1000),
  );
  assert.equal(
    sampleOf(parsed, "monzo_token_expiry_timestamp_seconds", { user_id: "unknown" }).value,
    String((T0 + 3_600_000) / 1000),
  );
  assert.equal(series(parsed, "monzo_token_expiry_timestamp_seconds").length, 2, "no expiry for a logged-out user");
  assert.equal(sampleOf(parsed, "monzo_logged_in", { user_id: "user_00009Alice" }).value, "1");
  assert.equal(sampleOf(parsed, "monzo_logged_in", { user_id: "unknown" }).value, "1");
  assert.equal(sampleOf(parsed, "monzo_logged_in", { user_id: "user_00009Bob" }).value, "0");
});

Deno.test("requests to Monzo are counted by endpoint and code", async () => {
  const parsed = parseExposition(renderExposition((await richSnapshot()).state));
  const counts = series(parsed, "monzo_api_requests_total").map((s) =>
    `${s.labels.endpoint} ${s.labels.code} ${s.value}`
  );
  assert.deepEqual(counts.sort(), [
    "/accounts 200 1",
    "/balance 200 2",
    "/balance 403 1",
    "/pots timeout 1",
  ]);
  const type = parsed.comments.find((c) => c.kind === "TYPE" && c.name === "monzo_api_requests_total");
  assert.equal(type?.text, "counter");
});

Deno.test("build_info carries the version and the mode", () => {
  for (const build of [LIVE, { version: "0.0.1-demo", mode: "demo" } as const]) {
    const parsed = parseExposition(renderExposition(fresh(build).state));
    const info = sampleOf(parsed, "monzo_exporter_build_info");
    assert.deepEqual(info.labels, { version: build.version, mode: build.mode });
    assert.equal(info.value, "1");
  }
});

Deno.test("no sample carries a timestamp", async () => {
  const parsed = parseExposition(renderExposition((await richSnapshot()).state));
  assert.ok(parsed.samples.length > 20);
  for (const sample of parsed.samples) assert.equal(sample.timestamp, null, sample.line);
});

Deno.test("each family has one HELP and one TYPE, before its samples, which are all together", async () => {
  const parsed = parseExposition(renderExposition((await richSnapshot()).state));
  const names = [...new Set(parsed.samples.map((s) => s.name))];
  assert.ok(names.length >= 14, `expected every family to have samples, got ${names.join(", ")}`);
  for (const name of names) {
    const helps = parsed.comments.filter((c) => c.kind === "HELP" && c.name === name);
    const types = parsed.comments.filter((c) => c.kind === "TYPE" && c.name === name);
    assert.equal(helps.length, 1, `HELP lines of ${name}`);
    assert.equal(types.length, 1, `TYPE lines of ${name}`);
    assert.match(types[0].text, /^(gauge|counter)$/, name);
    assert.ok(helps[0].text.trim().length > 0, `empty HELP of ${name}`);
  }
  // Walk the lines: HELP, TYPE, then the family's samples, and a family never comes back.
  const finished = new Set<string>();
  let current: string | null = null;
  let expect: "HELP" | "TYPE" | "sample-or-next" = "HELP";
  for (const entry of parsed.order) {
    if (entry.kind === "HELP") {
      assert.ok(expect !== "TYPE", `HELP of ${entry.name} between HELP and TYPE of ${current}`);
      assert.ok(!finished.has(entry.name) && entry.name !== current, `family ${entry.name} appears twice`);
      if (current) finished.add(current);
      current = entry.name;
      expect = "TYPE";
    } else if (entry.kind === "TYPE") {
      assert.equal(expect, "TYPE", `TYPE of ${entry.name} not right after its HELP`);
      assert.equal(entry.name, current);
      expect = "sample-or-next";
    } else {
      assert.equal(expect, "sample-or-next", `sample of ${entry.name} before its TYPE`);
      assert.equal(entry.name, current, `sample of ${entry.name} inside family ${current}`);
    }
  }
  // No family is announced without samples.
  for (const comment of parsed.comments) assert.ok(names.includes(comment.name), `${comment.name} has no samples`);
});

Deno.test("every series appears once", async () => {
  const parsed = parseExposition(renderExposition((await richSnapshot()).state));
  const seen = new Set<string>();
  for (const sample of parsed.samples) {
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    assert.ok(!seen.has(key), `duplicate series: ${sample.line}`);
    seen.add(key);
  }
});

Deno.test("the exposition ends with exactly one newline", async () => {
  for (const state of [fresh().state, (await richSnapshot()).state]) {
    const text = renderExposition(state);
    assert.ok(text.endsWith("\n"));
    assert.ok(!text.endsWith("\n\n"));
  }
});

const havePromtool = binaryExists(PROMTOOL);
if (!havePromtool) console.log(`exposition_test: ${PROMTOOL} is absent, so the promtool check is skipped`);

Deno.test({
  name: "promtool check metrics accepts the exposition without complaint",
  ignore: !havePromtool,
  async fn() {
    // The check is only worth something if promtool does complain about a bad exposition.
    const bad = await promtoolCheck("# TYPE monzo_things counter\nmonzo_things 1\n");
    assert.notEqual(bad.code, 0, "promtool accepted a counter without _total and without HELP");
    assert.notEqual(bad.complaints, "");

    for (const state of [fresh().state, (await richSnapshot()).state]) {
      const text = renderExposition(state);
      const { code, complaints } = await promtoolCheck(text);
      assert.equal(complaints, "", `promtool complained:\n${complaints}\n--- exposition ---\n${text}`);
      assert.equal(code, 0);
    }
  },
});

Deno.test("the exposition cache re-renders after a change and reuses its text otherwise", async () => {
  const snapshot = await richSnapshot();
  const cache = createExpositionCache(snapshot);
  const text = () => cache("text", false).body as string;
  const first = text();
  assert.equal(first, renderExposition(snapshot.state));
  assert.equal(text(), first);
  const openMetrics = cache("openmetrics", false).body;

  // Counting in the state's own map, behind the Snapshot's back, leaves the state object the same:
  // a cache that re-rendered on every call would show the count, one that reuses its text does not.
  (snapshot.state.requests as Map<string, number>).set("/sneaky 200", 1);
  assert.equal(text(), first);
  assert.ok(!text().includes("/sneaky"));
  assert.equal(cache("openmetrics", false).body, openMetrics, "OpenMetrics rendered per call");

  snapshot.countRequest("/ping/whoami", "200");
  const second = text();
  assert.notEqual(second, first);
  assert.ok(second.includes('monzo_api_requests_total{endpoint="/ping/whoami",code="200"} 1'), second);
  assert.equal(text(), second);
  assert.equal(cache("openmetrics", false).body, renderOpenMetrics(snapshot.state));

  await poll(snapshot, { at: T0 + 60_000, problems: ["Monzo is down"] });
  const third = text();
  assert.equal(sampleOf(parseExposition(third), "monzo_up").value, "0");
  assert.equal(third, renderExposition(snapshot.state));
});

Deno.test("the exposition cache gzips each format once per change, only when asked, and labels each form", async () => {
  const snapshot = await richSnapshot();
  const gzipped: string[] = [];
  const cache = createExpositionCache(snapshot, {
    gzip: (data) => {
      gzipped.push(new TextDecoder().decode(data));
      return gzipWithCompressionStream(data);
    },
  });
  for (let i = 0; i < 3; i++) cache("text", false);
  assert.equal(gzipped.length, 0, "gzipped for a plain answer");
  // Asked three times while the first compression runs: one compression, and all get its bytes.
  const first = await Promise.all([cache("text", true), cache("text", true), cache("text", true)]);
  assert.deepEqual(gzipped, [renderExposition(snapshot.state)]);
  assert.ok(first[1] === first[0] && first[2] === first[0]);
  for (let i = 0; i < 3; i++) await cache("openmetrics", true);
  assert.deepEqual(gzipped.slice(1), [renderOpenMetrics(snapshot.state)]);

  for (const format of ["text", "openmetrics"] as const) {
    const plain = await cache(format, false);
    const zipped = cache(format, true);
    assert.ok(!(zipped instanceof Promise), "a compressed form is stored, not compressed again");
    assert.ok(zipped.body instanceof Uint8Array);
    assert.equal(gunzipSync(zipped.body).toString("utf8"), plain.body);
    const type = format === "text" ? EXPOSITION_CONTENT_TYPE : OPENMETRICS_CONTENT_TYPE;
    assert.deepEqual(plain.headers, { "content-type": type, vary: "Accept, Accept-Encoding" });
    assert.deepEqual(zipped.headers, { ...plain.headers, "content-encoding": "gzip" });
  }

  snapshot.countRequest("/ping/whoami", "200");
  cache("text", false);
  assert.equal(gzipped.length, 2, "gzipped after a change before anyone asked for gzip");
  await cache("text", true);
  await cache("text", true);
  assert.equal(gzipped.length, 3);
  assert.equal(gzipped[2], renderExposition(snapshot.state));
});

Deno.test("a failed compression is not stored: the next gzip request compresses again", async () => {
  const snapshot = await richSnapshot();
  let calls = 0;
  const cache = createExpositionCache(snapshot, {
    gzip: (data) => {
      calls += 1;
      return calls === 1 ? Promise.reject(new Error("out of memory")) : gzipWithCompressionStream(data);
    },
  });
  await assert.rejects(async () => await cache("text", true), /out of memory/);
  const answer = await cache("text", true);
  assert.equal(calls, 2);
  assert.ok(answer.body instanceof Uint8Array);
  assert.equal(gunzipSync(answer.body).toString("utf8"), renderExposition(snapshot.state));
});

// ---------------------------------------------------------------------------------------------
// OpenMetrics 1.0.0, checked against the spec's text format: `# EOF` last, one TYPE then one HELP per
// family, a counter's family name without the `_total` of its samples, an info family's without `_info`.

interface OpenMetricsFamily {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: string[];
}

function parseOpenMetrics(text: string): OpenMetricsFamily[] {
  assert.ok(text.endsWith("\n# EOF\n"), "an OpenMetrics exposition must end with # EOF");
  const lines = text.slice(0, -"# EOF\n".length).split("\n").slice(0, -1);
  const families: OpenMetricsFamily[] = [];
  for (let i = 0; i < lines.length; i++) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|info)$/.exec(lines[i]);
    if (type) {
      const help = new RegExp(`^# HELP ${type[1]} (.*)$`).exec(lines[i + 1] ?? "");
      assert.ok(help, `no HELP right after: ${lines[i]}`);
      assert.ok(!families.some((f) => f.name === type[1]), `family ${type[1]} declared twice`);
      families.push({ name: type[1], type: type[2], help: help[1], samples: [] });
      i++;
      continue;
    }
    assert.ok(!lines[i].startsWith("#"), `unexpected comment: ${lines[i]}`);
    const family = families.at(-1);
    assert.ok(family, `sample before any TYPE: ${lines[i]}`);
    const name = METRIC_NAME.exec(lines[i])?.[0];
    const expected = family.type === "counter"
      ? `${family.name}_total`
      : family.type === "info"
      ? `${family.name}_info`
      : family.name;
    assert.equal(name, expected, `sample of ${family.type} ${family.name}: ${lines[i]}`);
    if (family.type === "info") assert.match(lines[i], / 1$/, `an info sample must be 1: ${lines[i]}`);
    family.samples.push(lines[i]);
  }
  return families;
}

Deno.test("OpenMetrics has the text format's samples, counters and infos named as the spec wants, and # EOF last", async () => {
  for (const state of [fresh().state, (await richSnapshot()).state]) {
    const text = renderExposition(state);
    const families = parseOpenMetrics(renderOpenMetrics(state));
    // The same sample lines in the same order: Prometheus stores the same series from either format.
    assert.deepEqual(families.flatMap((f) => f.samples), parseExposition(text).samples.map((s) => s.line));
    const textTypes = new Map(
      parseExposition(text).comments.filter((c) => c.kind === "TYPE").map((c) => [c.name, c.text]),
    );
    for (const family of families) {
      const textName = family.type === "counter"
        ? `${family.name}_total`
        : family.type === "info"
        ? `${family.name}_info`
        : family.name;
      assert.equal(textTypes.get(textName), family.type === "info" ? "gauge" : family.type, textName);
    }
    assert.equal(families.length, textTypes.size);
  }
  const rich = parseOpenMetrics(renderOpenMetrics((await richSnapshot()).state));
  assert.deepEqual(rich.filter((f) => f.type === "counter").map((f) => f.name).sort(), [
    "monzo_api_requests",
    "monzo_received",
    "monzo_spent",
    "monzo_transactions_rejected",
  ]);
  assert.deepEqual(rich.filter((f) => f.type === "info").map((f) => f.name).sort(), [
    "monzo_account",
    "monzo_exporter_build",
  ]);
});

Deno.test("OpenMetrics HELP escapes double quotes as well as backslashes and newlines", async () => {
  const state = (await richSnapshot()).state;
  const quoted = {
    ...state,
    steps: [{
      ...state.steps[0],
      families: [{
        name: "monzo_quoted",
        type: "gauge" as const,
        help: 'A "quoted" \\ help\nover two lines',
        samples: [{ labels: [["pot_name", 'a "b" \\ c\nd'] as const], value: 1 }],
      }],
    }],
  };
  const families = parseOpenMetrics(renderOpenMetrics(quoted));
  assert.equal(families[0].help, 'A \\"quoted\\" \\\\ help\\nover two lines');
  assert.equal(families[0].samples[0], 'monzo_quoted{pot_name="a \\"b\\" \\\\ c\\nd"} 1');
  // The text format 0.0.4 leaves the quotes of HELP alone, as its own spec says.
  assert.match(renderExposition(quoted), /^# HELP monzo_quoted A "quoted" \\\\ help\\nover two lines$/m);
});

Deno.test("the README's metrics table lists exactly the families the exporter serves, with their labels", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const documented = new Map(
    [...readme.matchAll(/^\| `(monzo_[a-z_]+)` +\| ([^|]*)\|/gm)].map((m) => [m[1], m[2].match(/[a-z_]+/g) ?? []]),
  );
  // The rich snapshot fills every family: a poll, pots with goals, requests, held and ended logins.
  const parsed = parseExposition(renderExposition((await richSnapshot()).state));
  const served = new Map<string, Set<string>>();
  for (const sample of parsed.samples) {
    const labels = served.get(sample.name) ?? new Set();
    for (const label of Object.keys(sample.labels)) labels.add(label);
    served.set(sample.name, labels);
  }
  assert.deepEqual([...documented.keys()].sort(), [...served.keys()].sort());
  for (const [name, labels] of served) {
    assert.deepEqual([...labels].sort(), [...documented.get(name) ?? []].sort(), name);
  }
});

Deno.test("the exposition declares no family: every family served is declared beside the code that fills it", async () => {
  // What the exposition module itself says: no family name, no HELP text of its own.
  const source = await Deno.readTextFile(new URL("../lib/exposition/exposition.ts", import.meta.url));
  assert.deepEqual(source.match(/["'`]monzo_[a-z_]+["'`]/g), null, "lib/exposition/exposition.ts names a family");
  // Every family the rich snapshot serves has one declaring owner: a step or one part of the exporter.
  const owners = new Map<string, string>();
  const declare = (owner: string, names: readonly string[]) => {
    for (const name of names) {
      assert.equal(owners.get(name), undefined, `${name} is declared twice`);
      owners.set(name, owner);
    }
  };
  for (const step of fresh().state.steps) declare(`step ${step.name}`, step.families.map((f) => f.name));
  declare("poller", [...POLL_FAMILIES, ...APPROVAL_FAMILIES].map((f) => f.name));
  declare("monzo client", REQUEST_FAMILIES.map((f) => f.name));
  declare("token store", LOGIN_FAMILIES.map((f) => f.name));
  declare("snapshot", BUILD_FAMILIES.map((f) => f.name));
  const served = new Set(parseExposition(renderExposition((await richSnapshot()).state)).samples.map((s) => s.name));
  for (const name of served) {
    const family = name.replace(/_(sum|count|bucket)$/, "");
    assert.ok(owners.has(name) || owners.has(family), `${name} is served but no part of the exporter declares it`);
  }
});
