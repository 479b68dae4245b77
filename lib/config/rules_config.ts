/**
 * The `[[rules]]` tables of the config: each is read, checked and compiled once, at load, into a
 * {@link Rule}; matching a transaction against them lives in lib/spending/rule_match.ts.
 *
 * Patterns (`description`, `merchant`) are the user's own regular expressions, run against every
 * stored transaction each time figures are computed, so one that backtracks without bound would hang
 * a poll. JavaScript's engine cannot be interrupted, so rather than bound the work while matching,
 * patterns that can take more than polynomial time of low degree are refused at load, with the reason
 * (see {@link patternProblem}):
 * - a repeated group (`*`, `+`, `{n,}`, `{n,m}` with m > 1) that contains a quantifier or an
 *   alternation: `(a+)+$`, `(a|a)*`, `(\w+\s?)*` take exponential time on a near-match;
 * - a backreference (`\1`, `\k<name>`): matching with them is NP-hard in general;
 * - a quantifier inside a lookbehind;
 * - more than {@link MAX_REPEATS} repeated parts: `.*.*.*x` takes n⁴ steps on a text of n
 *   characters that nearly matches (0.7 s for 200 measured). Two take n³ at worst (up to about
 *   0.15 s for 200 such characters, fuzzed; under a millisecond for a real 30-character
 *   description), one n², which is the price of allowing `^amazon.*prime.*video`;
 * - more than {@link MAX_PATHS} ways through the alternatives: `(a|a)(a|a)…` doubles with each group;
 * - more than {@link MAX_PATTERN_LENGTH} characters.
 * Ordinary patterns (`^tesco`, `amazon|ebay`, `(?:uber)\s+eats`, `\bpret\b`) are far inside these.
 *
 * @module
 */
import { z } from "zod/v3";
import { hasUnsafeCharacters } from "../shared/hostile_text.ts";

/** One `[[rules]]` table, checked and compiled. */
export interface Rule {
  /** 1-based position in the file. */
  readonly index: number;
  /** `name`, else String(index): the monzo_rules_matched{rule} value. */
  readonly label: string;
  /** Case-insensitive, matches anywhere. */
  readonly description: RegExp | null;
  /** Matches the merchant's name when Monzo gives one, else its id. */
  readonly merchant: RegExp | null;
  /** Exact. */
  readonly category: string | null;
  readonly accountId: string | null;
  /** Major units; matches when |amount| > it. */
  readonly amountAbove: number | null;
  /** Major units; matches when |amount| < it. */
  readonly amountBelow: number | null;
  readonly id: string | null;
  readonly setCategory: string | null;
  readonly exclude: boolean;
  /** In (0, 1]. */
  readonly share: number | null;
}

/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 200;
/** Most repeated parts (`*`, `+`, `{n,}`, `{n,m}` with m > 1) in one pattern. */
export const MAX_REPEATS = 2;
/** Most ways through a pattern's alternatives (the product of the choices made one after another). */
export const MAX_PATHS = 64;
/** Most `[[rules]]` tables: each is a `monzo_rules_matched` series. */
export const MAX_RULES = 100;
/** Longest `name`, `category` or `set_category`: category names are cut to this length when stored. */
const MAX_NAME_LENGTH = 100;

/** The keys a rule may have that select transactions. */
export const RULE_CONDITIONS = [
  "description",
  "merchant",
  "category",
  "account_id",
  "amount_above",
  "amount_below",
  "id",
] as const;
/** The keys a rule may have that say what happens to the transactions it selects. */
export const RULE_ACTIONS = ["set_category", "exclude", "share"] as const;

/** The error message zod gives for a value of the wrong type and for a missing one alike. */
function typeError(message: string) {
  return { invalid_type_error: message, required_error: message };
}

/** Why `pattern` is refused (a phrase following the quoted pattern), or null when it may be used. */
export function patternProblem(pattern: string): string | null {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return `is longer than ${MAX_PATTERN_LENGTH} characters`;
  }
  try {
    new RegExp(pattern, "iu");
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // "Invalid regular expression: /(a/iu: Unterminated group" → "Unterminated group".
    const reason = error.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, "");
    return `is not a valid regular expression (${reason})`;
  }
  try {
    const shape = new PatternReader(pattern).read();
    if (shape.repeats > MAX_REPEATS) {
      return `has ${shape.repeats} repeated parts (*, +, {n,m}), which can take a very long time on long text; ` +
        `at most ${MAX_REPEATS} are allowed`;
    }
    if (shape.paths > MAX_PATHS) {
      return `has more than ${MAX_PATHS} ways through its alternatives, which can take a very long time`;
    }
    return null;
  } catch (error) {
    if (error instanceof Refusal) return error.message;
    throw error;
  }
}

/** A pattern refused while reading it; its message is the reason. */
class Refusal extends Error {}

/** What matters about a part of a pattern for how long it can take to match. */
interface Shape {
  /** It contains a quantifier (`?` included). */
  readonly quantified: boolean;
  /** It contains an alternation. */
  readonly alternatives: boolean;
  /** Repeated parts in it (quantifiers whose maximum is above 1). */
  readonly repeats: number;
  /** Ways through its alternatives and optional parts, capped so it cannot overflow. */
  readonly paths: number;
}

const ATOM: Shape = { quantified: false, alternatives: false, repeats: 0, paths: 1 };
const PATH_CAP = 1_000_000;

/**
 * Reads a pattern that already compiled with the `u` flag (so its syntax is the strict one: every
 * `{` outside a class is a quantifier, `\1` names an existing group) and works out its {@link Shape},
 * throwing a {@link Refusal} for nested repeats, backreferences and quantified lookbehinds.
 */
class PatternReader {
  #at = 0;
  constructor(private readonly text: string) {}

  read(): Shape {
    const shape = this.#alternation();
    if (this.#at < this.text.length) throw new Error(`unbalanced ")" at ${this.#at} in a compiled pattern`);
    return shape;
  }

  #peek(): string {
    return this.text[this.#at] ?? "";
  }

  #alternation(): Shape {
    const branches = [this.#sequence()];
    while (this.#peek() === "|") {
      this.#at++;
      branches.push(this.#sequence());
    }
    return {
      quantified: branches.some((b) => b.quantified),
      alternatives: branches.length > 1 || branches.some((b) => b.alternatives),
      repeats: branches.reduce((sum, b) => sum + b.repeats, 0),
      paths: Math.min(PATH_CAP, branches.reduce((sum, b) => sum + b.paths, 0)),
    };
  }

  #sequence(): Shape {
    let shape: Shape = { ...ATOM };
    while (this.#at < this.text.length && this.#peek() !== "|" && this.#peek() !== ")") {
      const part = this.#quantified(this.#atom());
      shape = {
        quantified: shape.quantified || part.quantified,
        alternatives: shape.alternatives || part.alternatives,
        repeats: shape.repeats + part.repeats,
        paths: Math.min(PATH_CAP, shape.paths * part.paths),
      };
    }
    return shape;
  }

  /** The atom with the quantifier that follows it, if any. */
  #quantified(atom: Shape & { readonly group: boolean }): Shape {
    const max = this.#quantifier();
    if (max === null) return atom;
    const repeated = max > 1;
    if (repeated && atom.group && (atom.quantified || atom.alternatives)) {
      throw new Refusal(
        "repeats a group that contains a quantifier or alternatives (a nested quantifier), which can take " +
          "exponential time; rewrite it without the nesting",
      );
    }
    return {
      quantified: true,
      alternatives: atom.alternatives,
      repeats: atom.repeats + (repeated ? 1 : 0),
      // An optional part is one more way through; a repeated one has none inside it (refused above).
      paths: Math.min(PATH_CAP, atom.paths + 1),
    };
  }

  /** Reads a quantifier and returns its maximum (Infinity when unbounded), or null when there is none. */
  #quantifier(): number | null {
    const character = this.#peek();
    let max: number;
    if (character === "*" || character === "+") {
      this.#at++;
      max = Infinity;
    } else if (character === "?") {
      this.#at++;
      max = 1;
    } else if (character === "{") {
      const close = this.text.indexOf("}", this.#at);
      const [low, high] = this.text.slice(this.#at + 1, close).split(",");
      max = high === undefined ? Number(low) : high === "" ? Infinity : Number(high);
      this.#at = close + 1;
    } else {
      return null;
    }
    if (this.#peek() === "?") this.#at++; // lazy: the same amount of backtracking
    return max;
  }

  #atom(): Shape & { readonly group: boolean } {
    const character = this.#peek();
    if (character === "(") return { ...this.#group(), group: true };
    if (character === "[") {
      this.#skipClass();
    } else if (character === "\\") {
      this.#skipEscape();
    } else {
      this.#at++;
    }
    return { ...ATOM, group: false };
  }

  #group(): Shape {
    const rest = this.text.slice(this.#at);
    const lookbehind = rest.startsWith("(?<=") || rest.startsWith("(?<!");
    // (?<=…) (?<!…) (?<name>…) (?:…) (?=…) (?!…) (?i:…) or a plain (…).
    const opening = /^\((?:\?<[=!]|\?<[^>]*>|\?[-a-z]*:|\?[=!])?/.exec(rest);
    this.#at += opening === null ? 1 : opening[0].length;
    const inside = this.#alternation();
    this.#at++; // ")"
    if (lookbehind && inside.quantified) {
      throw new Refusal("has a quantifier inside a lookbehind, which can take a very long time");
    }
    return inside;
  }

  #skipClass(): void {
    this.#at++; // "["
    if (this.#peek() === "^") this.#at++;
    // With the `u` flag a class cannot nest, and "]" first is an empty class, not a literal.
    while (this.#at < this.text.length && this.#peek() !== "]") {
      if (this.#peek() === "\\") this.#skipEscape();
      else this.#at++;
    }
    this.#at++; // "]"
  }

  #skipEscape(): void {
    const next = this.text[this.#at + 1] ?? "";
    if (/[1-9]/.test(next) || (next === "k" && this.text[this.#at + 2] === "<")) {
      throw new Refusal("uses a backreference, which can take exponential time");
    }
    // \p{…}, \P{…} and \u{…} hold braces that are not a quantifier.
    if (/[pPu]/.test(next) && this.text[this.#at + 2] === "{") {
      this.#at = this.text.indexOf("}", this.#at) + 1;
    } else {
      this.#at += 2; // the rest of \uXXXX, \xXX, \cX are plain letters and digits
    }
  }
}

const ruleName = z.string(typeError("must be a string"))
  .min(1, "is empty")
  .max(MAX_NAME_LENGTH, `is longer than ${MAX_NAME_LENGTH} characters`)
  .refine((name) => !hasUnsafeCharacters(name), "has control characters");

const pattern = z.string(typeError("must be a string (a regular expression)")).min(
  1,
  "is empty, so it would match every text",
).transform((text, ctx) => {
  const problem = patternProblem(text);
  if (problem === null) return new RegExp(text, "iu");
  ctx.addIssue({ code: "custom", message: `${JSON.stringify(text)} ${problem}` });
  return z.NEVER;
});

/**
 * Largest amount a rule or payday_min_amount may name, in major units: ten billion, the largest
 * transaction kept (MAX_TRANSACTION_MINOR in lib/monzo/transaction.ts, a later stage). It also keeps
 * amounts × 100 exact integers, which {@link someAmountBetween} relies on.
 */
export const MAX_AMOUNT = 1e10;

const amount = z.number(typeError("must be a number in major units, e.g. 20"))
  .finite("must be a finite number")
  .min(0, "must not be negative")
  .max(MAX_AMOUNT, `must be at most ${MAX_AMOUNT} (no transaction is larger)`);

/** The schema of one `[[rules]]` table, before its index is known. */
export const ruleTableSchema = z.strictObject({
  name: ruleName.optional(),
  description: pattern.optional(),
  merchant: pattern.optional(),
  category: ruleName.optional(),
  account_id: z.string(typeError("must be a string")).regex(/^acc_[0-9A-Za-z]+$/, "must look like acc_…").optional(),
  amount_above: amount.optional(),
  amount_below: amount.refine((below) => below > 0, "must be more than 0: no amount is below 0").optional(),
  id: z.string(typeError("must be a string")).min(1, "is empty").max(256, "is longer than 256 characters")
    .refine((id) => !hasUnsafeCharacters(id), "has control characters").optional(),
  set_category: ruleName.optional(),
  exclude: z.boolean(typeError("must be true or false")).optional(),
  share: z.number(typeError("must be a number in (0, 1], e.g. 0.5")).gt(0, "must be more than 0 and at most 1")
    .max(1, "must be more than 0 and at most 1").optional(),
}, typeError("must be a table ([[rules]] with its keys)")).superRefine((rule, ctx) => {
  const problem = (key: string | null, message: string) =>
    ctx.addIssue({ code: "custom", path: key === null ? [] : [key], message });
  if (!RULE_CONDITIONS.some((key) => rule[key] !== undefined)) {
    problem(null, `has no condition (one of ${RULE_CONDITIONS.join(", ")}), so it would match every transaction`);
  }
  if (rule.set_category === undefined && rule.exclude !== true && rule.share === undefined) {
    problem(null, `has no action (set_category, exclude = true or share), so it would do nothing`);
  }
  if (rule.exclude === true && (rule.share !== undefined || rule.set_category !== undefined)) {
    problem(
      rule.share !== undefined ? "share" : "set_category",
      "does nothing beside exclude = true, which leaves the transaction out of every figure",
    );
  }
  const above = rule.amount_above;
  const below = rule.amount_below;
  if (typeof above === "number" && typeof below === "number" && !someAmountBetween(above, below)) {
    problem("amount_below", `${below} is not above amount_above ${above} by a penny, so no amount can match`);
  }
});

/**
 * True when some whole number of minor units m has above < m/100 < below, computed as the matcher
 * compares them, so a rule refused here is exactly one that could never match.
 */
function someAmountBetween(above: number, below: number): boolean {
  // The smallest such m is within a step or two of above × 100 (both below 2^53, so exact steps).
  const start = Math.floor(above * 100) - 1;
  const smallest = [start, start + 1, start + 2, start + 3].find((minor) => minor / 100 > above) ?? start + 3;
  return smallest / 100 < below;
}

/** A checked `[[rules]]` table. */
export type RuleTable = z.infer<typeof ruleTableSchema>;

/** The `rules` key: an array of tables, compiled to Rules; labels must be unique. */
export const rulesSchema = z.array(ruleTableSchema, typeError("rules must be an array of tables, written [[rules]]"))
  .max(MAX_RULES, `rules has too many tables (at most ${MAX_RULES}, each is a series of monzo_rules_matched)`)
  .transform((tables, ctx): readonly Rule[] => {
    const rules = tables.map((table, i) => compileRule(table, i + 1));
    const seen = new Map<string, number>();
    for (const rule of rules) {
      const earlier = seen.get(rule.label);
      if (earlier !== undefined) {
        // Named where the name is: a rule without one is labelled by its position.
        const [at, other] = tables[rule.index - 1].name === undefined ? [earlier, rule.index] : [rule.index, earlier];
        ctx.addIssue({
          code: "custom",
          path: [at - 1, "name"],
          message: `"${rule.label}" is also the label of rules[${other}]; each rule needs its own label ` +
            "(its name, else its position), as monzo_rules_matched{rule} tells them apart by it",
        });
        return z.NEVER;
      }
      seen.set(rule.label, rule.index);
    }
    return rules;
  });

/** A checked table as a Rule; `index` is its 1-based position in the file. */
export function compileRule(table: RuleTable, index: number): Rule {
  return {
    index,
    label: table.name ?? String(index),
    description: table.description ?? null,
    merchant: table.merchant ?? null,
    category: table.category ?? null,
    accountId: table.account_id ?? null,
    amountAbove: table.amount_above ?? null,
    amountBelow: table.amount_below ?? null,
    id: table.id ?? null,
    setCategory: table.set_category ?? null,
    exclude: table.exclude === true,
    share: table.share ?? null,
  };
}

/** The known keys of a rule, for the message about an unknown one. */
export const RULE_KEYS: readonly string[] = ["name", ...RULE_CONDITIONS, ...RULE_ACTIONS];

/** The `[accounts.acc_…]` tables: a share (in (0, 1]) of each account's figures. */
export const accountsSchema = z.record(
  z.string().regex(/^acc_[0-9A-Za-z]+$/, "is not an account id like acc_…"),
  z.strictObject({
    share: z.number({
      invalid_type_error: "must be a number in (0, 1], e.g. 0.5",
      required_error: "is missing (the table's one key, e.g. share = 0.5)",
    }).gt(0, "must be more than 0 and at most 1")
      .max(1, "must be more than 0 and at most 1"),
  }, typeError("must be a table, e.g. [accounts.acc_…] with share = 0.5")),
  typeError("accounts must be tables, e.g. [accounts.acc_…] with share = 0.5"),
).transform((tables): ReadonlyMap<string, number> =>
  new Map(Object.entries(tables).map(([accountId, table]) => [accountId, table.share]))
);
