import assert from "node:assert/strict";
import { z } from "zod/v3";

// The folders of lib/ in the order data flows through them (docs/development.md draws it). A module
// may import from its own folder and from earlier ones, never from a later one: the poll never
// imports the HTTP side, the Monzo client never imports the poll.
const STAGES = [
  "shared",
  "config",
  "monzo",
  "logins",
  "spending",
  "store",
  "poll",
  "exposition",
  "backfill",
  "http",
  "fake_monzo",
  "run",
] as const;

const REPO = new URL("../", import.meta.url);
const LIB = new URL("lib/", REPO);

const graphSchema = z.object({
  modules: z.array(z.object({
    specifier: z.string(),
    dependencies: z.array(z.object({
      code: z.object({ specifier: z.string() }).optional(),
      type: z.object({ specifier: z.string() }).optional(),
    })).optional(),
  })),
});
type Graph = z.infer<typeof graphSchema>;

/** The stage of a module under lib/ (its folder's index in STAGES), -1 for an unknown folder, null outside lib/. */
function stageOf(specifier: string): number | null {
  if (!specifier.startsWith(LIB.href)) return null;
  const folder = specifier.slice(LIB.href.length).split("/");
  return folder.length < 2 ? -1 : STAGES.indexOf(folder[0] as typeof STAGES[number]);
}

/** Every import, erased type imports included, that goes from a lib/ module to a later stage. */
function laterStageImports(graph: Graph): string[] {
  const found: string[] = [];
  for (const module of graph.modules) {
    const from = stageOf(module.specifier);
    if (from === null) continue;
    for (const dependency of module.dependencies ?? []) {
      for (const target of [dependency.code?.specifier, dependency.type?.specifier]) {
        const to = target === undefined ? null : stageOf(target);
        if (to !== null && to > from) {
          found.push(`${module.specifier.replace(LIB.href, "lib/")} imports ${target?.replace(LIB.href, "lib/")}`);
        }
      }
    }
  }
  return [...new Set(found)];
}

/** The import graph of every module under `dir`, as `deno info` reads it. */
async function graphOf(dir: URL): Promise<{ graph: Graph; files: string[] }> {
  const files: string[] = [];
  const walk = async (at: URL) => {
    for await (const entry of Deno.readDir(at)) {
      if (entry.isDirectory) await walk(new URL(`${entry.name}/`, at));
      else if (entry.name.endsWith(".ts")) files.push(new URL(entry.name, at).href);
    }
  };
  await walk(dir);
  const root = await Deno.makeTempFile({ prefix: "monzo-layout-", suffix: ".ts" });
  try {
    await Deno.writeTextFile(root, files.map((file) => `import ${JSON.stringify(file)};\n`).join(""));
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(output.success, `deno info failed: ${new TextDecoder().decode(output.stderr)}`);
    return { graph: graphSchema.parse(JSON.parse(new TextDecoder().decode(output.stdout))), files };
  } finally {
    await Deno.remove(root);
  }
}

Deno.test("every module of lib/ sits in a stage folder, and none imports from a later stage", async () => {
  const { graph, files } = await graphOf(LIB);
  const outside = files.filter((file) => (stageOf(file) ?? -1) < 0);
  assert.deepEqual(outside, [], "modules outside the stage folders");
  const seen = new Set(graph.modules.map((module) => module.specifier));
  assert.deepEqual(files.filter((file) => !seen.has(file)), [], "modules deno info did not read");
  assert.ok(graph.modules.length >= files.length);
  assert.deepEqual(laterStageImports(graph), []);
});

Deno.test("the layout check finds an import from a later stage, a type import included", () => {
  const at = (path: string) => new URL(path, LIB).href;
  const graph: Graph = {
    modules: [
      { specifier: at("poll/poller.ts"), dependencies: [{ code: { specifier: at("http/app.ts") } }] },
      { specifier: at("monzo/monzo_client.ts"), dependencies: [{ type: { specifier: at("poll/step.ts") } }] },
      { specifier: at("http/app.ts"), dependencies: [{ code: { specifier: at("poll/poller.ts") } }] },
      { specifier: at("poll/steps.ts"), dependencies: [{ code: { specifier: at("poll/step.ts") } }] },
    ],
  };
  assert.deepEqual(laterStageImports(graph), [
    "lib/poll/poller.ts imports lib/http/app.ts",
    "lib/monzo/monzo_client.ts imports lib/poll/step.ts",
  ]);
});
