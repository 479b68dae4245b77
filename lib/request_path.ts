/**
 * The path of a request as the router reads it, for every check that must agree with the router (the
 * basic-auth gate, the scrape fast path). Deno builds `Request.url` from the request line and the
 * client's Host header, so the host part is the client's to choose: read with `new URL`, a Host of
 * `x\healthz?` would make `/metrics` look like `/healthz`.
 *
 * @module
 */

// Characters that end or split a host in URL parsing; none belongs in a Host header.
const HOSTILE_HOST = /[\\?#@\s]/;

/**
 * The raw path of an absolute request URL (`http://host/path?query`), up to the query and not
 * decoded; null when the host part holds a character that URL parsing would read as the start of a
 * path, query or fragment.
 */
export function requestPath(url: string): string | null {
  const hostStart = url.indexOf("://") + 3;
  const start = url.indexOf("/", hostStart);
  const host = start < 0 ? url.slice(hostStart) : url.slice(hostStart, start);
  if (HOSTILE_HOST.test(host)) return null;
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query < 0 ? url.length : query);
}
