// Sessions and the token store against a small OAuth server on loopback whose answers each test
// scripts: the races, refusals and write failures that decide whether a stored login survives.

import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogger } from "../lib/shared/log.ts";
import { createMonzoClient } from "../lib/monzo/monzo_client.ts";
import { createSessions, type Sessions } from "../lib/logins/sessions.ts";
import { decodeLogins, type StoredLogin, tokenFile } from "../lib/logins/token_file.ts";
import { TokenStore } from "../lib/logins/token_store.ts";

const ALICE = "user_00009AliceSessions";
const T0 = Date.UTC(2026, 2, 2, 9, 0, 0);
const HOUR = 3_600_000;

/** What the scripted server answers to one POST /oauth2/token, after an optional wait. */
interface TokenAnswer {
  readonly status: number;
  readonly body: string;
  readonly contentType?: string;
  readonly wait?: Promise<void>;
}

/** A grant body as Monzo sends it. */
function grant(tag: string, { refresh = true, userId = ALICE } = {}): TokenAnswer {
  return {
    status: 200,
    body: JSON.stringify({
      access_token: `access-${tag}-0123456789`,
      ...(refresh ? { refresh_token: `refresh-${tag}-0123456789` } : {}),
      expires_in: 30 * 3600,
      token_type: "Bearer",
      user_id: userId,
      client_id: "oauth2client_test",
    }),
  };
}

const INVALID_GRANT: TokenAnswer = {
  status: 400,
  body: JSON.stringify({ error: "invalid_grant", error_description: "refresh token is invalid" }),
};

interface Rig {
  readonly sessions: Sessions;
  readonly store: TokenStore;
  readonly path: string;
  readonly dir: string;
  /** Answers for the code exchange and the refresh, taken in order. */
  readonly codeAnswers: TokenAnswer[];
  readonly refreshAnswers: TokenAnswer[];
  /** The `whoami` user id. */
  whoami: string;
  now: number;
}

/** Starts the scripted server and a store on a real tokens file holding `initial`, then runs `body`. */
async function withRig(initial: StoredLogin[], body: (rig: Rig) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sessions_test_" });
  const folder = join(dir, "state");
  await Deno.mkdir(folder);
  const path = join(folder, "tokens.json");
  const rig = { codeAnswers: [] as TokenAnswer[], refreshAnswers: [] as TokenAnswer[], whoami: ALICE, now: T0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/ping/whoami") {
      return Response.json({ authenticated: true, client_id: "oauth2client_test", user_id: rig.whoami });
    }
    const form = new URLSearchParams(await request.text());
    const queue = form.get("grant_type") === "refresh_token" ? rig.refreshAnswers : rig.codeAnswers;
    const answer = queue.shift() ?? { status: 500, body: "{}" };
    await answer.wait;
    return new Response(answer.body, {
      status: answer.status,
      headers: { "content-type": answer.contentType ?? "application/json" },
    });
  });
  try {
    const seed = tokenFile(path);
    if (initial.length > 0) assert.ok((await seed.write(initial)).ok);
    const log = createLogger({ sink: () => {} });
    const store = await TokenStore.open(tokenFile(path), log);
    const client = createMonzoClient({ apiUrl: `http://127.0.0.1:${server.addr.port}`, timeoutMs: 5_000 });
    const full: Rig = Object.assign(rig, {
      store,
      path,
      dir,
      sessions: createSessions({
        config: {
          authUrl: "http://127.0.0.1:1",
          clientId: "oauth2client_test",
          clientSecret: "secret-for-sessions-test",
          callbackUrl: "http://127.0.0.1:9100/callback",
          publicUrl: "http://127.0.0.1:9100",
        },
        client,
        store,
        clock: { now: () => rig.now },
        log,
      }),
    });
    await body(full);
    await full.sessions.idle();
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function stored(tag: string, { userId = ALICE as string | null, expiresAt = T0 + 10 * 60_000 } = {}): StoredLogin {
  return { userId, accessToken: `access-${tag}-0123456789`, refreshToken: `refresh-${tag}-0123456789`, expiresAt };
}

async function fileLogins(path: string): Promise<StoredLogin[]> {
  const decoded = decodeLogins(await Deno.readTextFile(path));
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  return decoded.value;
}

/** A promise and the function that settles it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}

Deno.test("a refresh refused after a new browser login of the same user landed keeps the new login", async () => {
  await withRig([stored("old")], async (rig) => {
    const refusal = gate();
    rig.refreshAnswers.push({ ...INVALID_GRANT, wait: refusal.promise });
    rig.codeAnswers.push(grant("browser"));
    const refreshing = rig.sessions.fresh(ALICE);
    // The browser login lands while Monzo is still answering the refresh of the old pair.
    const loggedIn = await rig.sessions.logIn("code-1");
    assert.ok(loggedIn.ok && loggedIn.value.written.ok);
    refusal.open();
    const refreshed = await refreshing;

    assert.ok(refreshed.ok, "the refusal of the old pair ended the new login");
    assert.equal(refreshed.value.login.accessToken, "access-browser-0123456789");
    assert.equal(rig.store.get(ALICE)?.accessToken, "access-browser-0123456789");
    assert.deepEqual(rig.store.statuses().map((s) => s.loggedIn), [true]);
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.accessToken), ["access-browser-0123456789"]);
  });
});

Deno.test("a refresh that succeeds after a new browser login landed leaves the browser login in place", async () => {
  await withRig([stored("old")], async (rig) => {
    const answer = gate();
    rig.refreshAnswers.push({ ...grant("rotated"), wait: answer.promise });
    rig.codeAnswers.push(grant("browser"));
    const refreshing = rig.sessions.fresh(ALICE);
    assert.ok((await rig.sessions.logIn("code-1")).ok);
    answer.open();
    const refreshed = await refreshing;
    assert.ok(refreshed.ok);
    assert.equal(refreshed.value.login.accessToken, "access-browser-0123456789");
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.accessToken), ["access-browser-0123456789"]);
  });
});

Deno.test("only an OAuth refusal of the grant ends a login; a 401 without one keeps the tokens", async () => {
  const notRefusals: Array<[string, TokenAnswer]> = [
    ["401 with an HTML page", {
      status: 401,
      body: "<html><body>Unauthorized</body></html>",
      contentType: "text/html",
    }],
    ["401 with an empty body", { status: 401, body: "" }],
    ["401 with JSON but no OAuth error", { status: 401, body: JSON.stringify({ message: "try later" }) }],
    ["400 invalid_request", { status: 400, body: JSON.stringify({ error: "invalid_request" }) }],
    ["500 invalid_grant (a server error is never a refusal)", { status: 500, ...{ body: INVALID_GRANT.body } }],
  ];
  for (const [name, answer] of notRefusals) {
    await withRig([stored("old")], async (rig) => {
      rig.refreshAnswers.push(answer);
      const refreshed = await rig.sessions.fresh(ALICE);
      // Ten minutes are left on the token, so it is still handed out.
      assert.ok(refreshed.ok, name);
      assert.equal(refreshed.value.problem?.code, "refresh_failed", name);
      assert.deepEqual((await fileLogins(rig.path)).map((l) => l.refreshToken), ["refresh-old-0123456789"], name);
      assert.deepEqual(rig.store.statuses().map((s) => s.loggedIn), [true], name);
    });
  }
  const refusals: Array<[string, TokenAnswer]> = [
    ["400 invalid_grant", INVALID_GRANT],
    ["401 invalid_grant", { ...INVALID_GRANT, status: 401 }],
    ["401 with Monzo's bad_refresh_token code", {
      status: 401,
      body: JSON.stringify({ code: "unauthorized.bad_refresh_token", message: "Refresh token is invalid" }),
    }],
  ];
  for (const [name, answer] of refusals) {
    await withRig([stored("old")], async (rig) => {
      rig.refreshAnswers.push(answer);
      const refreshed = await rig.sessions.fresh(ALICE);
      assert.ok(!refreshed.ok, name);
      assert.equal(refreshed.error.problem.code, "logged_out", name);
      assert.deepEqual(await fileLogins(rig.path), [], name);
    });
  }
});

const BOB = "user_00009BobSessions";

Deno.test("a refused refresh of a login the tokens file holds in a newer form (another exporter rotated it) keeps the login and the file", async () => {
  await withRig([stored("old")], async (rig) => {
    // Another exporter on the same file refreshed first: Monzo revoked "old" and it wrote its new pair.
    const theirs = stored("theirs", { expiresAt: T0 + 20 * HOUR });
    assert.ok((await tokenFile(rig.path).write([theirs])).ok);
    rig.refreshAnswers.push(INVALID_GRANT);
    const refreshed = await rig.sessions.fresh(ALICE);

    assert.ok(refreshed.ok, "the refusal of the rotated-away pair ended the login the file holds");
    assert.equal(refreshed.value.login.refreshToken, theirs.refreshToken);
    assert.equal(rig.store.get(ALICE)?.refreshToken, theirs.refreshToken);
    assert.deepEqual(rig.store.statuses().map((s) => s.loggedIn), [true]);
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.refreshToken), [theirs.refreshToken]);
  });
});

Deno.test("the newer pair taken from the file after a refusal is renewed at once when it is due too", async () => {
  await withRig([stored("old")], async (rig) => {
    assert.ok((await tokenFile(rig.path).write([stored("theirs")])).ok);
    rig.refreshAnswers.push(INVALID_GRANT, grant("renewed"));
    const refreshed = await rig.sessions.fresh(ALICE);
    assert.ok(refreshed.ok);
    assert.equal(refreshed.value.login.accessToken, "access-renewed-0123456789");
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.refreshToken), ["refresh-renewed-0123456789"]);
  });
});

Deno.test("a login ended by a refusal is written without putting back another user's tokens that another program rotated", async () => {
  await withRig([stored("alice"), stored("bob-old", { userId: BOB })], async (rig) => {
    // Another program rotated Bob's pair in the file; Alice's stays as this exporter last saw it.
    const bobNew = stored("bob-new", { userId: BOB, expiresAt: T0 + 20 * HOUR });
    assert.ok((await tokenFile(rig.path).write([stored("alice"), bobNew])).ok);
    rig.refreshAnswers.push(INVALID_GRANT);
    const refreshed = await rig.sessions.fresh(ALICE);
    assert.ok(!refreshed.ok && refreshed.error.problem.code === "logged_out");
    // Alice is ended; Bob's newer pair is neither replaced by the stale one nor dropped.
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.refreshToken), [bobNew.refreshToken]);
    assert.equal(rig.store.get(BOB)?.refreshToken, bobNew.refreshToken);
  });
});

Deno.test("a refusal still ends the login when the file holds the same refused pair", async () => {
  await withRig([stored("old"), stored("bob", { userId: BOB, expiresAt: T0 + 20 * HOUR })], async (rig) => {
    rig.refreshAnswers.push(INVALID_GRANT);
    const refreshed = await rig.sessions.fresh(ALICE);
    assert.ok(!refreshed.ok && refreshed.error.problem.code === "logged_out");
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.userId), [BOB]);
  });
});

Deno.test("a refresh answer without refresh_token keeps the stored refresh token (RFC 6749 §6)", async () => {
  await withRig([stored("old")], async (rig) => {
    rig.refreshAnswers.push(grant("rotated", { refresh: false }));
    const refreshed = await rig.sessions.fresh(ALICE);
    assert.ok(refreshed.ok);
    assert.equal(refreshed.value.login.accessToken, "access-rotated-0123456789");
    assert.equal(refreshed.value.login.refreshToken, "refresh-old-0123456789");
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.refreshToken), ["refresh-old-0123456789"]);
  });
});

Deno.test("identifying an old login of a user who has since logged in through the browser drops the old one", async () => {
  await withRig([stored("original", { userId: null })], async (rig) => {
    rig.codeAnswers.push(grant("browser"));
    assert.ok((await rig.sessions.logIn("code-1")).ok);
    assert.equal(rig.store.logins().length, 2);
    const identified = await rig.sessions.identify("");
    assert.ok(identified.ok);
    assert.equal(identified.value.accessToken, "access-browser-0123456789");
    assert.deepEqual(rig.store.logins().map((l) => l.accessToken), ["access-browser-0123456789"]);
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.accessToken), ["access-browser-0123456789"]);
  });
});

Deno.test("idle() waits for a slow refresh until its rotated pair is on disk", async () => {
  await withRig([stored("old")], async (rig) => {
    const slow = gate();
    rig.refreshAnswers.push({ ...grant("rotated"), wait: slow.promise });
    const refreshing = rig.sessions.fresh(ALICE);
    let idle = false;
    const waiting = rig.sessions.idle().then(() => idle = true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const early = idle;
    // Opened before asserting, so a failure does not leave the server waiting forever.
    slow.open();
    assert.equal(early, false, "idle() settled while Monzo had not answered the refresh");
    await waiting;
    // Read at once: nothing else has run since idle() settled.
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.refreshToken), ["refresh-rotated-0123456789"]);
    assert.ok((await refreshing).ok);
  });
});

// ---- Every write path: when the new set cannot be written, the file keeps the previous one ----

/** Moves the tokens folder away so writes fail (as a lost mount would), runs `change`, then brings it back. */
async function whileUnwritable(rig: Rig, change: () => Promise<void>): Promise<StoredLogin[]> {
  const folder = join(rig.dir, "state");
  const away = join(rig.dir, "state.away");
  await Deno.rename(folder, away);
  try {
    await change();
    assert.ok(rig.store.writeError, "the write did not fail");
    return await fileLogins(join(away, "tokens.json"));
  } finally {
    await Deno.rename(away, folder);
  }
}

Deno.test("a browser login that cannot be written keeps the previous file, and reaches it once writable", async () => {
  await withRig([stored("old")], async (rig) => {
    rig.codeAnswers.push(grant("browser"));
    const before = await fileLogins(rig.path);
    const onDisk = await whileUnwritable(rig, async () => {
      const loggedIn = await rig.sessions.logIn("code-1");
      assert.ok(loggedIn.ok && !loggedIn.value.written.ok);
    });
    assert.deepEqual(onDisk, before);
    assert.equal(rig.store.get(ALICE)?.accessToken, "access-browser-0123456789", "the new login is held in memory");
    assert.ok((await rig.store.flush()).ok);
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.accessToken), ["access-browser-0123456789"]);
  });
});

Deno.test("a refresh that cannot be written keeps the previous file, and the rotated pair in memory", async () => {
  await withRig([stored("old")], async (rig) => {
    rig.refreshAnswers.push(grant("rotated"));
    const before = await fileLogins(rig.path);
    const onDisk = await whileUnwritable(rig, async () => {
      assert.ok((await rig.sessions.fresh(ALICE)).ok);
    });
    assert.deepEqual(onDisk, before);
    assert.equal(rig.store.get(ALICE)?.refreshToken, "refresh-rotated-0123456789");
    assert.ok((await rig.store.flush()).ok);
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.refreshToken), ["refresh-rotated-0123456789"]);
  });
});

Deno.test("an identification that cannot be written keeps the previous file", async () => {
  await withRig([stored("original", { userId: null, expiresAt: T0 + 20 * HOUR })], async (rig) => {
    const before = await fileLogins(rig.path);
    const onDisk = await whileUnwritable(rig, async () => {
      assert.ok((await rig.sessions.identify("")).ok);
    });
    assert.deepEqual(onDisk, before);
    assert.equal(rig.store.get(ALICE)?.accessToken, "access-original-0123456789");
    assert.ok((await rig.store.flush()).ok);
    assert.deepEqual((await fileLogins(rig.path)).map((l) => l.userId), [ALICE]);
  });
});

Deno.test("a login Monzo ended that cannot be written keeps the previous file until writable", async () => {
  await withRig([stored("old")], async (rig) => {
    rig.refreshAnswers.push(INVALID_GRANT);
    const before = await fileLogins(rig.path);
    const onDisk = await whileUnwritable(rig, async () => {
      const refreshed = await rig.sessions.fresh(ALICE);
      assert.ok(!refreshed.ok && refreshed.error.kind === "logged_out");
    });
    assert.deepEqual(onDisk, before);
    assert.ok((await rig.store.flush()).ok);
    assert.deepEqual(await fileLogins(rig.path), []);
  });
});
