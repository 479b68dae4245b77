// The version alone, not an import of deno.json: a JSON import embeds the whole file in the bundle (its
// tasks and import map, test packages included). tools/set_version.ts writes it with deno.json's, and
// tests/release_test.ts checks that the two agree.

/** The exporter's version, the same as deno.json's. */
export const VERSION: string = "0.1.0";
