// Real mounts and another user for the file-system tests: a bind-mounted file, a read-only folder, a
// tiny tmpfs, a program run as `nobody`. Whether the machine allows mounts is probed once, by the first
// test that mounts (never at import), and a test that cannot says why; every mount is undone in a `finally`.

import { join } from "node:path";

/** What a command did. */
export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end with output captured (never inherits the test's streams). */
export async function run(command: string, args: readonly string[]): Promise<Ran> {
  try {
    const output = await new Deno.Command(command, { args: [...args], stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
    const decoder = new TextDecoder();
    return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr).trim() };
  } catch (error) {
    return { code: -1, stdout: "", stderr: error instanceof Error ? error.message : String(error) };
  }
}

async function runOrThrow(command: string, args: readonly string[]): Promise<void> {
  const ran = await run(command, args);
  if (ran.code !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${ran.stderr}`);
}

/** Why mounting is not possible here, or null when it is (root, and `mount --bind` and tmpfs work). */
async function probeMounts(): Promise<string | null> {
  if (Deno.uid() !== 0) return "the tests do not run as root";
  const dir = await Deno.makeTempDir({ prefix: "mount-probe-" });
  try {
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "probe");
    const bind = await run("mount", ["--bind", file, file]);
    if (bind.code !== 0) return `mount --bind is not permitted (${bind.stderr})`;
    await runOrThrow("umount", [file]);
    const tmpfs = await run("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", dir]);
    if (tmpfs.code !== 0) return `mounting a tmpfs is not permitted (${tmpfs.stderr})`;
    await runOrThrow("umount", [dir]);
    return null;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

let mountProbe: Promise<string | null> | undefined;

/**
 * In a test that mounts, before it mounts: true (after saying why) when this machine cannot mount, so the
 * test ends there. The first such test tries a mount, with cleanup; nothing is mounted at import.
 */
export async function cannotMount(test: string): Promise<boolean> {
  mountProbe ??= probeMounts();
  const why = await mountProbe;
  if (why !== null) explainSkipped(test, why);
  return why !== null;
}

/** Why nothing can be mounted here, known without trying: null when the tests run as root. */
export const notRoot: string | null = Deno.uid() === 0 ? null : "the tests do not run as root";

/** Mounts with `mount …args` onto `target`, runs `body`, and always unmounts. */
export async function withMount<T>(args: readonly string[], target: string, body: () => Promise<T>): Promise<T> {
  await runOrThrow("mount", [...args, target]);
  try {
    return await body();
  } finally {
    // A lazy unmount if something still holds it, so a failing test never leaves a mount behind.
    if ((await run("umount", [target])).code !== 0) await runOrThrow("umount", ["-l", target]);
  }
}

/** Bind-mounts `source` onto `target` (a file onto a file, or a folder onto a folder). */
export function withBind<T>(source: string, target: string, body: () => Promise<T>): Promise<T> {
  return withMount(["--bind", source], target, body);
}

/** Makes `folder` a read-only view of itself (a bind mount remounted read-only) while `body` runs. */
export function withReadOnly<T>(folder: string, body: () => Promise<T>): Promise<T> {
  return withBind(folder, folder, async () => {
    await runOrThrow("mount", ["-o", "remount,ro,bind", folder]);
    return await body();
  });
}

/** The unprivileged user and group the programs are run as. */
export const NOBODY = { user: "nobody", group: "nogroup" } as const;

/** The numeric uid and gid of {@link NOBODY}, from the system's own tools. */
export async function nobodyIds(): Promise<{ uid: number; gid: number }> {
  const uid = await run("id", ["-u", NOBODY.user]);
  const gid = await run("getent", ["group", NOBODY.group]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.split(":")[2]) };
}

/** The `setpriv` prefix that runs a command as {@link NOBODY} with no supplementary groups. */
export const AS_NOBODY: readonly string[] = [
  `--reuid=${NOBODY.user}`,
  `--regid=${NOBODY.group}`,
  "--clear-groups",
];

/**
 * `args` as a command run as {@link NOBODY}. Under Debian's `faketime`, libfaketime is not preloaded
 * into it: its shared clock (a semaphore root's processes made) cannot be opened by nobody, and
 * libfaketime would end the program. These programs test file ownership, not dates, so they keep the
 * real clock.
 */
export function nobodyCommand(args: readonly string[]): [string, string[]] {
  return ["env", ["-u", "LD_PRELOAD", "-u", "FAKETIME_SHARED", "setpriv", ...AS_NOBODY, "--", ...args]];
}

/** Why programs cannot be run as another user here, or null when they can. */
async function probeOtherUser(): Promise<string | null> {
  if (Deno.uid() !== 0) return "the tests do not run as root";
  const ran = await run(...nobodyCommand(["id", "-u"]));
  if (ran.code !== 0) return `setpriv cannot switch to ${NOBODY.user} (${ran.stderr})`;
  return null;
}

/** Why the tests that run as another user cannot run here, or null when they can. */
export const otherUserUnavailable: string | null = await probeOtherUser();

/** Prints why a test is skipped, so a skip is never silent. */
export function explainSkipped(test: string, why: string): void {
  console.warn(`SKIPPED: ${test}: ${why}`);
}
