import { type Context, Hono } from "hono";
import { html, raw } from "hono/html";
import type { FakeData } from "./data.ts";
import type { Grants } from "./grants.ts";
import { allowOnly, type Env } from "./http.ts";

// Monzo's browser login (auth.monzo.com): a page asking for an email, a magic link "sent" to it, and a
// 302 back to the client's redirect URI with a code. hono/html escapes every interpolated value.

type Markup = ReturnType<typeof html>;

/** The fake's OAuth browser pages under `/auth`, for the one client `clientId`. */
export function oauthPages(clientId: string, data: FakeData, grants: Grants): Hono<Env> {
  const app = new Hono<Env>();

  const loginPage = (c: Context<Env>) => {
    const requestedClient = c.req.query("client_id") ?? "";
    const redirectUri = c.req.query("redirect_uri") ?? "";
    if (requestedClient !== clientId) {
      return page(400, "Unknown client", html`<p>The client <code>${requestedClient}</code> is not known.</p>`);
    }
    if (c.req.query("response_type") !== "code") {
      return page(400, "Bad request", html`<p>Only <code>response_type=code</code> is supported.</p>`);
    }
    if (!isWebUrl(redirectUri)) {
      return page(400, "Bad request", html`<p>The redirect URI <code>${redirectUri}</code> is not valid.</p>`);
    }
    const hidden = { client_id: clientId, redirect_uri: redirectUri, state: c.req.query("state") ?? "" };
    return page(
      200,
      "Log in to Monzo (simulated)",
      html`<p>This is a simulated Monzo. Enter the email of a fake customer to get a magic link.</p>
<form method="post" action="/auth/login">
  ${Object.entries(hidden).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
  <label for="email">Email</label>
  <input id="email" name="email" type="email" value="${data.users[0]?.email ?? ""}" required>
  <button id="submit" type="submit">Email me a magic link</button>
</form>`,
    );
  };
  app.get("/auth", loginPage);
  app.get("/auth/", loginPage);

  app.post("/auth/login", async (c) => {
    const form = new URLSearchParams(await c.req.text());
    const email = (form.get("email") ?? "").trim().toLowerCase();
    const redirectUri = form.get("redirect_uri") ?? "";
    if (form.get("client_id") !== clientId || !isWebUrl(redirectUri)) {
      return page(400, "Bad request", html`<p>The login form lost its client or redirect URI: start again.</p>`);
    }
    const found = data.users.find((u) => u.email.toLowerCase() === email);
    if (!found) {
      return page(
        400,
        "Unknown email",
        html`<p>No Monzo customer has the email <code>${email}</code>.</p>
<p><a href="javascript:history.back()">Back</a></p>`,
      );
    }
    c.get("record").userId = found.id;
    const token = grants.issueMagicLink({ userId: found.id, redirectUri, state: form.get("state") ?? "" });
    return page(
      200,
      "Check your email",
      html`<p>We sent a magic link to <strong>${found.email}</strong>.</p>
<p>Since this Monzo is simulated, here it is:</p>
<p><a id="magic-link" href="${`/auth/magic?${new URLSearchParams({ token })}`}">Log in as ${found.name}</a></p>`,
    );
  });

  app.get("/auth/magic", (c) => {
    const link = grants.openMagicLink(c.req.query("token") ?? "");
    if (!link) {
      return page(400, "Link expired", html`<p>This magic link has been used or has expired: log in again.</p>`);
    }
    c.get("record").userId = link.userId;
    const target = new URL(link.redirectUri);
    target.searchParams.set("code", grants.issueCode(link.userId, link.redirectUri));
    target.searchParams.set("state", link.state);
    return c.redirect(target.href, 302);
  });

  allowOnly(app, "GET", "/auth", "/auth/", "/auth/magic");
  allowOnly(app, "POST", "/auth/login");
  return app;
}

// A constant, so raw() is safe; kept out of the template so the formatter leaves the CSS alone.
const STYLE = `
  body { font-family: system-ui, sans-serif; background: #14233c; color: #14233c; margin: 0; }
  main { max-width: 26rem; margin: 4rem auto; background: #fff; border-radius: 12px; padding: 2rem; }
  h1 { font-size: 1.4rem; margin-top: 0; }
  label { display: block; font-weight: 600; margin-bottom: .3rem; }
  input[type=email] { width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1rem; margin-bottom: 1rem; }
  button, a#magic-link { background: #ff4f40; color: #fff; border: 0; border-radius: 8px; padding: .7rem 1.2rem;
    font-size: 1rem; text-decoration: none; display: inline-block; cursor: pointer; }
  code { background: #eef; padding: 0 .2rem; }
  .note { color: #667; font-size: .85rem; }
`;

async function page(status: number, title: string, body: Markup): Promise<Response> {
  const markup = await html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${title}</title>
        <style>${raw(STYLE)}</style>
      </head>
      <body>
        <main>
          <h1>${title}</h1>
          ${body}
          <p class="note">Simulated Monzo for testing and demos: no real bank is involved.</p>
        </main>
      </body>
    </html>
  `;
  return new Response(markup.toString(), { status, headers: { "content-type": "text/html; charset=utf-8" } });
}

function isWebUrl(text: string): boolean {
  const url = URL.parse(text);
  return url?.protocol === "http:" || url?.protocol === "https:";
}
