/**
 * A strict command-line parser: long options (`--name value`, `--name=value`), flags, a few short
 * flags, `--` to end the options, and nothing positional.
 *
 * Not node:util's `parseArgs`: importing any `node:` module makes Deno load its Node compatibility
 * layer (dozens of modules, resident for the life of the process), which nothing else at run time needs.
 *
 * @module
 */

import { err, ok, type Result } from "../shared/result.ts";

/**
 * How an option takes its value: a `flag` takes none; a `value` option needs one, as the next word or
 * after `=`; a `repeated` one too, and keeps every one it is given; an `optional` one takes the next
 * word unless that starts with `-`, or a value after `=`.
 */
export type OptionKind = "flag" | "value" | "repeated" | "optional";

/** One option: its kind and, for a flag, a one-letter short form (`h` for `-h`). */
export interface OptionSpec {
  readonly kind: OptionKind;
  readonly short?: string;
}

/** The long names in `Specs` of the options of one kind. */
export type NamesOfKind<Specs extends Record<string, OptionSpec>, Kind extends OptionKind> = {
  [Name in keyof Specs & string]: Specs[Name]["kind"] extends Kind ? Name : never;
}[keyof Specs & string];

/** What the command line gave, asked by long name; a name of the wrong kind does not type-check. */
export interface ParsedOptions<Specs extends Record<string, OptionSpec>> {
  /** True when the flag was given. */
  flag(name: NamesOfKind<Specs, "flag">): boolean;
  /** The value of a `value` option (the last one, when it is repeated); undefined when not given. */
  value(name: NamesOfKind<Specs, "value">): string | undefined;
  /** Every value of a `repeated` option, in the order given; empty when not given. */
  values(name: NamesOfKind<Specs, "repeated">): readonly string[];
  /** The value of an `optional` option; null when it was given without one, undefined when not given. */
  optional(name: NamesOfKind<Specs, "optional">): string | null | undefined;
}

/**
 * Parses `args` against `specs` (long names without `--`); the error is one line naming the word.
 * A repeated `value` option keeps its last value; a repeated `optional` one is an error, since
 * `--opt --opt x` cannot say which of the two took `x`.
 */
export function parseOptions<Specs extends Record<string, OptionSpec>>(
  args: readonly string[],
  specs: Specs,
): Result<ParsedOptions<Specs>> {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const repeated = new Map<string, string[]>();
  const optionals = new Map<string, string | null>();
  const shorts = new Map(Object.entries(specs).flatMap(([name, spec]) => spec.short ? [[`-${spec.short}`, name]] : []));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      if (i + 1 < args.length) return err(`Unexpected argument ${JSON.stringify(args[i + 1])} after --`);
      break;
    }
    const short = shorts.get(arg);
    if (short !== undefined) {
      flags.add(short);
      continue;
    }
    if (!arg.startsWith("--")) {
      return looksLikeOption(arg)
        ? err(`Unknown option ${JSON.stringify(arg)}`)
        : err(`Unexpected argument ${JSON.stringify(arg)}: every option starts with --`);
    }
    const equals = arg.indexOf("=");
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    const inline = equals === -1 ? null : arg.slice(equals + 1);
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (spec === undefined) return err(`Unknown option ${JSON.stringify(`--${name}`)}`);
    const option = `--${name}`;
    if (spec.kind === "flag") {
      if (inline !== null) return err(`${option} takes no value, got ${JSON.stringify(inline)}`);
      flags.add(name);
    } else if (spec.kind === "value" || spec.kind === "repeated") {
      let value: string;
      if (inline !== null) value = inline;
      else if (i + 1 === args.length) return err(`${option} needs a value`);
      else if (looksLikeOption(args[i + 1])) {
        return err(`${option} needs a value; for one that starts with -, write ${option}=VALUE`);
      } else value = args[++i];
      if (spec.kind === "value") values.set(name, value);
      else repeated.set(name, [...(repeated.get(name) ?? []), value]);
    } else {
      if (optionals.has(name)) return err(`${option} is given twice`);
      const next = args[i + 1];
      if (inline !== null) optionals.set(name, inline);
      else if (next !== undefined && !next.startsWith("-")) optionals.set(name, args[++i]);
      else optionals.set(name, null);
    }
  }
  return ok({
    flag: (name) => flags.has(name),
    value: (name) => values.get(name),
    values: (name) => repeated.get(name) ?? [],
    optional: (name) => optionals.get(name),
  });
}

// As parseArgs: a lone `-` is a value (often "standard input"), `-x` and `--x` are options.
function looksLikeOption(word: string): boolean {
  return word.length > 1 && word.startsWith("-");
}
