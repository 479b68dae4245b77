// What this process holds open, read from Linux's /proc: tests use it to prove a file is closed.

/** True where {@link openFilesOf} can look (Linux); tests that need it are ignored elsewhere. */
export const CAN_LIST_OPEN_FILES = Deno.build.os === "linux";

/** This process's open files that are `path` or its SQLite companions (`-wal`, `-shm`, `-journal`), sorted. */
export function openFilesOf(path: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
    } catch (error) {
      // The descriptor of the listing itself, or one closed meanwhile.
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    if (target === path || target.startsWith(`${path}-`) || target.startsWith(`${path} `)) found.push(target);
  }
  return found.sort();
}
