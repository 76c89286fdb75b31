/**
 * Cutting text for log lines and previews without breaking characters.
 * Slicing by UTF-16 index can split a surrogate pair, and slicing encoded
 * bytes can split a multi-byte character (the Rust review found the latter
 * panicking on non-ASCII text); these helpers only cut between characters.
 *
 * @module
 */

import { utf8Prefix } from "../utf8.ts";

function checkLimit(name: string, value: number): number {
  if (!(value >= 0)) throw new RangeError(`${name} must be a non-negative number, got ${value}`);
  return Math.floor(value);
}

/**
 * Index just past the first `count` code points of `s`, or -1 when `s` has
 * no more than `count` code points.
 */
function codePointEnd(s: string, count: number): number {
  let index = 0;
  for (let seen = 0; seen < count; seen++) {
    if (index >= s.length) return -1;
    index += s.codePointAt(index)! > 0xffff ? 2 : 1;
  }
  return index >= s.length ? -1 : index;
}

/**
 * Shortens `s` to at most `maxChars` code points, marker included, cutting
 * between code points so a surrogate pair is never split. Grapheme clusters
 * (an emoji with modifiers, a letter with combining marks) may still be cut
 * between their code points. When `maxChars` leaves no room for the marker,
 * the bare first `maxChars` code points are returned.
 *
 * @param s The text to shorten.
 * @param maxChars The most code points the result may have.
 * @param marker Appended when something was cut.
 * @returns `s` itself when it fits, else a prefix of it followed by `marker`.
 * @throws {RangeError} when `maxChars` is negative or NaN.
 *
 * @example Cut before an emoji rather than through it
 * ```ts
 * import assert from "node:assert/strict";
 * import { truncateText } from "./text_truncate.ts";
 * assert.equal(truncateText("hello", 10), "hello");
 * assert.equal(truncateText("ab😀cd", 4), "ab😀…");
 * assert.equal(truncateText("ab😀cd", 3), "ab…");
 * ```
 */
export function truncateText(s: string, maxChars: number, marker = "…"): string {
  const max = checkLimit("maxChars", maxChars);
  // Code points never outnumber code units, so this needs no scan.
  if (s.length <= max) return s;
  if (codePointEnd(s, max) === -1) return s;
  const markerChars = [...marker].length;
  if (markerChars >= max) return s.slice(0, codePointEnd(s, max));
  return s.slice(0, codePointEnd(s, max - markerChars)) + marker;
}

/**
 * Returns the longest prefix of `s` whose UTF-8 encoding fits in `maxBytes`,
 * cut between characters (never inside a multi-byte sequence). A lone
 * surrogate counts as U+FFFD, 3 bytes, as `TextEncoder` writes it.
 *
 * @param s The text to shorten.
 * @param maxBytes The most UTF-8 bytes the result may encode to.
 * @returns `s` itself when it fits, else its longest fitting prefix.
 * @throws {RangeError} when `maxBytes` is negative or NaN.
 *
 * @example Never split a multi-byte character
 * ```ts
 * import assert from "node:assert/strict";
 * import { truncateUtf8 } from "./text_truncate.ts";
 * assert.equal(truncateUtf8("héllo", 2), "h"); // "é" is 2 bytes and would not fit
 * assert.equal(truncateUtf8("héllo", 3), "hé");
 * assert.equal(truncateUtf8("😀", 3), "");
 * ```
 */
export function truncateUtf8(s: string, maxBytes: number): string {
  const max = checkLimit("maxBytes", maxBytes);
  return utf8Prefix(s, max).text;
}
