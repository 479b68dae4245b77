// Resource exhaustion at the HTTP edge, against the real program: a flood of idle and half-sent
// connections under a low file-descriptor limit must not end the process. When accepting fails for
// want of descriptors the server drops the connections it holds (the flood's) and listens again.

import assert from "node:assert/strict";
import { binaryExists, explainSkip, freePort, get, PROGRAM, programLines, spawn, waitFor } from "./helpers/e2e.ts";

const PRLIMIT = "/usr/bin/prlimit";
const STACK_TRACE = /^\s+at |error: Uncaught|Stack trace/m;
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR) \S/;
const encoder = new TextEncoder();

/** Opens a TCP connection, or null when the server's queue is full and it does not complete in time. */
async function tryConnect(port: number): Promise<Deno.TcpConn | null> {
  try {
    return await Deno.connect({ hostname: "127.0.0.1", port, signal: AbortSignal.timeout(2_000) });
  } catch {
    return null;
  }
}

/** Resolves when the server closes `conn` (end of stream or reset), with the ms it took; null if it stayed open. */
async function closedWithin(conn: Deno.TcpConn, ms: number): Promise<number | null> {
  const started = performance.now();
  const buffer = new Uint8Array(4096);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"open">((resolve) => timer = setTimeout(() => resolve("open"), ms));
  const closed = (async () => {
    try {
      while ((await conn.read(buffer)) !== null) { /* a 408 page may come first */ }
    } catch {
      // A reset is a close too.
    }
    return "closed" as const;
  })();
  try {
    return (await Promise.race([closed, timeout])) === "closed" ? performance.now() - started : null;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "400 idle and 20 half-sent connections under a 256-file limit: the program stays up, serves, closes them",
  ignore: !binaryExists(PRLIMIT),
  async fn() {
    const port = freePort();
    const base = `http://127.0.0.1:${port}`;
    const program = spawn(PRLIMIT, [
      "--nofile=256:256",
      Deno.execPath(),
      ...PROGRAM,
      "--demo",
      "--web.listen-address",
      `127.0.0.1:${port}`,
    ]);
    const idle: Deno.TcpConn[] = [];
    const halfSent: Deno.TcpConn[] = [];
    try {
      await waitFor("the demo to serve /healthz", async () => (await get(`${base}/healthz`)).status === 200, {
        timeoutMs: 20_000,
      });
      for (let i = 0; i < 20; i++) {
        const conn = await tryConnect(port);
        if (!conn) continue;
        await conn.write(encoder.encode("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "));
        halfSent.push(conn);
      }
      assert.equal(halfSent.length, 20);
      for (let i = 0; i < 400; i++) {
        const conn = await tryConnect(port);
        if (conn) idle.push(conn);
        // Refused while the server is between listeners; the flood goes on.
        else await new Promise((resolve) => setTimeout(resolve, 20));
      }
      let exited = false;
      void program.status.then(() => exited = true);
      // While the flood holds its connections, a scrape still gets an answer.
      const during = await waitFor("/metrics to answer during the flood", async () => {
        if (exited) throw new Error(`the program exited:\n${program.stderr.text}`);
        const answer = await get(`${base}/metrics`, { signal: AbortSignal.timeout(2_000) });
        return answer.status === 200 && answer;
      }, { timeoutMs: 15_000, intervalMs: 200 });
      assert.match(during.text, /^monzo_up /m);
      assert.equal(exited, false, `the program exited:\n${program.stderr.text}`);

      // Out of descriptors, the server closed the connections it held, the half-sent requests among them.
      const closes = await Promise.all(halfSent.map((conn) => closedWithin(conn, 5_000)));
      assert.ok(
        closes.every((ms) => ms !== null),
        `half-sent connections left open: ${closes.filter((x) => !x).length}`,
      );
      assert.equal(exited, false, `the program exited:\n${program.stderr.text}`);
    } finally {
      for (const conn of [...idle, ...halfSent]) {
        try {
          conn.close();
        } catch {
          // Closed by the server already.
        }
      }
    }
    try {
      // Once the connections go, everything is served again.
      const after = await waitFor("/ to answer after the flood", async () => {
        const answer = await get(`${base}/`);
        return answer.status === 200 && answer;
      }, { timeoutMs: 10_000 });
      assert.match(after.text, /Monzo exporter/);
      const status = await program.stop("SIGTERM", 10_000);
      assert.equal(status.code, 0, program.stderr.text);
      const lines = programLines(program.stderr.text);
      assert.doesNotMatch(program.stderr.text, STACK_TRACE);
      for (const line of lines) assert.match(line, LOG_LINE, `not a log line: ${line}`);
      // The flood is reported, but not once per connection.
      assert.ok(lines.some((line) => /WARN The server stopped: .*Too many open files/.test(line)), lines.join("\n"));
      assert.ok(lines.length < 20, `${lines.length} log lines:\n${lines.join("\n")}`);
    } finally {
      await program.stop("SIGKILL");
    }
  },
});

if (!binaryExists(PRLIMIT)) explainSkip("prlimit (util-linux)", "the file-descriptor flood test");
