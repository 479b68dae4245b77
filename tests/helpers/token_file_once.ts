/**
 * Reads a tokens file, then writes one login to it, as a store does at start and at the next login;
 * prints what each step answered as one JSON line. filesystem_test.ts runs it as another user, to get
 * the one failure root never sees: permission denied.
 *
 * Usage: token_file_once.ts PATH USER_ID
 */
import { tokenFile } from "../../lib/logins/token_file.ts";

if (import.meta.main) {
  const [path, userId] = Deno.args;
  const file = tokenFile(path);
  const read = await file.read();
  const written = await file.write([
    {
      userId,
      accessToken: `test-access-${userId}`,
      refreshToken: `test-refresh-${userId}`,
      expiresAt: Date.UTC(2030, 0, 1),
    },
  ]);
  console.log(JSON.stringify({ read, written }));
}
