import assert from "node:assert/strict";
import { startSteps } from "../lib/poll/steps.ts";
import type { TransactionStore } from "../lib/store/transaction_store.ts";
import { parseCli } from "../lib/config/cli.ts";
import { parse as parseYaml } from "yaml";
import { MAX_BLOCK_DURATION } from "./helpers/backfill_prometheus.ts";

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

/** The README's section titled `title`, up to the next `## `. */
function section(readme: string, title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `the README has no section "${title}"`);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The shell commands of a section's code blocks, continuation lines joined, as words. */
function commands(text: string): string[][] {
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks.flatMap((block) =>
    block.replace(/\\\n/g, " ").split("\n").flatMap((line) => line.split(" && ")).map((line) =>
      line.trim().split(/\s+/).filter((word) => word !== "")
    ).filter((words) => words.length > 0)
  );
}

Deno.test("the README's 'Your history in Prometheus': the block duration the history tests use, the program's own options, and compose.yaml's services, paths, retention and scrape labels", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const text = section(readme, "Your history in Prometheus");
  const lines = commands(text);
  // Every promtool run uses the block duration tests/e2e_history_test.ts and the dashboard test make blocks with.
  const promtools = lines.filter((words) => words.includes("create-blocks-from"));
  assert.equal(promtools.length, 2, "a promtool command for compose and one for systemd");
  for (const words of promtools) assert.ok(words.includes(MAX_BLOCK_DURATION), words.join(" "));
  assert.ok(text.includes(MAX_BLOCK_DURATION), "the steps name the block duration");

  // Every backfill command parses with the program's own command line, as --backfill with the scrape labels.
  const backfills = lines.filter((words) => words.includes("--backfill"));
  assert.equal(backfills.length, 2, "a backfill command for compose and one for systemd");
  const labelsOf = (words: string[]) => {
    const args = words.slice(words.findIndex((word) => word.endsWith("/monzo-exporter")) + 1);
    const parsed = parseCli(args);
    assert.ok(parsed.ok && parsed.value.backfill, `${args.join(" ")}: ${JSON.stringify(parsed)}`);
    return { file: parsed.value.backfill.file, labels: new Map(parsed.value.backfill.labels) };
  };

  // Compose: the exporter writes into its data folder, promtool reads it from there and writes into the volume
  // Prometheus keeps its data in, which keeps the history; the labels are prometheus.yml's job and target.
  const compose = parseYaml(await Deno.readTextFile(new URL("../deploy/compose.yaml", import.meta.url))) as {
    services: Record<string, { command?: string[]; volumes?: string[] }>;
  };
  const scrape = parseYaml(
    await Deno.readTextFile(new URL("../deploy/prometheus/prometheus.yml", import.meta.url)),
  ) as {
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  const [exec, run] = [backfills[0], promtools[0]];
  assert.deepEqual(exec.slice(0, 4), ["docker", "compose", "exec", "monzo-exporter"]);
  const backfill = labelsOf(exec);
  const job = scrape.scrape_configs[0];
  assert.deepEqual(
    [...backfill.labels].sort(),
    [["instance", job.static_configs[0].targets[0]], ["job", job.job_name]],
  );
  const exporterData = compose.services["monzo-exporter"].volumes?.find((v) => v.endsWith(":/data"))?.split(":")[0];
  assert.ok(exporterData && backfill.file.startsWith("/data/"), `${backfill.file} is not in the exporter's /data`);
  const mount = run[run.indexOf("-v") + 1].replaceAll('"', "").split(":");
  assert.equal(mount[0], `$PWD/${exporterData.replace(/^\.\//, "")}${backfill.file.slice("/data".length)}`);
  assert.equal(run[run.indexOf("--entrypoint") + 1], "promtool");
  const service = run[run.indexOf("--entrypoint") + 2];
  const prometheus = compose.services[service];
  assert.ok(prometheus, `no compose service ${service}`);
  const [input, output] = run.slice(-2);
  assert.equal(input, mount[1]);
  const dataPath = prometheus.command?.find((flag) => flag.startsWith("--storage.tsdb.path="))?.split("=")[1];
  assert.equal(output, dataPath, "promtool does not write where Prometheus keeps its data");
  assert.ok(prometheus.volumes?.some((volume) => volume.split(":")[1] === dataPath), `${dataPath} is not a volume`);
  const retention = prometheus.command?.find((flag) => flag.startsWith("--storage.tsdb.retention.time="));
  assert.ok(retention, "compose's Prometheus keeps the default 15 days: backfilled blocks would be deleted");
  assert.ok(text.includes(retention), `the steps do not name compose's ${retention}`);
  assert.match(retention, /=\d+y$/, `${retention} is not years`);

  // systemd: promtool reads the file the backfill wrote.
  const systemd = labelsOf(backfills[1]);
  assert.equal(promtools[1][promtools[1].length - 2], systemd.file);
  assert.deepEqual([...systemd.labels.keys()].sort(), ["instance", "job"]);
});
