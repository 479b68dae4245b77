// The benchmark's ceiling: a plain `Deno.serve` answering every request with the same bytes, content
// type and other headers as the exporter's /metrics, with no routing, no framework and no state.
//
//   deno run --allow-net --allow-read tests/bench/bare_server.ts --body FILE --content-type TYPE \
//     [--header "name: value"]... [--port N] [--cert FILE --key FILE]
//
// With --cert and --key it serves HTTPS, the ceiling for the exporter behind a web config's TLS.
//
// Prints `{"port": N}` on one line to standard output once it listens.

import { bareArgs } from "./bare_args.ts";

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
  const parsed = bareArgs(Deno.args);
  const bodyPath = parsed?.values.get("body");
  const contentType = parsed?.values.get("content-type");
  const cert = parsed?.values.get("cert");
  const key = parsed?.values.get("key");
  if (!parsed || !bodyPath || !contentType || (cert === undefined) !== (key === undefined)) {
    console.error(
      'Usage: bare_server.ts --body FILE --content-type TYPE [--header "name: value"]... [--port N] [--cert FILE --key FILE]',
    );
    Deno.exit(2);
  }
  // readTextFile yields a flat string, like the exporter's rendered exposition.
  const body = await Deno.readTextFile(bodyPath);
  const server = serveBare(body, contentType, {
    port: Number(parsed.values.get("port") ?? "0"),
    headers: parsed.headers,
    tls: cert && key ? { cert: await Deno.readTextFile(cert), key: await Deno.readTextFile(key) } : undefined,
  });
  Deno.addSignalListener("SIGTERM", () => void server.shutdown().then(() => Deno.exit(0)));
  await server.finished;
}
