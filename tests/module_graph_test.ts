import assert from "node:assert/strict";
import { z } from "zod/v3";

// What `deno info --json` says of each module: its imports, with `code` for one that runs (a `type`
// one is erased) and `isDynamic` for an `import()`.
const graphSchema = z.object({
  modules: z.array(z.object({
    specifier: z.string(),
    dependencies: z.array(z.object({
      specifier: z.string(),
      code: z.object({ specifier: z.string() }).optional(),
      isDynamic: z.boolean().optional(),
    })).optional(),
  })),
});

const REPO = new URL("../", import.meta.url);

/** The modules in the graph of `root` (a path from the repository) and its static `node:` imports, by importer. */
async function staticNodeImports(root: string): Promise<{ modules: string[]; offenders: string[] }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, `deno info ${root} failed: ${new TextDecoder().decode(output.stderr)}`);
  const graph = graphSchema.parse(JSON.parse(new TextDecoder().decode(output.stdout)));
  const offenders: string[] = [];
  for (const module of graph.modules) {
    for (const dependency of module.dependencies ?? []) {
      const target = dependency.code?.specifier ?? "";
      if (target.startsWith("node:") && dependency.isDynamic !== true) {
        offenders.push(`${module.specifier.replace(REPO.href, "")} imports ${target}`);
      }
    }
  }
  return { modules: graph.modules.map((module) => module.specifier.replace(REPO.href, "")), offenders };
}

// Importing any node: module loads Deno's Node compatibility layer (~76 modules, ~1.7 MB of memory);
// only the certificate checks, which run with TLS alone, may import node:crypto, and lazily.
for (const root of ["main.ts", "lib/run/healthcheck.ts", "lib/config/web_config.ts"]) {
  Deno.test(`the runtime module graph of ${root} has no static node: import`, async () => {
    const { modules, offenders } = await staticNodeImports(root);
    // The graph runs through the path helpers, so this test would see an import of node:path there.
    assert.ok(modules.includes("lib/shared/file_path.ts"), `deno info ${root} did not reach lib/shared/file_path.ts`);
    assert.deepEqual(offenders, [], `static node: imports:\n${offenders.join("\n")}`);
  });
}

Deno.test("the graph check sees a dynamic node: import and lets it be (the certificate checks keep theirs)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "monzo-graph-test-" });
  try {
    const lazy = `${dir}/lazy.ts`;
    const eager = `${dir}/eager.ts`;
    await Deno.writeTextFile(lazy, `export const load = () => import("node:crypto");\n`);
    await Deno.writeTextFile(
      eager,
      `import { join } from "node:path";\nexport { load } from "./lazy.ts";\nexport { join };\n`,
    );
    assert.deepEqual((await staticNodeImports(lazy)).offenders, []);
    const { offenders } = await staticNodeImports(eager);
    assert.equal(offenders.length, 1, offenders.join("\n"));
    assert.match(offenders[0], /eager\.ts imports node:path$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
