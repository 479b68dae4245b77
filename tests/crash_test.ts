// The process killed (SIGKILL) in the middle of writing tokens (issue 3, "Faults"), against the real
// program. `deno run … main.ts` is logged in again and again over HTTP, by two members of the
// household in turn (one of them now and then revoking the exporter's access in the app, so the
// tokens file flips between the single-login and the multi-login formats), while Prometheus-like
// scrapes keep it busy. It is killed, with its whole process group, at random moments: some just
// after Monzo has handed it new tokens, some at a random time. After every kill the tokens file is
// a complete set of logins Monzo issued, mode 600; restarted on the same config the program starts,
// shows the stored users, and either polls fine at once or, for a login Monzo has since ended, says
// to log in again, and recovers after that login.
//
// Monzo is the fake, behind a small recording proxy (the exporter's api_url) that notes every token
// pair Monzo issues and every refresh token that stops working, before the exporter sees the answer.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type FakeMonzo, startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import { hash, mulberry32 } from "../lib/fake_monzo/random.ts";
import { decodeLogins } from "../lib/logins/token_file.ts";
import {
  ALICE,
  AUTH_KEY,
  BOB,
  CLIENT_ID,
  CLIENT_SECRET,
  configFields,
  freePort,
  PROGRAM,
  type Running,
  sampleValue,
  settlesWithin,
  spawn,
  waitFor,
  writeConfig,
} from "./helpers/e2e.ts";

/** How many times the program is killed. */
const KILLS = 24;
/** Concurrent login loops, so token writes queue up behind one another. */
const LOGIN_WORKERS = 2;
/** Concurrent scrape loops, so the program is busy while it writes. */
const SCRAPERS = 2;
/** If no planned kill happened by then, the round kills anyway (and says so). */
const FALLBACK_KILL_MS = 4_000;
const USERS = [ALICE, BOB] as const;
const STACK_TRACE = /^\s+at |error: Uncaught|Stack trace/m;

/** What Monzo did, as seen on the wire between the exporter and the fake. */
class Ledger {
  /** The refresh token of every pair Monzo issued, by access token. */
  readonly pairs = new Map<string, string>();
  /** Refresh tokens that no longer work: rotated by a refresh, or revoked by the test. */
  readonly dead = new Set<string>();
  /** Code exchanges Monzo answered with tokens. */
  codeGrants = 0;
  /** Requests from the exporter that Monzo has not answered yet. */
  pending = 0;
  /** Called after each token answer, before the exporter receives it. */
  onAnswer: (() => void) | null = null;
}

/** Serves the fake's API through a proxy that keeps the {@link Ledger}. */
function recordingProxy(fake: FakeMonzo, ledger: Ledger): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    ledger.pending += 1;
    try {
      const url = new URL(request.url);
      const body = request.method === "GET" ? undefined : await request.text();
      const headers = new Headers();
      for (const name of ["authorization", "content-type"]) {
        const value = request.headers.get(name);
        if (value !== null) headers.set(name, value);
      }
      const upstream = await fetch(`${fake.url}${url.pathname}${url.search}`, {
        method: request.method,
        headers,
        body,
      });
      const text = await upstream.text();
      if (url.pathname === "/oauth2/token" && upstream.status === 200) {
        const grant = JSON.parse(text);
        ledger.pairs.set(grant.access_token, grant.refresh_token);
        const form = new URLSearchParams(body);
        if (form.get("grant_type") === "refresh_token") ledger.dead.add(form.get("refresh_token") ?? "");
        else ledger.codeGrants += 1;
        ledger.onAnswer?.();
      }
      const answer = new Headers();
      for (const name of ["content-type", "retry-after"]) {
        const value = upstream.headers.get(name);
        if (value !== null) answer.set(name, value);
      }
      return new Response(text, { status: upstream.status, headers: answer });
    } catch {
      // The exporter was killed while sending its request.
      return new Response("proxy: request lost", { status: 502 });
    } finally {
      ledger.pending -= 1;
    }
  });
}

/** Everything the rounds share. */
interface World {
  readonly fake: FakeMonzo;
  readonly ledger: Ledger;
  readonly configPath: string;
  readonly tokensPath: string;
  readonly base: string;
}

/** The stored logins as the next start must treat them. */
interface Expected {
  /** Users whose stored refresh token still works: logged in and polled at once. */
  readonly usable: string[];
  /** Users whose stored login Monzo has ended: told to log in again. */
  readonly ended: string[];
}

/** What the kills found, for the non-vacuity checks and the summary line. */
interface Stats {
  completedLogins: number;
  /** Kills that landed while at least one /callback (a login) was unanswered. */
  killsDuringLogin: number;
  /** Kills that landed when Monzo had issued tokens for more logins this round than had been answered. */
  killsAfterGrantBeforeAnswer: number;
  /** Kills after which the atomic write's temporary file was left: the kill landed mid-write. */
  killsMidWrite: number;
  fallbackKills: number;
  singleFormat: number;
  multiFormat: number;
  startsAllUsable: number;
  startsWithEnded: number;
  startsEmpty: number;
}

function startProgram(world: World): Running {
  return spawn(Deno.execPath(), [...PROGRAM, "--config", world.configPath]);
}

/** The program's standard error so far, for failure messages. */
function tail(program: Running): string {
  return program.stderr.text.split("\n").slice(-15).join("\n");
}

/** A complete login over HTTP: /authorize for a state, then /callback with a code Monzo issued. */
async function logInOverHttp(world: World, client: Deno.HttpClient, user: string, inFlight?: { callbacks: number }) {
  const authorize = await fetch(`${world.base}/authorize?key=${encodeURIComponent(AUTH_KEY)}`, {
    redirect: "manual",
    client,
  });
  await authorize.body?.cancel();
  assert.equal(authorize.status, 302, "/authorize did not redirect to Monzo");
  const state = new URL(authorize.headers.get("location") ?? "").searchParams.get("state") ?? "";
  const code = world.fake.issueCode(user, `${world.base}/callback`);
  if (inFlight) inFlight.callbacks += 1;
  try {
    const callback = await fetchText(client, `${world.base}/callback?${new URLSearchParams({ code, state })}`);
    assert.equal(callback.status, 200, `the login of ${user} failed: ${callback.text}`);
  } finally {
    if (inFlight) inFlight.callbacks -= 1;
  }
}

/** GETs `url` through `client` (each start gets its own, so no pooled connection outlives a kill). */
async function fetchText(client: Deno.HttpClient, url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { client });
  return { status: response.status, text: await response.text() };
}

/** The user revokes the exporter's access in the Monzo app: its token and refresh token stop working. */
function revoke(world: World, user: string): void {
  const tokens = world.fake.tokensOf(user);
  if (!tokens) return;
  world.fake.evict(user);
  world.fake.revokeRefresh(user);
  world.ledger.dead.add(tokens.refreshToken);
}

/** The row of the landing page's logins table that names `user`, or undefined. */
function loginRow(html: string, user: string): string | undefined {
  return html.split("<tr>").find((row) => row.includes(`<code>${user}</code>`));
}

/** Starts the program on the existing files and checks what it shows; ends with monzo_up 1. */
async function checkStart(world: World, program: Running, expected: Expected, stats: Stats, start: number) {
  const client = Deno.createHttpClient({});
  const where = `start ${start}`;
  try {
    let exited = false;
    program.status.then(() => exited = true);
    await waitFor(`${where}: the program to serve /healthz`, async () => {
      if (exited) return "exited";
      return (await fetchText(client, `${world.base}/healthz`)).status === 200;
    }, { timeoutMs: 15_000 });
    assert.ok(!exited, `${where}: the program exited at start:\n${tail(program)}`);

    // It polls once at start; the logins as that poll left them.
    const metrics = await waitFor(`${where}: the first poll`, async () => {
      const text = (await fetchText(client, `${world.base}/metrics`)).text;
      return /^monzo_poll_duration_seconds /m.test(text) && text;
    });
    const landing = (await fetchText(client, `${world.base}/`)).text;
    assert.ok(!program.stderr.text.includes("Cannot read tokens file"), `${where}: unreadable file:\n${tail(program)}`);
    for (const user of expected.usable) {
      assert.equal(sampleValue(metrics, "monzo_logged_in", `user_id="${user}"`), 1, `${where}: ${user} not logged in`);
      assert.match(loginRow(landing, user) ?? "", /logged in, polling/, `${where}: the landing page on ${user}`);
    }
    for (const user of expected.ended) {
      assert.equal(sampleValue(metrics, "monzo_logged_in", `user_id="${user}"`), 0, `${where}: ${user} still in`);
      const row = loginRow(landing, user) ?? "";
      assert.match(row, /logged out/, `${where}: the landing page does not say ${user} is logged out`);
      assert.match(row, /log in again/, `${where}: the landing page does not tell ${user} to log in again`);
    }
    // The poll left the file as Monzo sees it: a working pair for each usable login (renewed if
    // Monzo had moved on), and no ended login.
    const stored = decodeLogins(await Deno.readTextFile(world.tokensPath).catch(() => "{}"));
    const storedUsers = stored.ok ? stored.value.map((login) => login.userId) : [];
    for (const user of expected.usable) {
      const login = stored.ok ? stored.value.find((l) => l.userId === user) : undefined;
      assert.equal(login?.accessToken, world.fake.tokensOf(user)?.accessToken, `${where}: ${user}'s stored token`);
      assert.ok(!world.ledger.dead.has(login?.refreshToken ?? ""), `${where}: ${user}'s stored refresh token is dead`);
    }
    for (const user of expected.ended) {
      assert.ok(!storedUsers.includes(user), `${where}: the ended login of ${user} is still stored`);
    }
    if (expected.usable.length + expected.ended.length === 0) {
      stats.startsEmpty += 1;
      assert.match(landing, /Nobody is logged in yet/, `${where}: logins shown without a tokens file`);
    }

    if (expected.usable.length > 0 && expected.ended.length === 0) {
      stats.startsAllUsable += 1;
      assert.match(metrics, /^monzo_up 1$/m, `${where}: the first poll after the restart failed:\n${landing}`);
    } else {
      if (expected.ended.length > 0) stats.startsWithEnded += 1;
      assert.match(metrics, /^monzo_up 0$/m, `${where}: monzo_up 1 without a working login`);
      // Whoever was told to log in again does so (or a first user), and the exporter recovers.
      const again = expected.ended.length > 0 ? expected.ended : [ALICE];
      for (const user of again) await logInOverHttp(world, client, user);
      await waitFor(`${where}: monzo_up 1 after logging in again`, async () => {
        const text = (await fetchText(client, `${world.base}/metrics`)).text;
        return /^monzo_up 1$/m.test(text) &&
          again.every((user) => sampleValue(text, "monzo_logged_in", `user_id="${user}"`) === 1);
      });
    }
    assert.doesNotMatch(program.stderr.text, STACK_TRACE, `${where}: a stack trace on stderr`);
    assert.ok(!exited, `${where}: the program exited:\n${tail(program)}`);
  } finally {
    client.close();
  }
}

/** The seed of the kills' and revocations' randomness; CRASH_SEED=n in the environment tries another. */
const CRASH_SEED = Number(Deno.env.get("CRASH_SEED") ?? hash("crash_test")) >>> 0;

/**
 * Logs in over and over, scrapes meanwhile, and kills the program's process group at a random
 * moment; returns once the program and every loop have ended.
 */
async function churnAndKill(world: World, program: Running, stats: Stats, round: number): Promise<void> {
  // Seeded per round, so a failing round's kill moments and revocations come again on the next run.
  const random = mulberry32(CRASH_SEED + round);
  const client = Deno.createHttpClient({});
  const inFlight = { callbacks: 0 };
  let exited = false;
  program.status.then(() => exited = true);
  let completedThisRound = 0;
  const grantsBefore = world.ledger.codeGrants;
  let killed = false;
  const kill = (fallback = false) => {
    if (killed) return;
    killed = true;
    if (inFlight.callbacks > 0) stats.killsDuringLogin += 1;
    if (world.ledger.codeGrants - grantsBefore > completedThisRound) stats.killsAfterGrantBeforeAnswer += 1;
    if (fallback) stats.fallbackKills += 1;
    try {
      Deno.kill(-program.child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (round % 4 !== 3) {
    // Aimed: 0-4 ms after Monzo hands over the n-th token pair of the round, as a write follows.
    let left = 1 + Math.floor(random() * 4);
    world.ledger.onAnswer = () => {
      if (--left > 0) return;
      world.ledger.onAnswer = null;
      timers.push(setTimeout(kill, random() * 4));
    };
  } else {
    // Every fourth round: at any moment of the churn.
    timers.push(setTimeout(kill, 20 + random() * 200));
  }
  timers.push(setTimeout(() => kill(true), FALLBACK_KILL_MS));

  /** Runs `step` until the program is gone; an error while it still runs is a failure. */
  const loop = async (step: (i: number) => Promise<void>) => {
    for (let i = 0; !exited; i++) {
      try {
        await step(i);
      } catch (error) {
        if (await settlesWithin(program.status, 2_000)) return;
        throw error;
      }
    }
  };
  const logins = Array.from({ length: LOGIN_WORKERS }, (_, worker) =>
    loop(async (i) => {
      const user = USERS[(i + worker) % 2];
      // Now and then the other member revokes access, so the next poll drops their login.
      if (random() < 0.5) revoke(world, USERS[(i + worker + 1) % 2]);
      await logInOverHttp(world, client, user, inFlight);
      completedThisRound += 1;
      stats.completedLogins += 1;
    }));
  const scrapes = Array.from({ length: SCRAPERS }, (_, scraper) =>
    loop(async (i) => {
      const answer = await fetchText(client, `${world.base}${(i + scraper) % 2 === 0 ? "/metrics" : "/"}`);
      assert.equal(answer.status, 200);
    }));
  const loops = Promise.all([...logins, ...scrapes]);
  // Awaited below; a failure while the program still runs is reported there, not as unhandled.
  loops.catch(() => {});
  try {
    // The timers above kill it; stop() then reaps it and its output.
    await program.status;
    const status = await program.stop("SIGKILL");
    assert.equal(status.signal, "SIGKILL", `round ${round}: the program ended on its own:\n${tail(program)}`);
    await loops;
  } finally {
    world.ledger.onAnswer = null;
    for (const timer of timers) clearTimeout(timer);
    client.close();
  }
}

/** Checks the tokens file the kill left; returns what the next start must show. */
async function checkFile(world: World, stats: Stats, round: number): Promise<Expected> {
  const where = `after kill ${round}`;
  // A request the exporter sent just before dying may still be with Monzo: let it finish first.
  await new Promise((resolve) => setTimeout(resolve, 20));
  await waitFor(`${where}: Monzo to answer what the exporter sent`, () => world.ledger.pending === 0);
  try {
    await Deno.stat(`${world.tokensPath}.tmp`);
    stats.killsMidWrite += 1;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // Every start ends logged in (see checkStart), so the file exists from the first kill on.
  const text = await Deno.readTextFile(world.tokensPath);
  const decoded = decodeLogins(text);
  assert.ok(
    decoded.ok,
    `${where}: the tokens file does not decode (${decoded.ok ? "" : decoded.error}), ${text.length} bytes`,
  );
  if (JSON.parse(text).logins === undefined) stats.singleFormat += 1;
  else stats.multiFormat += 1;
  const mode = (await Deno.stat(world.tokensPath)).mode ?? 0;
  assert.equal(mode & 0o777, 0o600, `${where}: the tokens file has mode ${(mode & 0o777).toString(8)}`);

  const expected: Expected = { usable: [], ended: [] };
  const users = decoded.value.map((login) => login.userId);
  assert.equal(new Set(users).size, users.length, `${where}: a user is stored twice`);
  for (const login of decoded.value) {
    assert.ok(login.userId && (USERS as readonly string[]).includes(login.userId), `${where}: user id ${login.userId}`);
    assert.ok(login.accessToken, `${where}: ${login.userId} has no access token`);
    assert.ok(login.refreshToken, `${where}: ${login.userId} has no refresh token`);
    assert.ok(world.ledger.pairs.has(login.accessToken), `${where}: ${login.userId}'s access token was never issued`);
    assert.equal(
      world.ledger.pairs.get(login.accessToken),
      login.refreshToken,
      `${where}: ${login.userId}'s refresh token is not the one issued with the access token`,
    );
    assert.ok(Number.isFinite(login.expiresAt), `${where}: ${login.userId} has no expiry`);
    (world.ledger.dead.has(login.refreshToken) ? expected.ended : expected.usable).push(login.userId);
  }
  return expected;
}

Deno.test("the real program killed (SIGKILL) while writing tokens keeps a whole login file and recovers", async () => {
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: true });
  const ledger = new Ledger();
  const proxy = recordingProxy(fake, ledger);
  const dir = await Deno.makeTempDir({ prefix: "monzo-crash-test-" });
  let program: Running | null = null;
  const stats: Stats = {
    completedLogins: 0,
    killsDuringLogin: 0,
    killsAfterGrantBeforeAnswer: 0,
    killsMidWrite: 0,
    fallbackKills: 0,
    singleFormat: 0,
    multiFormat: 0,
    startsAllUsable: 0,
    startsWithEnded: 0,
    startsEmpty: 0,
  };
  try {
    const port = freePort();
    const world: World = {
      fake,
      ledger,
      // tokens_path stays relative, so it lives beside the config file.
      configPath: await writeConfig(dir, {
        ...configFields(fake, port),
        api_url: `http://127.0.0.1:${proxy.addr.port}`,
      }),
      tokensPath: join(dir, "tokens.json"),
      base: `http://127.0.0.1:${port}`,
    };
    const started = performance.now();
    let expected: Expected = { usable: [], ended: [] };
    for (let round = 0; round <= KILLS; round++) {
      program = startProgram(world);
      await checkStart(world, program, expected, stats, round);
      if (round === KILLS) break;
      await churnAndKill(world, program, stats, round);
      program = null;
      expected = await checkFile(world, stats, round);
    }
    // The last start stops cleanly.
    const status = await program!.stop("SIGTERM", 10_000);
    assert.equal(status.code, 0, `exit code ${status.code} after SIGTERM:\n${tail(program!)}`);

    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `crash_test: ${KILLS} kills in ${seconds} s, ${stats.completedLogins} logins completed; ` +
        `${stats.killsDuringLogin} kills during a login, ${stats.killsAfterGrantBeforeAnswer} after Monzo issued ` +
        `tokens the login had not confirmed, ${stats.killsMidWrite} mid-write (temporary file left), ` +
        `${stats.fallbackKills} by the fallback timer; files left: ${stats.singleFormat} single-login, ` +
        `${stats.multiFormat} multi-login; restarts: ${stats.startsAllUsable} polled fine ` +
        `at once, ${stats.startsWithEnded} asked to log in again, ${stats.startsEmpty} empty`,
    );
    assert.ok(stats.completedLogins >= KILLS, `only ${stats.completedLogins} logins completed`);
    assert.ok(
      stats.killsDuringLogin >= KILLS / 4,
      `only ${stats.killsDuringLogin} of ${KILLS} kills landed while a login was in flight`,
    );
  } finally {
    await program?.stop("SIGKILL");
    await proxy.shutdown();
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});
