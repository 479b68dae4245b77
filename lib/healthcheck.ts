// `monzo-exporter --healthcheck [URL]`: the probe a container's HEALTHCHECK runs, since a distroless
// image has no curl. It exits 0 or 1 only, never 2, which Docker reserves.

import { parse as parseToml, TomlError } from "smol-toml";
import { formatListenAddress, type ListenAddress, parseListenAddress } from "./listen_address.ts";
import { err, ok, type Result } from "./result.ts";

/** How long the probe waits for `/healthz` before calling the exporter unhealthy. */
export const HEALTHCHECK_TIMEOUT_MS = 5_000;

/** Where the probe finds the address to knock on when it is given no URL. */
export interface HealthcheckSources {
  /** `--web.listen-address` (or the demo's address under `--demo`), which wins over the config. */
  readonly listen: ListenAddress | null;
  /** The config file whose `server_addr` to use; null when there is none to read (the demo). */
  readonly configPath: string | null;
  /** The address when the config file does not exist: the demo's, which a container runs by default. */
  readonly fallback: ListenAddress;
}

/** `/healthz` on a listen address; a wildcard host is reached through loopback. */
export function healthzUrl(listen: ListenAddress): string {
  const hostname = listen.hostname === "0.0.0.0" ? "127.0.0.1" : listen.hostname === "::" ? "::1" : listen.hostname;
  return `http://${formatListenAddress({ hostname, port: listen.port })}/healthz`;
}

/**
 * The URL to probe: the one given (a bare `http://host:port` gets `/healthz`), else `/healthz` on the
 * listen address of the command line, else on the config's `server_addr`, else on the fallback.
 */
export async function healthcheckUrl(given: string | null, sources: HealthcheckSources): Promise<Result<string>> {
  if (given !== null) {
    let url: URL;
    try {
      url = new URL(given);
    } catch {
      return err(`--healthcheck ${JSON.stringify(given)} is not a URL (for example http://127.0.0.1:8080/healthz)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return err(`--healthcheck ${JSON.stringify(given)} must start with http:// or https://`);
    }
    if (url.pathname === "/") url.pathname = "/healthz";
    return ok(url.href);
  }
  if (sources.listen) return ok(healthzUrl(sources.listen));
  if (sources.configPath === null) return ok(healthzUrl(sources.fallback));
  const listen = await serverAddr(sources.configPath);
  if (!listen.ok) return listen;
  return ok(healthzUrl(listen.value ?? sources.fallback));
}

/**
 * Reads only `server_addr` from the config, so the probe works whatever else the file lacks (secrets
 * that only the exporter's environment holds); null when the file does not exist.
 */
async function serverAddr(path: string): Promise<Result<ListenAddress | null>> {
  const cannot = (reason: string) => err(`Cannot find the address to check in "${path}": ${reason}`);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return ok(null);
    return cannot(error instanceof Error ? error.message.split("\n")[0] : String(error));
  }
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) return cannot(`invalid TOML at line ${error.line}, column ${error.column}`);
    throw error;
  }
  if (typeof raw.server_addr !== "string") return cannot("server_addr is missing; give the URL to check");
  const parsed = parseListenAddress(raw.server_addr);
  return parsed.ok ? parsed : cannot(`server_addr ${parsed.error}`);
}

/** GETs `url` once: the value is a line saying it answered 200, the error a line saying why not. */
export async function probeHealth(url: string, options: { timeoutMs?: number } = {}): Promise<Result<string>> {
  const timeoutMs = options.timeoutMs ?? HEALTHCHECK_TIMEOUT_MS;
  const unhealthy = (reason: string) => err(`Unhealthy: ${url} ${reason}`);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    // A redirect is not health: /healthz answers 200 itself.
    const response = await fetch(url, { signal: controller.signal, redirect: "manual" });
    await response.body?.cancel();
    if (response.status !== 200) return unhealthy(`answered ${response.status} instead of 200`);
    return ok(`Healthy: ${url} answered 200`);
  } catch (error) {
    if (controller.signal.aborted) return unhealthy(`did not answer within ${timeoutMs / 1000} s`);
    return unhealthy(`could not be reached: ${describeFetchError(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

function describeFetchError(error: unknown): string {
  // Deno says "fetch failed" and keeps what happened in the cause.
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const message = inner instanceof Error ? inner.message : String(inner);
  if (/connection refused/i.test(message)) return "connection refused (is the exporter running, on that port?)";
  // The cause nests its own causes with colons; the innermost says what happened (a DNS failure, a reset).
  return message.split("\n")[0].split(": ").at(-1)?.replace(/ \(os error \d+\)$/, "") ?? message;
}
