// The bare servers' command line, read without node:util: its `parseArgs` would load Deno's Node
// compatibility layer, about 5 MB of resident memory, into the very baseline the exporter's memory is
// measured against.

/** `--name value` options (`header` may repeat) and the given `--flag`s; null when the line is malformed. */
export function bareArgs(
  args: readonly string[],
  flags: readonly string[] = [],
): { values: Map<string, string>; headers: [string, string][]; flags: Set<string> } | null {
  const values = new Map<string, string>();
  const headers: [string, string][] = [];
  const given = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : null;
    if (name === null) return null;
    if (flags.includes(name)) {
      given.add(name);
      continue;
    }
    const value = args[++i];
    if (value === undefined) return null;
    if (name !== "header") {
      values.set(name, value);
      continue;
    }
    const colon = value.indexOf(":");
    if (colon <= 0) return null;
    headers.push([value.slice(0, colon).trim(), value.slice(colon + 1).trim()]);
  }
  return { values, headers, flags: given };
}
