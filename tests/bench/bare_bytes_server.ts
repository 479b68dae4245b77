// The gzip benchmark's ceiling: a plain `Deno.serve` answering every request with the same bytes (the
// exporter's stored gzip exposition) and the same headers, Content-Encoding included, with no routing,
// no negotiation and no state. With --automatic-compression it instead lets Deno compress the given
// bytes per request, which shows what a scrape would cost if the exporter did not store its gzip form.
//
//   deno run --allow-net --allow-read tests/bench/bare_bytes_server.ts --body FILE \
//     [--header "name: value"]... [--automatic-compression] [--port N]
//
// Prints `{"port": N}` on one line to standard output once it listens.

import { bareArgs } from "./bare_args.ts";

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
  const parsed = bareArgs(Deno.args, ["automatic-compression"]);
  const bodyPath = parsed?.values.get("body");
  if (!parsed || !bodyPath) {
    console.error(
      'Usage: bare_bytes_server.ts --body FILE [--header "name: value"]... [--automatic-compression] [--port N]',
    );
    Deno.exit(2);
  }
  const server = serveBareBytes(await Deno.readFile(bodyPath), parsed.headers, {
    port: Number(parsed.values.get("port") ?? "0"),
    automaticCompression: parsed.flags.has("automatic-compression"),
  });
  Deno.addSignalListener("SIGTERM", () => void server.shutdown().then(() => Deno.exit(0)));
  await server.finished;
}
