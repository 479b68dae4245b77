// The gzip benchmark's ceiling: a plain `Deno.serve` answering every request with the same bytes (the
// exporter's stored gzip exposition) and the same headers, Content-Encoding included, with no routing,
// no negotiation and no state. With --automatic-compression it instead lets Deno compress the given
// bytes per request, which shows what a scrape would cost if the exporter did not store its gzip form.
//
//   deno run --allow-net --allow-read tests/bench/bare_bytes_server.ts --body FILE \
//     [--header "name: value"]... [--automatic-compression] [--port N]
//
// Prints `{"port": N}` on one line to standard output once it listens.

import { parseArgs } from "node:util";

/** Starts the bare server for `body`; the response is built per request, as the exporter does. */
export function serveBareBytes(
  body: Uint8Array<ArrayBuffer>,
  headers: ReadonlyArray<readonly [string, string]>,
  options: { port?: number; automaticCompression?: boolean } = {},
): Deno.HttpServer<Deno.NetAddr> {
  const list = headers.map(([name, value]) => [name, value] as [string, string]);
  return Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    automaticCompression: options.automaticCompression ?? false,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  }, () => new Response(body, { headers: list }));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      body: { type: "string" },
      header: { type: "string", multiple: true, default: [] },
      "automatic-compression": { type: "boolean", default: false },
      port: { type: "string", default: "0" },
    },
  });
  const headers = values.header.map((line) => {
    const colon = line.indexOf(":");
    return colon > 0 ? [line.slice(0, colon).trim(), line.slice(colon + 1).trim()] as const : null;
  });
  if (!values.body || headers.includes(null)) {
    console.error(
      'Usage: bare_bytes_server.ts --body FILE [--header "name: value"]... [--automatic-compression] [--port N]',
    );
    Deno.exit(2);
  }
  const server = serveBareBytes(
    await Deno.readFile(values.body),
    headers.filter((header) => header !== null),
    { port: Number(values.port), automaticCompression: values["automatic-compression"] },
  );
  Deno.addSignalListener("SIGTERM", () => void server.shutdown().then(() => Deno.exit(0)));
  await server.finished;
}
