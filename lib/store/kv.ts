import { statRegular } from "../shared/regular_file.ts";
import { dirname } from "../shared/file_path.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { fileErrorMessage } from "../shared/error_message.ts";

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
      `Cannot open the data store "${location}": ${first.error}, and cannot move it aside: ${fileErrorMessage(error)}`,
    );
  }
  const second = await tryOpen(location);
  return second.ok
    ? ok({ kv: second.value, movedAside: aside })
    : err(`Cannot open the data store "${location}": ${second.error}`);
}

/**
 * Refuses, in one line naming `data_path` and the file, a data store the exporter could not keep: a
 * path that is there but is not a regular file (or a link to one), asked before SQLite opens it because a
 * FIFO would hang the open; a file it cannot write; a folder it cannot create files in (SQLite keeps its
 * journal beside the store). Asked once, at start, so that a poll never finds out. Leaves the file as it
 * was. `":memory:"` and a remote URL pass.
 */
export async function checkDataPath(location: string): Promise<Result<void>> {
  if (location === ":memory:" || /^https?:\/\//.test(location)) return ok(undefined);
  const refuse = (reason: string) => err(`Cannot use data_path "${location}": ${reason}`);
  const checked = await statRegular(location);
  if (!checked.ok) return refuse(checked.error);
  if (checked.value !== null) {
    try {
      // Opened for writing and closed unchanged: permissions, ACLs and read-only mounts all answer it.
      (await Deno.open(location, { read: true, write: true })).close();
    } catch (error) {
      return refuse(`the exporter cannot write it (${fileErrorMessage(error)})`);
    }
  }
  const folder = dirname(location);
  const probe = `${location}.check-${crypto.randomUUID()}`;
  try {
    (await Deno.open(probe, { write: true, createNew: true, mode: 0o600 })).close();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return refuse(`its folder "${folder}" does not exist; create it`);
    return refuse(`the exporter cannot create files in its folder "${folder}" (${fileErrorMessage(error)})`);
  }
  try {
    await Deno.remove(probe);
  } catch (error) {
    return refuse(`cannot remove the test file "${probe}": ${fileErrorMessage(error)}`);
  }
  return ok(undefined);
}

async function tryOpen(location: string): Promise<Result<Deno.Kv>> {
  let kv: Deno.Kv | null = null;
  try {
    kv = await Deno.openKv(location);
    // SQLite opens the file lazily: a read proves it is a store (a corrupt file fails here, not later).
    await kv.get(["opened"]);
    return ok(kv);
  } catch (error) {
    kv?.close();
    return err(fileErrorMessage(error));
  }
}
