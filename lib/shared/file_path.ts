/**
 * The few path operations the exporter needs, for POSIX and Windows.
 *
 * Not node:path: importing any `node:` module makes Deno load its Node compatibility layer (dozens of
 * modules, resident for the life of the process), which nothing else at run time needs. The results match
 * node:path's `posix` and `win32` flavours for the operations here (tests/file_path_test.ts compares them),
 * with two exceptions on Windows: `..` stops at a `\\?\C:` or `\\.\pipe` device as at a UNC share (node:path
 * climbs to `\\?\`), and reserved names (`CON:`, `NUL:`) get no special treatment (node:path turns even a
 * plain `CONx` into `.\CONx`).
 *
 * @module
 */

/** The path operations of one OS flavour. */
export interface FilePaths {
  /** The folder part of `path`, as written (not normalized); `.` when it has none. */
  dirname(path: string): string;
  /** The last part of `path`, trailing separators ignored; empty for a root. */
  basename(path: string): string;
  /** The non-empty `parts` joined with the separator and normalized; `.` when all are empty. */
  join(...parts: string[]): string;
  /** True when `path` starts at a root: `/x`; on Windows `\x`, `C:\x`, `C:/x` or `\\server\share`. */
  isAbsolute(path: string): boolean;
  /** `path` made absolute against the working folder and normalized, without a trailing separator. */
  resolve(path: string): string;
}

/** Where a path's root ends and what it is. */
interface Root {
  /** The index just after the root (`/`, `\`, `C:`, `C:\`, `\\server\share`); 0 for a relative path. */
  readonly end: number;
  /** The drive (`C:`) or UNC share (`\\server\share`, with backslashes); empty for none. */
  readonly device: string;
  /** True when the root includes a separator, so the path does not depend on a working folder. */
  readonly absolute: boolean;
  /** True for a UNC share, whose root runs to the end of the share name. */
  readonly unc: boolean;
}

const RELATIVE: Root = { end: 0, device: "", absolute: false, unc: false };

/** The path operations of `os` (a `Deno.build.os` value); `resolve` asks `cwd` for the working folder. */
export function filePaths(os: typeof Deno.build.os, cwd: () => string = () => Deno.cwd()): FilePaths {
  return os === "windows" ? windowsPaths(cwd) : posixPaths(cwd);
}

function posixPaths(cwd: () => string): FilePaths {
  const isSep = (c: string | undefined) => c === "/";
  const rootOf = (path: string): Root => isSep(path[0]) ? { end: 1, device: "", absolute: true, unc: false } : RELATIVE;
  const shared = sharedPaths("/", isSep, rootOf);
  return {
    ...shared,
    dirname(path) {
      if (path === "") return ".";
      const end = lastSeparator(path, 1, isSep);
      if (end === -1) return isSep(path[0]) ? "/" : ".";
      // POSIX leaves the meaning of a leading `//` to the system, so node:path keeps it.
      if (end === 1 && isSep(path[0])) return "//";
      return path.slice(0, end);
    },
    join: (...parts) => shared.normalize(parts.filter((part) => part !== "").join("/")),
    resolve: (path) => shared.resolve(path, () => cwd()),
  };
}

function windowsPaths(cwd: () => string): FilePaths {
  const isSep = (c: string | undefined) => c === "/" || c === "\\";
  const hasDrive = (path: string) => /^[A-Za-z]:/.test(path);
  const rootOf = (path: string): Root => {
    if (isSep(path[0])) {
      if (!isSep(path[1])) return { end: 1, device: "", absolute: true, unc: false };
      // `\\server\share`: both names must be there, else it is just a root-relative path.
      const unc = /^[\\/]{2}([^\\/]+)[\\/]+([^\\/]+)/.exec(path);
      if (unc === null) return { end: 1, device: "", absolute: true, unc: false };
      return { end: unc[0].length, device: `\\\\${unc[1]}\\${unc[2]}`, absolute: true, unc: true };
    }
    if (!hasDrive(path)) return RELATIVE;
    const absolute = isSep(path[2]);
    return { end: absolute ? 3 : 2, device: path.slice(0, 2), absolute, unc: false };
  };
  const shared = sharedPaths("\\", isSep, rootOf);
  return {
    ...shared,
    dirname(path) {
      if (path === "") return ".";
      const root = rootOf(path);
      if (root.unc && root.end === path.length) return path;
      // A share's root takes the separator after it too: the folder of `\\s\share\x` is `\\s\share\`.
      const rootEnd = root.unc ? root.end + 1 : root.end;
      const end = lastSeparator(path, rootEnd, isSep);
      if (end !== -1) return path.slice(0, end);
      return rootEnd === 0 ? "." : path.slice(0, rootEnd);
    },
    basename(path) {
      // `C:x` names x on drive C.
      return shared.basename(hasDrive(path) ? path.slice(2) : path);
    },
    join(...parts) {
      const given = parts.filter((part) => part !== "");
      if (given.length === 0) return ".";
      let joined = given.join("\\");
      // Only the first part may make a UNC root: join("\\", "\\server") is not `\\server`.
      if (!/^[\\/]{2}[^\\/]/.test(given[0])) joined = joined.replace(/^[\\/]{2,}/, "\\");
      const normalized = shared.normalize(joined);
      const root = rootOf(joined);
      if (root.absolute || root.device !== "" || !joined.includes(":")) return normalized;
      // CVE-2024-36139: a relative path must not come out naming a drive (`a\..\c:\x` is not `c:\x`).
      return hasDrive(normalized) || /:([\\/]|$)/.test(joined) ? `.\\${normalized}` : normalized;
    },
    resolve(path) {
      return shared.resolve(path, (device) => {
        const here = cwd();
        // A drive-relative path (`D:x`) on another drive than the working folder's: Windows keeps a
        // working folder per drive in hidden variables; node:path reads them, we take the drive's root.
        const elsewhere = device !== "" && hasDrive(here) && isSep(here[2]) &&
          here.slice(0, 2).toLowerCase() !== device.toLowerCase();
        return elsewhere ? `${device}\\` : here;
      });
    },
  };
}

/** The operations written once for both flavours, given the separator and how roots look. */
function sharedPaths(sep: string, isSep: (c: string | undefined) => boolean, rootOf: (path: string) => Root) {
  const segments = (text: string, aboveRoot: boolean): string => {
    const kept: string[] = [];
    for (const segment of text.split(sep === "/" ? "/" : /[\\/]/)) {
      if (segment === "" || segment === ".") continue;
      if (segment !== "..") kept.push(segment);
      else if (kept.length > 0 && kept[kept.length - 1] !== "..") kept.pop();
      else if (aboveRoot) kept.push("..");
    }
    return kept.join(sep);
  };
  return {
    isAbsolute: (path: string): boolean => rootOf(path).absolute,
    basename(path: string): string {
      let end = path.length;
      while (end > 0 && isSep(path[end - 1])) end--;
      let start = end;
      while (start > 0 && !isSep(path[start - 1])) start--;
      return path.slice(start, end);
    },
    normalize(path: string): string {
      if (path === "") return ".";
      const root = rootOf(path);
      let tail = segments(path.slice(root.end), !root.absolute);
      if (tail === "" && !root.absolute) tail = ".";
      if (tail !== "" && isSep(path[path.length - 1])) tail += sep;
      return `${root.device}${root.absolute ? sep : ""}${tail}`;
    },
    /** `path` made absolute; `fallback(device)` is the folder it is relative to when it is not. */
    resolve(path: string, fallback: (device: string) => string): string {
      let device = "";
      let tail = "";
      let absolute = false;
      for (const from of [path, null]) {
        const text = from ?? fallback(device);
        if (text === "") continue;
        const root = rootOf(text);
        if (root.device !== "") {
          if (device === "") device = root.device;
          // The working folder is on another drive or share than the path: it says nothing about it.
          else if (root.device.toLowerCase() !== device.toLowerCase()) continue;
        }
        if (!absolute) {
          tail = `${text.slice(root.end)}${sep}${tail}`;
          absolute = root.absolute;
        }
        // A root-relative `\x` still needs the working folder's drive.
        if (absolute && (device !== "" || sep === "/")) break;
      }
      const normalized = segments(tail, !absolute);
      return absolute ? `${device}${sep}${normalized}` : `${device}${normalized}` || ".";
    },
  };
}

/** The index of the separator before the last name in `path` (at or after `from`), or -1. */
function lastSeparator(path: string, from: number, isSep: (c: string | undefined) => boolean): number {
  let i = path.length;
  while (i > from && isSep(path[i - 1])) i--;
  while (i > from && !isSep(path[i - 1])) i--;
  return i > from ? i - 1 : -1;
}

const native = filePaths(Deno.build.os);

/** The folder part of `path`, as node:path's `dirname` gives it on this OS. */
export function dirname(path: string): string {
  return native.dirname(path);
}

/** The last part of `path`, as node:path's `basename` (without a suffix) gives it on this OS. */
export function basename(path: string): string {
  return native.basename(path);
}

/** The non-empty `parts` joined and normalized, as node:path's `join` gives it on this OS. */
export function join(...parts: string[]): string {
  return native.join(...parts);
}

/** True when `path` is absolute on this OS, as node:path's `isAbsolute` says. */
export function isAbsolute(path: string): boolean {
  return native.isAbsolute(path);
}

/** `path` made absolute against `Deno.cwd()` and normalized, as node:path's `resolve(path)` gives it. */
export function resolve(path: string): string {
  return native.resolve(path);
}

/**
 * A path written in the file `from` (a config's `tokens_path`, a web config's `cert_file`): as written
 * when absolute, else relative to the folder of `from`. Every path a file names is resolved here.
 */
export function besideFile(from: string, path: string): string {
  return native.isAbsolute(path) ? path : native.join(native.dirname(from), path);
}
