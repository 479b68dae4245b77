// The `[[rules]]`, `[accounts.acc_…] share` and `payday_min_amount` keys: what loads, and every bad
// value refused in one line naming the rule (1-based) and the key, through loadConfig as the program
// reads its file.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, loadConfig, summarizeConfig } from "../lib/config/config.ts";
import { MAX_PATTERN_LENGTH, MAX_RULES } from "../lib/config/rules_config.ts";
import { bareConfigFields, CLIENT_SECRET, freePort, runWhileProbing, writeConfig } from "./helpers/e2e.ts";
import { withTempDir } from "./helpers/harness.ts";
import { taskRunArgs } from "./helpers/tasks.ts";

const MINIMAL = `client_id = "oauth2client_test"
client_secret = "test-client-secret"
server_addr = "127.0.0.1:9100"
redirect_uri = "http://127.0.0.1:9100"
auth_key = "test-only-auth-key-7f3a9c"
`;

/** A rule that loads, placed first so that the rule under test is rules[2]. */
const GOOD_RULE = `[[rules]]\ndescription = "^tesco"\nset_category = "groceries"\n`;

async function load(text: string) {
  return await withTempDirValue(async (dir) => {
    const path = join(dir, "config.toml");
    await Deno.writeTextFile(path, MINIMAL + text);
    return { path, result: await loadConfig(path) };
  });
}

async function withTempDirValue<T>(body: (dir: string) => Promise<T>): Promise<T> {
  let value: T | undefined;
  await withTempDir(async (dir) => {
    value = await body(dir);
  });
  return value as T;
}

async function loadOk(text: string): Promise<Config> {
  const { result } = await load(text);
  assert.ok(result.ok, `expected the config to load, got: ${result.ok ? "" : result.error}`);
  return result.value;
}

/** Loads `text`, expecting a one-line refusal naming the file and each of `needles`; returns the line. */
async function refused(text: string, ...needles: string[]): Promise<string> {
  const { path, result } = await load(text);
  assert.ok(!result.ok, `expected the config to be refused:\n${text}`);
  const message = result.error;
  assert.doesNotMatch(message, /[\r\n]/, `error spans several lines: ${JSON.stringify(message)}`);
  assert.ok(message.includes(`"${path}"`), `error does not name the file: ${message}`);
  for (const needle of needles) {
    assert.ok(message.includes(needle), `error does not mention "${needle}": ${message}\nfor:\n${text}`);
  }
  return message;
}

/** A second `[[rules]]` table made of `lines`. */
function second(...lines: string[]): string {
  return `${GOOD_RULE}[[rules]]\n${lines.join("\n")}\n`;
}

Deno.test("a [[rules]] table loads into a Rule with every key, its index and label", async () => {
  const config = await loadOk(
    GOOD_RULE + `[[rules]]
name = "shared bills"
description = "octopus|thames water"
merchant = "^merch_0000"
category = "bills"
account_id = "acc_0000Joint"
amount_above = 10
amount_below = 500.5
id = "tx_00001"
set_category = "household"
share = 0.5
`,
  );
  assert.equal(config.rules.length, 2);
  const [first, rule] = config.rules;
  assert.equal(first.index, 1);
  assert.equal(first.label, "1", "a rule without a name is labelled by its 1-based position");
  assert.equal(first.setCategory, "groceries");
  assert.equal(first.exclude, false);
  assert.equal(first.share, null);
  assert.equal(rule.index, 2);
  assert.equal(rule.label, "shared bills");
  assert.equal(rule.description?.source, "octopus|thames water");
  assert.equal(rule.merchant?.source, "^merch_0000");
  assert.equal(rule.category, "bills");
  assert.equal(rule.accountId, "acc_0000Joint");
  assert.equal(rule.amountAbove, 10);
  assert.equal(rule.amountBelow, 500.5);
  assert.equal(rule.id, "tx_00001");
  assert.equal(rule.setCategory, "household");
  assert.equal(rule.share, 0.5);
  // Compiled once, case-insensitive, matching anywhere in the text.
  assert.ok(rule.description?.test("Payment to THAMES WATER plc"));
  assert.ok(first.description?.test("TESCO STORES 3297"));
  assert.ok(!first.description?.test("MY TESCO"), "^ anchors at the start");
});

Deno.test("without rules, shares or payday_min_amount the config has none", async () => {
  const config = await loadOk("");
  assert.deepEqual(config.rules, []);
  assert.equal(config.accountShares.size, 0);
  assert.equal(config.paydayMinMinor, null);
});

Deno.test("every bad rule is one line naming rules[N] (1-based) and the key", async () => {
  const cases: Array<[string, string[], string[]]> = [
    // [what, the rule's lines, what the line must say besides rules[2]]
    ["invalid description pattern", ['description = "(tesco"', "exclude = true"], [
      "rules[2].description",
      "not a valid regular expression",
    ]],
    ["invalid merchant pattern", ['merchant = "[a-"', "exclude = true"], [
      "rules[2].merchant",
      "not a valid regular expression",
    ]],
    ["unknown key", ['description = "x"', 'colour = "red"', "exclude = true"], ["rules[2]", '"colour"']],
    ["misspelt key", ['descripton = "x"', "exclude = true"], ["rules[2]", '"descripton"']],
    ["share of 0", ['description = "x"', "share = 0"], ["rules[2].share", "more than 0 and at most 1"]],
    ["share above 1", ['description = "x"', "share = 1.5"], ["rules[2].share", "more than 0 and at most 1"]],
    ["negative share", ['description = "x"', "share = -0.5"], ["rules[2].share"]],
    ["share as text", ['description = "x"', 'share = "half"'], ["rules[2].share", "must be a number"]],
    ["no condition", ['set_category = "x"'], ["rules[2]", "no condition"]],
    ["only a name", ['name = "lonely"', "exclude = true"], ["rules[2]", "no condition"]],
    ["no action", ['description = "x"'], ["rules[2]", "no action"]],
    ["exclude = false as the only action", ['description = "x"', "exclude = false"], ["rules[2]", "no action"]],
    ["exclude with a share", ['description = "x"', "exclude = true", "share = 0.5"], ["rules[2].share"]],
    ["exclude with set_category", ['description = "x"', "exclude = true", 'set_category = "y"'], [
      "rules[2].set_category",
    ]],
    ["exclude as text", ['description = "x"', 'exclude = "yes"'], ["rules[2].exclude", "true or false"]],
    ["empty description pattern", ['description = ""', "exclude = true"], ["rules[2].description", "empty"]],
    ["non-string description", ["description = 5", "exclude = true"], ["rules[2].description", "must be a string"]],
    ["non-string merchant", ['merchant = ["tesco"]', "exclude = true"], ["rules[2].merchant", "must be a string"]],
    ["non-string category", ["category = 1", "exclude = true"], ["rules[2].category", "must be a string"]],
    ["non-string set_category", ['description = "x"', "set_category = true"], ["rules[2].set_category"]],
    ["empty set_category", ['description = "x"', 'set_category = ""'], ["rules[2].set_category", "empty"]],
    ["malformed account_id", ['account_id = "joint"', "exclude = true"], ["rules[2].account_id", "acc_"]],
    ["empty id", ['id = ""', "exclude = true"], ["rules[2].id", "empty"]],
    ["amount as text", ['amount_above = "10"', "exclude = true"], ["rules[2].amount_above", "number"]],
    ["negative amount", ["amount_below = -1", "exclude = true"], ["rules[2].amount_below", "negative"]],
    ["amount_below of 0", ["amount_below = 0", "exclude = true"], ["rules[2].amount_below", "more than 0"]],
    // Beyond any transaction; once this hung the check that some amount lies between the two.
    ["amount_above beyond any transaction", ["amount_above = 1e300", "amount_below = 2e300", "exclude = true"], [
      "rules[2].amount_above",
      "at most",
    ]],
    ["amount_above above amount_below", ["amount_above = 20", "amount_below = 10", "share = 0.5"], [
      "rules[2].amount_below",
      "no amount can match",
    ]],
    ["amount_above equal to amount_below", ["amount_above = 10", "amount_below = 10", "share = 0.5"], [
      "rules[2].amount_below",
      "no amount can match",
    ]],
    ["no whole penny between the amounts", ["amount_above = 10", "amount_below = 10.01", "share = 0.5"], [
      "rules[2].amount_below",
      "no amount can match",
    ]],
    ["name with a control character", ['name = "a\\u001b[31m"', 'description = "x"', "exclude = true"], [
      "rules[2].name",
      "control characters",
    ]],
    ["name too long for a label", [`name = "${"n".repeat(101)}"`, 'description = "x"', "exclude = true"], [
      "rules[2].name",
    ]],
  ];
  for (const [what, lines, needles] of cases) {
    const message = await refused(second(...lines), ...needles);
    assert.ok(!message.includes("rules[1]"), `${what}: blames the good rule: ${message}`);
  }
});

Deno.test("two rules with the same label are refused, naming the rule whose name repeats", async () => {
  await refused(
    `[[rules]]\nname = "bills"\nid = "tx_1"\nexclude = true\n[[rules]]\nname = "bills"\nid = "tx_2"\nexclude = true\n`,
    "rules[2].name",
    '"bills"',
    "rules[1]",
  );
  // A name equal to another rule's position would be the same monzo_rules_matched{rule} series.
  await refused(
    `[[rules]]\nname = "2"\nid = "tx_1"\nexclude = true\n[[rules]]\nid = "tx_2"\nexclude = true\n`,
    "rules[1].name",
    '"2"',
  );
});

Deno.test("rules that are not tables, and too many rules, are refused naming rules", async () => {
  await refused(`rules = "tesco"\n`, "rules must be an array of tables");
  await refused(`rules = [1]\n`, "rules[1] must be a table");
  const many = Array.from({ length: MAX_RULES + 1 }, (_, i) => `[[rules]]\nid = "tx_${i}"\nexclude = true\n`);
  await refused(many.join(""), "rules", `at most ${MAX_RULES}`);
  await loadOk(many.slice(1).join(""));
});

/** Patterns that can backtrack for longer than a poll may take, and what the refusal says. */
const PATHOLOGICAL: Array<[string, string]> = [
  ["(a+)+$", "nested quantifier"],
  ["(a|a)*", "nested quantifier"],
  ["(\\w+\\s?)*", "nested quantifier"],
  ["(?:a*)*b", "nested quantifier"],
  ["^(a|aa)+$", "nested quantifier"],
  ["(x+x+)+y", "nested quantifier"],
  ["(a{1,5}){2,}", "nested quantifier"],
  ["(?<word>\\w+)+!", "nested quantifier"],
  ["((ab)*c)+", "nested quantifier"],
  ["(.*a){20}", "nested quantifier"],
  ["(a)\\1", "backreference"],
  ["(?<x>a+)\\k<x>", "backreference"],
  ["(?<=a+)b", "lookbehind"],
  [".*.*.*x", "repeated parts"],
  ["\\s*\\s*\\s*$", "repeated parts"],
  ["(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)", "alternatives"],
  ["a".repeat(MAX_PATTERN_LENGTH + 1), `longer than ${MAX_PATTERN_LENGTH}`],
];

Deno.test("pathological patterns are refused, naming the rule, the key and why", async () => {
  for (const key of ["description", "merchant"]) {
    for (const [pattern, why] of PATHOLOGICAL) {
      const message = await refused(
        second(`${key} = ${JSON.stringify(pattern)}`, "exclude = true"),
        `rules[2].${key}`,
        why,
      );
      assert.ok(message.includes(JSON.stringify(pattern)), `the pattern is not quoted: ${message}`);
    }
  }
});

Deno.test("ordinary patterns are accepted and match case-insensitively anywhere", async () => {
  const ordinary: Array<[string, string]> = [
    ["^tesco", "TESCO STORES 3297"],
    ["amazon|ebay", "www.EBAY.co.uk"],
    ["(?:uber)\\s+eats", "Uber   Eats London"],
    ["\\bpret\\b", "PRET A MANGER"],
    ["(uber|ubr)?\\s*eats", "UBR eats"],
    ["^amazon.*prime.*video", "Amazon Prime Video UK"],
    ["(ab)+c", "xxababC"],
    ["(?<shop>tesco) express", "Tesco Express"],
    ["[a-z]{2,3}\\d{4}", "ref AB1234"],
    ["caf\\u00e9 \\p{L}+", "CAFÉ NERO"],
    ["\\u{1F355}", "🍕 Pizza"],
    // Braces in \u{…} and \p{…} are not a quantifier inside the repeated group.
    ["(?:\\u{1F355} )+", "🍕 🍕 Pizza"],
    ["(?:\\p{Lu}\\d)+", "A1B2"],
    ["(?=.*uber)eats", "eats by uber"],
    ["tesco|sainsbury|asda|aldi|lidl|morrisons|waitrose|co-op", "Co-op Food"],
  ];
  for (const [pattern, text] of ordinary) {
    const config = await loadOk(`[[rules]]\ndescription = ${JSON.stringify(pattern)}\nexclude = true\n`);
    const compiled = config.rules[0].description;
    assert.ok(compiled !== null);
    assert.ok(compiled.test(text), `${pattern} does not match ${JSON.stringify(text)}`);
  }
});

Deno.test("[accounts.acc_…] share loads into accountShares; a bad one names the account and key", async () => {
  const config = await loadOk(`[accounts.acc_0000Joint]\nshare = 0.5\n[accounts.acc_0000Mine]\nshare = 1\n`);
  assert.deepEqual([...config.accountShares], [["acc_0000Joint", 0.5], ["acc_0000Mine", 1]]);
  await refused(`[accounts.acc_0000Joint]\nshare = 0\n`, "accounts.acc_0000Joint.share", "more than 0 and at most 1");
  await refused(`[accounts.acc_0000Joint]\nshare = 1.01\n`, "accounts.acc_0000Joint.share", "at most 1");
  await refused(`[accounts.acc_0000Joint]\nshare = -1\n`, "accounts.acc_0000Joint.share");
  await refused(`[accounts.acc_0000Joint]\nshare = "half"\n`, "accounts.acc_0000Joint.share", "number");
  await refused(`[accounts.acc_0000Joint]\n`, "accounts.acc_0000Joint.share", "missing");
  await refused(`[accounts.acc_0000Joint]\nshar = 0.5\n`, "accounts.acc_0000Joint", '"shar"');
  await refused(`[accounts.acc_0000Joint]\nshare = 0.5\nname = "joint"\n`, "accounts.acc_0000Joint", '"name"');
  await refused(`[accounts.joint]\nshare = 0.5\n`, "accounts.joint", "acc_");
  await refused(`accounts = 0.5\n`, "accounts must be tables");
});

Deno.test("with account_id set, a share or a rule's account_id naming another account is refused, naming it", async () => {
  const only = `account_id = "acc_0000Mine"\n`;
  // The exported account itself may have a share and rules.
  const config = await loadOk(
    `${only}[accounts.acc_0000Mine]\nshare = 0.5\n[[rules]]\naccount_id = "acc_0000Mine"\nexclude = true\n`,
  );
  assert.equal(config.accountShares.get("acc_0000Mine"), 0.5);
  await refused(
    `${only}[accounts.acc_0000Joint]\nshare = 0.5\n`,
    "accounts.acc_0000Joint is not exported",
    "account_id = acc_0000Mine",
    "count nothing",
  );
  await refused(
    `${only}${second('account_id = "acc_0000Joint"', "exclude = true")}`,
    "rules[2].account_id acc_0000Joint is not exported",
    "never match",
  );
  // Without account_id every account may be exported: both load.
  await loadOk(`[accounts.acc_0000Joint]\nshare = 0.5\n${second('account_id = "acc_0000Joint"', "exclude = true")}`);
});

Deno.test("payday_min_amount is kept in minor units; a bad one is named", async () => {
  assert.equal((await loadOk(`payday_min_amount = 1500\n`)).paydayMinMinor, 150_000);
  assert.equal((await loadOk(`payday_min_amount = 2150.57\n`)).paydayMinMinor, 215_057);
  for (const bad of ["0", "-100", "0.001", `"1500"`, "inf", "nan", "1e300"]) {
    await refused(`payday_min_amount = ${bad}\n`, "payday_min_amount");
  }
});

Deno.test("summarizeConfig counts the rules and shares, and says when pay-day months are on", async () => {
  const config = await loadOk(
    `payday_min_amount = 1500\n[accounts.acc_0000Joint]\nshare = 0.5\n${GOOD_RULE}[[rules]]\nid = "tx_1"\nexclude = true\n`,
  );
  const summary = summarizeConfig(config);
  assert.match(summary, /\b2 rules\b/);
  assert.match(summary, /\b1 account\b/);
  assert.match(summary, /pay-day/);
  const plain = summarizeConfig(await loadOk(""));
  assert.doesNotMatch(plain, /rule|share|pay-day/);
});

Deno.test("a pathological rule stops the program: one line naming rules[1].description, exit non-zero, nothing listens", async () => {
  await withTempDir(async (dir) => {
    const port = freePort();
    const path = await writeConfig(dir, bareConfigFields(port));
    await Deno.writeTextFile(path, `[[rules]]\ndescription = "(a+)+$"\nexclude = true\n`, { append: true });
    const result = await runWhileProbing(
      Deno.execPath(),
      [...await taskRunArgs("start"), "--config", path, "--web.listen-address", `127.0.0.1:${port}`],
      port,
    );
    assert.equal(result.listened, false, "the program listened despite the bad rule");
    assert.notEqual(result.code, 0);
    assert.equal(result.stderrLines.length, 1, `expected one line on stderr, got:\n${result.stderrLines.join("\n")}`);
    assert.ok(result.stderrLines[0].includes("rules[1].description"), result.stderrLines[0]);
    assert.ok(!result.stderrLines[0].includes(CLIENT_SECRET), "the error shows the client secret");
  });
});

Deno.test("config.example.toml's commented pay-day, share and rules examples load once uncommented, one rule per action", async () => {
  const example = await Deno.readTextFile(new URL("../config.example.toml", import.meta.url));
  const marker = example.indexOf("# --- Shares and rules");
  assert.ok(marker > 0, "config.example.toml has no shares and rules section");
  const uncomment = (text: string) =>
    text.split("\n").filter((line) => /^# (\[|[a-z_]+ = )/.test(line)).map((line) => line.slice(2)).join("\n");
  const payday = example.split("\n").filter((line) => line.startsWith("# payday_min_amount = "));
  assert.equal(payday.length, 1, "config.example.toml does not show payday_min_amount once");
  const config = await loadOk(`${uncomment(payday[0])}\n${uncomment(example.slice(marker))}\n`);
  assert.ok(config.paydayMinMinor !== null && config.paydayMinMinor > 0);
  assert.equal(config.accountShares.size, 1);
  assert.ok(config.rules.length >= 3, `expected at least 3 example rules, got ${config.rules.length}`);
  assert.ok(config.rules.some((rule) => rule.setCategory !== null), "no example rule sets a category");
  assert.ok(config.rules.some((rule) => rule.exclude), "no example rule excludes");
  assert.ok(config.rules.some((rule) => rule.share !== null), "no example rule has a share");
});

Deno.test("amount ranges with a whole penny strictly between their ends load", async () => {
  for (const [above, below] of [[10, 10.02], [0.29, 0.31], [10.001, 10.011], [0, 0.02], [1e10 - 1, 1e10]]) {
    const config = await loadOk(`[[rules]]\namount_above = ${above}\namount_below = ${below}\nexclude = true\n`);
    assert.equal(config.rules[0].amountAbove, above);
    assert.equal(config.rules[0].amountBelow, below);
  }
});
