import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliOptions, configPathFor, parseCli, USAGE } from "../lib/config/cli.ts";
import { ENV_OVERRIDES } from "../lib/config/config.ts";

function parsed(args: string[]): CliOptions {
  const result = parseCli(args);
  assert.ok(result.ok, `expected ${JSON.stringify(args)} to parse, got: ${result.ok ? "" : result.error}`);
  return result.value;
}

function refused(args: string[], ...needles: string[]): string {
  const result = parseCli(args);
  assert.ok(!result.ok, `expected ${JSON.stringify(args)} to be refused`);
  assert.doesNotMatch(result.error, /[\r\n]/, `error spans several lines: ${JSON.stringify(result.error)}`);
  assert.doesNotMatch(result.error, /\bat .+:\d+:\d+/, `error carries a stack trace: ${result.error}`);
  assert.ok(result.error.endsWith(" (see --help)"), `error does not point at --help: ${result.error}`);
  for (const needle of needles) {
    assert.ok(result.error.includes(needle), `error does not mention "${needle}": ${result.error}`);
  }
  return result.error;
}

/** Every long option, with an argument where it takes one. */
const LONG_OPTIONS: ReadonlyArray<readonly string[]> = [
  ["--help"],
  ["--version"],
  ["--check-config"],
  ["--demo"],
  ["--config", "/etc/monzo-exporter/config.toml"],
  ["--web.listen-address", "127.0.0.1:9100"],
  ["--log.level", "debug"],
  ["--healthcheck"],
  ["--web.config.file", "/etc/monzo-exporter/web-config.yml"],
  // The backfill's options set one field together, so each is tried beside --backfill.
  ["--backfill", "/tmp/history.om"],
  ["--backfill", "/tmp/history.om", "--backfill.label", "job=monzo"],
  ["--backfill", "/tmp/history.om", "--backfill.step", "5m"],
  ["--backfill", "/tmp/history.om", "--backfill.until", "2026-01-01T00:00:00Z"],
];

/** The fields of CliOptions that differ between two parses. */
function changedFields(a: CliOptions, b: CliOptions): string[] {
  return (Object.keys(a) as Array<keyof CliOptions>).filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]));
}

/** True when USAGE lists `flag` as an option (not merely as a part of a longer word). */
function usageMentions(flag: string): boolean {
  const escaped = flag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[\\s,])${escaped}(?=[\\s,=]|$)`, "m").test(USAGE);
}

Deno.test("no arguments: nothing asked for, config and listen address left to the config", () => {
  assert.deepEqual(parsed([]), {
    help: false,
    version: false,
    checkConfig: false,
    demo: false,
    configPath: null,
    listen: null,
    logLevel: "info",
    healthcheck: null,
    webConfigFile: null,
    backfill: null,
  });
});

Deno.test("--log.level takes info or debug; anything else is a one-line error naming the value", () => {
  assert.equal(parsed(["--log.level", "debug"]).logLevel, "debug");
  assert.equal(parsed(["--log.level=info"]).logLevel, "info");
  refused(["--log.level", "trace"], "--log.level", '"trace"', "info, debug");
  refused(["--log.level", "DEBUG"], "--log.level");
});

Deno.test("--help and -h ask for help", () => {
  assert.equal(parsed(["--help"]).help, true);
  assert.equal(parsed(["-h"]).help, true);
});

Deno.test("--version asks for the version", () => {
  assert.equal(parsed(["--version"]).version, true);
});

Deno.test("--check-config asks to validate the config", () => {
  assert.equal(parsed(["--check-config"]).checkConfig, true);
});

Deno.test("--demo asks for the simulated Monzo", () => {
  assert.equal(parsed(["--demo"]).demo, true);
});

Deno.test("--config takes a path, as a separate argument or after =", () => {
  assert.equal(parsed(["--config", "/etc/monzo/config.toml"]).configPath, "/etc/monzo/config.toml");
  assert.equal(parsed(["--config=relative/config.toml"]).configPath, "relative/config.toml");
  assert.equal(parsed(["--config", "with space/c.toml"]).configPath, "with space/c.toml");
});

Deno.test("--web.listen-address takes host:port, IPv6 in brackets", () => {
  assert.deepEqual(parsed(["--web.listen-address", "127.0.0.1:9100"]).listen, { hostname: "127.0.0.1", port: 9100 });
  assert.deepEqual(parsed(["--web.listen-address=[::1]:9100"]).listen, { hostname: "::1", port: 9100 });
  assert.deepEqual(parsed(["--web.listen-address", "0.0.0.0:0"]).listen, { hostname: "0.0.0.0", port: 0 });
});

Deno.test("options combine", () => {
  const options = parsed(["--check-config", "--config", "c.toml", "--web.listen-address", "localhost:8081"]);
  assert.equal(options.checkConfig, true);
  assert.equal(options.configPath, "c.toml");
  assert.deepEqual(options.listen, { hostname: "localhost", port: 8081 });
  assert.equal(options.demo, false);
  assert.equal(options.help, false);
});

Deno.test("an unknown option is a one-line error naming it and pointing at --help", () => {
  refused(["--verbose"], "--verbose", "--help");
  refused(["--web.telemetry-path", "/metrics"], "--web.telemetry-path");
  refused(["--demo", "--listen", "0.0.0.0:1"], "--listen");
  refused(["-x"], "-x");
});

Deno.test("a positional argument is refused (the config needs --config)", () => {
  refused(["config.toml"], "config.toml");
});

Deno.test("a bad --web.listen-address is a one-line error naming the option and the value", () => {
  for (const bad of ["9100", "localhost", "127.0.0.1:70000", ":9100", "http://127.0.0.1:9100", ""]) {
    refused(["--web.listen-address", bad], "--web.listen-address", `"${bad}"`);
  }
  refused(["--web.listen-address", "127.0.0.1\n:9100"], "--web.listen-address");
});

Deno.test("--web.listen-address or --config without a value is refused", () => {
  refused(["--web.listen-address"], "--web.listen-address");
  refused(["--config"], "--config");
});

Deno.test("--config with an empty or blank value is refused", () => {
  refused(["--config", ""], "--config");
  refused(["--config="], "--config");
  refused(["--config", "   "], "--config");
});

Deno.test("a boolean option given a value is refused, an empty one too", () => {
  refused(["--demo=yes"], "--demo");
  refused(["--demo="], "--demo");
  refused(["--help=no"], "--help");
  refused(["--check-config=false"], "--check-config");
});

Deno.test("a value option at the end without its value is refused, each naming itself", () => {
  for (const option of ["--config", "--web.listen-address", "--web.config.file", "--log.level"]) {
    refused(["--demo", option], option);
  }
});

Deno.test("a value option followed by another option is refused; = passes a value that starts with -", () => {
  // Taken as the path, --demo would be lost without a word; so it is an error that says how to pass one.
  refused(["--config", "--demo"], "--config needs a value", "--config=");
  refused(["--web.config.file", "-x"], "--web.config.file");
  assert.equal(parsed(["--config=--odd name.toml"]).configPath, "--odd name.toml");
  assert.equal(parsed(["--config", "-"]).configPath, "-", "a lone - is a value, as parseArgs has it");
});

Deno.test("a value after = keeps every later =", () => {
  assert.equal(parsed(["--config=a=b.toml"]).configPath, "a=b.toml");
});

Deno.test("a repeated value option keeps its last value; a repeated flag is still on", () => {
  assert.equal(parsed(["--config", "first.toml", "--config=second.toml"]).configPath, "second.toml");
  assert.equal(parsed(["--log.level", "debug", "--log.level", "info"]).logLevel, "info");
  assert.equal(parsed(["--demo", "--demo"]).demo, true);
});

Deno.test("-- ends the options: nothing may follow it, not even an option", () => {
  assert.equal(parsed(["--demo", "--"]).demo, true);
  assert.deepEqual(parsed(["--healthcheck", "--"]).healthcheck, { url: null });
  refused(["--", "--demo"], '"--demo"');
  refused(["--demo", "--", "config.toml"], '"config.toml"');
});

Deno.test("names that are not options are refused: another case, a negation, an object's own keys, a lone -", () => {
  refused(["--Demo"], "--Demo");
  refused(["--no-demo"], "--no-demo");
  refused(["--constructor"], "--constructor");
  refused(["--toString=x"], "--toString");
  refused(["-hh"], "-hh");
  refused(["-"], '"-"');
});

Deno.test("USAGE mentions every option parseCli accepts", () => {
  const defaults = parsed([]);
  const covered = new Set<string>();
  for (const args of LONG_OPTIONS) {
    const changed = changedFields(defaults, parsed([...args]));
    assert.equal(changed.length, 1, `${args[0]} should set exactly one option, set: ${changed.join(", ")}`);
    covered.add(changed[0]);
    for (const option of args.filter((word) => word.startsWith("--"))) {
      assert.ok(usageMentions(option), `USAGE does not mention ${option}`);
    }
  }
  // A new option adds a field; this fails until it is listed above, and so checked against USAGE.
  assert.deepEqual([...covered].sort(), Object.keys(defaults).sort());

  // Short options cannot be listed from the result's fields, so every letter is tried.
  const letters = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"];
  const shortAccepted = letters.filter((c) => parseCli([`-${c}`]).ok || parseCli([`-${c}`, "value"]).ok);
  assert.ok(shortAccepted.includes("h"), "-h is accepted, so this search must find it");
  for (const c of shortAccepted) assert.ok(usageMentions(`-${c}`), `USAGE does not mention -${c}`);
});

Deno.test("USAGE names every environment variable that overrides a config key", () => {
  const names = Object.keys(ENV_OVERRIDES);
  assert.ok(names.length > 0);
  for (const name of names) assert.ok(USAGE.includes(name), `USAGE does not mention ${name}`);
});

// ---- Which config file is loaded ----

async function withFolders(body: (cwd: string, bin: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "monzo-cli-test-" });
  try {
    const cwd = join(root, "work");
    const bin = join(root, "bin");
    await Deno.mkdir(cwd);
    await Deno.mkdir(bin);
    await body(cwd, bin);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("--config wins over every default location", async () => {
  await withFolders(async (cwd, bin) => {
    await Deno.writeTextFile(join(cwd, "config.toml"), "");
    const chosen = await configPathFor("elsewhere.toml", { cwd, execPath: join(bin, "monzo-exporter") });
    assert.equal(chosen, "elsewhere.toml");
  });
});

Deno.test("config.toml in the working folder comes before the one beside the binary", async () => {
  await withFolders(async (cwd, bin) => {
    await Deno.writeTextFile(join(cwd, "config.toml"), "");
    await Deno.writeTextFile(join(bin, "config.toml"), "");
    assert.equal(await configPathFor(null, { cwd, execPath: join(bin, "monzo-exporter") }), join(cwd, "config.toml"));
  });
});

Deno.test("a compiled binary falls back to config.toml beside itself", async () => {
  await withFolders(async (cwd, bin) => {
    await Deno.writeTextFile(join(bin, "config.toml"), "");
    assert.equal(await configPathFor(null, { cwd, execPath: join(bin, "monzo-exporter") }), join(bin, "config.toml"));
  });
});

Deno.test("under deno itself, or with no config anywhere, the working folder's config.toml is named", async () => {
  await withFolders(async (cwd, bin) => {
    // The error for a missing file should name the place a user expects: the working folder.
    assert.equal(await configPathFor(null, { cwd, execPath: join(bin, "monzo-exporter") }), join(cwd, "config.toml"));
    await Deno.writeTextFile(join(bin, "config.toml"), "");
    assert.equal(await configPathFor(null, { cwd, execPath: join(bin, "deno") }), join(cwd, "config.toml"));
  });
});

Deno.test("the README lists the options exactly as --help prints them", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const options = USAGE.split("\n").filter((line) => /^ {2}-/.test(line)).map((line) => line.trim());
  assert.ok(options.length >= 6, "USAGE lists no options");
  const readmeLines = new Set(readme.split("\n").map((line) => line.trim()));
  for (const option of options) assert.ok(readmeLines.has(option), `README lacks the --help line: ${option}`);
});
