// tools/date_matrix.sh runs the tests under faketime at the awkward instants: it must run at the same
// instants as the injected-clock tests, and name every test file that can meet the real clock.

import assert from "node:assert/strict";
import { join } from "node:path";
import { AWKWARD_INSTANTS } from "./helpers/dates.ts";
import { ROOT } from "./helpers/e2e.ts";

const SCRIPT = join(ROOT, "tools/date_matrix.sh");

/** The quoted lines of the bash array `name=( … )` in `text`. */
function bashArray(text: string, name: string): string[] {
  const body = text.match(new RegExp(`^${name}=\\(\\n([^)]*)\\)$`, "m"));
  assert.ok(body, `no ${name}=( … ) in ${SCRIPT}`);
  return body[1].split("\n").map((line) => line.trim().replace(/^"|"$/g, "")).filter((line) => line !== "");
}

// What lets a test file meet the wall clock: a process of its own (the program, openssl, Prometheus,
// Chromium, tar…), or the fake Monzo, an exporter or the household's data made outside the harness,
// whose clock is injected.
const REAL_CLOCK = [
  /\bspawn\(/,
  /\bDeno\.Command\b/,
  /\bPROGRAM\b/,
  /\bserveExporter\(/,
  /\bstartFakeMonzo\(/,
  /\bcreateExporter\(/,
  /\bhouseholdData\(\)/,
];

Deno.test("tools/date_matrix.sh runs at the instants of tests/helpers/dates.ts", async () => {
  const script = await Deno.readTextFile(SCRIPT);
  assert.deepEqual(
    bashArray(script, "INSTANTS"),
    AWKWARD_INSTANTS.map((instant) => instant.utc.replace("T", " ").replace("Z", "")),
  );
  const full = script.match(/^FULL_AT="([^"]+)"$/m)?.[1];
  assert.equal(full, "2027-01-02 10:00:00", "the whole suite runs at the issue's date");
});

Deno.test("tools/date_matrix.sh names every test file that can meet the real clock, and only real files", async () => {
  const listed = bashArray(await Deno.readTextFile(SCRIPT), "DATE_SENSITIVE");
  const missing: string[] = [];
  for await (const entry of Deno.readDir(join(ROOT, "tests"))) {
    if (!entry.isFile || !entry.name.endsWith("_test.ts")) continue;
    const path = `tests/${entry.name}`;
    const text = await Deno.readTextFile(join(ROOT, path));
    if (REAL_CLOCK.some((pattern) => pattern.test(text)) && !listed.includes(path)) missing.push(path);
  }
  assert.deepEqual(missing.sort(), []);
  for (const path of listed) assert.ok((await Deno.stat(join(ROOT, path))).isFile, path);
});
