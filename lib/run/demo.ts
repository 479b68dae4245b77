import { type Clock, systemClock } from "../shared/clock.ts";
import type { Config } from "../config/config.ts";
import type { Logger } from "../shared/log.ts";
import {
  DEMO_HISTORY_DAYS,
  DEMO_MONTH_START_DAY,
  type FakeMonzo,
  householdData,
  startFakeMonzo,
} from "../fake_monzo/mod.ts";
import { formatListenAddress, type ListenAddress } from "../config/listen_address.ts";
import { randomToken } from "../shared/secrets.ts";
import type { Sessions } from "../logins/sessions.ts";

// The demo's login key: shown on its landing page, since the demo holds nothing worth guarding.
const DEMO_AUTH_KEY = "demo-mode-key-not-a-secret";

/** A running simulated Monzo and the config that points the exporter at it. */
export interface Demo {
  readonly config: Config;
  readonly fake: FakeMonzo;
  /** Logs every simulated household member in, as if each had used the browser login. */
  logInEveryone(sessions: Sessions): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** The exporter is served over HTTPS. */
  readonly https?: boolean;
  /** The simulated Monzo's time, and the end of its made-up history; default the wall clock. */
  readonly clock?: Clock;
  /** Days of made-up history; default {@link DEMO_HISTORY_DAYS} (tests of the live figures pass fewer). */
  readonly historyDays?: number;
}

/** Starts the simulated Monzo (the same one the tests use) for an exporter bound to `bound`. */
export async function startDemo(
  bound: ListenAddress,
  log: Pick<Logger, "info" | "warn">,
  options: DemoOptions = {},
): Promise<Demo> {
  const clientId = "oauth2client_demo";
  const clientSecret = randomToken();
  const clock = options.clock ?? systemClock;
  const fake = await startFakeMonzo({
    clientId,
    clientSecret,
    data: householdData(clock.now(), { historyDays: options.historyDays ?? DEMO_HISTORY_DAYS }),
    clock,
    autoApprove: true,
    drift: true,
    log,
  });
  // A browser cannot open a wildcard address; send it to loopback instead.
  const host = ["0.0.0.0", "::"].includes(bound.hostname) ? "127.0.0.1" : bound.hostname;
  const publicUrl = `${options.https ? "https" : "http"}://${
    formatListenAddress({ hostname: host, port: bound.port })
  }`;
  const config: Config = {
    path: "(demo: no config file)",
    accountId: null,
    clientId,
    clientSecret,
    listen: bound,
    publicUrl,
    callbackUrl: `${publicUrl}/callback`,
    authKey: DEMO_AUTH_KEY,
    apiUrl: fake.url,
    authUrl: fake.authUrl,
    tokensPath: "(demo: in memory)",
    pollIntervalMinutes: 1,
    requestTimeoutMs: 10_000,
    dataPath: ":memory:",
    historyDays: 0,
    monthStartDay: DEMO_MONTH_START_DAY,
    // A plausible household budget, so the demo's budget panels have something to compare with.
    budgets: new Map([["bills", 900], ["eating_out", 250], ["entertainment", 100], ["groceries", 450], [
      "shopping",
      200,
    ], ["transport", 150]]),
    budgetCurrency: "GBP",
    paydayMinMinor: null,
    accountShares: new Map(),
    rules: [],
    fromEnv: [],
    // The demo's TLS and users come from --web.config.file alone.
    webConfigFile: null,
  };
  return {
    config,
    fake,
    async logInEveryone(sessions) {
      for (const user of fake.data.users) {
        const loggedIn = await sessions.logIn(fake.issueCode(user.id, config.callbackUrl));
        if (!loggedIn.ok) throw new Error(`The demo login of ${user.name} failed: ${loggedIn.error}`);
      }
    },
    close: () => fake.close(),
  };
}
