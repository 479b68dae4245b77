// The Monzo client against hostile servers on loopback: every answer is untrusted, so each test
// serves one hostile behaviour and checks that the client gives a bounded failure value, sends nothing
// anywhere else, and never puts the request's secrets or raw control characters into `detail`.
import { freePort } from "./helpers/e2e.ts";
import assert from "node:assert/strict";
import { createMonzoClient, type MonzoClient, type MonzoFailure } from "../lib/monzo/monzo_client.ts";
import type { Result } from "../lib/shared/result.ts";

// "+" and "/" make the form-encoded spelling differ from the raw one, so both must be masked.
const CLIENT_SECRET = "test-client-secret+Zq8/Wv3Xk";
const REFRESH_TOKEN = "test-refresh-token+Lm4/Np7Rt";
const ACCESS_TOKEN = "test-access-token-Hj2Kd9Fs";
const FORM = {
  grant_type: "refresh_token",
  client_id: "oauth2client_00009Test",
  client_secret: CLIENT_SECRET,
  refresh_token: REFRESH_TOKEN,
};
const SECRETS = [CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN].flatMap((secret) => [
  secret,
  encodeURIComponent(secret),
  new URLSearchParams({ v: secret }).toString().slice(2),
]);
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const MiB = 1024 * 1024;

const BALANCE = {
  balance: 12_345,
  total_balance: 20_000,
  balance_including_flexible_savings: 20_000,
  currency: "GBP",
  spend_today: -150,
};
const TOKEN_ANSWER = {
  access_token: "new-access-abc",
  refresh_token: "new-refresh-def",
  expires_in: 3600,
  user_id: "u1",
};

type Handler = (request: Request) => Response | Promise<Response>;

async function withServer(handler: Handler, body: (url: string) => Promise<void>): Promise<void> {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {}, onError }, handler);
  try {
    await body(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

function onError(error: unknown): Response {
  return new Response(`server error: ${error}`, { status: 500 });
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

function client(apiUrl: string, options: { timeoutMs?: number; maxBodyBytes?: number; requests?: string[] } = {}) {
  return createMonzoClient({
    apiUrl,
    timeoutMs: options.timeoutMs ?? 5_000,
    maxBodyBytes: options.maxBodyBytes,
    clock: { now: () => T0 },
    onRequest: (endpoint, code) => options.requests?.push(`${endpoint} ${code}`),
  });
}

/** The four calls the exporter makes, each with its secrets in the request. */
const CALLS: ReadonlyArray<[string, (c: MonzoClient, signal?: AbortSignal) => Promise<Result<unknown, MonzoFailure>>]> =
  [
    ["/oauth2/token", (c, signal) => c.token(FORM, signal)],
    ["/ping/whoami", (c, signal) => c.whoami(ACCESS_TOKEN, signal)],
    ["/accounts", (c, signal) => c.accounts(ACCESS_TOKEN, signal)],
    ["/balance", (c, signal) => c.balance(ACCESS_TOKEN, "acc_1", signal)],
  ];

function hasControlCharacters(text: string): boolean {
  for (const character of text) {
    const code = character.codePointAt(0) ?? 0;
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

/** The failure of `result`, checked for what every failure must be: secret-free and one clean line. */
function failureOf(result: Result<unknown, MonzoFailure>): MonzoFailure {
  assert.equal(result.ok, false, `expected a failure, got ${JSON.stringify(result)}`);
  const failure = (result as { ok: false; error: MonzoFailure }).error;
  const all = JSON.stringify(failure);
  for (const secret of SECRETS) assert.ok(!all.includes(secret), `a secret leaked into ${all}`);
  for (const text of [failure.detail, failure.code ?? "", failure.oauthError ?? ""]) {
    assert.ok(!hasControlCharacters(text), `control characters in ${JSON.stringify(text)}`);
  }
  assert.ok(failure.detail.length <= 1_000, `detail of ${failure.detail.length} characters`);
  return failure;
}

function valueOf<T>(result: Result<T, MonzoFailure>): T {
  if (!result.ok) assert.fail(`expected a value, got ${JSON.stringify(result.error)}`);
  return result.value;
}

// ---- Redirects ----

Deno.test("redirects are never followed: 301/302/303/307/308 send neither the token form nor a GET elsewhere", async () => {
  const reached: string[] = [];
  await withServer((request) => {
    reached.push(`${request.method} ${new URL(request.url).pathname}`);
    return json(200, {});
  }, async (elsewhere) => {
    let status = 0;
    await withServer(
      () => new Response("moved", { status, headers: { location: `${elsewhere}/landing?next=query-marker-7` } }),
      async (url) => {
        for (status of [301, 302, 303, 307, 308]) {
          for (const [endpoint, send] of CALLS) {
            const requests: string[] = [];
            const failure = failureOf(await send(client(url, { requests })));
            const where = `${status} on ${endpoint}`;
            assert.equal(failure.kind, "invalid_response", where);
            assert.equal(failure.reason, "redirect", where);
            assert.equal(failure.status, status, where);
            assert.equal(failure.endpoint, endpoint, where);
            assert.deepEqual(requests, [`${endpoint} ${status}`], where);
            assert.ok(failure.detail.includes(new URL(elsewhere).origin), `${where}: ${failure.detail}`);
            assert.ok(!failure.detail.includes("query-marker") && !failure.detail.includes("/landing"), failure.detail);
          }
        }
      },
    );
  });
  assert.deepEqual(reached, [], "a redirect was followed");
});

Deno.test("a redirect to the same origin, or one without a location, is refused too", async () => {
  const paths: string[] = [];
  await withServer((request) => {
    const path = new URL(request.url).pathname;
    paths.push(path);
    if (path === "/ping/whoami") return new Response(null, { status: 307, headers: { location: "/elsewhere" } });
    if (path === "/accounts") return new Response(null, { status: 300 });
    return json(200, { authenticated: true, user_id: "u1" });
  }, async (url) => {
    const moved = failureOf(await client(url).whoami(ACCESS_TOKEN));
    assert.equal(moved.reason, "redirect");
    assert.equal(moved.status, 307);
    const nowhere = failureOf(await client(url).accounts(ACCESS_TOKEN));
    assert.equal(nowhere.reason, "redirect");
    assert.equal(nowhere.status, 300);
  });
  assert.deepEqual(paths, ["/ping/whoami", "/accounts"]);
});

// ---- Sizes ----

Deno.test("a 50 MB answer is cancelled once the limit is passed, not read whole", async () => {
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  let sent = 0;
  let cancelled = false;
  const seenCancel = Promise.withResolvers<void>();
  await withServer(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 50 * MiB) return controller.close();
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
        cancel() {
          cancelled = true;
          seenCancel.resolve();
        },
      }),
      { headers: { "content-type": "application/json" } },
    ), async (url) => {
    const requests: string[] = [];
    const failure = failureOf(await client(url, { requests }).accounts(ACCESS_TOKEN));
    assert.equal(failure.kind, "invalid_response");
    assert.equal(failure.reason, "too_large");
    assert.equal(failure.status, 200);
    assert.deepEqual(requests, ["/accounts 200"]);
    const timer = setTimeout(() => seenCancel.resolve(), 3_000);
    await seenCancel.promise;
    clearTimeout(timer);
  });
  assert.ok(cancelled, "the server's stream was never cancelled");
  // The default limit is 4 MiB; socket buffers hold a few more, but nowhere near the 50 MB offered.
  assert.ok(sent < 16 * MiB, `the server sent ${sent} bytes`);
});

Deno.test("a Content-Length over the limit is refused before any body arrives", async () => {
  await withRawServer(async (conn) => {
    await write(conn, `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${50 * MiB}\r\n\r\n{`);
    await untilClosed(conn);
  }, async (url) => {
    const started = Date.now();
    const failure = failureOf(await client(url, { timeoutMs: 10_000 }).token(FORM));
    assert.equal(failure.kind, "invalid_response");
    assert.equal(failure.reason, "too_large");
    assert.ok(Date.now() - started < 2_000, "the client waited for the body instead of refusing it up front");
  });
});

Deno.test("a gzip answer that inflates past the limit is stopped while inflating", async () => {
  // About 50 KB on the wire, 50 MB once inflated: only a bound on the inflated stream catches it.
  const zeros = new Blob([new Uint8Array(50 * MiB)]).stream().pipeThrough(new CompressionStream("gzip"));
  const compressed = new Uint8Array(await new Response(zeros).arrayBuffer());
  await withServer(
    () => new Response(compressed, { headers: { "content-encoding": "gzip", "content-type": "application/json" } }),
    async (url) => {
      const failure = failureOf(await client(url).whoami(ACCESS_TOKEN));
      assert.equal(failure.reason, "too_large");
    },
  );
});

Deno.test("an error answer over the limit keeps its status and Retry-After", async () => {
  await withServer(
    () => new Response("x".repeat(64 * 1024), { status: 429, headers: { "retry-after": "30" } }),
    async (url) => {
      const failure = failureOf(await client(url, { maxBodyBytes: 1024 }).balance(ACCESS_TOKEN, "acc_1"));
      assert.equal(failure.kind, "http");
      assert.equal(failure.status, 429);
      assert.equal(failure.reason, "too_large");
      assert.equal(failure.retryAfterSeconds, 30);
    },
  );
});

Deno.test("an answer exactly at the limit is read, one byte more is refused", async () => {
  const body = JSON.stringify({ authenticated: true, user_id: "u1" });
  const size = new TextEncoder().encode(body).byteLength;
  await withServer(() => new Response(body), async (url) => {
    assert.equal(valueOf(await client(url, { maxBodyBytes: size }).whoami(ACCESS_TOKEN)).user_id, "u1");
    assert.equal(failureOf(await client(url, { maxBodyBytes: size - 1 }).whoami(ACCESS_TOKEN)).reason, "too_large");
  });
});

// ---- Hostile text ----

Deno.test("Monzo's error text reaches detail without control characters and bounded in length", async () => {
  const long = "A".repeat(10_000);
  await withServer(() =>
    json(400, {
      code: "bad_request.\u001b[31mred\u0007",
      message: `first line\r\n2026-01-01T00:00:00Z INFO forged log line \u009b2J \u2028 \u202eevil ${long}`,
      error: "invalid_grant\u001b]0;title\u0007",
      error_description: "ignored when message is present",
    }), async (url) => {
    const failure = failureOf(await client(url).token(FORM));
    assert.equal(failure.kind, "http");
    assert.equal(failure.status, 400);
    assert.ok(failure.code?.startsWith("bad_request."), failure.code);
    assert.ok(failure.oauthError?.startsWith("invalid_grant"), failure.oauthError);
    assert.ok(failure.detail.includes("first line"), failure.detail);
    assert.ok(!failure.detail.includes("\u2028") && !failure.detail.includes("\u202e"), failure.detail);
    assert.ok(!failure.detail.includes(long.slice(0, 300)), "a 10,000 character message was kept whole");
  });
});

Deno.test("an error body that echoes the request does not leak the client secret or refresh token", async () => {
  await withServer(async (request) => {
    const sent = await request.text();
    const form = new URLSearchParams(sent);
    return json(401, {
      error: `invalid_grant ${form.get("refresh_token")}`,
      code: `bad ${form.get("client_secret")}`,
      error_description: `you sent ${sent} (${form.get("client_secret")}, ${form.get("refresh_token")})`,
    });
  }, async (url) => {
    const failure = failureOf(await client(url).token(FORM));
    assert.equal(failure.status, 401);
    assert.ok(failure.oauthError?.startsWith("invalid_grant"), failure.oauthError);
    assert.ok(failure.detail.includes("[redacted]"), failure.detail);
  });
});

Deno.test("an error body echoing the bearer token does not leak it", async () => {
  await withServer(
    (request) => json(401, { code: "unauthorized", message: request.headers.get("authorization") }),
    async (
      url,
    ) => {
      for (const [endpoint, send] of CALLS.slice(1)) {
        const failure = failureOf(await send(client(url)));
        assert.equal(failure.status, 401, endpoint);
      }
    },
  );
});

Deno.test("fields of the wrong type in an error body are dropped one by one", async () => {
  await withServer(
    () => json(403, { code: "forbidden.insufficient_permissions", message: { nested: true }, error: 42 }),
    async (url) => {
      const failure = failureOf(await client(url).balance(ACCESS_TOKEN, "acc_1"));
      assert.equal(failure.code, "forbidden.insufficient_permissions");
      assert.equal(failure.oauthError, undefined);
    },
  );
});

// ---- Prototype-ish keys ----

Deno.test("a __proto__ key in Monzo's JSON cannot set balance or pollute objects", async () => {
  let answer = "";
  await withServer(() => new Response(answer), async (url) => {
    // JSON.parse makes "__proto__" an own key; only the schema's fields may come out.
    answer = JSON.stringify(BALANCE).replace(
      "{",
      '{"__proto__":{"balance":999,"polluted":true},"constructor":{"prototype":{"polluted":true}},',
    );
    const balance = valueOf(await client(url).balance(ACCESS_TOKEN, "acc_1"));
    assert.deepEqual(balance, BALANCE);
    assert.equal(Object.getPrototypeOf(balance), Object.prototype);
    assert.ok(!Object.hasOwn(balance, "__proto__") && !Object.hasOwn(balance, "constructor"));
    assert.equal((balance as unknown as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);

    const { balance: _dropped, ...rest } = BALANCE;
    answer = JSON.stringify(rest).replace("{", '{"__proto__":{"balance":999},');
    const failure = failureOf(await client(url).balance(ACCESS_TOKEN, "acc_1"));
    assert.equal(failure.reason, "unexpected_shape");
    assert.ok(failure.detail.includes("field balance"), failure.detail);
  });
});

Deno.test("ids, types and names such as __proto__ and constructor flow through as plain strings", async () => {
  const queries: string[] = [];
  await withServer((request) => {
    const url = new URL(request.url);
    queries.push(url.search);
    switch (url.pathname) {
      case "/ping/whoami":
        return json(200, { authenticated: true, user_id: "__proto__" });
      case "/oauth2/token":
        return json(200, { ...TOKEN_ANSWER, user_id: "constructor" });
      case "/accounts":
        return json(200, {
          accounts: ["__proto__", "constructor", "prototype"].map((id) => ({
            id,
            type: id,
            description: id,
            owners: [{ user_id: id, preferred_name: id }],
          })),
        });
      case "/pots":
        return json(200, {
          pots: [{ id: "__proto__", name: "constructor", balance: 1, currency: "GBP", type: "prototype" }],
        });
    }
    return json(200, BALANCE);
  }, async (url) => {
    const c = client(url);
    assert.equal(valueOf(await c.whoami(ACCESS_TOKEN)).user_id, "__proto__");
    assert.equal(valueOf(await c.token(FORM)).user_id, "constructor");
    const accounts = valueOf(await c.accounts(ACCESS_TOKEN));
    assert.deepEqual(accounts.map((a) => [a.id, a.type, a.description, a.owners[0].user_id]), [
      ["__proto__", "__proto__", "__proto__", "__proto__"],
      ["constructor", "constructor", "constructor", "constructor"],
      ["prototype", "prototype", "prototype", "prototype"],
    ]);
    for (const account of accounts) assert.equal(typeof account.id, "string");
    const [pot] = valueOf(await c.pots(ACCESS_TOKEN, "__proto__"));
    assert.deepEqual([pot.id, pot.name, pot.type], ["__proto__", "constructor", "prototype"]);
    assert.deepEqual(valueOf(await c.balance(ACCESS_TOKEN, "constructor")), BALANCE);
  });
  assert.ok(
    queries.includes("?current_account_id=__proto__") && queries.includes("?account_id=constructor"),
    `${queries}`,
  );
});

// ---- Hostile numbers ----

Deno.test("amounts must be safe integers within ±10^15 minor units", async () => {
  let answer = "";
  await withServer(() => new Response(answer), async (url) => {
    const read = async (raw: string) => {
      answer = JSON.stringify({ ...BALANCE, balance: 0 }).replace('"balance":0', `"balance":${raw}`);
      return await client(url).balance(ACCESS_TOKEN, "acc_1");
    };
    for (const good of ["1000000000000000", "-1000000000000000", "0", "-0", "12345"]) {
      assert.equal(valueOf(await read(good)).balance, Number(good), good);
    }
    // 1e400 parses to Infinity; 2^53 + 1 cannot be told apart from 2^53.
    for (
      const bad of ["1000000000000001", "-1000000000000001", "1e400", "-1e400", "9007199254740993", "1.5", '"100"']
    ) {
      const failure = failureOf(await read(bad));
      assert.equal(failure.reason, "unexpected_shape", bad);
      assert.ok(failure.detail.includes("field balance"), `${bad}: ${failure.detail}`);
    }
  });
});

Deno.test("a pot's goal of 1e400 is refused like any amount", async () => {
  await withServer(
    () =>
      new Response(
        '{"pots":[{"id":"pot_1","name":"Holiday","balance":1,"currency":"GBP","goal_amount":1e400}]}',
      ),
    async (url) => {
      const failure = failureOf(await client(url).pots(ACCESS_TOKEN, "acc_1"));
      assert.ok(failure.detail.includes("pots.0.goal_amount"), failure.detail);
    },
  );
});

Deno.test("expires_in is clamped into 60 s .. 90 days, never refused, so tokens can always be written", async () => {
  const day = 24 * 3600;
  let raw = "";
  await withServer(
    () => new Response(JSON.stringify(TOKEN_ANSWER).replace('"expires_in":3600', `"expires_in":${raw}`)),
    async (url) => {
      const cases: Array<[string, number]> = [
        ["3600", 3600],
        ["108000.5", 108000.5],
        [String(90 * day), 90 * day],
        [String(90 * day + 1), 90 * day],
        ["1e300", 90 * day],
        ["1e400", 90 * day],
        ["1152921504606846976", 90 * day],
        ["60", 60],
        ["59", 60],
        ["0", 60],
        ["-5", 60],
        ["-1e400", 60],
      ];
      for (const [given, expected] of cases) {
        raw = given;
        const grant = valueOf(await client(url).token(FORM));
        assert.equal(grant.expires_in, expected, given);
        // What the token file does with it: this threw RangeError for 1e400 and 1e300.
        assert.doesNotThrow(() => new Date(T0 + grant.expires_in * 1000).toISOString(), given);
      }
      raw = '"3600"';
      assert.equal(failureOf(await client(url).token(FORM)).reason, "unexpected_shape");
    },
  );
});

// ---- Hostile ids, tokens and names ----

Deno.test("ids must be non-empty, at most 256 characters and free of control characters", async () => {
  let id = "";
  await withServer(() => json(200, { accounts: [{ id, type: "uk_retail" }] }), async (url) => {
    for (const bad of ["", "a".repeat(257), "acc_1\n", "acc_\u001b[2J", "acc_\u0085", "acc_\u202e1", "acc_\u007f"]) {
      id = bad;
      const failure = failureOf(await client(url).accounts(ACCESS_TOKEN));
      assert.equal(failure.reason, "unexpected_shape", JSON.stringify(bad));
      assert.ok(failure.detail.includes("accounts.0.id"), failure.detail);
    }
    for (const good of ["a".repeat(256), "acc_00009AbC", "acc é ✓"]) {
      id = good;
      assert.equal(valueOf(await client(url).accounts(ACCESS_TOKEN))[0].id, good);
    }
  });
});

Deno.test("account types and currencies are short words without control characters", async () => {
  let account: Record<string, unknown> = {};
  await withServer(() => json(200, { accounts: [{ id: "acc_1", ...account }] }), async (url) => {
    for (
      const bad of [{ type: "uk\u001bretail" }, { type: "t".repeat(65) }, { type: "uk_retail", currency: "GB\nP" }]
    ) {
      account = bad;
      assert.equal(
        failureOf(await client(url).accounts(ACCESS_TOKEN)).reason,
        "unexpected_shape",
        JSON.stringify(bad),
      );
    }
  });
});

Deno.test("names keep newlines, quotes and emoji but are cut to 200 characters", async () => {
  const friendly = 'Rainy "day"\nfund 🌧️ \\ end';
  let name = "";
  await withServer(
    () => json(200, { pots: [{ id: "pot_1", name, balance: 1, currency: "GBP" }] }),
    async (url) => {
      name = friendly;
      assert.equal(valueOf(await client(url).pots(ACCESS_TOKEN, "acc_1"))[0].name, friendly);
      name = "🐷".repeat(10_000);
      const cut = valueOf(await client(url).pots(ACCESS_TOKEN, "acc_1"))[0].name;
      assert.equal(Array.from(cut).length, 200);
      assert.ok(cut.startsWith("🐷".repeat(199)) && cut.endsWith("…"), "cut inside a surrogate pair");
    },
  );
});

Deno.test("tokens must be visible ASCII; an empty refresh_token means none was given", async () => {
  let grant: Record<string, unknown> = {};
  await withServer(() => json(200, { ...TOKEN_ANSWER, ...grant }), async (url) => {
    for (const bad of ["", "abc def", "abc\r\nx-injected: 1", "abc\u001b", "é".repeat(3), "a".repeat(8193)]) {
      grant = { access_token: bad };
      const failure = failureOf(await client(url).token(FORM));
      assert.equal(failure.reason, "unexpected_shape", JSON.stringify(bad));
      assert.ok(failure.detail.includes("access_token"), failure.detail);
      assert.ok(!failure.detail.includes("x-injected"), failure.detail);
    }
    for (const absent of ["", null]) {
      grant = { refresh_token: absent };
      assert.equal(valueOf(await client(url).token(FORM)).refresh_token, undefined, JSON.stringify(absent));
    }
    grant = { refresh_token: "bad token" };
    assert.equal(failureOf(await client(url).token(FORM)).reason, "unexpected_shape");
  });
});

// ---- Headers ----

Deno.test("hostile Retry-After values give a number from 0 to a day, or nothing", async () => {
  let header: string[] = [];
  const day = 24 * 3600;
  const at = (ms: number) => new Date(ms).toUTCString();
  const cases: Array<[string[], number | undefined]> = [
    [["120"], 120],
    [["0"], 0],
    [[String(day + 1)], day],
    [["99999999999999999999999999999999"], day],
    [["-5"], undefined],
    [["1e9"], undefined],
    [["12abc"], undefined],
    [["0x10"], undefined],
    [["garbage 12"], undefined],
    [["2026"], 2026],
    [[""], undefined],
    [["5", "10"], undefined],
    [[at(T0 + 90_000)], 90],
    [[at(T0 - 90_000)], 0],
    [["Fri, 31 Dec 9999 23:59:59 GMT"], day],
    [["Fri, 99 Dec 2026 99:99:99 GMT"], undefined],
    [["Thursday, 15-Jan-26 12:01:00 GMT"], 60],
    [["Thu Jan 15 12:01:00 2026"], 60],
    [[], undefined],
  ];
  await withServer(() => {
    const headers = new Headers({ "content-type": "application/json" });
    for (const value of header) headers.append("retry-after", value);
    return new Response('{"code":"too_many_requests"}', { status: 429, headers });
  }, async (url) => {
    for (const [values, expected] of cases) {
      header = values;
      const failure = failureOf(await client(url).balance(ACCESS_TOKEN, "acc_1"));
      assert.equal(failure.status, 429);
      assert.equal(failure.retryAfterSeconds, expected, JSON.stringify(values));
    }
  });
});

// ---- Time ----

Deno.test("a body trickled one byte per second hits the request timeout", async () => {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  try {
    await withServer(() => {
      const body = new TextEncoder().encode(JSON.stringify({ authenticated: true, user_id: "u1" }));
      let at = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            const timer = setInterval(() => {
              if (at < body.byteLength) controller.enqueue(body.slice(at, ++at));
            }, 1_000);
            timers.add(timer);
          },
          cancel() {
            for (const timer of timers) clearInterval(timer);
            timers.clear();
          },
        }),
      );
    }, async (url) => {
      const requests: string[] = [];
      const started = Date.now();
      const failure = failureOf(await client(url, { timeoutMs: 1_500, requests }).whoami(ACCESS_TOKEN));
      const took = Date.now() - started;
      assert.equal(failure.kind, "timeout");
      assert.ok(took >= 1_400 && took < 3_500, `took ${took} ms`);
      assert.deepEqual(requests, ["/ping/whoami timeout"]);
    });
  } finally {
    for (const timer of timers) clearInterval(timer);
  }
});

// ---- Nothing throws ----

Deno.test("an invalid api URL is a network failure, not a thrown TypeError", async () => {
  const requests: string[] = [];
  for (const [endpoint, send] of CALLS) {
    const failure = failureOf(await send(client("http://[::1", { requests })));
    assert.equal(failure.kind, "network", endpoint);
  }
  assert.deepEqual(requests, CALLS.map(([endpoint]) => `${endpoint} network`));
});

Deno.test("a token that cannot be a header value fails as a value without leaking the token", async () => {
  // fetch's TypeError quotes the header value, token included.
  const hostile = `${ACCESS_TOKEN}\nx-injected: yes`;
  let reached = 0;
  await withServer(() => {
    reached++;
    return json(200, {});
  }, async (url) => {
    const failure = failureOf(await client(url).whoami(hostile));
    assert.equal(failure.kind, "network");
    assert.ok(!failure.detail.includes(ACCESS_TOKEN), failure.detail);
  });
  assert.equal(reached, 0);
});

Deno.test("a refused connection is a network failure", async () => {
  const failure = failureOf(await client(`http://127.0.0.1:${freePort()}`).token(FORM));
  assert.equal(failure.kind, "network");
});

Deno.test("a body cut off mid-stream is a network failure", async () => {
  await withRawServer(async (conn) => {
    await write(conn, 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"accounts":[');
  }, async (url) => {
    const failure = failureOf(await client(url).accounts(ACCESS_TOKEN));
    assert.equal(failure.kind, "network");
  });
});

Deno.test("a body stream that errors on the server side is a network failure", async () => {
  await withServer(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"pots":['));
          controller.error(new Error("disk on fire"));
        },
      }),
    ), async (url) => {
    const failure = failureOf(await client(url).pots(ACCESS_TOKEN, "acc_1"));
    assert.equal(failure.kind, "network");
  });
});

Deno.test("invalid UTF-8 is an unusable answer on success and still an HTTP failure on error", async () => {
  let status = 200;
  // A valid JSON shape around a lone continuation byte and an overlong encoding of "/".
  const bytes = new Uint8Array([
    ...new TextEncoder().encode('{"authenticated":true,"user_id":"u'),
    0x80,
    0xc0,
    0xaf,
    ...new TextEncoder().encode('"}'),
  ]);
  await withServer(() => new Response(bytes, { status }), async (url) => {
    const bad = failureOf(await client(url).whoami(ACCESS_TOKEN));
    assert.equal(bad.kind, "invalid_response");
    assert.equal(bad.reason, "bad_encoding");
    status = 401;
    const refused = failureOf(await client(url).whoami(ACCESS_TOKEN));
    assert.equal(refused.kind, "http");
    assert.equal(refused.status, 401);
  });
});

Deno.test("malformed JSON and an empty body are unusable answers", async () => {
  let body = "";
  await withServer(() => new Response(body), async (url) => {
    for (body of ["", "{", "<html>proxy error</html>", "[".repeat(100_000)]) {
      const failure = failureOf(await client(url).token(FORM));
      assert.equal(failure.reason, "malformed_json", body.slice(0, 20));
    }
  });
});

Deno.test("an already-aborted signal makes no request", async () => {
  let reached = 0;
  await withServer(() => {
    reached++;
    return json(200, BALANCE);
  }, async (url) => {
    const failure = failureOf(await client(url).balance(ACCESS_TOKEN, "acc_1", AbortSignal.abort()));
    assert.equal(failure.kind, "aborted");
  });
  assert.equal(reached, 0);
});

Deno.test("aborting while the body streams is an aborted failure", async () => {
  const stop = new AbortController();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  try {
    await withServer(() =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode("{"));
            timers.add(setTimeout(() => stop.abort(), 100));
          },
        }),
      ), async (url) => {
      const failure = failureOf(await client(url).accounts(ACCESS_TOKEN, stop.signal));
      assert.equal(failure.kind, "aborted");
    });
  } finally {
    for (const timer of timers) clearTimeout(timer);
  }
});

// ---- Raw TCP, for answers Deno.serve will not send ----

async function withRawServer(respond: (conn: Deno.Conn) => Promise<void>, body: (url: string) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const handled: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      handled.push((async () => {
        try {
          await readRequestHead(conn);
          await respond(conn);
        } finally {
          conn.close();
        }
      })());
    }
  })();
  try {
    await body(`http://127.0.0.1:${listener.addr.port}`);
  } finally {
    listener.close();
    await accepting;
    await Promise.all(handled);
  }
}

async function readRequestHead(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    if (n === null) return;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
}

async function write(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let at = 0; at < bytes.byteLength;) at += await conn.write(bytes.subarray(at));
}

/** Waits until the client hangs up (a reset counts as hanging up). */
async function untilClosed(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(1024);
  for (;;) {
    const n = await conn.read(buffer).catch((error: unknown) => {
      if (error instanceof Deno.errors.ConnectionReset) return null;
      throw error;
    });
    if (n === null) return;
  }
}

// ---- Transactions, entry by entry ----

Deno.test("one unusable transaction is left out of its page, named by id; the page's size and last id still count", async () => {
  const good = (id: string) => ({ id, created: "2026-01-10T09:00:00Z", amount: -100, currency: "GBP", settled: "" });
  const entries: unknown[] = [
    good("tx_1"),
    { ...good("tx_2"), amount: 2e12 },
    { ...good("tx_3"), created: "2024-02-30T10:00:00Z" },
    { ...good("tx_4"), amount: 1.5 },
    { ...good("tx_5"), currency: "\u001b[2J" },
    { ...good("tx_6"), amount: "1e400" },
    { ...good("x"), id: undefined },
    "not an object",
    null,
    good("tx_9"),
    { ...good("tx_10"), amount: -2e12 },
  ];
  // 1e400 in the JSON text itself parses to Infinity.
  const body = JSON.stringify({ transactions: entries }).replace('"1e400"', "1e400");
  await withServer(() => new Response(body), async (url) => {
    const page = valueOf(await client(url).transactions(ACCESS_TOKEN, { accountId: "acc_1", limit: 100 }));
    assert.deepEqual(page.transactions.map((tx) => tx.id), ["tx_1", "tx_9"]);
    assert.equal(page.size, entries.length);
    // The last entry is unusable, but its id is where the next page starts.
    assert.equal(page.lastId, "tx_10");
    assert.deepEqual(page.rejected.map((r) => r.id), [
      "tx_2",
      "tx_3",
      "tx_4",
      "tx_5",
      "tx_6",
      null,
      null,
      null,
      "tx_10",
    ]);
    for (const rejected of page.rejected) {
      assert.ok(!hasControlCharacters(rejected.reason), JSON.stringify(rejected.reason));
      assert.ok(rejected.reason.length <= 500);
    }
    // Entries without an id are still told apart, and known again when they come again.
    const keys = page.rejected.map((r) => r.key);
    assert.equal(new Set(keys).size, keys.length);
    const again = valueOf(await client(url).transactions(ACCESS_TOKEN, { accountId: "acc_1", limit: 100 }));
    assert.deepEqual(again.rejected.map((r) => r.key), keys);
    assert.match(page.rejected[0].reason, /^amount /);
    assert.match(page.rejected[1].reason, /^created /);
  });
});

Deno.test("a transactions answer whose shape is wrong as a whole is still an unusable answer", async () => {
  for (const body of [{}, { transactions: {} }, { transactions: "x" }, []]) {
    await withServer(() => json(200, body), async (url) => {
      const failure = failureOf(await client(url).transactions(ACCESS_TOKEN, { accountId: "acc_1", limit: 100 }));
      assert.equal(failure.reason, "unexpected_shape", JSON.stringify(body));
    });
  }
});
