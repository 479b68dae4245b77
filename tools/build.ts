// `deno task build`: bundles main.ts into bundle/ without ever leaving it half-written. The new bundle is
// made in a folder of its own beside the old one; its chunks (named by their content) are then renamed
// into bundle/, and main.js last, so a running exporter still finds the chunks it loads later and a
// concurrent build or test never runs a main.js whose chunks are missing. Old chunks stay: they are small,
// and a running exporter may still load them.

import { join } from "node:path";

/** Where the bundle goes, relative to the project root. */
export const OUTDIR = "bundle";

/** The `deno bundle` arguments, without `--outdir`: one module graph, npm packages inside, no Node at start. */
export const BUNDLE_ARGS: readonly string[] = [
  "bundle",
  "--quiet",
  "--platform",
  "browser",
  "--external",
  "node:*",
  "--code-splitting",
];

async function run(args: readonly string[]): Promise<void> {
  const { success } = await new Deno.Command(Deno.execPath(), { args: [...args] }).spawn().status;
  if (!success) throw new Error(`deno ${args.join(" ")} failed`);
}

if (import.meta.main) {
  await Deno.mkdir(OUTDIR, { recursive: true });
  const next = await Deno.makeTempDir({ dir: OUTDIR, prefix: ".next-" });
  try {
    await run([...BUNDLE_ARGS, "--outdir", next, "main.ts"]);
    const files = [...Deno.readDirSync(next)].map((entry) => entry.name).filter((name) => name !== "main.js");
    for (const name of files) await Deno.rename(join(next, name), join(OUTDIR, name));
    await Deno.rename(join(next, "main.js"), join(OUTDIR, "main.js"));
  } finally {
    await Deno.remove(next, { recursive: true });
  }
  // The bundle's own imports (node: built-ins only) are cached now, not at the first start.
  await run(["cache", "--quiet", "--no-config", join(OUTDIR, "main.js")]);
}
