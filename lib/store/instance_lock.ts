import { err, ok, type Result } from "../shared/result.ts";
import { describeFileKind } from "../shared/regular_file.ts";
import { fileErrorMessage } from "../shared/error_message.ts";

/** An exclusive hold on one file of the exporter's, kept until {@link InstanceLock.release} or the process ends. */
export interface InstanceLock {
  /** The `.lock` file held. */
  readonly path: string;
  /** Lets go of the lock (tests; a running exporter keeps it until it exits). */
  release(): void;
}

/** The lock file that guards `path`: a file of its own beside it, never the file itself. */
export function lockPathFor(path: string): string {
  return `${path}.lock`;
}

/**
 * Takes the exclusive lock that says this process is the exporter using `path` (the tokens file or the
 * data store), on the file `<path>.lock` beside it, created empty with mode 600. The lock is an flock
 * held by the open file: the kernel lets go of it when the process ends, however it ends, so a crash
 * never leaves a stale lock. It is only tried, never waited for, so a second exporter is refused at once
 * instead of hanging. `what` names the file in the one-line error ("tokens file", "data store").
 */
export async function lockInstance(path: string, what: string): Promise<Result<InstanceLock>> {
  const lockPath = lockPathFor(path);
  const refuse = (reason: string) => err(`Cannot lock the ${what} "${path}": ${reason}`);
  try {
    const entry = await Deno.lstat(lockPath);
    // A link could point the lock at the guarded file itself, and a FIFO would block the open.
    if (!entry.isFile) return refuse(`"${lockPath}" is ${describeFileKind(entry)}, not the exporter's lock file`);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return refuse(`cannot inspect "${lockPath}": ${fileErrorMessage(error)}`);
    }
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(lockPath, { read: true, write: true, create: true, mode: 0o600 });
  } catch (error) {
    if (!(error instanceof Deno.errors.PermissionDenied) || !await exists(lockPath)) {
      return refuse(`cannot create the lock file "${lockPath}" beside it: ${fileErrorMessage(error)}`);
    }
    // A lock file left by another user (a root run before): reading is enough to hold an flock on it.
    try {
      file = await Deno.open(lockPath, { read: true });
    } catch (retry) {
      return refuse(`cannot open the lock file "${lockPath}": ${fileErrorMessage(retry)}`);
    }
  }
  let locked: boolean;
  try {
    locked = await file.tryLock(true);
  } catch (error) {
    file.close();
    return refuse(`cannot lock "${lockPath}": ${fileErrorMessage(error)}`);
  }
  if (!locked) {
    file.close();
    return err(
      `Another exporter is using the ${what} "${path}" (it holds "${lockPath}"); stop it before starting this one`,
    );
  }
  let released = false;
  return ok({
    path: lockPath,
    release() {
      if (released) return;
      released = true;
      // Closing the descriptor lets go of the flock; the empty file stays for the next start.
      file.close();
    },
  });
}

/** Whether something is at `path`; only chooses between two refusals, so an error reads as absent. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Locks the tokens file and the data store of a live exporter, in that order; a `":memory:"` or remote
 * store has no file to guard. On a refusal the locks already taken are let go and the error is one line.
 */
export async function lockExporterFiles(
  files: { readonly tokensPath: string; readonly dataPath: string },
): Promise<Result<InstanceLock[]>> {
  const wanted: Array<[string, string]> = [[files.tokensPath, "tokens file"]];
  if (files.dataPath !== ":memory:" && !/^https?:\/\//.test(files.dataPath)) {
    wanted.push([files.dataPath, "data store"]);
  }
  const held: InstanceLock[] = [];
  for (const [path, what] of wanted) {
    const locked = await lockInstance(path, what);
    if (!locked.ok) {
      for (const lock of held) lock.release();
      return locked;
    }
    held.push(locked.value);
  }
  return ok(held);
}
