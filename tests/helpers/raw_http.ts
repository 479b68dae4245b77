// A raw HTTP/1.1 client for tests and the bench: fetch() decompresses gzip by itself and cannot show
// what is on the wire (Content-Encoding, the exact body bytes, or that a HEAD answer has no body).

/** One answer as it came over the wire. */
export interface RawAnswer {
  readonly status: number;
  /** Header names in lower case. */
  readonly headers: ReadonlyMap<string, string>;
  /** The body bytes exactly as sent (after de-chunking, if chunked). */
  readonly body: Uint8Array;
  /** Every byte after the header block, before de-chunking. */
  readonly wire: Uint8Array;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

function dechunk(wire: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = wire.indexOf(0x0a, at);
    const size = parseInt(new TextDecoder().decode(wire.subarray(at, lineEnd)).trim(), 16);
    if (!Number.isFinite(size)) throw new Error("Bad chunk size in a chunked answer");
    if (size === 0) return concat(parts);
    parts.push(wire.subarray(lineEnd + 1, lineEnd + 1 + size));
    at = lineEnd + 1 + size + 2;
  }
}

function headerEnd(all: Uint8Array): number {
  for (let i = 0; i + 3 < all.length; i++) {
    if (all[i] === 13 && all[i + 1] === 10 && all[i + 2] === 13 && all[i + 3] === 10) return i;
  }
  throw new Error("No end of headers in the answer");
}

/**
 * One request to 127.0.0.1:`port` on its own connection, which the server closes after answering; a
 * `host` in `headers` replaces the usual one, as a hostile client may send. With `tls`, the same
 * HTTP/1.1 bytes go over TLS, trusting `tls.caCerts`.
 */
export async function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  tls?: { readonly caCerts: string[] },
): Promise<RawAnswer> {
  const conn = tls
    ? await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: tls.caCerts })
    : await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const head = [
      `${method} ${path} HTTP/1.1`,
      `host: ${headers.host ?? `127.0.0.1:${port}`}`,
      "connection: close",
      ...Object.entries(headers).filter(([name]) => name !== "host").map(([name, value]) => `${name}: ${value}`),
    ];
    await conn.write(new TextEncoder().encode(head.join("\r\n") + "\r\n\r\n"));
    const chunks: Uint8Array[] = [];
    for await (const chunk of conn.readable) chunks.push(chunk);
    const all = concat(chunks);
    const end = headerEnd(all);
    const [statusLine, ...lines] = new TextDecoder().decode(all.subarray(0, end)).split("\r\n");
    const answerHeaders = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(":");
      answerHeaders.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const wire = all.subarray(end + 4);
    const body = answerHeaders.get("transfer-encoding") === "chunked" ? dechunk(wire) : wire;
    return { status: Number(statusLine.split(" ")[1]), headers: answerHeaders, body, wire };
  } finally {
    try {
      conn.close();
    } catch {
      // Reading to the end closed it already.
    }
  }
}
