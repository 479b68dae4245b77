import { err, ok, type Result } from "../shared/result.ts";

/** A host and port to bind, parsed from `host:port` or `[v6]:port`. */
export interface ListenAddress {
  readonly hostname: string;
  readonly port: number;
}

const BRACKETED = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/;
const PLAIN = /^([^\s:\[\]\/]+):(\d{1,5})$/;

/** Parses `host:port` (IPv6 in brackets); port 0 asks the system for a free one. */
export function parseListenAddress(text: string): Result<ListenAddress> {
  const match = BRACKETED.exec(text) ?? PLAIN.exec(text);
  if (!match) {
    // JSON quoting escapes line breaks, so the message stays on one line.
    return err(`${JSON.stringify(text)} is not host:port (for example 0.0.0.0:8080 or [::]:8080)`);
  }
  const port = Number(match[2]);
  if (port > 65535) return err(`"${text}" has port ${port}, above 65535`);
  return ok({ hostname: match[1], port });
}

/** Formats an address for URLs and logs, bracketing IPv6 hosts. */
export function formatListenAddress(address: ListenAddress): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}
