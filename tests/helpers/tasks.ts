// deno.json's tasks as the tests and the bench read them: a task is a command line, written either as a
// string or as `{ "command": …, "dependencies": […] }`.

import meta from "../../deno.json" with { type: "json" };

type Task = string | { readonly command: string; readonly dependencies?: readonly string[] };

/** The command line of a deno.json task, without the tasks it depends on. */
export function taskCommand(name: string): string {
  const task: Task | undefined = (meta.tasks as Record<string, Task>)[name];
  if (task === undefined) throw new Error(`deno.json has no task ${name}`);
  return typeof task === "string" ? task : task.command;
}

/** The tasks a deno.json task runs first. */
export function taskDependencies(name: string): readonly string[] {
  const task: Task | undefined = (meta.tasks as Record<string, Task>)[name];
  return task === undefined || typeof task === "string" ? [] : task.dependencies ?? [];
}

/**
 * The flags a task gives the program for its run: permissions, unstable features and V8 flags (not
 * where the config or the program is).
 */
export function runtimeFlags(name: "start" | "compile"): string[] {
  return taskCommand(name).split(/\s+/).filter((word) =>
    word.startsWith("--allow-") || word.startsWith("--unstable-") || word.startsWith("--v8-flags=")
  );
}

let built: Promise<void> | undefined;

/** Runs `deno task build` once per test run (all test files share one process), for the tests that run the bundle. */
export function builtBundle(): Promise<void> {
  built ??= (async () => {
    const ended = await new Deno.Command(Deno.execPath(), {
      args: ["task", "build"],
      cwd: new URL("../..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!ended.success) throw new Error(`deno task build failed: ${new TextDecoder().decode(ended.stderr)}`);
  })();
  return built;
}

/**
 * The arguments to `deno` that run a task's own command line (the start or demo task: `run … bundle/main.js`)
 * without its build dependency, once the bundle is built: what `deno task <name>` runs after building.
 */
export async function taskRunArgs(name: "start" | "demo"): Promise<string[]> {
  await builtBundle();
  const words = taskCommand(name).trim().split(/\s+/);
  if (words[0] !== "deno") throw new Error(`deno task ${name} does not run deno: ${taskCommand(name)}`);
  return words.slice(1);
}
