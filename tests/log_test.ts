import assert from "node:assert/strict";
import { createLogger, type LoggerOptions } from "../lib/shared/log.ts";

const NOW = Date.UTC(2026, 2, 14, 15, 9, 26, 535);
const STAMP = new Date(NOW).toISOString();

function recording(options: Omit<LoggerOptions, "sink" | "now"> = {}) {
  const lines: string[] = [];
  const log = createLogger({ ...options, sink: (line) => lines.push(line), now: () => NOW });
  return { log, lines };
}

Deno.test("each message is one line: time, level, text", () => {
  const { log, lines } = recording();
  log.info("Polled 2 accounts");
  log.warn("Monzo answered slowly");
  log.error("Monzo is down");
  assert.deepEqual(lines, [
    `${STAMP} INFO Polled 2 accounts`,
    `${STAMP} WARN Monzo answered slowly`,
    `${STAMP} ERROR Monzo is down`,
  ]);
});

Deno.test("line breaks inside a message are flattened, so one message is one line", () => {
  const { log, lines } = recording();
  log.error('Monzo said: {\n  "code": "forbidden",\n  "message": "x"\n}');
  log.warn("windows\r\nline\rbreaks");
  log.info("\n");
  assert.equal(lines.length, 3);
  for (const line of lines) assert.doesNotMatch(line, /[\r\n]/, JSON.stringify(line));
  assert.ok(lines[0].includes('"code": "forbidden"'), lines[0]);
  assert.ok(lines[1].includes("windows") && lines[1].includes("line") && lines[1].includes("breaks"), lines[1]);
});

Deno.test("secrets are masked wherever and however often they appear", () => {
  const clientSecret = "mnzconf.test-only-client-secret";
  const authKey = "test-only-auth-key-0123";
  const { log, lines } = recording({ secrets: () => [clientSecret, authKey] });
  log.error(`token exchange failed: client_secret=${clientSecret}&x=${clientSecret}`);
  log.warn(`Visit /authorize?key=${authKey} to log in`);
  log.info("nothing secret here");
  assert.equal(lines.length, 3);
  for (const line of lines) {
    assert.ok(!line.includes(clientSecret), line);
    assert.ok(!line.includes(authKey), line);
  }
  assert.equal(lines[0], `${STAMP} ERROR token exchange failed: client_secret=[redacted]&x=[redacted]`);
  assert.equal(lines[1], `${STAMP} WARN Visit /authorize?key=[redacted] to log in`);
  assert.equal(lines[2], `${STAMP} INFO nothing secret here`);
});

Deno.test("the secrets are asked for at every message, so a token obtained later is masked too", () => {
  const secrets: string[] = [];
  const { log, lines } = recording({ secrets: () => secrets });
  const token = "test-only-access-token-issued-later";
  log.info(`before: ${token}`);
  secrets.push(token);
  log.info(`after: ${token}`);
  assert.equal(lines[0], `${STAMP} INFO before: ${token}`);
  assert.equal(lines[1], `${STAMP} INFO after: [redacted]`);
});

Deno.test("secrets with characters special in regular expressions are masked literally", () => {
  const secret = "mnzconf.a+b*c?(d)[e]^$|\\f";
  const { log, lines } = recording({ secrets: () => [secret] });
  log.info(`secret=${secret}; look-alike=mnzconfXa+b*c?(d)[e]^$|\\f`);
  assert.equal(lines[0], `${STAMP} INFO secret=[redacted]; look-alike=mnzconfXa+b*c?(d)[e]^$|\\f`);
});

Deno.test("a secret split by a line break in the message is still masked", () => {
  const secret = "test-only-refresh-token-9d2f";
  const { log, lines } = recording({ secrets: () => [secret] });
  log.error(`refresh failed for ${secret}\nretrying`);
  assert.equal(lines.length, 1);
  assert.ok(!lines[0].includes(secret), lines[0]);
});

Deno.test("empty and very short secrets do not garble messages", () => {
  // A login without a refresh token gives an empty string; masking "" would hit every position.
  const { log, lines } = recording({ secrets: () => ["", "ab", "1234567"] });
  log.info("abc 1234567 stays readable");
  assert.equal(lines[0], `${STAMP} INFO abc 1234567 stays readable`);
});

Deno.test("without a sink the logger writes to standard error, one line per message", async () => {
  const script = `
    import { createLogger } from ${JSON.stringify(new URL("../lib/shared/log.ts", import.meta.url).href)};
    const log = createLogger({ secrets: () => ["test-only-secret-value"] });
    log.info("first\\nmessage with test-only-secret-value");
    log.error("second");
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", `--config=${new URL("../deno.json", import.meta.url).pathname}`, script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  assert.equal(stdout, "");
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 2, stderr);
  assert.match(lines[0], /^\d{4}-\d{2}-\d{2}T\S+Z INFO first message with \[redacted\]$/);
  assert.match(lines[1], /^\d{4}-\d{2}-\d{2}T\S+Z ERROR second$/);
});

Deno.test("control characters reach no sink raw: an ESC sequence, a lone \\r, C1 controls and DEL are escaped", () => {
  const { log, lines } = recording();
  const hostile = "Monzo said: \x1b[31mred\x1b[0m, \x1b]0;title\x07 over\rwritten \x9b2J \x7f \x00 \u2028 end";
  log.error(hostile);
  log.warn("\x1b[2K\rfake line");
  assert.equal(lines.length, 2);
  for (const line of lines) {
    // deno-lint-ignore no-control-regex -- the test is that none is left
    assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f\u2028\u2029]/, JSON.stringify(line));
  }
  assert.ok(lines[0].includes("\\u001b[31mred\\u001b[0m"), lines[0]);
  assert.ok(lines[0].includes("\\u009b2J"), lines[0]);
  assert.ok(lines[0].includes("over written"), lines[0]);
  assert.equal(lines[1], `${STAMP} WARN \\u001b[2K fake line`);
});

Deno.test("debug lines are written only by a logger created with debug: true", () => {
  const quiet = recording();
  quiet.log.debug?.("a stack");
  quiet.log.info("info");
  assert.deepEqual(quiet.lines, [`${STAMP} INFO info`]);
  const loud = recording({ debug: true });
  loud.log.debug?.("a stack\n    at f (x.ts:1:2)");
  assert.deepEqual(loud.lines, [`${STAMP} DEBUG a stack     at f (x.ts:1:2)`]);
});
