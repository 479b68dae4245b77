// The real exporter app (no Monzo behind it) behind a basic-auth gate, for the web config tests.

import assert from "node:assert/strict";
import { createWebGate, type WebGate, type WebGateOptions } from "../../lib/http/basic_auth.ts";
import { configFromObject } from "../../lib/config/config.ts";
import { createExporter, type Exporter } from "../../lib/run/exporter.ts";
import { createLogger } from "../../lib/shared/log.ts";
import { memoryTokens } from "../../lib/logins/token_file.ts";
import { AUTH_KEY, CLIENT_ID, CLIENT_SECRET, TestClock } from "./harness.ts";

/** What {@link withGatedExporter} hands its body. */
export interface GatedExporter {
  readonly exporter: Exporter;
  readonly gate: WebGate;
  /** Every log line, the gate's and the exporter's. */
  readonly logs: string[];
}

/** Runs `body` with an exporter whose gate reads `options.config`; closes it after. */
export async function withGatedExporter(
  options: Omit<WebGateOptions, "log" | "clock">,
  body: (gated: GatedExporter) => Promise<void>,
): Promise<void> {
  const made = configFromObject({
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    server_addr: "127.0.0.1:9100",
    redirect_uri: "http://127.0.0.1:9100",
    auth_key: AUTH_KEY,
    api_url: "http://127.0.0.1:9",
    data_path: ":memory:",
  }, { path: "/nonexistent/config.toml" });
  assert.ok(made.ok);
  const logs: string[] = [];
  const clock = new TestClock();
  const gate = createWebGate({ ...options, log: createLogger({ sink: (line) => logs.push(line) }), clock });
  const built = await createExporter({
    config: made.value,
    build: { version: "test", mode: "live" },
    clock,
    sink: (line) => logs.push(line),
    persistence: memoryTokens(),
    gate,
  });
  assert.ok(built.ok);
  try {
    await body({ exporter: built.value, gate, logs });
  } finally {
    await built.value.close();
  }
}
