import assert from "node:assert/strict";
import { compareText } from "../lib/shared/compare.ts";
import { errorMessage, fileErrorMessage } from "../lib/shared/error_message.ts";

Deno.test("errorMessage keeps the first line of an Error's message, made safe, and reads anything thrown", () => {
  assert.equal(errorMessage(new Error("first line\nsecond line")), "first line");
  assert.equal(errorMessage(new TypeError("bad \x1b[31mred\x1b[0m")), "bad \uFFFD[31mred\uFFFD[0m");
  assert.equal(errorMessage("a string"), "a string");
  assert.equal(errorMessage(42), "42");
  assert.equal(errorMessage(undefined), "undefined");
  const long = errorMessage(new Error("x".repeat(10_000)));
  assert.ok(long.length <= 301 && long.endsWith("…"), `${long.length} characters`);
});

Deno.test("fileErrorMessage names the file-system reason in words, from a real failure and from an errno code", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const failure = await Deno.readTextFile(`${dir}/missing/file`).catch((error: unknown) => error);
    assert.equal(fileErrorMessage(failure), "its folder does not exist");
    const folder = await Deno.readTextFile(dir).catch((error: unknown) => error);
    assert.equal(fileErrorMessage(folder), "it is a folder, not a file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const full = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
  assert.equal(fileErrorMessage(full), "no space left on device");
  assert.equal(
    fileErrorMessage(new Error("attempt to write a readonly database: read-only file system")),
    "read-only file system",
  );
  assert.equal(fileErrorMessage(Object.assign(new Error("odd\nmore"), { code: "__proto__" })), "odd");
});

Deno.test("compareText orders by code unit, the same on every machine", () => {
  assert.deepEqual(["b", "B", "a", "é", "e", "A"].sort(compareText), ["A", "B", "a", "b", "e", "é"]);
  assert.equal(compareText("x", "x"), 0);
});
