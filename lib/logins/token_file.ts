import { basename, dirname, join } from "../shared/file_path.ts";
import { z } from "zod/v3";
import { notRegular, readRegularFile } from "../shared/regular_file.ts";
import { err, ok, type Result } from "../shared/result.ts";
import { fileErrorMessage } from "../shared/error_message.ts";

/** One Monzo login: the tokens of one user. */
export interface StoredLogin {
  /** Null for a login read from the original exporter's file, until `/ping/whoami` tells. */
  readonly userId: string | null;
  readonly accessToken: string;
  /** Null when Monzo gave none (clients that are not confidential). */
  readonly refreshToken: string | null;
  /** When the access token expires, in epoch milliseconds. */
  readonly expiresAt: number;
  /**
   * When Monzo issued this login through the browser (a code exchange), epoch ms; kept through
   * refreshes and in the file (`granted_at`), absent for logins written before it was kept. The full
   * transaction history is readable for 5 minutes after it; Monzo asks to re-authorise about every 90 days.
   */
  readonly grantedAt?: number;
}

/** What reading the stored logins found. */
export interface LoadedLogins {
  readonly logins: StoredLogin[];
  /** Something the user should know that did not stop the load (a loose file mode, say). */
  readonly notice?: string;
}

/**
 * What a write did. `ok` says whether the logins are on disk. `keptAside` names the file that a store
 * which could not be read (see {@link TokenPersistence.read}) was moved to before this write, once it
 * exists; it is set even when the write then failed, and absent when nothing was moved.
 */
export type WriteOutcome = Result<void> & { readonly keptAside?: string };

/** Where logins are kept between runs. Neither method throws: every failure is a one-line error. */
export interface TokenPersistence {
  /** Names the place for messages (a file path, or "memory"). */
  readonly name: string;
  /**
   * Reads every stored login; an absent store is an empty list. An error means a store exists that
   * could not be read (permission, corruption, size, not a file): the next write moves it aside to a
   * new name instead of replacing it, and reports that name in {@link WriteOutcome.keptAside}.
   */
  read(): Promise<Result<LoadedLogins>>;
  /**
   * Replaces the stored logins as one step: a crash leaves the old set or the new, never a mix. If the
   * store could not be moved aside (see `read`), nothing is written and the store is left as it was.
   */
  write(logins: readonly StoredLogin[]): Promise<WriteOutcome>;
}

// The original exporter's format, which this exporter keeps writing while there is one login.
const singleLoginSchema = z.object({
  access_token: z.string().min(1),
  expires_at: z.string().refine((text) => !Number.isNaN(Date.parse(text)), "is not an RFC 3339 time"),
  refresh_token: z.string(),
  user_id: z.string().min(1).optional(),
  // Not in the original format; its reader ignores unknown fields.
  granted_at: z.string().refine((text) => !Number.isNaN(Date.parse(text)), "is not an RFC 3339 time").optional(),
});

/** The largest tokens file read: a login takes about 300 bytes, so anything near this is not one. */
export const MAX_TOKENS_FILE_BYTES = 1024 * 1024;

/** How many `.unreadable` copies may pile up before moving another aside is refused. */
const MAX_KEPT_ASIDE = 1000;

/** The fix for a tokens file that is itself a mount point, said at start and at run time. */
const MOUNT_FIX = 'mount its folder instead, e.g. -v ./data:/data with tokens_path = "/data/tokens.json"';

function fromFile(entry: z.infer<typeof singleLoginSchema>, userId: string | null): StoredLogin {
  return {
    userId,
    accessToken: entry.access_token,
    refreshToken: entry.refresh_token === "" ? null : entry.refresh_token,
    expiresAt: Date.parse(entry.expires_at),
    ...(entry.granted_at === undefined ? {} : { grantedAt: Date.parse(entry.granted_at) }),
  };
}

/** An expiry no date can hold is written as long past, so the next poll renews the login instead of every write failing. */
function expiryText(expiresAt: number): string {
  const date = new Date(expiresAt);
  return Number.isNaN(date.getTime()) ? new Date(0).toISOString() : date.toISOString();
}

function toFile(login: StoredLogin) {
  return {
    access_token: login.accessToken,
    expires_at: expiryText(login.expiresAt),
    // The original exporter requires the field, so it is written even when empty.
    refresh_token: login.refreshToken ?? "",
    ...(login.userId ? { user_id: login.userId } : {}),
    ...(login.grantedAt === undefined || Number.isNaN(new Date(login.grantedAt).getTime())
      ? {}
      : { granted_at: new Date(login.grantedAt).toISOString() }),
  };
}

/** Encodes logins as the file's JSON: the original format for one, keyed by user id for more. */
export function encodeLogins(logins: readonly StoredLogin[]): string {
  if (logins.length === 1) return JSON.stringify(toFile(logins[0]), null, 2) + "\n";
  // Object.fromEntries defines own properties, so even a "__proto__" key is written as a key.
  const keyed = Object.fromEntries(logins.map((login) => [login.userId ?? "", toFile(login)]));
  return JSON.stringify({ logins: keyed }, null, 2) + "\n";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function firstIssue(error: z.ZodError, prefix: string[]): string {
  const issue = error.issues[0];
  return `${[...prefix, ...issue.path].join(".") || "file"} ${issue.message}`;
}

/** Decodes the file's JSON, in either format; the error names the first bad field. */
export function decodeLogins(text: string): Result<StoredLogin[]> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return err("not valid JSON");
  }
  if (isRecord(json) && Object.hasOwn(json, "logins")) {
    // Walked by hand, not through a schema's record: that copies keys onto a fresh object, where a
    // "__proto__" key sets the prototype and its login silently disappears.
    const logins = json.logins;
    if (!isRecord(logins)) return err("logins is not an object of logins by user id");
    const decoded: StoredLogin[] = [];
    for (const [key, value] of Object.entries(logins)) {
      const entry = singleLoginSchema.safeParse(value);
      if (!entry.success) return err(firstIssue(entry.error, ["logins", key]));
      decoded.push(fromFile(entry.data, entry.data.user_id ?? (key || null)));
    }
    return ok(decoded);
  }
  const single = singleLoginSchema.safeParse(json);
  if (!single.success) return err(firstIssue(single.error, []));
  return ok([fromFile(single.data, single.data.user_id ?? null)]);
}

/**
 * Keeps logins in a JSON file, replaced atomically and readable by its owner only. A file that was
 * there but could not be read is never overwritten: the first write moves it to `<path>.unreadable`,
 * or `<path>.unreadable.1`, `.2`, … when earlier copies exist, and says which in `keptAside`.
 */
export function tokenFile(path: string): TokenPersistence {
  // Set when read() found a file it could not use; cleared once that file is moved aside.
  let blocked = false;

  return {
    name: path,
    async read() {
      const loaded = await readLogins(path);
      blocked = !loaded.ok;
      return loaded;
    },
    async write(logins) {
      let keptAside: string | undefined;
      if (blocked) {
        const moved = await moveAside(path);
        if (!moved.ok) return err(`Cannot write tokens file "${path}": ${moved.error}; it is left as it was`);
        blocked = false;
        keptAside = moved.value ?? undefined;
      }
      const written = await replaceFile(path, encodeLogins(logins));
      return keptAside === undefined ? written : { ...written, keptAside };
    },
  };
}

/** Keeps logins in memory only (the demo, and tests that need no file). */
export function memoryTokens(initial: readonly StoredLogin[] = []): TokenPersistence {
  let stored = [...initial];
  return {
    name: "memory",
    read: () => Promise.resolve(ok({ logins: [...stored] })),
    write(logins) {
      stored = [...logins];
      return Promise.resolve(ok(undefined));
    },
  };
}

async function readLogins(path: string): Promise<Result<LoadedLogins>> {
  const cannot = (reason: string) => err(`Cannot read tokens file "${path}": ${reason}`);
  // Refused before opening: opening a FIFO for reading would wait for a writer forever.
  const read = await readRegularFile(path, { maxBytes: MAX_TOKENS_FILE_BYTES, what: "a tokens file" });
  if (!read.ok) return cannot(read.error);
  if (read.value === null) return ok({ logins: [] });
  const { bytes, info } = read.value;
  let text: string;
  try {
    // Fatal, because replacing a bad byte inside a token would store a token that no longer works.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return cannot("it is not valid UTF-8");
  }
  const decoded = decodeLogins(text);
  if (!decoded.ok) return cannot(decoded.error);
  const notice = await tightenMode(path, info.mode);
  return ok(notice ? { logins: decoded.value, notice } : { logins: decoded.value });
}

/** Makes a file that others can read owner-only; the notice says what was done or why it could not be. */
async function tightenMode(path: string, mode: number | null): Promise<string | undefined> {
  if (mode === null || (mode & 0o077) === 0) return undefined;
  const loose = `Tokens file "${path}" was readable by other users (mode ${(mode & 0o777).toString(8)})`;
  try {
    await Deno.chmod(path, 0o600);
    return `${loose}; it is now 600`;
  } catch (error) {
    return `${loose} and cannot be made 600 (${fileErrorMessage(error)}): chmod 600 it, or make the exporter's user ` +
      "its owner; it becomes 600 at the next write";
  }
}

/**
 * Moves a file that could not be read to the first free `.unreadable` name; the value is that name,
 * or null when the file had gone meanwhile.
 */
async function moveAside(path: string): Promise<Result<string | null>> {
  try {
    // A folder is not replaced by a write either, so it is left where it is, with a clear reason.
    if ((await Deno.lstat(path)).isDirectory) return err("it is a folder, not a file");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return ok(null);
    return err(fileErrorMessage(error));
  }
  for (let n = 0; n < MAX_KEPT_ASIDE; n++) {
    const aside = n === 0 ? `${path}.unreadable` : `${path}.unreadable.${n}`;
    // Creating the name exclusively first makes it ours: the rename then replaces only this empty
    // file, never an earlier copy. (A hard link would do the same, but Linux refuses to link a file
    // of another user that the process cannot read, which is exactly the file to move.)
    try {
      (await Deno.open(aside, { write: true, createNew: true, mode: 0o600 })).close();
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) continue;
      return err(`cannot keep the unreadable file aside as "${aside}": ${fileErrorMessage(error)}`);
    }
    try {
      await Deno.rename(path, aside);
      return ok(aside);
    } catch (error) {
      const cleanup = await removeIfPresent(aside);
      if (error instanceof Deno.errors.NotFound && cleanup.ok) return ok(null);
      const left = cleanup.ok ? "" : ` (and the empty "${aside}" could not be removed: ${cleanup.error})`;
      return err(`cannot move the unreadable file aside to "${aside}": ${describeRename(error)}${left}`);
    }
  }
  return err(`${MAX_KEPT_ASIDE} unreadable copies are already kept beside it; remove the old ones`);
}

/** Writes `text` to a temporary file, syncs it and renames it over `path`; the temporary file never outlives a failure. */
async function replaceFile(path: string, text: string): Promise<Result<void>> {
  const cannot = (reason: string) => err(`Cannot write tokens file "${path}": ${reason}`);
  const temporary = `${path}.tmp`;
  const cleared = await clearLeftover(temporary);
  if (!cleared.ok) return cannot(cleared.error);
  let file: Deno.FsFile;
  try {
    // createNew refuses to follow a symbolic link planted at the name after it was cleared.
    file = await Deno.open(temporary, { write: true, createNew: true, mode: 0o600 });
  } catch (error) {
    return cannot(fileErrorMessage(error));
  }
  let failure: string | null = null;
  try {
    await writeAll(file, new TextEncoder().encode(text));
    await file.sync();
  } catch (error) {
    failure = fileErrorMessage(error);
  } finally {
    file.close();
  }
  if (failure === null) {
    try {
      await Deno.rename(temporary, path);
    } catch (error) {
      failure = describeRename(error);
    }
  }
  if (failure !== null) {
    const removed = await removeIfPresent(temporary);
    return cannot(removed.ok ? failure : `${failure}; "${temporary}" could not be removed: ${removed.error}`);
  }
  const synced = await syncFolder(dirname(path));
  return synced.ok ? ok(undefined) : cannot(`it was replaced, but its folder could not be synced: ${synced.error}`);
}

/** Removes a temporary file left by a crash, or an empty folder or a link someone put at its name. */
async function clearLeftover(temporary: string): Promise<Result<void>> {
  const removed = await removeIfPresent(temporary);
  return removed.ok ? removed : err(`"${temporary}" is in the way and cannot be removed: ${removed.error}`);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
}

async function removeIfPresent(path: string): Promise<Result<void>> {
  try {
    await Deno.remove(path);
    return ok(undefined);
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? ok(undefined) : err(fileErrorMessage(error));
  }
}

/** Makes the rename itself durable, so a power cut cannot bring the old file back. */
async function syncFolder(folder: string): Promise<Result<void>> {
  try {
    const handle = await Deno.open(folder, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
    return ok(undefined);
  } catch (error) {
    return err(fileErrorMessage(error));
  }
}

/**
 * Checks at start that the tokens file can be read and replaced, so that a login is never answered
 * with "Logged in" and then lost. Refuses, in one line with the fix: a missing folder, a folder that
 * cannot be written (permissions, read-only mount), a tokens path that is a mount point (a file
 * bind-mounted into a container), a folder, a symbolic link or another non-file, a file the process
 * cannot read, and a file of another user in a sticky folder. Leaves the file as it was.
 */
export async function checkTokenPath(path: string): Promise<Result<void>> {
  const refuse = (reason: string) => err(`Cannot use tokens_path "${path}": ${reason}`);
  const folder = dirname(path);

  let entry: Deno.FileInfo | null = null;
  try {
    entry = await Deno.lstat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return refuse(fileErrorMessage(error));
  }
  if (entry?.isSymlink) {
    // Refused rather than followed: the rename that saves the tokens would replace the link itself,
    // leaving its target with the old tokens, which is not what whoever made the link meant.
    return refuse(`it is a symbolic link to ${await describeLink(path)}; set tokens_path to the file itself`);
  }
  let folderInfo: Deno.FileInfo;
  try {
    folderInfo = await Deno.stat(folder);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return refuse(`its folder "${folder}" does not exist; create it`);
    return refuse(`its folder "${folder}" cannot be reached: ${fileErrorMessage(error)}`);
  }
  if (!folderInfo.isDirectory) return refuse(`"${folder}" is not a folder`);

  if (entry !== null) {
    const mounted = await isMountPoint(path, entry, folderInfo);
    if (!mounted.ok) return refuse(mounted.error);
    if (mounted.value) {
      return refuse(`it is a mount point (a bind-mounted file?); ${MOUNT_FIX}`);
    }
    if (entry.isDirectory) {
      return refuse(
        `it is a folder, not a file; if Docker made it for a bind-mounted file missing on the host, ${MOUNT_FIX}`,
      );
    }
    const refused = notRegular(entry);
    if (refused !== null) return refuse(refused);
  }

  // Asking by doing: permissions, ACLs, read-only mounts and capabilities all answer a real create.
  // The test file also tells who the process is (Deno.uid() needs --allow-sys, not given to it).
  const probe = probeName(path);
  let probed: Deno.FileInfo;
  try {
    const file = await Deno.open(probe, { write: true, createNew: true, mode: 0o600 });
    try {
      probed = await file.stat();
    } finally {
      file.close();
    }
  } catch (error) {
    if (isErrno(error, "EROFS")) {
      return refuse(`its folder "${folder}" is on a read-only file system; mount it writable`);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      return refuse(`the exporter cannot create files in its folder "${folder}"; make the folder writable by its user`);
    }
    return refuse(`cannot create files in its folder "${folder}": ${fileErrorMessage(error)}`);
  }
  const removed = await removeIfPresent(probe);
  if (!removed.ok) return refuse(`cannot remove the test file "${probe}": ${removed.error}`);
  const uid = probed.uid;
  const who = uid === null ? "the exporter" : `the exporter (uid ${uid})`;

  if (entry === null) return ok(undefined);
  try {
    (await Deno.open(path, { read: true })).close();
  } catch (error) {
    const owner = entry.uid === null ? "" : `, owned by uid ${entry.uid} with mode ${modeText(entry.mode)}`;
    return refuse(`${who} cannot read it (${fileErrorMessage(error)}${owner}); make that user its owner`);
  }
  // In a sticky folder (like /tmp) only a file's owner may replace it, so every save would fail.
  const sticky = folderInfo.mode !== null && (folderInfo.mode & 0o1000) !== 0;
  if (sticky && uid !== null && uid !== 0 && entry.uid !== uid && folderInfo.uid !== uid) {
    return refuse(
      `it belongs to uid ${entry.uid} and its folder "${folder}" is sticky, so ${who} cannot replace it; ` +
        "make that user its owner",
    );
  }
  return ok(undefined);
}

function probeName(path: string): string {
  return join(dirname(path), `.${basename(path)}.check-${crypto.randomUUID()}`);
}

async function describeLink(path: string): Promise<string> {
  let target: string;
  try {
    target = await Deno.readLink(path);
  } catch (error) {
    return `an unreadable target (${fileErrorMessage(error)})`;
  }
  try {
    await Deno.stat(path);
    return `"${target}"`;
  } catch {
    return `"${target}", which does not exist`;
  }
}

/**
 * Whether the existing `path` is a mount point of its own. /proc/self/mountinfo would say, but Deno
 * lets only --allow-all read /proc/self, and the no-op rename of a copy over the file would change
 * its owner, mode and inode; so: another device below the path is a mount, and on the same device a
 * hard link is tried, which Linux refuses across mounts (EXDEV) without touching the file.
 */
async function isMountPoint(path: string, entry: Deno.FileInfo, folder: Deno.FileInfo): Promise<Result<boolean>> {
  if (entry.dev !== folder.dev) return ok(true);
  if (entry.isDirectory) return ok(false);
  const probe = probeName(path);
  try {
    await Deno.link(path, probe);
  } catch (error) {
    // Any other refusal (another user's file under protected_hardlinks, a file system without
    // links) leaves it unknown, which is not a refusal: a failed save says the same at run time.
    return ok(isErrno(error, "EXDEV"));
  }
  const removed = await removeIfPresent(probe);
  return removed.ok ? ok(false) : err(`cannot remove the test link "${probe}": ${removed.error}`);
}

function modeText(mode: number | null): string {
  return mode === null ? "unknown" : (mode & 0o7777).toString(8);
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && "code" in error && error.code === code;
}

/** A rename onto a mount point fails with EBUSY (or EXDEV): the usual bind-mounted file in a container. */
function describeRename(error: unknown): string {
  if (isErrno(error, "EBUSY") || isErrno(error, "EXDEV")) {
    return `it is a mount point (a bind-mounted file?) and cannot be replaced; ${MOUNT_FIX}`;
  }
  return fileErrorMessage(error);
}
