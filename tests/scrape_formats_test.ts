// How /metrics answers each scraper over real HTTP: the format it prefers by Accept (text 0.0.4 or
// OpenMetrics 1.0.0), gzip when its Accept-Encoding takes it (made once per change, sent as stored,
// even with Deno's own compression turned on), and HEAD on every GET route. Ends with a real
// Prometheus scraping both formats and storing the same series from each.

import assert from "node:assert/strict";
import { gunzipSync, gzipSync } from "node:zlib";
import { EXPOSITION_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE } from "../lib/exposition/exposition.ts";
import { householdData, startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import { acceptsGzip, type ExpositionFormat, preferredFormat } from "../lib/exposition/negotiation.ts";
import {
  binaryExists,
  CLIENT_ID,
  CLIENT_SECRET,
  explainSkip,
  logInDirectly,
  PROMETHEUS,
  serveExporter,
  spawn,
  startPrometheus,
  waitFor,
} from "./helpers/e2e.ts";
import { ALICE, BOB, type Harness, logIn, MINUTE, poll, withHarness } from "./helpers/harness.ts";
import { raw, type RawAnswer } from "./helpers/raw_http.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const portOf = (h: Harness) => Number(new URL(h.base).port);

/** Prometheus 2.42's own Accept header (the Debian package), which prefers OpenMetrics. */
const PROMETHEUS_2_42_ACCEPT =
  "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75," +
  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/**
 * The Accept header Prometheus 2.49+ sends for `scrape_protocols: [X]` (each protocol's media type with
 * q=0.5, then `*\/*;q=0.4`). Debian's Prometheus 2.42 predates that setting, so the end-to-end test
 * below puts exactly this header on its scrapes through a small proxy.
 */
const ONLY: Readonly<Record<ExpositionFormat, string>> = {
  openmetrics: "application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.4",
  text: "text/plain;version=0.0.4;q=0.5,*/*;q=0.4",
};

// ---------------------------------------------------------------------------------------------
// Negotiation

Deno.test("Accept: OpenMetrics only when it ranks above text 0.0.4 by q-value and specificity", () => {
  const cases: Array<[string | null, ExpositionFormat]> = [
    [null, "text"],
    ["", "text"],
    ["*/*", "text"],
    [PROMETHEUS_2_42_ACCEPT, "openmetrics"],
    [ONLY.openmetrics, "openmetrics"],
    [ONLY.text, "text"],
    // Prometheus 3's default, with its escaping parameters (our names never need escaping).
    [
      "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;" +
      "version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3," +
      "*/*;q=0.2",
      "openmetrics",
    ],
    ["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text"],
    ["application/openmetrics-text", "openmetrics"],
    ['Application/OpenMetrics-Text; Version="1.0.0"', "openmetrics"],
    ["application/*", "openmetrics"],
    ["application/openmetrics-text;version=0.0.1", "text"],
    ["application/openmetrics-text;version=1.0.0;q=0.5, text/plain", "text"],
    ["application/openmetrics-text;version=1.0.0, text/plain;q=1", "text"],
    ["application/openmetrics-text;q=0, */*", "text"],
    ["text/plain;q=0, */*;q=0.5", "openmetrics"],
    ["text/*;q=0.2, application/openmetrics-text;q=0.3", "openmetrics"],
    ["text/plain;version=0.0.4;q=0.1, text/plain;q=0.9, application/openmetrics-text;q=0.5", "openmetrics"],
    ["text/plain;version=1.0.0;q=0.9, text/plain;q=0.3, application/openmetrics-text;q=0.5", "openmetrics"],
    ["text/plain;version=0.0.4;q=0.9, text/plain;q=0.1, application/openmetrics-text;q=0.5", "text"],
    ["application/openmetrics-text;q=0.5, text/plain;version=0.0.4;q=0.4, text/plain;q=0.9", "openmetrics"],
    ["application/openmetrics-text;q=1.5, text/plain;q=0.1", "text"],
    ["application/openmetrics-text;q=abc", "text"],
  ];
  for (const [accept, expected] of cases) assert.equal(preferredFormat(accept), expected, String(accept));
});

Deno.test("Accept-Encoding: gzip when its q-value (or *'s) is above 0 and not below identity's", () => {
  const cases: Array<[string | null, boolean]> = [
    [null, false],
    ["", false],
    ["gzip", true],
    ["GZIP", true],
    ["x-gzip", true],
    ["gzip, deflate, br", true],
    ["br", false],
    ["identity", false],
    ["*", true],
    ["*;q=0", false],
    ["gzip;q=0", false],
    ["gzip;q=0.000", false],
    ["gzip;q=0, *", false],
    ["*;q=0.5, gzip;q=0", false],
    ["gzip;q=0.001", true],
    ["gzip;q=0.5, identity;q=1", false],
    ["gzip;q=1, identity;q=0.5", true],
    ["gzip, identity", true],
    ["identity;q=0, *;q=0.1", true],
    ["*;q=0.8, gzip;q=0.5", false],
    ["br;q=1, gzip;q=0.8", true],
    ["gzip;q=2", false],
    ["gzip;q=", false],
    [" gzip ; q=0.7 ", true],
  ];
  for (const [header, expected] of cases) assert.equal(acceptsGzip(header), expected, String(header));
});

// ---------------------------------------------------------------------------------------------
// Over HTTP

/** A served exporter, logged in and polled, whose gzip calls are recorded. */
function withScrapedExporter(body: (h: Harness, gzipped: Uint8Array[]) => Promise<void>): Promise<void> {
  const gzipped: Uint8Array[] = [];
  return withHarness({
    serve: true,
    gzip: (data) => {
      gzipped.push(data);
      return gzipSync(data);
    },
  }, async (h) => {
    await logIn(h, ALICE);
    await poll(h, MINUTE);
    await body(h, gzipped);
  });
}

Deno.test("a gzip scraper gets the stored gzip bytes, which decode to exactly the plain text, in both formats", async () => {
  await withScrapedExporter(async (h) => {
    const port = portOf(h);
    for (
      const [format, accept, type] of [["text", ONLY.text, EXPOSITION_CONTENT_TYPE], [
        "openmetrics",
        ONLY.openmetrics,
        OPENMETRICS_CONTENT_TYPE,
      ]] as const
    ) {
      const plain = await raw(port, "GET", "/metrics", { accept });
      const zipped = await raw(port, "GET", "/metrics", { accept, "accept-encoding": "gzip" });
      for (const answer of [plain, zipped]) {
        assert.equal(answer.status, 200);
        assert.equal(answer.headers.get("content-type"), type, format);
        assert.equal(answer.headers.get("vary"), "Accept, Accept-Encoding");
        assert.equal(answer.headers.get("content-length"), String(answer.body.length));
      }
      assert.equal(plain.headers.get("content-encoding"), undefined);
      assert.equal(zipped.headers.get("content-encoding"), "gzip");
      assert.ok(text(plain.body).includes("monzo_balance{"), format);
      assert.deepEqual(new Uint8Array(gunzipSync(zipped.body)), plain.body, format);
      assert.ok(zipped.body.length * 3 < plain.body.length, `${format}: gzip did not make it much smaller`);
    }
  });
});

Deno.test("the exposition is gzipped once per snapshot change and format, only when a scraper takes gzip", async () => {
  await withScrapedExporter(async (h, gzipped) => {
    const port = portOf(h);
    const scrape = (headers: Record<string, string>) => raw(port, "GET", "/metrics", headers);
    for (let i = 0; i < 3; i++) await scrape({});
    assert.equal(gzipped.length, 0, "gzipped for plain scrapes");
    const first = await scrape({ "accept-encoding": "gzip" });
    for (let i = 0; i < 5; i++) {
      const again = await scrape({ "accept-encoding": "gzip" });
      assert.deepEqual(again.body, first.body);
    }
    for (const path of ["/stats", "/monzo"]) await raw(port, "GET", path, { "accept-encoding": "gzip" });
    assert.equal(gzipped.length, 1);
    assert.equal(text(gzipped[0]), text((await scrape({})).body));

    for (let i = 0; i < 3; i++) await scrape({ accept: ONLY.openmetrics, "accept-encoding": "gzip" });
    assert.equal(gzipped.length, 2);
    assert.ok(text(gzipped[1]).endsWith("# EOF\n"));

    // A poll changes the snapshot: the next gzip scrape of each format gzips once more.
    await poll(h, MINUTE);
    await scrape({});
    assert.equal(gzipped.length, 2, "gzipped before a scraper asked for it");
    for (let i = 0; i < 3; i++) await scrape({ "accept-encoding": "gzip" });
    assert.equal(gzipped.length, 3);
    assert.equal(text(gzipped[2]), text((await scrape({})).body));
  });
});

Deno.test("no Accept-Encoding, identity, gzip;q=0 and other codings get the plain text", async () => {
  await withScrapedExporter(async (h) => {
    const port = portOf(h);
    const plain = await raw(port, "GET", "/metrics");
    assert.equal(plain.headers.get("content-encoding"), undefined);
    for (const header of ["identity", "gzip;q=0", "gzip;q=0, *", "br", "*;q=0", "gzip;q=0.5, identity"]) {
      const answer = await raw(port, "GET", "/metrics", { "accept-encoding": header });
      assert.equal(answer.headers.get("content-encoding"), undefined, header);
      assert.deepEqual(answer.body, plain.body, header);
    }
    for (const header of ["gzip", "*", "gzip, deflate, br", "identity;q=0.5, gzip"]) {
      const answer = await raw(port, "GET", "/metrics", { "accept-encoding": header });
      assert.equal(answer.headers.get("content-encoding"), "gzip", header);
    }
  });
});

Deno.test("with Deno's automatic compression on, the stored gzip bytes go out as they are and identity stays plain", async () => {
  await withScrapedExporter(async (h) => {
    const ours = await raw(portOf(h), "GET", "/metrics", { "accept-encoding": "gzip" });
    const plain = await raw(portOf(h), "GET", "/metrics");
    // The same exporter behind a Deno.serve that compresses compressible answers itself.
    const compressing = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {}, automaticCompression: true },
      h.exporter.handler,
    );
    try {
      const port = compressing.addr.port;
      // The check is only worth something if this server does compress a plain answer.
      const landing = await raw(port, "GET", "/", { "accept-encoding": "gzip" });
      assert.equal(landing.headers.get("content-encoding"), "gzip", "Deno did not compress the landing page");

      const zipped = await raw(port, "GET", "/metrics", { "accept-encoding": "gzip" });
      assert.equal(zipped.headers.get("content-encoding"), "gzip");
      assert.deepEqual(zipped.body, ours.body, "not the stored gzip bytes");
      assert.deepEqual(new Uint8Array(gunzipSync(zipped.body)), plain.body);
      for (const headers of [{}, { "accept-encoding": "identity" }] as Record<string, string>[]) {
        const answer = await raw(port, "GET", "/metrics", headers);
        assert.equal(answer.headers.get("content-encoding"), undefined, JSON.stringify(headers));
        assert.deepEqual(answer.body, plain.body);
      }
    } finally {
      await compressing.shutdown();
    }
  });
});

Deno.test("a scraper preferring OpenMetrics gets it: its content type, counters' _total, # EOF last", async () => {
  await withScrapedExporter(async (h) => {
    const answer = await raw(portOf(h), "GET", "/metrics", { accept: PROMETHEUS_2_42_ACCEPT });
    assert.equal(answer.headers.get("content-type"), OPENMETRICS_CONTENT_TYPE);
    const body = text(answer.body);
    assert.ok(body.endsWith("\n# EOF\n"), body.slice(-200));
    assert.equal(body.match(/^# EOF$/gm)?.length, 1);
    assert.match(body, /^# TYPE monzo_api_requests counter$/m);
    assert.match(body, /^monzo_api_requests_total\{endpoint="\/balance",code="200"\} \d+$/m);
    assert.doesNotMatch(body, /^# TYPE \S+_total /m);
    assert.match(body, /^# TYPE monzo_exporter_build info$/m);
    assert.match(body, /^monzo_exporter_build_info\{version="0\.0\.0-test",mode="live"\} 1$/m);
  });
});

Deno.test("HEAD on every GET route answers the GET's status and headers, Content-Length included, and no body", async () => {
  await withScrapedExporter(async (h) => {
    const port = portOf(h);
    const requests: Array<[string, Record<string, string>]> = [
      ["/metrics", {}],
      ["/metrics", { "accept-encoding": "gzip" }],
      ["/metrics", { accept: ONLY.openmetrics }],
      ["/metrics", { accept: ONLY.openmetrics, "accept-encoding": "gzip" }],
      ["/stats", {}],
      ["/monzo", {}],
      ["/", {}],
      ["/healthz", {}],
      ["/readyz", {}],
      ["/authorize", {}],
      ["/callback?state=unknown", {}],
      ["/nope", {}],
    ];
    const statuses = new Set<number>();
    for (const [path, headers] of requests) {
      const what = `${path} ${JSON.stringify(headers)}`;
      const get = await raw(port, "GET", path, headers);
      const head = await raw(port, "HEAD", path, headers);
      statuses.add(get.status);
      assert.equal(head.status, get.status, what);
      assert.ok(get.body.length > 0, what);
      assert.equal(head.wire.length, 0, `${what}: HEAD sent ${head.wire.length} body bytes`);
      // By name: hono copies a HEAD answer's headers into a new one, which lists them sorted.
      const without = (answer: RawAnswer) =>
        [...answer.headers].filter(([name]) => name !== "date").sort(([a], [b]) => a < b ? -1 : 1);
      assert.deepEqual(without(head), without(get), what);
      assert.equal(head.headers.get("content-length"), String(get.body.length), what);
    }
    assert.deepEqual([...statuses].sort(), [200, 400, 401, 404]);
  });
});

// ---------------------------------------------------------------------------------------------
// A real Prometheus

const hasPrometheus = binaryExists(PROMETHEUS);
if (!hasPrometheus) explainSkip(PROMETHEUS, "Prometheus scraping OpenMetrics and text 0.0.4");

interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(prometheus: string, promql: string): Promise<PromSample[]> {
  const response = await fetch(`${prometheus}/api/v1/query?${new URLSearchParams({ query: promql })}`);
  const body = await response.json();
  assert.equal(body.status, "success", JSON.stringify(body));
  return body.data.result;
}

/** What a proxy saw of one scrape. */
interface Seen {
  readonly accept: string;
  readonly contentType: string;
  readonly contentEncoding: string | undefined;
}

/**
 * A proxy in front of the exporter's /metrics that sends `accept` (or the scraper's own when null)
 * and passes the scraper's Accept-Encoding and the exporter's answer through untouched.
 */
function acceptProxy(exporterPort: number, accept: string | null) {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const sent = accept ?? request.headers.get("accept") ?? "";
    const headers: Record<string, string> = { accept: sent };
    const encoding = request.headers.get("accept-encoding");
    if (encoding) headers["accept-encoding"] = encoding;
    const answer = await raw(exporterPort, "GET", "/metrics", headers);
    const contentType = answer.headers.get("content-type") ?? "";
    const contentEncoding = answer.headers.get("content-encoding");
    seen.push({ accept: sent, contentType, contentEncoding });
    const out: Record<string, string> = { "content-type": contentType };
    if (contentEncoding) out["content-encoding"] = contentEncoding;
    return new Response(answer.body.slice(), { status: answer.status, headers: out });
  });
  return { server, seen, port: server.addr.port };
}

Deno.test({
  name: "a real Prometheus stores the same series and values from OpenMetrics as from text 0.0.4",
  ignore: !hasPrometheus,
  async fn() {
    const fake = await startFakeMonzo({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      data: householdData(),
      autoApprove: true,
    });
    const served = await serveExporter(fake);
    const proxies = {
      openmetrics: acceptProxy(served.port, ONLY.openmetrics),
      text: acceptProxy(served.port, ONLY.text),
      own: acceptProxy(served.port, null),
    };
    const dir = await Deno.makeTempDir({ prefix: "monzo-formats-prometheus-" });
    let prometheus: ReturnType<typeof spawn> | null = null;
    try {
      await logInDirectly(served, fake, ALICE);
      await logInDirectly(served, fake, BOB);
      await served.exporter.poller.poll();
      const started = await startPrometheus(
        dir,
        Object.entries(proxies).flatMap(([job, proxy]) => [
          `  - job_name: ${job}`,
          "    static_configs:",
          `      - targets: ["127.0.0.1:${proxy.port}"]`,
        ]),
      );
      prometheus = started.process;
      const prometheusUrl = started.url;
      const jobs = Object.keys(proxies);
      const seriesOf = async (job: string) => {
        const samples = await query(prometheusUrl, `{__name__=~"monzo_.+",job="${job}"}`);
        return new Map(samples.map((s) => {
          const { job: _job, instance: _instance, ...labels } = s.metric;
          const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a < b ? -1 : 1));
          return [key, s.value[1]];
        }));
      };
      await waitFor("Prometheus to scrape every job", async () => {
        for (const job of jobs) {
          const up = await query(prometheusUrl, `up{job="${job}"}`);
          if (up[0]?.value[1] !== "1") return false;
          if ((await query(prometheusUrl, `monzo_up{job="${job}"}`))[0]?.value[1] !== "1") return false;
        }
        return true;
      }, { timeoutMs: 30_000, intervalMs: 200 });

      const text = await seriesOf("text");
      const openMetrics = await seriesOf("openmetrics");
      const own = await seriesOf("own");
      assert.ok(text.size > 40, `only ${text.size} series`);
      assert.deepEqual(openMetrics, text);
      assert.deepEqual(own, text);
      for (const name of ["monzo_api_requests_total", "monzo_exporter_build_info", "monzo_account_info"]) {
        assert.ok([...text.keys()].some((key) => key.includes(`"${name}"`)), `no ${name} in Prometheus`);
      }

      // Each job really had its format, gzipped, as Prometheus asks for gzip.
      const formats = (proxy: { seen: Seen[] }) => new Set(proxy.seen.map((s) => s.contentType));
      assert.deepEqual(formats(proxies.text), new Set([EXPOSITION_CONTENT_TYPE]));
      assert.deepEqual(formats(proxies.openmetrics), new Set([OPENMETRICS_CONTENT_TYPE]));
      assert.deepEqual(formats(proxies.own), new Set([OPENMETRICS_CONTENT_TYPE]));
      assert.equal(proxies.own.seen[0].accept, PROMETHEUS_2_42_ACCEPT);
      for (const proxy of Object.values(proxies)) {
        assert.deepEqual(new Set(proxy.seen.map((s) => s.contentEncoding)), new Set(["gzip"]));
      }
      const status = await prometheus.stop("SIGTERM", 10_000);
      assert.equal(status.code, 0, `Prometheus exited with ${status.code}:\n${prometheus.stderr.text}`);
    } catch (error) {
      if (prometheus) console.error(`Prometheus' log:\n${prometheus.stderr.text}`);
      throw error;
    } finally {
      await prometheus?.stop("SIGKILL");
      for (const proxy of Object.values(proxies)) await proxy.server.shutdown();
      await served.close();
      await fake.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
