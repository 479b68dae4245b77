// `monzo-exporter --healthcheck [URL]`: the probe a container's HEALTHCHECK runs, since a distroless
// image has no curl. It exits 0 or 1 only, never 2, which Docker reserves. When the web config turns
// TLS on, the probe speaks https and trusts the configured certificate for its one request, since the
// certificate of a local exporter is rarely signed by a CA the system knows.

import { loadProbeKeys } from "../config/config.ts";
import { formatListenAddress, type ListenAddress } from "../config/listen_address.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { loadWebConfig } from "../config/web_config.ts";
import { errorMessage } from "../shared/error_message.ts";

/** How long the probe waits for `/healthz` before calling the exporter unhealthy. */
const HEALTHCHECK_TIMEOUT_MS = 5_000;

/** Where the probe finds the address to knock on, and the web config that says whether it speaks TLS. */
export interface HealthcheckSources {
  /** `--web.listen-address` (or the demo's address under `--demo`), which wins over the config. */
  readonly listen: ListenAddress | null;
  /** The config file whose `server_addr` to use; null when there is none to read (the demo). */
  readonly configPath: string | null;
  /** The address when the config file does not exist: the demo's, which a container runs by default. */
  readonly fallback: ListenAddress;
  /** `--web.config.file`, which wins over the config's `web_config_file`; null when not given. */
  readonly webConfigFile: string | null;
}

/** What the probe asks for, and what it trusts to answer. */
export interface HealthcheckTarget {
  readonly url: string;
  /** The web config's certificate chain (PEM), trusted besides the system's CAs; empty without TLS. */
  readonly caCerts: readonly string[];
}

/** `/healthz` on a listen address; a wildcard host is reached through loopback. */
function healthzUrl(listen: ListenAddress): string {
  return `http://${
    formatListenAddress({ hostname: loopbackFor(listen.hostname) ?? listen.hostname, port: listen.port })
  }/healthz`;
}

/**
 * What to probe: the URL given (a bare `http://host:port` gets `/healthz`), else `/healthz` on the
 * listen address of the command line, else on the config's `server_addr`, else on the fallback. With a
 * web config that turns TLS on (`--web.config.file`, else the config's `web_config_file`), the default
 * is https and the web config's certificate is trusted, for a URL given with https too.
 */
export async function healthcheckTarget(
  given: string | null,
  sources: HealthcheckSources,
): Promise<Result<HealthcheckTarget>> {
  let url: URL | null = null;
  if (given !== null) {
    try {
      url = new URL(given);
    } catch {
      return err(`--healthcheck ${JSON.stringify(given)} is not a URL (for example http://127.0.0.1:8080/healthz)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return err(`--healthcheck ${JSON.stringify(given)} must start with http:// or https://`);
    }
    if (url.pathname === "/") url.pathname = "/healthz";
    // A plain http URL needs nothing from the files: it is asked as given.
    if (url.protocol === "http:") return ok({ url: url.href, caCerts: [] });
  }
  // Only what the probe needs is read from the config, so it works whatever else the file lacks
  // (secrets that only the exporter's environment holds).
  const needed = sources.webConfigFile === null || (url === null && sources.listen === null);
  const config = sources.configPath === null || !needed ? ok(null) : await loadProbeKeys(sources.configPath);
  if (!config.ok) return config;
  let webPath = sources.webConfigFile;
  if (webPath === null && config.value) {
    const { path, webConfigFile } = config.value;
    if (!webConfigFile.ok) return err(`Cannot find the web config to check in "${path}": ${webConfigFile.error}`);
    webPath = webConfigFile.value;
  }
  const web = webPath === null ? null : await loadWebConfig(webPath);
  if (web && !web.ok) return err(web.error.message);
  const tls = web?.ok ? web.value.tls : null;
  const caCerts = tls ? [tls.cert] : [];
  if (url) return ok({ url: url.href, caCerts });

  let listen = sources.listen ?? sources.fallback;
  if (!sources.listen && config.value) {
    const { path, listen: configured } = config.value;
    if (!configured.ok) {
      return err(`Cannot find the address to check in "${path}": ${configured.error}; give the URL to check`);
    }
    listen = configured.value;
  }
  if (!tls || !web?.ok) return ok({ url: healthzUrl(listen), caCerts });
  const host = await tlsHostname(listen, tls.cert);
  if (!host.ok) {
    return err(
      `Cannot check /healthz over TLS: the certificate of web config "${web.value.path}" ${host.error}; ` +
        `pass --healthcheck https://NAME:${listen.port}/healthz with a NAME it carries`,
    );
  }
  return ok({ url: `https://${formatListenAddress({ hostname: host.value, port: listen.port })}/healthz`, caCerts });
}

/** The loopback address that reaches a wildcard or loopback listen address; null for any other. */
function loopbackFor(hostname: string): string | null {
  if (hostname === "0.0.0.0") return "127.0.0.1";
  if (hostname === "::" || hostname === "::1") return "::1";
  if (/^127\.\d+\.\d+\.\d+$/.test(hostname)) return hostname;
  return null;
}

/**
 * The name to ask a TLS listener by, one its certificate carries. An exporter bound to a wildcard or
 * loopback address is reached through loopback: by the loopback address when the certificate names
 * it (no name lookup), else as `localhost`, which certificates made for a local exporter name. Any
 * other address is asked by itself. The error says what the certificate names instead.
 */
async function tlsHostname(listen: ListenAddress, cert: string): Promise<Result<string>> {
  const { X509Certificate } = await import("node:crypto");
  // The first certificate of the chain is the server's own.
  const certificate = new X509Certificate(cert);
  const loopback = loopbackFor(listen.hostname);
  const candidates = loopback ? [loopback, "localhost"] : [listen.hostname];
  // Subject alternative names only: Deno's TLS client, like browsers, ignores the common name.
  const names = (certificate.subjectAltName ?? "").split(", ").filter(Boolean);
  const carries = (host: string) =>
    /^[\d.]+$|:/.test(host)
      ? certificate.checkIP(host) !== undefined
      : names.some((name) => name.startsWith("DNS:") && dnsMatches(name.slice(4), host));
  const host = candidates.find(carries);
  if (host) return ok(host);
  const carried = names.map((name) => name.replace(/^DNS:|^IP Address:/, "")).join(", ") || "no names";
  return err(`names ${candidates.length > 1 ? "neither " : ""}${candidates.join(" nor ")} (it names ${carried})`);
}

/** A DNS name of a certificate against a host: equal ignoring case, or a wildcard for its first label. */
function dnsMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  if (!p.startsWith("*.")) return p === h;
  const dot = h.indexOf(".");
  return dot > 0 && h.slice(dot) === p.slice(1);
}

/** GETs `url` once: the value is a line saying it answered 200, the error a line saying why not. */
export async function probeHealth(
  url: string,
  options: { timeoutMs?: number; caCerts?: readonly string[] } = {},
): Promise<Result<string>> {
  const timeoutMs = options.timeoutMs ?? HEALTHCHECK_TIMEOUT_MS;
  const unhealthy = (reason: string) => err(`Unhealthy: ${url} ${reason}`);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  // The web config's certificate is trusted for this request only, besides the system's CAs.
  const client = options.caCerts?.length ? Deno.createHttpClient({ caCerts: [...options.caCerts] }) : undefined;
  try {
    // A redirect is not health: /healthz answers 200 itself.
    const response = await fetch(url, { signal: controller.signal, redirect: "manual", client });
    await response.body?.cancel();
    if (response.status !== 200) return unhealthy(`answered ${response.status} instead of 200`);
    return ok(`Healthy: ${url} answered 200`);
  } catch (error) {
    if (controller.signal.aborted) return unhealthy(`did not answer within ${timeoutMs / 1000} s`);
    return unhealthy(`could not be reached: ${describeFetchError(error)}`);
  } finally {
    clearTimeout(timer);
    client?.close();
  }
}

function describeFetchError(error: unknown): string {
  // Deno says "fetch failed" and keeps what happened in the cause.
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const message = errorMessage(inner);
  if (/connection refused/i.test(message)) return "connection refused (is the exporter running, on that port?)";
  // What Deno's TLS client (rustls) refuses that Go's and browsers' accept, with what to do about it.
  if (/UnknownIssuer/.test(message)) {
    return "its certificate is signed by a CA the probe does not trust (UnknownIssuer): " +
      "put the CA's certificate after the server's in the web config's cert_file";
  }
  if (/CaUsedAsEndEntity/.test(message)) {
    return "its certificate is a CA certificate (CaUsedAsEndEntity), which Deno refuses as a server's: " +
      'make it with -addext "basicConstraints=critical,CA:FALSE"';
  }
  // The cause nests its own causes with colons; the innermost says what happened (a DNS failure, a reset).
  return message.split("\n")[0].split(": ").at(-1)?.replace(/ \(os error \d+\)$/, "") ?? message;
}
