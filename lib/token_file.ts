import { dirname } from "node:path";
import { z } from "zod";
import { err, ok, type Result } from "./result.ts";

/** One Monzo login: the tokens of one user. */
export interface StoredLogin {
  /** Null for a login read from the original exporter's file, until `/ping/whoami` tells. */
  readonly userId: string | null;
  readonly accessToken: string;
  /** Null when Monzo gave none (clients that are not confidential). */
  readonly refreshToken: string | null;
  /** When the access token expires, in epoch milliseconds. */
  readonly expiresAt: number;
}

/** What reading the stored logins found. */
export interface LoadedLogins {
  readonly logins: StoredLogin[];
  /** Something the user should know that did not stop the load (a loose file mode, say). */
  readonly notice?: string;
}

/** Where logins are kept between runs. */
export interface TokenPersistence {
  /** Names the place for messages (a file path, or "memory"). */
  readonly name: string;
  /** Reads every stored login; an absent store is an empty list. */
  read(): Promise<Result<LoadedLogins>>;
  /** Replaces the stored logins as one step: a crash leaves the old set or the new, never a mix. */
  write(logins: readonly StoredLogin[]): Promise<Result<void>>;
}

// The original exporter's format, which this exporter keeps writing while there is one login.
const singleLoginSchema = z.object({
  access_token: z.string().min(1),
  expires_at: z.string().refine((text) => !Number.isNaN(Date.parse(text)), "is not an RFC 3339 time"),
  refresh_token: z.string(),
  user_id: z.string().min(1).optional(),
});

const manyLoginsSchema = z.object({
  logins: z.record(z.string(), singleLoginSchema),
});

const fileSchema = z.union([manyLoginsSchema, singleLoginSchema]);

function fromFile(entry: z.infer<typeof singleLoginSchema>, userId: string | null): StoredLogin {
  return {
    userId,
    accessToken: entry.access_token,
    refreshToken: entry.refresh_token === "" ? null : entry.refresh_token,
    expiresAt: Date.parse(entry.expires_at),
  };
}

function toFile(login: StoredLogin) {
  return {
    access_token: login.accessToken,
    expires_at: new Date(login.expiresAt).toISOString(),
    // The original exporter requires the field, so it is written even when empty.
    refresh_token: login.refreshToken ?? "",
    ...(login.userId ? { user_id: login.userId } : {}),
  };
}

/** Encodes logins as the file's JSON: the original format for one, keyed by user id for more. */
export function encodeLogins(logins: readonly StoredLogin[]): string {
  if (logins.length === 1) return JSON.stringify(toFile(logins[0]), null, 2) + "\n";
  const keyed = Object.fromEntries(logins.map((login) => [login.userId ?? "", toFile(login)]));
  return JSON.stringify({ logins: keyed }, null, 2) + "\n";
}

/** Decodes the file's JSON, in either format; the error names the first bad field. */
export function decodeLogins(text: string): Result<StoredLogin[]> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return err("not valid JSON");
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = singleLoginSchema.safeParse(json).error?.issues[0] ?? parsed.error.issues[0];
    return err(`${issue.path.join(".") || "file"} ${issue.message}`);
  }
  const data = parsed.data;
  if ("logins" in data) {
    return ok(Object.entries(data.logins).map(([key, entry]) => fromFile(entry, entry.user_id ?? (key || null))));
  }
  return ok([fromFile(data, data.user_id ?? null)]);
}

/** Keeps logins in a JSON file, replaced atomically and readable by its owner only. */
export function tokenFile(path: string): TokenPersistence {
  const temporary = `${path}.tmp`;
  let unreadable = false;

  return {
    name: path,
    async read() {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return ok({ logins: [] });
        return err(`Cannot read tokens file "${path}": ${describe(error)}`);
      }
      const decoded = decodeLogins(text);
      if (!decoded.ok) {
        unreadable = true;
        return err(`Cannot read tokens file "${path}": ${decoded.error}`);
      }
      const mode = (await Deno.stat(path)).mode;
      if (mode !== null && (mode & 0o077) !== 0) {
        await Deno.chmod(path, 0o600);
        return ok({
          logins: decoded.value,
          notice: `Tokens file "${path}" was readable by other users (mode ${(mode & 0o777).toString(8)}); ` +
            "it is now 600",
        });
      }
      return ok({ logins: decoded.value });
    },
    async write(logins) {
      try {
        if (unreadable) {
          // Keep a file we could not read rather than overwrite it: it may matter to someone.
          await renameIfPresent(path, `${path}.unreadable`);
          unreadable = false;
        }
        await removeIfPresent(temporary);
        const file = await Deno.open(temporary, { write: true, createNew: true, mode: 0o600 });
        try {
          await writeAll(file, new TextEncoder().encode(encodeLogins(logins)));
          await file.sync();
        } finally {
          file.close();
        }
        await Deno.rename(temporary, path);
        await syncFolder(dirname(path));
        return ok(undefined);
      } catch (error) {
        return err(`Cannot write tokens file "${path}": ${describe(error)}`);
      }
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

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await Deno.rename(from, to);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Makes the rename itself durable, so a power cut cannot bring the old file back. */
async function syncFolder(folder: string): Promise<void> {
  const handle = await Deno.open(folder, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotFound) return "its folder does not exist";
  return error instanceof Error ? error.message : String(error);
}
