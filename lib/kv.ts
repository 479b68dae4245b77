import { statRegular } from "./regular_file.ts";
import { err, ok, type Result } from "./result.ts";

/** What opening the store did, for the log. */
export interface OpenedKv {
  readonly kv: Deno.Kv;
  /** Set when the file was not a usable store and was moved aside to this path before a new one was made. */
  readonly movedAside?: string;
}

/**
 * Opens the Deno KV store at `location`: a file path, `":memory:"`, or a remote KV URL (the same
 * call opens all three, so the rest of the exporter does not care which). A file that is not a
 * store (corrupt, or something else) is moved aside, never deleted, and a new store is made: what it
 * held can be read again from Monzo.
 */
export async function openKv(location: string, now: () => number = Date.now): Promise<Result<OpenedKv>> {
  const usable = await checkDataPath(location);
  if (!usable.ok) return usable;
  const first = await tryOpen(location);
  if (first.ok || location === ":memory:" || /^https?:\/\//.test(location)) {
    return first.ok ? ok({ kv: first.value }) : err(`Cannot open the data store "${location}": ${first.error}`);
  }
  if (!/not a database|malformed|corrupt/i.test(first.error)) {
    return err(`Cannot open the data store "${location}": ${first.error}`);
  }
  const aside = `${location}.corrupt-${new Date(now()).toISOString().replaceAll(":", "-")}`;
  try {
    await Deno.rename(location, aside);
  } catch (error) {
    return err(
      `Cannot open the data store "${location}": ${first.error}, and cannot move it aside: ${describe(error)}`,
    );
  }
  const second = await tryOpen(location);
  return second.ok
    ? ok({ kv: second.value, movedAside: aside })
    : err(`Cannot open the data store "${location}": ${second.error}`);
}

/**
 * Refuses, in one line naming it, a data store path that is there but is not a regular file (or a link to
 * one): asked before SQLite opens it, because a FIFO would hang the open and a folder or device is never a
 * store. A missing file, `":memory:"` and a remote URL pass.
 */
export async function checkDataPath(location: string): Promise<Result<void>> {
  if (location === ":memory:" || /^https?:\/\//.test(location)) return ok(undefined);
  const checked = await statRegular(location);
  return checked.ok ? ok(undefined) : err(`Cannot open the data store "${location}": ${checked.error}`);
}

async function tryOpen(location: string): Promise<Result<Deno.Kv>> {
  let kv: Deno.Kv | null = null;
  try {
    kv = await Deno.openKv(location);
    // SQLite opens the file lazily: a write proves it is a store, and one this process can change.
    await kv.set(["opened"], true);
    return ok(kv);
  } catch (error) {
    kv?.close();
    return err(describe(error));
  }
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotFound) return "its folder does not exist";
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
