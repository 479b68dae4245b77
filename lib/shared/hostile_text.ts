/**
 * Text that came from outside (Monzo's answers, a client's request) is made safe before it reaches a
 * log line, a terminal or a page: no control characters, no bidi overrides, bounded length.
 */

const ELLIPSIS = "…";

/**
 * C0 and C1 controls (ESC and CSI among them), DEL, lone surrogates, and the characters that
 * reorder or break lines in terminals and log viewers (U+2028/2029, bidi embeddings, overrides and
 * isolates).
 */
function isUnsafe(codePoint: number): boolean {
  return codePoint <= 0x1f ||
    (codePoint >= 0x7f && codePoint <= 0x9f) ||
    (codePoint >= 0xd800 && codePoint <= 0xdfff) ||
    codePoint === 0x2028 || codePoint === 0x2029 ||
    (codePoint >= 0x202a && codePoint <= 0x202e) ||
    (codePoint >= 0x2066 && codePoint <= 0x2069);
}

/** True when `text` holds a control, bidi or line-breaking character (see {@link cleanText}). */
export function hasUnsafeCharacters(text: string): boolean {
  for (const character of text) {
    if (isUnsafe(character.codePointAt(0) ?? 0)) return true;
  }
  return false;
}

/** Replaces unsafe characters with U+FFFD and cuts `text` to `max` code points, ending with "…" when cut. */
export function cleanText(text: string, max = 200): string {
  return cut(text, max, true);
}

/** Cuts `text` to `max` code points, ending with "…" when cut; the characters themselves are kept. */
export function cutText(text: string, max: number): string {
  return cut(text, max, false);
}

// Walks only as far as needed, so a multi-megabyte string costs no more than `max` characters.
function cut(text: string, max: number, clean: boolean): string {
  let out = "";
  let count = 0;
  let previous = 0;
  for (const character of text) {
    if (count === max) return out.slice(0, previous) + ELLIPSIS;
    previous = out.length;
    out += clean && isUnsafe(character.codePointAt(0) ?? 0) ? "\uFFFD" : character;
    count++;
  }
  return out;
}
