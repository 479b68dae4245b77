// The watch that follows a browser login until it is approved in the Monzo app, so the full history
// is imported inside the 5 minutes Monzo allows, without a whole poll every few seconds.

import assert from "node:assert/strict";
import { createLoginWatch } from "../lib/run/login_watch.ts";
import { createMonzoClient } from "../lib/monzo/monzo_client.ts";
import {
  ALICE,
  ALICE_CURRENT,
  type Harness,
  logIn,
  metrics,
  MINUTE,
  poll,
  sample,
  withHarness,
} from "./helpers/harness.ts";

function watchFor(h: Harness) {
  const client = createMonzoClient({ apiUrl: h.fake.url, timeoutMs: 5_000 });
  const { store, sessions, poller, snapshot } = h.exporter;
  return createLoginWatch({ store, sessions, client, poller, snapshot, clock: h.clock, intervalMs: 20 });
}

async function until(condition: () => boolean, ms = 3_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("a new login is polled as soon as it is approved, and the full history comes with it", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE, { approve: false });
    await poll(h);
    assert.equal(h.exporter.snapshot.state.users.get(ALICE)?.status, "awaiting_approval");
    const watch = watchFor(h);
    try {
      watch.start();
      // It asks again and again while the login waits (three asks, however long the machine takes).
      await until(() => h.fake.count("/accounts") >= 3);
      // Waiting costs one /accounts per probe, not a poll: no balance is read meanwhile.
      assert.equal(h.fake.count("/balance"), 0);

      h.fake.approve(ALICE);
      await until(() => h.exporter.snapshot.state.users.get(ALICE)?.status === "ok");
      const text = await metrics(h);
      const account = h.fake.data.accounts.find((a) => a.id === ALICE_CURRENT);
      assert.equal(
        sample(text, `monzo_transactions_stored{account_id="${ALICE_CURRENT}"}`),
        account?.transactions.length,
      );

      // Approved: the watch has stopped asking.
      const after = h.fake.count("/accounts");
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(h.fake.count("/accounts"), after);
    } finally {
      await watch.close();
    }
  });
});

Deno.test("the watch gives up when the 5 minutes after the login have passed", async () => {
  await withHarness({}, async (h) => {
    await logIn(h, ALICE, { approve: false });
    await poll(h, 5 * MINUTE);
    const watch = watchFor(h);
    try {
      h.fake.resetRequests();
      watch.start();
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(h.fake.requests.length, 0, "asked Monzo although the full-history window has closed");
    } finally {
      await watch.close();
    }
  });
});
