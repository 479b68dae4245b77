import { cleanText } from "./hostile_text.ts";

/** Longest message kept: a path or an OS error fits; a thrown megabyte does not reach a log line. */
const MAX_MESSAGE_LENGTH = 300;

/**
 * The first line of what was thrown (an `Error`'s message, or anything else as text), made safe for
 * a one-line log, problem or page: thrown values can carry outside text (a path, a server's words).
 */
export function errorMessage(error: unknown): string {
  return cleanText(thrownText(error).split("\n")[0], MAX_MESSAGE_LENGTH);
}

/**
 * The whole text of what was thrown, for the one caller that must take secrets out first: cutting
 * before redacting could leave the first part of a secret that a newline splits.
 */
export function thrownText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// What the file-system errors people meet mean, in the words the exporter's messages use.
const FILE_REASONS: Readonly<Record<string, string>> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "its folder does not exist",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EISDIR: "it is a folder, not a file",
  ENOTDIR: "a part of its path is not a folder",
  ENOTEMPTY: "it is a folder that is not empty",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "the name is too long",
  EIO: "input/output error",
};

/**
 * What a failed file-system call means, in a few words ("permission denied", "read-only file
 * system"), for a message that names the file itself; a missing path is taken as a missing folder,
 * since callers look for a missing file before they act.
 */
export function fileErrorMessage(error: unknown): string {
  const code = error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : "";
  if (Object.hasOwn(FILE_REASONS, code)) return FILE_REASONS[code];
  if (error instanceof Deno.errors.PermissionDenied) return FILE_REASONS.EACCES;
  if (error instanceof Deno.errors.NotFound) return FILE_REASONS.ENOENT;
  if (error instanceof Deno.errors.IsADirectory) return FILE_REASONS.EISDIR;
  // Deno KV reports SQLite's errors without an errno code.
  if (/EROFS|read-only file system/i.test(String(error))) return FILE_REASONS.EROFS;
  return errorMessage(error);
}
