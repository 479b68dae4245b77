// Debian's Chromium, driven by playwright-core, logs in through the exporter and the fake Monzo's
// pages as a person would, and meets the wrong-key and forged-state pages.
// Screenshots go to artifacts/screenshots/ (not committed).

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { type FakeMonzo, startFakeMonzo } from "../lib/fake_monzo/mod.ts";
import {
  ALICE,
  ALICE_CURRENT,
  AUTH_KEY,
  binaryExists,
  CLIENT_ID,
  CLIENT_SECRET,
  explainSkip,
  get,
  JOINT,
  ROOT,
  sampleValue,
  type ServedExporter,
  serveExporter,
} from "./helpers/e2e.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = binaryExists(CHROMIUM);
if (!hasChromium) explainSkip(CHROMIUM, "the browser login test");

const SCREENSHOTS = join(ROOT, "artifacts", "screenshots");
const LAUNCH_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const STACK_TRACE = /^\s+at |Error:|Stack trace|node_modules|\.ts:\d+/m;

/** A browser page on an exporter served on a real port, backed by a fake Monzo that waits for approval. */
async function withBrowser(
  body: (context: { page: Page; fake: FakeMonzo; served: ServedExporter }) => Promise<void>,
): Promise<void> {
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  const fake = await startFakeMonzo({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, autoApprove: false });
  let served: ServedExporter | null = null;
  let browser: Browser | null = null;
  try {
    served = await serveExporter(fake);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
    page.setDefaultTimeout(15_000);
    await body({ page, fake, served });
  } finally {
    await browser?.close();
    await served?.close();
    await fake.close();
  }
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** The text a person reads on the page. */
function visibleText(page: Page): Promise<string> {
  return page.locator("body").innerText();
}

/** The Status cell of the user's row in the landing page's table of logins. */
async function loginStatus(page: Page, userId: string): Promise<string> {
  const row = page.locator("#logins tr", { hasText: userId });
  assert.equal(await row.count(), 1, `no single row for ${userId} in the logins table`);
  return (await row.locator("td").nth(1).innerText()).trim();
}

/** A page meant for a person: HTML, a heading, sentences; no JSON dump, no stack trace. */
async function assertHumanPage(page: Page, contentType: string | undefined): Promise<string> {
  assert.match(contentType ?? "", /^text\/html/);
  const text = await visibleText(page);
  assert.doesNotMatch(text.trim(), /^[[{]/, `the page looks like JSON:\n${text}`);
  assert.doesNotMatch(text, STACK_TRACE, `the page shows a stack trace:\n${text}`);
  assert.ok((await page.locator("h1").count()) === 1, "the page has no heading");
  return text;
}

Deno.test({
  name: "browser: landing page → /authorize → Monzo login → /callback → waiting for approval → polling",
  ignore: !hasChromium,
  async fn() {
    await withBrowser(async ({ page, fake, served }) => {
      // Nobody logged in yet.
      const landing = await page.goto(`${served.url}/`);
      assert.equal(landing?.status(), 200);
      assert.match(await visibleText(page), /Nobody is logged in yet\./);
      await screenshot(page, "01-landing-nobody-logged-in");

      // The exporter sends the browser to Monzo's login page.
      await page.goto(`${served.url}/authorize?key=${encodeURIComponent(AUTH_KEY)}`);
      assert.ok(page.url().startsWith(`${fake.authUrl}/?`), `not on the Monzo login page: ${page.url()}`);
      await page.fill("#email", "alice@example.com");
      await page.click("#submit");
      await page.locator("#magic-link").waitFor();
      assert.match(await visibleText(page), /magic link/i);

      // The magic link leads back to the exporter's callback, which says what to do next.
      const callbackResponse = page.waitForResponse((r) => r.url().startsWith(`${served.url}/callback?`));
      await page.click("#magic-link");
      const callback = await callbackResponse;
      await page.waitForLoadState();
      assert.equal(callback.status(), 200);
      assert.ok(page.url().startsWith(`${served.url}/callback?`), page.url());
      const callbackText = await assertHumanPage(page, callback.headers()["content-type"]);
      assert.match(callbackText, /approve in the Monzo app/);
      assert.ok(callbackText.includes(ALICE), "the callback page does not say who logged in");
      assert.equal(fake.count("/oauth2/token"), 1);
      await screenshot(page, "02-callback-approve-in-app");

      // Monzo answers 403 until the user approves in the app: the landing page says so.
      await served.exporter.poller.poll();
      await page.goto(`${served.url}/`);
      assert.equal(await loginStatus(page, ALICE), "waiting for approval in the Monzo app");
      const waiting = await visibleText(page);
      assert.match(waiting, /The last poll had problems/);
      assert.match(waiting, /open the Monzo app and allow access/);
      assert.equal(sampleValue((await get(`${served.url}/metrics`)).text, "monzo_balance", balanceLabels), undefined);
      await screenshot(page, "03-landing-waiting-for-approval");

      // Approved: the next poll reads the accounts.
      fake.approve(ALICE);
      await served.exporter.poller.poll();
      await page.goto(`${served.url}/`);
      assert.equal(await loginStatus(page, ALICE), "logged in, polling");
      const polling = await visibleText(page);
      assert.match(polling, /The last poll succeeded\./);
      assert.doesNotMatch(polling, /waiting for approval/);
      assert.doesNotMatch(polling, /1234\.56|1,234\.56/, "the landing page shows a balance");
      await screenshot(page, "04-landing-logged-in-polling");

      const metrics = (await get(`${served.url}/metrics`)).text;
      assert.equal(sampleValue(metrics, "monzo_balance", balanceLabels), 1234.56);
      assert.equal(sampleValue(metrics, "monzo_balance", `account_id="${JOINT}",currency="GBP"`), 567.89);
      assert.match(metrics, /^monzo_up 1$/m);
    });
  },
});

const balanceLabels = `account_id="${ALICE_CURRENT}",currency="GBP"`;

Deno.test({
  name: "browser: /authorize with a wrong key shows a 401 page with a clear sentence, not JSON or a stack trace",
  ignore: !hasChromium,
  async fn() {
    await withBrowser(async ({ page, fake, served }) => {
      const response = await page.goto(`${served.url}/authorize?key=wrong`);
      assert.equal(response?.status(), 401);
      assert.ok(page.url().startsWith(served.url), `the browser left the exporter: ${page.url()}`);
      const text = await assertHumanPage(page, response?.headers()["content-type"]);
      assert.match(text, /Wrong or missing key/);
      assert.match(text, /This link needs the auth_key from the exporter's config/);
      assert.ok(!text.includes(AUTH_KEY), "the page shows the real key");
      assert.equal(fake.requests.length, 0, "Monzo was contacted");
      await screenshot(page, "05-wrong-key");
    });
  },
});

Deno.test({
  name: "browser: /callback with a forged state shows a 400 page and never exchanges the code",
  ignore: !hasChromium,
  async fn() {
    await withBrowser(async ({ page, fake, served }) => {
      const response = await page.goto(`${served.url}/callback?code=x&state=forged`);
      assert.equal(response?.status(), 400);
      const text = await assertHumanPage(page, response?.headers()["content-type"]);
      assert.match(text, /This login link is not valid/);
      assert.match(text, /nothing was done/);
      assert.equal(fake.count("/oauth2/token"), 0, "the code was exchanged despite the forged state");
      await screenshot(page, "06-forged-state");

      // Nobody got logged in by it.
      await page.goto(`${served.url}/`);
      assert.match(await visibleText(page), /Nobody is logged in yet\./);
    });
  },
});
