import type { Hono, MiddlewareHandler } from "hono";
import { json } from "./bodies.ts";

/** One request the fake received; secrets in the query are redacted and tokens never appear. */
export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Whose token or login it was, when known. */
  userId: string | null;
  /** The status answered; 0 for a request that was hung by a fault. */
  status: number;
}

/** The Hono environment of the fake's routes: each request's entry in the request log. */
export interface Env {
  Variables: {
    record: FakeRequest;
    /** Set by a `hang` fault, whose late 504 is not the status the test observed. */
    hung: boolean;
  };
}

// Query keys whose values are secrets (the magic link's token, a code someone put in a URL).
const SECRET_KEYS = /token|code|secret|password/i;

/** Appends every request to the log given by `log` before anything else handles it, and its status after. */
export function recordRequests(log: () => FakeRequest[]): MiddlewareHandler<Env> {
  return async (c, next) => {
    const url = new URL(c.req.url);
    const query: Record<string, string> = {};
    for (const [key, value] of url.searchParams) query[key] = SECRET_KEYS.test(key) ? "[redacted]" : value;
    const record: FakeRequest = { method: c.req.method, path: url.pathname, query, userId: null, status: 0 };
    log().push(record);
    c.set("record", record);
    c.set("hung", false);
    await next();
    if (!c.get("hung")) record.status = c.res.status;
  };
}

/** Answers other methods on each of `paths` with Monzo's 405; register after the real handlers. */
export function allowOnly(app: Hono<Env>, method: "GET" | "POST", ...paths: string[]): void {
  for (const path of paths) {
    app.all(
      path,
      (c) =>
        json(405, { code: "method_not_allowed", message: `Method ${c.req.method} not allowed` }, { allow: method }),
    );
  }
}

/** The bearer token of a request, if it has one. */
export function bearer(authorization: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return match ? match[1] : null;
}
