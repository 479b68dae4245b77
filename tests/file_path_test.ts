// lib/shared/file_path.ts against node:path, the oracle (only here: the exporter itself must not import node:).
import assert from "node:assert/strict";
import * as nodePath from "node:path";
import {
  basename,
  besideFile,
  dirname,
  type FilePaths,
  filePaths,
  isAbsolute,
  join,
  resolve,
} from "../lib/shared/file_path.ts";

/** Awkward paths: empty, dots, roots, doubled and trailing separators, both separators, drives, shares. */
const INPUTS = [
  "",
  ".",
  "..",
  "...",
  "/",
  "//",
  "///",
  "a",
  "a/",
  "a//",
  "/a",
  "//a",
  "///a",
  "a/b",
  "a//b",
  "a/b/",
  "/a/b/",
  "./a",
  "../a",
  "a/./b/../c",
  "a/../..",
  "a/b/../../..",
  "../../a/",
  "/..",
  "/../a",
  "a/...",
  ".a/..b",
  "config.toml",
  "/etc/monzo-exporter/config.toml",
  "\\",
  "\\\\",
  "\\a",
  "\\\\a",
  "\\\\\\a",
  "a\\b",
  "a\\b/c\\",
  "a\\..\\..\\b",
  "\\x\\y",
  "/x\\y/",
  "\\\\server",
  "\\\\server\\",
  "\\\\server\\share",
  "\\\\server\\share\\",
  "\\\\server\\share\\x",
  "\\\\server\\share\\\\x\\",
  "\\\\server\\\\share\\x",
  "//server/share/x/y",
  "\\\\server\\share\\..\\x",
  "\\\\?\\C:\\dir\\file",
  "\\\\.\\pipe\\name",
  "C",
  "C:",
  "C:\\",
  "C:/",
  "c:x",
  "C:x\\y",
  "C:\\x",
  "C:/x/",
  "C:\\\\a",
  "C:\\a\\b\\..",
  "C:\\..\\..",
  "C:..\\a",
  "D:\\ProgramData\\monzo-exporter\\config.toml",
  "1:\\x",
  "C:\\a:b",
  "a:b",
  "a/../c:/b",
  "x\\a:\\b",
];

/**
 * True for a Windows join that starts at a `\\?\` or `\\.\` device and climbs with `..`: there node:path
 * climbs above the device's first name (`\\.\pipe\x\..\..` is `\\.\`); lib/shared/file_path.ts stops there,
 * as at a UNC share (tested below).
 */
function climbsAboveDevice(parts: string[]): boolean {
  const first = parts.find((part) => part !== "") ?? "";
  return /^[\\/]{2}[.?][\\/]/.test(first) && parts.some((part) => /(^|[\\/])\.\.([\\/]|$)/.test(part));
}

/** Two working folders per flavour: a plain one and a root (a share's, for Windows). */
const FLAVOURS = [
  { name: "posix", os: "linux", oracle: nodePath.posix, folders: ["/work/here", "/"] },
  { name: "win32", os: "windows", oracle: nodePath.win32, folders: ["C:\\work\\here", "c:\\", "\\\\srv\\sh\\d"] },
] as const;

/** One line per input where `ours` and `oracle` disagree. */
function differences<Args extends unknown[]>(
  inputs: Iterable<Args>,
  ours: (...args: Args) => unknown,
  oracle: (...args: Args) => unknown,
): string[] {
  const lines: string[] = [];
  for (const args of inputs) {
    const [got, want] = [ours(...args), oracle(...args)];
    if (got !== want) {
      lines.push(`${JSON.stringify(args)}: got ${JSON.stringify(got)}, node:path ${JSON.stringify(want)}`);
    }
  }
  return lines;
}

const singles = INPUTS.map((path): [string] => [path]);

for (const { name, os, oracle, folders } of FLAVOURS) {
  const ours: FilePaths = filePaths(os, () => folders[0]);

  Deno.test(`${name}: dirname, basename and isAbsolute agree with node:path on awkward paths`, () => {
    assert.deepEqual(differences(singles, ours.dirname, oracle.dirname), []);
    assert.deepEqual(differences(singles, ours.basename, (path) => oracle.basename(path)), []);
    assert.deepEqual(differences(singles, ours.isAbsolute, oracle.isAbsolute), []);
  });

  Deno.test(`${name}: join agrees with node:path on every pair and triple of awkward paths`, () => {
    function* combinations(): Generator<string[]> {
      yield [];
      for (const a of INPUTS) {
        yield [a];
        for (const b of INPUTS) yield* [[a, b], [a, b, "x"], ["x", a, b], [a, "", b]];
      }
    }
    const compared = [...combinations()].filter((parts) => os !== "windows" || !climbsAboveDevice(parts));
    const lines = differences(compared, ours.join, oracle.join);
    assert.deepEqual(lines.slice(0, 20), [], `${lines.length} joins differ`);
  });

  for (const folder of folders) {
    Deno.test(`${name}: resolve against ${JSON.stringify(folder)} agrees with node:path`, () => {
      const inFolder = filePaths(os, () => folder);
      // node:path would read a hidden per-drive working folder for a path on another drive (tested below).
      const sameDrive = singles.filter(([path]) =>
        os !== "windows" || !/^[A-Za-z]:/.test(path) ||
        path.slice(0, 2).toLowerCase() === folder.slice(0, 2).toLowerCase()
      );
      assert.ok(sameDrive.length > INPUTS.length / 2);
      assert.deepEqual(differences(sameDrive, inFolder.resolve, (path) => oracle.resolve(folder, path)), []);
    });
  }
}

Deno.test("win32: each operation reads Windows paths as Windows does, not as POSIX", () => {
  const windows = filePaths("windows", () => "C:\\work");
  const posix = filePaths("linux", () => "/work");
  const { win32 } = nodePath;
  const cases: Array<[keyof FilePaths, string[]]> = [
    ["dirname", ["C:\\ProgramData\\monzo\\config.toml"]],
    ["dirname", ["\\\\server\\share\\config.toml"]],
    ["basename", ["C:\\monzo\\monzo-exporter.exe"]],
    ["basename", ["C:monzo-exporter.exe"]],
    ["join", ["C:\\monzo", "..\\tokens.json"]],
    ["join", ["\\\\server\\share", "tokens.json"]],
    ["isAbsolute", ["C:/monzo/config.toml"]],
    ["isAbsolute", ["\\\\server\\share\\config.toml"]],
    ["resolve", ["\\monzo\\config.toml"]],
    ["resolve", ["config.toml"]],
  ];
  for (const [operation, args] of cases) {
    const call = (paths: FilePaths | typeof win32) => Reflect.apply(paths[operation], paths, args);
    const want = operation === "resolve" ? win32.resolve("C:\\work", ...args) : call(win32);
    // Each case would pass as well with POSIX rules unless the two disagree on it.
    assert.notEqual(call(posix), want, `${operation}(${JSON.stringify(args)}) reads the same under POSIX`);
    assert.equal(call(windows), want, `${operation}(${JSON.stringify(args)})`);
  }
});

Deno.test("win32: a path on another drive than the working folder resolves against that drive's root", () => {
  const windows = filePaths("windows", () => "C:\\work");
  assert.equal(windows.resolve("D:config.toml"), nodePath.win32.resolve("D:\\", "config.toml"));
  assert.equal(windows.resolve("c:config.toml"), nodePath.win32.resolve("C:\\work", "c:config.toml"));
});

Deno.test("win32: .. stops at a long path's drive, as at a share, where node:path climbs to \\\\?\\", () => {
  const windows = filePaths("windows", () => "C:\\work");
  const { win32 } = nodePath;
  assert.equal(windows.join("\\\\?\\C:\\dir", "..\\..\\y"), `\\\\?\\${win32.join("C:\\dir", "..\\..\\y")}`);
  assert.equal(windows.resolve("\\\\?\\C:\\dir\\..\\..\\y"), `\\\\?\\${win32.resolve("C:\\dir\\..\\..\\y")}`);
  assert.equal(windows.join("\\\\server\\share\\dir", "..\\..\\y"), win32.join("\\\\server\\share\\dir", "..\\..\\y"));
});

Deno.test("only Windows reads backslashes as separators: macOS and Linux are POSIX", () => {
  for (const os of ["darwin", "linux"] as const) {
    const paths = filePaths(os, () => "/work");
    assert.equal(paths.dirname("C:\\dir\\file"), ".", os);
    assert.equal(paths.basename("a\\b"), "a\\b", os);
    assert.equal(paths.isAbsolute("\\\\server\\share"), false, os);
  }
});

Deno.test("resolve asks for the working folder only when the path is relative", () => {
  let asked = 0;
  const posix = filePaths("linux", () => (asked++, "/work"));
  assert.equal(posix.resolve("/etc/../config.toml"), "/config.toml");
  assert.equal(asked, 0, "an absolute path needs no working folder (nor the read permission Deno.cwd needs)");
  assert.equal(posix.resolve("config.toml"), "/work/config.toml");
  assert.equal(asked, 1);
});

Deno.test("the default functions are this OS's flavour, resolving against Deno.cwd()", () => {
  const paths = ["C:\\dir\\file", "a/b/../c/", "\\\\server\\share\\x", "/etc//x/", "", "config.toml"];
  for (const path of paths) {
    assert.equal(dirname(path), nodePath.dirname(path), `dirname ${path}`);
    assert.equal(basename(path), nodePath.basename(path), `basename ${path}`);
    assert.equal(isAbsolute(path), nodePath.isAbsolute(path), `isAbsolute ${path}`);
    assert.equal(join(path, "x"), nodePath.join(path, "x"), `join ${path}`);
    assert.equal(resolve(path), nodePath.resolve(Deno.cwd(), path), `resolve ${path}`);
  }
});

Deno.test("besideFile: a path a file names is kept when absolute, else taken from that file's folder", () => {
  const from = resolve("etc/monzo/config.toml");
  assert.equal(besideFile(from, "tokens.json"), join(dirname(from), "tokens.json"));
  assert.equal(besideFile(from, "../data/store.kv"), join(dirname(dirname(from)), "data", "store.kv"));
  const absolute = resolve("elsewhere/web.yml");
  assert.equal(besideFile(from, absolute), absolute);
});
