// `deno task build`: bundles main.ts into bundle/ without ever leaving it half-written. The new bundle is
// made in a folder of its own beside the old one; its chunks (named by their content) are then renamed
// into bundle/, and main.js last, so a running exporter still finds the chunks it loads later and a
// concurrent build or test never runs a main.js whose chunks are missing. The chunks of the build before
// stay, since a running exporter may still load one lazily; older ones are removed.

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

// A chunk names the others it loads as "./name.js", statically or in an import().
const CHUNK_REFERENCE = /["']\.\/([\w.-]+\.js)["']/g;

/** The files of the bundle in `dir` that `entry` loads, itself included, statically or lazily. */
export function bundleFiles(dir: string, entry = "main.js"): Set<string> {
  const found = new Set<string>();
  const next = [entry];
  for (let name = next.pop(); name !== undefined; name = next.pop()) {
    if (found.has(name)) continue;
    let text: string;
    try {
      text = Deno.readTextFileSync(join(dir, name));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    found.add(name);
    for (const [, chunk] of text.matchAll(CHUNK_REFERENCE)) next.push(chunk);
  }
  return found;
}

async function run(args: readonly string[]): Promise<void> {
  const { success } = await new Deno.Command(Deno.execPath(), { args: [...args] }).spawn().status;
  if (!success) throw new Error(`deno ${args.join(" ")} failed`);
}

if (import.meta.main) {
  await Deno.mkdir(OUTDIR, { recursive: true });
  const previous = bundleFiles(OUTDIR);
  const next = await Deno.makeTempDir({ dir: OUTDIR, prefix: ".next-" });
  try {
    await run([...BUNDLE_ARGS, "--outdir", next, "main.ts"]);
    const files = [...Deno.readDirSync(next)].map((entry) => entry.name).filter((name) => name !== "main.js");
    for (const name of files) await Deno.rename(join(next, name), join(OUTDIR, name));
    await Deno.rename(join(next, "main.js"), join(OUTDIR, "main.js"));
  } finally {
    await Deno.remove(next, { recursive: true });
  }
  const kept = new Set([...previous, ...bundleFiles(OUTDIR)]);
  for (const entry of Deno.readDirSync(OUTDIR)) {
    if (entry.isFile && entry.name.endsWith(".js") && !kept.has(entry.name)) {
      await Deno.remove(join(OUTDIR, entry.name)).catch((error) => {
        // Another build may have removed it first.
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    }
  }
  // The bundle's own imports (node: built-ins only) are cached now, not at the first start.
  await run(["cache", "--quiet", "--no-config", join(OUTDIR, "main.js")]);
}
