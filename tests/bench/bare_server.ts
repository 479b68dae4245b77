// The benchmark's ceiling: a plain `Deno.serve` answering every request with the same bytes and
// content type as the exporter's /metrics, with no routing, no framework and no state.
//
//   deno run --allow-net --allow-read tests/bench/bare_server.ts --body FILE --content-type TYPE [--port N]
//
// Prints `{"port": N}` on one line to standard output once it listens.

import { parseArgs } from "node:util";

/** Starts the bare server for `body`; the response is built per request, as the exporter does. */
export function serveBare(body: string, contentType: string, options: { port?: number; hostname?: string } = {}) {
  return Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  }, () => new Response(body, { headers: { "content-type": contentType } }));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      body: { type: "string" },
      "content-type": { type: "string" },
      port: { type: "string", default: "0" },
    },
  });
  if (!values.body || !values["content-type"]) {
    console.error("Usage: bare_server.ts --body FILE --content-type TYPE [--port N]");
    Deno.exit(2);
  }
  // readTextFile yields a flat string, like the exporter's rendered exposition.
  const body = await Deno.readTextFile(values.body);
  const server = serveBare(body, values["content-type"], { port: Number(values.port) });
  Deno.addSignalListener("SIGTERM", () => void server.shutdown().then(() => Deno.exit(0)));
  await server.finished;
}
