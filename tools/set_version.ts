// Writes the version of a release tag into deno.json and lib/shared/version.ts (the constant the exporter
// reads), so that a release's `--version` and `monzo_exporter_build_info` say the tag it was built from.
// The release workflow runs it before compiling:
//
//   deno run --allow-read=deno.json,lib/shared/version.ts --allow-write=deno.json,lib/shared/version.ts tools/set_version.ts v1.2.3 [deno.json]
//
// lib/shared/version.ts is found beside deno.json. Only the version values change; the rest of each file stays
// byte for byte as it was (so `deno fmt --check` still passes on them).

import { dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { err, ok, type Result } from "../lib/shared/result.ts";
import { errorMessage } from "../lib/shared/error_message.ts";

// Semantic versioning 2.0 after a "v": 1.2.3, 1.2.3-rc.1, 1.2.3+build.5.
const TAG =
  /^v((0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)$/;

/** The version a tag names (`v1.2.3` → `1.2.3`); the error says what a tag must look like. */
export function versionOfTag(tag: string): Result<string> {
  const match = TAG.exec(tag);
  return match ? ok(match[1]) : err(`Tag ${JSON.stringify(tag)} is not v followed by a semantic version, e.g. v1.2.3`);
}

/** deno.json's text with its top-level "version" set to `version`, everything else untouched. */
export function withVersion(text: string, version: string): Result<string> {
  let before: Record<string, unknown>;
  try {
    before = JSON.parse(text);
  } catch (error) {
    return err(`deno.json is not JSON: ${errorMessage(error)}`);
  }
  if (typeof before.version !== "string") return err('deno.json has no "version" string to replace');
  const replaced = text.replace(/("version"\s*:\s*)"[^"\\]*"/, (_, key) => `${key}${JSON.stringify(version)}`);
  // The first "version" in the text could belong to a nested object; what was replaced must be the top one.
  const after = JSON.parse(replaced);
  if (!isDeepStrictEqual(after, { ...before, version })) {
    return err('the first "version" in deno.json is not its top-level one; edit the file by hand');
  }
  return ok(replaced);
}

/** lib/shared/version.ts's text with its `VERSION` constant set to `version`, everything else untouched. */
export function withVersionConstant(text: string, version: string): Result<string> {
  const constant = /(export const VERSION: string = )"[^"\\]*";/;
  if (!constant.test(text)) return err("lib/shared/version.ts has no VERSION string constant to replace");
  return ok(text.replace(constant, (_, head) => `${head}${JSON.stringify(version)};`));
}

async function main(args: readonly string[]): Promise<number> {
  const [tag, path = "deno.json"] = args;
  if (tag === undefined || args.length > 2) {
    console.error("Usage: tools/set_version.ts TAG [DENO_JSON]");
    return 2;
  }
  const version = versionOfTag(tag);
  if (!version.ok) {
    console.error(version.error);
    return 1;
  }
  const updated = withVersion(await Deno.readTextFile(path), version.value);
  if (!updated.ok) {
    console.error(`Cannot set the version in "${path}": ${updated.error}`);
    return 1;
  }
  const constantPath = join(dirname(path), "lib", "shared", "version.ts");
  const constant = withVersionConstant(await Deno.readTextFile(constantPath), version.value);
  if (!constant.ok) {
    console.error(`Cannot set the version in "${constantPath}": ${constant.error}`);
    return 1;
  }
  await Deno.writeTextFile(path, updated.value);
  await Deno.writeTextFile(constantPath, constant.value);
  console.log(`${path}, ${constantPath}: version ${version.value}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
