import assert from "node:assert/strict";
import { startSteps } from "../lib/poll/steps.ts";
import type { TransactionStore } from "../lib/store/transaction_store.ts";

/** The poll's steps as the exporter builds them; only their names are read, so no step runs and no store is opened. */
function stepNames(): string[] {
  const steps = startSteps({
    config: { historyDays: 0, monthStartDay: 1, budgets: new Map(), budgetCurrency: "GBP" },
    // Building a step does not touch the store (only running it does), and none runs here.
    transactions: {} as TransactionStore,
    log: { info: () => {}, warn: () => {} },
  });
  return steps.map((step) => step.name);
}

Deno.test("the README's monzo_poll_step_success row lists exactly the steps of lib/poll/steps.ts, in order", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const row = readme.split("\n").find((line) => /^\| `monzo_poll_step_success` +\|/.test(line));
  assert.ok(row, "the README's metrics table has no monzo_poll_step_success row");
  const meaning = row.split("|")[3];
  const listed = meaning.match(/\(([^)]*)\)/)?.[1] ?? "";
  const documented = [...listed.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
  const steps = stepNames();
  assert.ok(steps.length >= 4, `startSteps built too few steps: ${steps.join(", ")}`);
  assert.deepEqual(documented, steps);
});

Deno.test("the README stays a README for users: at most 400 lines, the rest in docs/", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const lines = readme.trimEnd().split("\n").length;
  assert.ok(lines <= 400, `README.md has ${lines} lines; move what is not for users to docs/`);
  for (const doc of ["development.md", "performance.md", "web-config.md"]) {
    assert.ok(readme.includes(`docs/${doc}`), `the README does not point to docs/${doc}`);
    await Deno.stat(new URL(`../docs/${doc}`, import.meta.url));
  }
});
