// Basic auth over real sockets, plain HTTP and TLS: no Host header and no absolute-form request target
// gets a guarded route without credentials, and with credentials each answers as it does normally.
// Every guarded route is read from the app's own routes, so a new route is covered without a list.

import assert from "node:assert/strict";
import bcrypt from "bcryptjs";
import { decoyCost, type Verify } from "../lib/http/basic_auth.ts";
import type { Exporter } from "../lib/run/exporter.ts";
import { withGatedExporter } from "./helpers/gated_app.ts";
import { raw, type RawAnswer } from "./helpers/raw_http.ts";
import { AUTH_KEY, withTempDir } from "./helpers/harness.ts";
import { haveTools, makeCertificates } from "./helpers/tls.ts";

const tools = haveTools();
if (!tools) console.warn("SKIPPED: openssl is not installed, so the TLS half of these tests cannot run");

const PASSWORD = "correct horse battery staple";
const AUTHORIZATION = `Basic ${btoa(`alice:${PASSWORD}`)}`;
/** The one route answered without credentials (README: "every path but /healthz"). */
const UNGUARDED = "/healthz";

function withExporter(
  users: Record<string, string>,
  body: (exporter: Exporter) => Promise<void>,
  verify?: Verify,
): Promise<void> {
  const config = { users: new Map(Object.entries(users)), headers: [] };
  return withGatedExporter({ config: () => config, verify }, ({ exporter }) => body(exporter));
}

/** Host header values that are not `host[:port]`: each would move the path if read into a URL. */
const HOSTILE_HOSTS = [
  "/healthz?",
  "/",
  "/healthz",
  "x\\healthz?",
  "x\\healthz#",
  "x?",
  "x?/healthz",
  "x#",
  "x#/healthz",
  "a@b",
  "alice@x:1",
  "x@/healthz?",
  "a%",
  "a%zz",
  "a b",
  "x /healthz?",
  "x/healthz?",
  "x:1/healthz?",
  "x:1?",
];
/** Host header values that are fine, a port included (a percent-encoded slash is a host name's character). */
const GOOD_HOSTS = ["x:1", "localhost", "[::1]:80", "a%41b", "a%2fhealthz", "exporter.lan:9100"];
/**
 * Authorities of absolute-form request targets (`GET http://AUTHORITY/metrics`), which Deno takes as
 * they are, with a plain Host header: only the guard stands between these and a route.
 */
const AUTHORITIES = ["x", "x:1", "healthz", "x%2f", "x%2fhealthz%3f"];
/** Authorities that are no URI's; the router still reads the path after them, and the guard guards it. */
const JUNK_AUTHORITIES = ["x\\healthz?", "x?", "x#", "a@b", "x\\healthz#", "a@b?"];

function text(answer: RawAnswer): string {
  return new TextDecoder().decode(answer.body);
}

/** The basic-auth challenge, or the 400 page for a malformed Host header: nothing of the route. */
function refused(answer: RawAnswer, method: string, hostileHost: boolean, what: string): void {
  if (answer.status === 400 && hostileHost) {
    if (method === "GET") assert.match(text(answer), /Host header is not a host name/, what);
  } else {
    assert.equal(answer.status, 401, `${what} answered ${answer.status}: ${text(answer).slice(0, 80)}`);
    assert.equal(answer.headers.get("www-authenticate"), 'Basic realm="monzo-exporter", charset="UTF-8"', what);
    if (method === "GET") assert.equal(text(answer), "Unauthorized\n", what);
  }
  assert.ok(!text(answer).includes("monzo_"), `${what} leaked metrics`);
}

/** Runs the checks `width` at a time: over TLS each answer waits on Nagle (see docs/web-config.md). */
async function inParallel(checks: Array<() => Promise<void>>, width = 16): Promise<void> {
  const queue = [...checks];
  await Promise.all(Array.from({ length: width }, async () => {
    for (let check = queue.shift(); check; check = queue.shift()) await check();
  }));
}

async function probeEveryRoute(exporter: Exporter, port: number, tls?: { caCerts: string[] }): Promise<number> {
  const routes = [...new Set(exporter.app.routes.filter((r) => r.method === "GET").map((r) => r.path))];
  // The derivation works: the routes that show balances are among them.
  for (const path of ["/", "/metrics", "/stats", "/monzo", UNGUARDED]) assert.ok(routes.includes(path), path);
  // Every route but /healthz, and a path no route serves (a 404 page is guarded too).
  const guarded = [...routes.filter((path) => path !== UNGUARDED), "/nowhere"];
  const scheme = tls ? "https" : "http";
  let requests = 0;
  const ask = async (method: string, target: string, headers: Record<string, string>) => {
    requests++;
    return await raw(port, method, target, headers, tls);
  };
  const checks: Array<() => Promise<void>> = [];
  const later: Array<() => Promise<void>> = [];
  // With the login key on each, so /authorize answers its redirect rather than counting wrong keys.
  for (const route of guarded.map((path) => `${path}?key=${AUTH_KEY}`)) {
    for (const method of ["GET", "HEAD"]) {
      // What the route answers to a plain request with the password: the others must match it.
      const normal = await ask(method, route, { authorization: AUTHORIZATION });
      assert.equal(normal.headers.get("www-authenticate"), undefined, `${method} ${route} refused the password`);
      refused(await ask(method, route, {}), method, false, `${method} ${route}`);
      for (const host of [...HOSTILE_HOSTS, ...GOOD_HOSTS]) {
        const hostile = HOSTILE_HOSTS.includes(host);
        const what = `${scheme} ${method} ${route} Host: ${host}`;
        checks.push(async () => {
          refused(await ask(method, route, { host }), method, hostile, what);
          const allowed = await ask(method, route, { host, authorization: AUTHORIZATION });
          assert.equal(allowed.status, hostile ? 400 : normal.status, `${what} with the password`);
        });
      }
      for (const authority of [...AUTHORITIES, ...JUNK_AUTHORITIES]) {
        for (const targetScheme of ["http", "https"]) {
          const target = `${targetScheme}://${authority}${route}`;
          const what = `${scheme} ${method} ${target}`;
          checks.push(async () => refused(await ask(method, target, {}), method, false, what));
          if (JUNK_AUTHORITIES.includes(authority)) {
            // The guard lets the password through; what a route then reads from a query after a junk
            // authority (hono's query reader starts at the first "?") is its own affair: last, since
            // /authorize counts the key it cannot find as a wrong one.
            later.push(async () => {
              const allowed = await ask(method, target, { authorization: AUTHORIZATION });
              assert.notEqual(allowed.headers.get("www-authenticate")?.startsWith("Basic"), true, what);
            });
          } else {
            checks.push(async () => {
              const allowed = await ask(method, target, { authorization: AUTHORIZATION });
              assert.equal(allowed.status, normal.status, `${what} with the password`);
            });
          }
        }
      }
    }
  }
  await inParallel(checks);
  await inParallel(later);
  // An absolute-form target for /healthz is /healthz, and needs no password.
  const health = await ask("GET", `${scheme}://x${UNGUARDED}`, {});
  assert.equal(health.status, 200);
  assert.equal(text(health), "ok\n");
  return requests;
}

Deno.test("over plain HTTP, no Host header or absolute-form target reaches any guarded route without the password", async () => {
  await withExporter({ alice: bcrypt.hashSync(PASSWORD, 4) }, async (exporter) => {
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, exporter.handler);
    try {
      const requests = await probeEveryRoute(exporter, server.addr.port);
      assert.ok(requests > 1000, `only ${requests} requests were made`);
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test({
  name: "over TLS, no Host header or absolute-form target reaches any guarded route without the password",
  ignore: !tools,
  async fn() {
    await withTempDir(async (dir) => {
      const certs = await makeCertificates(dir);
      await withExporter({ alice: bcrypt.hashSync(PASSWORD, 4) }, async (exporter) => {
        const server = Deno.serve(
          { hostname: "127.0.0.1", port: 0, cert: certs.cert, key: certs.key, onListen() {} },
          exporter.handler,
        );
        try {
          await probeEveryRoute(exporter, server.addr.port, { caCerts: [certs.caCert] });
        } finally {
          await server.shutdown();
        }
      });
    });
  },
});

Deno.test("an unknown user is checked against a decoy of the highest bcrypt cost among the users", async () => {
  // The cheaper user first: a decoy taken from the first user would be cost 4.
  const users = { cheap: bcrypt.hashSync("a", 4), dear: bcrypt.hashSync("b", 10), mid: bcrypt.hashSync("c", 6) };
  assert.equal(decoyCost(Object.values(users)), 10);
  assert.equal(decoyCost([]), 10);
  const checked: string[] = [];
  const verify: Verify = (password, hash) => {
    checked.push(hash);
    return Promise.resolve(bcrypt.compareSync(password, hash));
  };
  await withExporter(users, async (exporter) => {
    const response = await exporter.app.request("/metrics", {
      headers: { authorization: `Basic ${btoa("mallory:a")}` },
    });
    assert.equal(response.status, 401);
    await response.body?.cancel();
    assert.equal(checked.length, 1, "an unknown user was not verified at all");
    assert.ok(!Object.values(users).includes(checked[0]), "checked against a real user's hash");
    // The decoy's own cost, as bcrypt reads it from the hash.
    assert.equal(bcrypt.getRounds(checked[0]), 10);
  }, verify);
});

Deno.test("every check costs the bcrypt work of the dearest user's hash, whoever the user, known or not", async () => {
  const users = { cheap: bcrypt.hashSync("a", 4), mid: bcrypt.hashSync("c", 6), dear: bcrypt.hashSync("b", 8) };
  let checked: string[] = [];
  const verify: Verify = (password, hash) => {
    checked.push(hash);
    return Promise.resolve(bcrypt.compareSync(password, hash));
  };
  await withExporter(users, async (exporter) => {
    // bcrypt's work doubles with each step of cost: 2^cost rounds.
    const work = () => checked.reduce((sum, hash) => sum + 2 ** bcrypt.getRounds(hash), 0);
    for (const [user, password] of [["cheap", "x"], ["mid", "x"], ["dear", "x"], ["mallory", "x"], ["cheap", "a"]]) {
      checked = [];
      const response = await exporter.app.request("/metrics", {
        headers: { authorization: `Basic ${btoa(`${user}:${password}`)}` },
      });
      assert.equal(response.status, user === "cheap" && password === "a" ? 200 : 401, user);
      await response.body?.cancel();
      assert.equal(work(), 2 ** 8, `${user}: ${checked.map((hash) => bcrypt.getRounds(hash)).join(", ")}`);
    }
  }, verify);
});
