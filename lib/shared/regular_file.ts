import { err, ok, type Result } from "./result.ts";
import { fileErrorMessage } from "./error_message.ts";

/** How long reading one of the exporter's own small files may take before it is given up. */
export const READ_TIMEOUT_MS = 5_000;

const CHUNK_BYTES = 64 * 1024;

/** What kind of thing a file-system entry is, for one-line refusals ("a FIFO (named pipe)"). */
export function describeFileKind(info: Deno.FileInfo): string {
  if (info.isFile) return "a regular file";
  if (info.isDirectory) return "a folder";
  if (info.isSymlink) return "a symbolic link";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  return "not a regular file";
}

/** Why `info` (from a stat that follows links) cannot be read as a file; null for a regular file. */
export function notRegular(info: Deno.FileInfo): string | null {
  if (info.isFile) return null;
  if (info.isDirectory) return "it is a folder, not a file";
  return `it is ${describeFileKind(info)}, not a regular file`;
}

/**
 * Whether `path` (links followed) is a regular file: the value is its info, or null when nothing is
 * there; the error says what it is instead. Asked before any open, because opening a FIFO for reading
 * waits for a writer, possibly for ever.
 */
export async function statRegular(path: string): Promise<Result<Deno.FileInfo | null>> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return ok(null);
    return err(fileErrorMessage(error));
  }
  const refused = notRegular(info);
  return refused === null ? ok(info) : err(refused);
}

/** Options of {@link readRegularFile}. */
export interface ReadOptions {
  /** More bytes than this is an error, read or not. */
  readonly maxBytes: number;
  /** The read is given up after this long (a file system that hangs); {@link READ_TIMEOUT_MS} by default. */
  readonly timeoutMs?: number;
  /** How the size error calls the file ("too large for a config file"). */
  readonly what: string;
}

/** What {@link readRegularFile} read: the bytes, and the opened file's info (its mode, say). */
export interface FileRead {
  readonly bytes: Uint8Array;
  readonly info: Deno.FileInfo;
}

/**
 * Reads a regular file (or a link to one), bounded in size and in time: null when nothing is there.
 * Anything else (a FIFO, a folder, a socket, a device) is refused before it is opened, and checked
 * again on the opened file in case it was swapped meanwhile. The error is a reason without the path,
 * for the caller's one line.
 */
export async function readRegularFile(path: string, options: ReadOptions): Promise<Result<FileRead | null>> {
  const checked = await statRegular(path);
  if (!checked.ok || checked.value === null) return checked as Result<null>;
  if (checked.value.size > options.maxBytes) {
    return err(`it is ${checked.value.size} bytes, too large for ${options.what}`);
  }
  const timeoutMs = options.timeoutMs ?? READ_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Result<FileRead | null>>((resolve) => {
    timer = setTimeout(
      () => resolve(err(`reading it took longer than ${timeoutMs / 1000} s; is it on a file system that hangs?`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([readBounded(path, options), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function readBounded(path: string, options: ReadOptions): Promise<Result<FileRead | null>> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return ok(null);
    return err(fileErrorMessage(error));
  }
  try {
    // The name may have been replaced between the stat and the open.
    const info = await file.stat();
    const refused = notRegular(info);
    if (refused !== null) return err(refused);
    // In chunks, so a small file costs a small buffer; one byte past the bound is enough to refuse.
    const chunks: Uint8Array[] = [];
    let length = 0;
    while (length <= options.maxBytes) {
      const chunk = new Uint8Array(Math.min(CHUNK_BYTES, options.maxBytes + 1 - length));
      const count = await file.read(chunk);
      if (count === null) break;
      chunks.push(chunk.subarray(0, count));
      length += count;
    }
    if (length > options.maxBytes) return err(`it grew too large for ${options.what} while being read`);
    const bytes = new Uint8Array(length);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    return ok({ bytes, info });
  } catch (error) {
    return err(fileErrorMessage(error));
  } finally {
    file.close();
  }
}
