// Copies of the project in temporary folders, for tests that run build steps (a release job's, an
// image's) the way CI or Docker would, without touching the working tree.

import { dirname, join, relative } from "node:path";
import { ROOT } from "./e2e.ts";
import { runtimeFlags } from "./tasks.ts";

/** Every file of the project, relative to its root, in POSIX form; `.git` is left out. */
export async function projectFiles(): Promise<string[]> {
  const files: string[] = [];
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      const path = join(folder, entry.name);
      if (entry.isDirectory && entry.name !== ".git") await walk(path);
      else if (entry.isFile) files.push(relative(ROOT, path));
    }
  };
  await walk(ROOT);
  return files.sort();
}

/** Copies `files` (relative to the project root) into `dest`, making folders as needed. */
export async function copyFiles(files: readonly string[], dest: string): Promise<void> {
  for (const file of files) {
    await Deno.mkdir(dirname(join(dest, file)), { recursive: true });
    await Deno.copyFile(join(ROOT, file), join(dest, file));
  }
}

/** The permission, unstable and V8 flags that `deno task compile` bakes into the binary. */
export function compileRuntimeFlags(): string[] {
  return runtimeFlags("compile");
}

/**
 * Writes an executable at `path` that runs the bundle of the project copy at `project` (what the compile
 * embeds: `bundle/main.js`, which the compile task's build made) with the compiled binary's flags: a
 * stand-in for the binary, which cannot be built runnable here (`deno compile` cannot download its runtime
 * on this machine).
 */
export async function writeStandIn(path: string, project: string): Promise<void> {
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const command = [Deno.execPath(), "run", "--no-config", ...compileRuntimeFlags(), join(project, "bundle", "main.js")]
    .map(quote).join(" ");
  await Deno.writeTextFile(path, `#!/bin/sh\nexec ${command} "$@"\n`, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
}

/** The size of the Deno executable running the tests (the runtime `DENORT_BIN` stands in for). */
export function denoSize(): number {
  return Deno.statSync(Deno.execPath()).size;
}
