// `deno task start`, `demo` and `compile` run main.ts bundled (the build task): one JavaScript module graph
// with the npm packages inside, so no npm resolution, TypeScript or Node compatibility layer is loaded at
// run time (measured: several MB of the exporter's memory, issue 8). These tests run the bundle the build task made
// (built once per test run) and check what that saving rests on and that it is the same program.

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, PROGRAM, ROOT, spawn, waitFor } from "./helpers/e2e.ts";
import { withTempDir } from "./helpers/harness.ts";
import { builtBundle, taskCommand, taskDependencies, taskRunArgs } from "./helpers/tasks.ts";
import { BUNDLE_ARGS, bundleFiles, OUTDIR } from "../tools/build.ts";

/** The words of a task's command line, with single quotes taken off (the task shell's quoting). */
function words(command: string): string[] {
  return command.trim().split(/\s+/).map((word) => word.replace(/^'(.*)'$/, "$1"));
}

/** Runs the build task's `deno bundle` into `outdir`, with `--platform` changed when asked. */
async function build(outdir: string, platform?: string): Promise<void> {
  const args = BUNDLE_ARGS.map((word, i, all) => platform && all[i - 1] === "--platform" ? platform : word);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...args, "--outdir", outdir, "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
}

/** The modules `main.js` loads before it runs: its static imports, followed through the bundle's chunks. */
async function staticImports(outdir: string): Promise<{ files: string[]; builtins: string[] }> {
  const files = new Set<string>();
  const builtins = new Set<string>();
  const visit = async (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = await Deno.readTextFile(join(outdir, file));
    // `import … from "x"`, `export … from "x"` and `import "x"`; not `import("x")`, which loads on use.
    const pattern = /(?:^|\n)(?:import|export)\s+(?:[^;"]*?\sfrom\s*)?"([^"]+)"/g;
    for (const [, specifier] of text.matchAll(pattern)) {
      if (specifier.startsWith("./")) await visit(specifier.slice(2));
      else builtins.add(`${file}: ${specifier}`);
    }
  };
  await visit("main.js");
  return { files: [...files], builtins: [...builtins] };
}

/** The metric families a program's demo serves (its `# TYPE` lines), once it has polled. */
async function demoFamilies(command: string[], port: number): Promise<string[]> {
  const program = spawn(Deno.execPath(), [...command, "--demo", "--web.listen-address", `127.0.0.1:${port}`]);
  try {
    const text = await waitFor("the demo's spending on /metrics", async () => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null);
      const body = await response?.text();
      return body?.includes("monzo_spent_this_month{") ? body : undefined;
    }, { timeoutMs: 30_000 });
    assert.match(text, /^monzo_up 1$/m);
    return [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]).sort();
  } finally {
    await program.stop();
  }
}

Deno.test("the start, demo and compile tasks run the bundle that the build task makes", () => {
  for (const task of ["start", "demo", "compile"]) {
    assert.deepEqual(taskDependencies(task), ["build"], `deno task ${task} does not build first`);
    assert.ok(words(taskCommand(task)).includes("bundle/main.js"), `deno task ${task} does not run the bundle`);
  }
  assert.match(taskCommand("build"), /^deno run .* tools\/build\.ts$/);
  assert.equal(OUTDIR, "bundle");
});

Deno.test("deno task build renames a new bundle into place: what the old main.js loads stays, older chunks go, no scratch is left", async () => {
  await builtBundle();
  const dir = join(ROOT, OUTDIR);
  // A chunk of an older build, which no main.js in the folder loads any more.
  const stale = join(dir, "chunk-OLDBUILD.js");
  await Deno.writeTextFile(stale, "export {};\n");
  try {
    const before = bundleFiles(dir);
    assert.ok(before.has("main.js") && before.size > 3, `bundle/main.js loads: ${[...before].join(", ")}`);
    const ended = await new Deno.Command(Deno.execPath(), { args: ["task", "build"], cwd: ROOT, stderr: "piped" })
      .output();
    assert.ok(ended.success, new TextDecoder().decode(ended.stderr));
    const after = [...Deno.readDirSync(dir)].map((entry) => entry.name);
    for (const name of before) {
      assert.ok(after.includes(name), `the build removed ${name}, which a running exporter may still load`);
    }
    assert.ok(!after.includes("chunk-OLDBUILD.js"), "the build kept a chunk that neither build loads");
    assert.deepEqual(after.filter((name) => name.startsWith(".")), [], "the build left its scratch folder");
  } finally {
    // The build removed it unless it failed first.
    await Deno.remove(stale).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
});

Deno.test("the bundle loads no Node built-in before it runs (and the check finds one in a bundle that does)", async () => {
  await builtBundle();
  const made = await staticImports(join(ROOT, OUTDIR));
  await withTempDir(async (dir) => {
    assert.ok(made.files.length > 2, `the check followed only ${made.files.join(", ")}`);
    assert.deepEqual(made.builtins, [], "modules loaded at start that are not in the bundle");
    // esbuild's platform "deno" makes a `require` for CommonJS packages from node:module, at start.
    const other = join(dir, "deno");
    await build(other, "deno");
    assert.ok((await staticImports(other)).builtins.some((line) => line.endsWith("node:module")));
  });
});

Deno.test("the bundle's demo serves the same metric families as main.ts's, run with the start task's flags", async () => {
  const start = words(taskCommand("start"));
  assert.equal(start.slice(0, 2).join(" "), "deno run");
  assert.ok(start.includes("bundle/main.js"), `the start task does not run bundle/main.js: ${start}`);
  const fromBundle = await demoFamilies(await taskRunArgs("start"), freePort());
  const fromSource = await demoFamilies([...PROGRAM], freePort());
  assert.ok(fromSource.length > 20, `the source demo served only ${fromSource.join(", ")}`);
  assert.deepEqual(fromBundle, fromSource);
});
