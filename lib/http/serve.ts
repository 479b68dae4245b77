/**
 * `Deno.serve` that survives its own failure. In Deno 2.9, when accepting a connection fails (out of
 * file descriptors under a flood of idle connections), the server stops and `finished` rejects; a
 * program that awaits it ends. Here the failed server is aborted, which closes every connection it
 * held (the flood's included), and a new one listens on the same address as soon as it can.
 *
 * `Deno.serve` has no idle or header timeout (an idle connection was measured open after 150 s), so
 * connections are closed this way only under pressure; see docs/development.md, "The web server's limits".
 */

import type { Clock } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { createLogThrottle } from "./rate_limit.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { errorMessage } from "../shared/error_message.ts";

/** A certificate chain and its private key, in PEM. */
export interface ServeTls {
  readonly cert: string;
  readonly key: string;
}

/** Options of {@link serveResilient}. */
export interface ServeOptions {
  readonly hostname: string;
  readonly port: number;
  readonly handler: (request: Request) => Response | Promise<Response>;
  readonly log: Pick<Logger, "info" | "warn">;
  /** For the log throttle. */
  readonly clock: Clock;
  /** Wait before listening again after a failure, and between tries; 100 ms by default. */
  readonly retryMs?: number;
  /** Serve HTTPS with this certificate; plain HTTP without. */
  readonly tls?: ServeTls;
}

/** A server that listens again after a failure, until shut down. */
export interface ResilientServer {
  readonly addr: Deno.NetAddr;
  /** Settles after {@link ResilientServer.shutdown}; never rejects. */
  readonly finished: Promise<void>;
  /** How many times the server failed and listened again. */
  restarts(): number;
  /** Stops accepting and waits for the requests in progress. */
  shutdown(): Promise<void>;
  /**
   * Listens again on the same port with a new certificate; connections already open finish on the old
   * one. The error is one line, and the server then goes on with the old certificate.
   */
  setTls(tls: ServeTls): Promise<Result<void>>;
}

/** Listens on the address; a bind failure at start throws as `Deno.serve` does, later ones are retried. */
export function serveResilient(options: ServeOptions): ResilientServer {
  const retryMs = options.retryMs ?? 100;
  const failures = createLogThrottle({ clock: options.clock, windowMs: 60_000 });
  const done = Promise.withResolvers<void>();
  let stopping = false;
  let restarts = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let tls = options.tls;
  const draining: Promise<void>[] = [];

  function listen(port: number): { server: Deno.HttpServer<Deno.NetAddr>; abort: AbortController } {
    const abort = new AbortController();
    const server = Deno.serve(
      { hostname: options.hostname, port, signal: abort.signal, onListen() {}, ...tls },
      options.handler,
    );
    server.finished.then(() => {
      if (stopping) done.resolve();
    }, (error) => {
      if (stopping) return done.resolve();
      failures.note(
        options.log.warn,
        `The server stopped: ${errorMessage(error)}; closing its ` +
          `connections and listening again`,
      );
      // Closes the connections it still holds, which frees the descriptors they took.
      abort.abort();
      // The bound port, not the one asked for: port 0 would pick a new one.
      retry = setTimeout(() => relisten(addr.port), retryMs);
    });
    return { server, abort };
  }

  function relisten(port: number): void {
    retry = undefined;
    if (stopping) return done.resolve();
    try {
      current = listen(port);
      restarts++;
      options.log.info(`Listening again on port ${port}`);
    } catch (error) {
      // Still out of descriptors, or the port was taken meanwhile: try again until it works.
      failures.note(
        options.log.warn,
        `Cannot listen again on port ${port}: ${errorMessage(error)}`,
      );
      retry = setTimeout(() => relisten(port), Math.max(retryMs, 1000));
    }
  }

  let current = listen(options.port);
  const addr = current.server.addr;
  return {
    addr,
    finished: done.promise,
    restarts: () => restarts,
    async shutdown() {
      stopping = true;
      if (retry !== undefined) {
        // The current server failed and was aborted: nothing is left to drain.
        clearTimeout(retry);
        retry = undefined;
        await Promise.all(draining);
        return done.resolve();
      }
      await current.server.shutdown();
      await Promise.all(draining);
      await done.promise;
    },
    async setTls(next) {
      if (!tls) return err("the server serves plain HTTP; turning TLS on needs a restart");
      if (stopping || retry !== undefined) return err("the server is not listening right now");
      // Deno checks the pair when listening: a port-0 listener tries it without touching the real one.
      try {
        Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...next }).close();
      } catch (error) {
        return err(`the new certificate cannot be served: ${errorMessage(error)}`);
      }
      tls = next;
      // Shutting down frees the port within milliseconds; the requests in progress finish on the old server.
      draining.push(current.server.shutdown());
      // Real waiting, bounded in real time (a test's clock need not move), so not the injected clock.
      const deadline = performance.now() + 1_000;
      while (true) {
        // Shut down meanwhile: nothing is to listen again, and the old server has drained or will.
        if (stopping) {
          done.resolve();
          return err("the server is shutting down");
        }
        try {
          current = listen(addr.port);
          break;
        } catch (error) {
          if (!(error instanceof Deno.errors.AddrInUse) || performance.now() > deadline) {
            // The retry loop listens again as after any failure, with the new pair.
            failures.note(
              options.log.warn,
              `Cannot listen again on port ${addr.port}: ${errorMessage(error)}`,
            );
            retry = setTimeout(() => relisten(addr.port), retryMs);
            return err(
              `cannot listen again on port ${addr.port} yet (${errorMessage(error)}); ` +
                `trying again every ${retryMs} ms`,
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
      options.log.info(`Listening again on port ${addr.port} with the new certificate`);
      return ok(undefined);
    },
  };
}
