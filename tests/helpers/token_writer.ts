/**
 * Writes ever-newer sets of large logins to a tokens file as fast as it can, for the crash test in
 * token_store_test.ts, which kills this process at random moments.
 *
 * Usage: token_writer.ts PATH FIRST_GENERATION LOGINS TOKEN_LENGTH
 *
 * Every login of generation g has tokens made of g and its index padded to TOKEN_LENGTH, and
 * expires at {@link expiryOf}(g, index), so a reader can tell a complete set from a torn one.
 * After the first write has completed it prints "ready" on standard output.
 */
import { type StoredLogin, tokenFile } from "../../lib/logins/token_file.ts";

/** The epoch ms a login of generation `generation` at `index` expires at. */
export function expiryOf(generation: number, index: number): number {
  return Date.UTC(2030, 0, 1) + generation * 1_000 + index;
}

/** The token of a login: readable prefix, then padding to `length` characters. */
export function tokenOf(kind: "access" | "refresh", generation: number, index: number, length: number): string {
  const prefix = `${kind}-${generation}-${index}-`;
  return prefix + "x".repeat(Math.max(0, length - prefix.length));
}

/** The user id of the login at `index`. */
export function userOf(index: number): string {
  return `user_${String(index).padStart(6, "0")}`;
}

/** The set of logins of one generation. */
export function generationOf(generation: number, count: number, tokenLength: number): StoredLogin[] {
  return Array.from({ length: count }, (_, index) => ({
    userId: userOf(index),
    accessToken: tokenOf("access", generation, index, tokenLength),
    refreshToken: tokenOf("refresh", generation, index, tokenLength),
    expiresAt: expiryOf(generation, index),
  }));
}

if (import.meta.main) {
  const [path, first, count, length] = Deno.args;
  const persistence = tokenFile(path);
  let generation = Number(first);
  let announced = false;
  while (true) {
    const written = await persistence.write(generationOf(generation, Number(count), Number(length)));
    if (!written.ok) {
      console.error(written.error);
      Deno.exit(1);
    }
    if (!announced) {
      await Deno.stdout.write(new TextEncoder().encode("ready\n"));
      announced = true;
    }
    generation += 1;
  }
}
