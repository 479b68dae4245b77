// The benchmark's ceiling: a plain `Deno.serve` answering every request with the same bytes, content
// type and other headers as the exporter's /metrics, with no routing, no framework and no state.
//
//   deno run --allow-net --allow-read tests/bench/bare_server.ts --body FILE --content-type TYPE \
//     [--header "name: value"]... [--port N] [--cert FILE --key FILE]
//
// With --cert and --key it serves HTTPS, the ceiling for the exporter behind a web config's TLS.
//
// Prints `{"port": N}` on one line to standard output once it listens.

import { parseArgs } from "node:util";

/** Starts the bare server for `body`; the response is built per request, as the exporter does. */
export function serveBare(
  body: string,
  contentType: string,
  options: {
    port?: number;
    hostname?: string;
    headers?: ReadonlyArray<readonly [string, string]>;
    tls?: { cert: string; key: string };
  } = {},
) {
  // The same headers on the wire as the exporter's, so the ceiling differs from it only in the work done.
  const headers: [string, string][] = [
    ["content-type", contentType],
    ...(options.headers ?? []).map(([n, v]) => [n, v] as [string, string]),
  ];
  return Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
    ...options.tls,
  }, () => new Response(body, { headers }));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      body: { type: "string" },
      "content-type": { type: "string" },
      header: { type: "string", multiple: true, default: [] },
      port: { type: "string", default: "0" },
      cert: { type: "string" },
      key: { type: "string" },
    },
  });
  const headers = values.header.map((line) => {
    const colon = line.indexOf(":");
    return colon > 0 ? [line.slice(0, colon).trim(), line.slice(colon + 1).trim()] as const : null;
  });
  if (
    !values.body || !values["content-type"] || headers.includes(null) ||
    (values.cert === undefined) !== (values.key === undefined)
  ) {
    console.error(
      'Usage: bare_server.ts --body FILE --content-type TYPE [--header "name: value"]... [--port N] [--cert FILE --key FILE]',
    );
    Deno.exit(2);
  }
  // readTextFile yields a flat string, like the exporter's rendered exposition.
  const body = await Deno.readTextFile(values.body);
  const server = serveBare(body, values["content-type"], {
    port: Number(values.port),
    headers: headers.filter((header) => header !== null),
    tls: values.cert && values.key
      ? { cert: await Deno.readTextFile(values.cert), key: await Deno.readTextFile(values.key) }
      : undefined,
  });
  Deno.addSignalListener("SIGTERM", () => void server.shutdown().then(() => Deno.exit(0)));
  await server.finished;
}
