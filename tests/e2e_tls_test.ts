// The real program in demo mode behind a web config (TLS with a CA made here, basic auth with an
// htpasswd hash): a real Prometheus scrapes it over HTTPS, and real Chromium logs in through it.

import assert from "node:assert/strict";
import { join } from "node:path";
import { chromium } from "playwright-core";
import {
  ALICE,
  binaryExists,
  explainSkip,
  freePort,
  PROGRAM,
  PROMETHEUS,
  type Running,
  spawn,
  startPrometheus,
  waitFor,
} from "./helpers/e2e.ts";
import { withTempDir } from "./helpers/harness.ts";
import { haveTools, htpasswdHash, makeCertificates } from "./helpers/tls.ts";

const CHROMIUM = "/usr/bin/chromium";
const tools = haveTools();
const hasPrometheus = binaryExists(PROMETHEUS);
const hasChromium = binaryExists(CHROMIUM);
if (!tools) explainSkip("openssl or htpasswd (apache2-utils)", "the TLS end-to-end tests");
if (!hasPrometheus) explainSkip(PROMETHEUS, "the HTTPS scrape by Prometheus");
if (!hasChromium) explainSkip(CHROMIUM, "the browser login over HTTPS");

const USER = "prometheus";
const PASSWORD = "s3cret scrape password";

interface Served {
  readonly url: string;
  readonly port: number;
  readonly caPath: string;
  readonly caCert: string;
  readonly program: Running;
}

/** The program in demo mode with TLS and basic auth, as a user starts it; stopped after `body`. */
async function withProtectedDemo(dir: string, body: (served: Served) => Promise<void>): Promise<void> {
  const certs = await makeCertificates(dir);
  const web = join(dir, "web-config.yml");
  await Deno.writeTextFile(
    web,
    "tls_server_config:\n  cert_file: server-cert.pem\n  key_file: server-key.pem\n" +
      `basic_auth_users:\n  ${USER}: ${await htpasswdHash(PASSWORD)}\n` +
      "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=60\n",
  );
  const port = freePort();
  const program = spawn(Deno.execPath(), [
    ...PROGRAM,
    "--demo",
    "--web.listen-address",
    `127.0.0.1:${port}`,
    "--web.config.file",
    web,
  ]);
  const url = `https://127.0.0.1:${port}`;
  try {
    using client = Deno.createHttpClient({ caCerts: [certs.caCert] });
    const authorization = `Basic ${btoa(`${USER}:${PASSWORD}`)}`;
    await waitFor("the demo to serve its metrics over HTTPS", async () => {
      const response = await fetch(`${url}/metrics`, { client, headers: { authorization } });
      const text = await response.text();
      return response.status === 200 && text.includes("monzo_balance{");
    }, { timeoutMs: 30_000, intervalMs: 200 });
    await body({ url, port, caPath: certs.caCertPath, caCert: certs.caCert, program });
    const status = await program.stop();
    assert.equal(status.code, 0, program.stderr.text);
  } catch (error) {
    console.error(`The program's log:\n${program.stderr.text}`);
    throw error;
  } finally {
    await program.stop("SIGKILL");
  }
}

interface Target {
  labels: Record<string, string>;
  health: string;
  lastError: string;
}

Deno.test({
  name: "Prometheus scrapes the exporter over HTTPS with basic auth; a wrong password is a failed target (401)",
  ignore: !tools || !hasPrometheus,
  async fn() {
    await withTempDir(async (dir) => {
      await withProtectedDemo(dir, async (served) => {
        const job = (name: string, password: string) => [
          `  - job_name: ${name}`,
          "    scheme: https",
          "    tls_config:",
          `      ca_file: ${served.caPath}`,
          "    basic_auth:",
          `      username: ${USER}`,
          `      password: ${JSON.stringify(password)}`,
          "    static_configs:",
          `      - targets: ["127.0.0.1:${served.port}"]`,
        ];
        const started = await startPrometheus(dir, [
          ...job("monzo", PASSWORD),
          ...job("monzo-wrong", "not the password"),
        ]);
        const prometheus = started.process;
        const prometheusUrl = started.url;
        try {
          const query = async (promql: string) => {
            const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: promql })}`);
            return (await response.json()).data.result as Array<{ metric: Record<string, string>; value: string[] }>;
          };
          await waitFor("Prometheus to read monzo_balance over HTTPS", async () => {
            const balances = await query('monzo_balance{job="monzo"}');
            return balances.length > 0;
          }, { timeoutMs: 30_000, intervalMs: 250 });
          const up = await query('up{job="monzo"}');
          assert.equal(up[0]?.value[1], "1");
          const balances = await query('monzo_balance{job="monzo"}');
          assert.ok(balances.every((sample) => sample.metric.currency === "GBP" && sample.metric.account_id));

          const wrong = await waitFor("the wrong-password target to be scraped", async () => {
            const response = await fetch(`${prometheusUrl}/api/v1/targets`);
            const targets: Target[] = (await response.json()).data.activeTargets;
            const target = targets.find((t) => t.labels.job === "monzo-wrong");
            // The first scrape may time out while the first verification runs on a busy machine.
            return target && /401/.test(target.lastError) ? target : null;
          }, { timeoutMs: 30_000, intervalMs: 250 });
          assert.equal(wrong.health, "down");
          assert.match(wrong.lastError, /401/);
          assert.equal((await query('up{job="monzo-wrong"}'))[0]?.value[1], "0");
          assert.deepEqual(await query('monzo_balance{job="monzo-wrong"}'), []);
        } catch (error) {
          console.error(`Prometheus' log:\n${prometheus.stderr.text}`);
          throw error;
        } finally {
          await prometheus.stop("SIGTERM", 10_000);
        }
        // The password never reaches the exporter's log.
        assert.ok(!served.program.stderr.text.includes(PASSWORD));
        assert.ok(!served.program.stderr.text.includes("not the password"));
      });
    });
  },
});

/** The base64 SHA-256 of a certificate's public key, which Chromium can be told to trust. */
async function spkiHash(dir: string, certPath: string): Promise<string> {
  const pubkey = join(dir, "spki.der");
  const run = async (args: string[]) => {
    const output = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
    if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
    return output.stdout;
  };
  await Deno.writeFile(join(dir, "pub.pem"), await run(["x509", "-in", certPath, "-noout", "-pubkey"]));
  await run(["pkey", "-pubin", "-in", join(dir, "pub.pem"), "-outform", "der", "-out", pubkey]);
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(pubkey));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

Deno.test({
  name: "Chromium opens the status page over HTTPS with basic auth and logs in: /authorize → Monzo → /callback",
  ignore: !tools || !hasChromium,
  async fn() {
    await withTempDir(async (dir) => {
      await withProtectedDemo(dir, async (served) => {
        // Chromium trusts exactly this server's key (not every certificate, as ignoreHTTPSErrors would).
        const spki = await spkiHash(dir, join(dir, "server-cert.pem"));
        const browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: ["--headless", "--no-sandbox", "--disable-gpu", `--ignore-certificate-errors-spki-list=${spki}`],
        });
        try {
          // Without credentials, or with a wrong password, Chromium is challenged and gets no page at all.
          for (const httpCredentials of [undefined, { username: USER, password: "not the password" }]) {
            const stranger = await browser.newContext({ httpCredentials });
            const page = await stranger.newPage();
            // Chromium either gives up on the challenge or shows the 401 answer, never the status page.
            const outcome = await page.goto(`${served.url}/`).then(
              async (response) => `${response?.status()} ${await response?.text()}`,
              (error) => String(error),
            );
            assert.match(outcome, /^401 Unauthorized\n$|ERR_INVALID_AUTH_CREDENTIALS/, outcome);
            await stranger.close();
          }

          const context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD } });
          const page = await context.newPage();
          page.setDefaultTimeout(15_000);
          const landing = await page.goto(`${served.url}/`);
          assert.equal(landing?.status(), 200);
          assert.equal(landing?.headers()["strict-transport-security"], "max-age=60");
          assert.ok(page.url().startsWith("https://"), page.url());
          assert.match(await page.locator("#demo-banner").innerText(), /Demo mode/);

          // The demo's own login link: /authorize → the simulated Monzo → back to /callback over TLS.
          await page.click("#demo-login");
          await page.locator("#email").waitFor();
          await page.fill("#email", "alice@example.com");
          await page.click("#submit");
          await page.locator("#magic-link").waitFor();
          const callback = page.waitForResponse((r) => r.url().startsWith(`${served.url}/callback?`));
          await page.click("#magic-link");
          const answer = await callback;
          await page.waitForLoadState();
          assert.equal(answer.status(), 200);
          assert.ok(page.url().startsWith(`${served.url}/callback?`), page.url());
          const text = await page.locator("body").innerText();
          assert.match(text, /Logged in/);
          assert.ok(text.includes(ALICE), text);
          await context.close();
        } finally {
          await browser.close();
        }
      });
    });
  },
});
