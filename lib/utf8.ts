/**
 * UTF-8 sizes and cuts of JS strings. A string's UTF-8 size is what limits
 * a message, a command or a log line; cuts here fall only between
 * characters, never inside one (or inside a surrogate pair).
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * UTF-8 length of `s` without encoding it (a lone surrogate counts 3, as U+FFFD).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf8Length } from "./utf8.ts";
 * assert.equal(utf8Length("aé€😀"), 1 + 2 + 3 + 4);
 * ```
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** The longest prefix of `s` encoding to at most `maxBytes`, and its size. */
export function utf8Prefix(s: string, maxBytes: number): { text: string; bytes: number } {
  if (s.length * 3 <= maxBytes) return { text: s, bytes: utf8Length(s) };
  const { read, written } = encoder.encodeInto(s, new Uint8Array(maxBytes));
  return { text: s.slice(0, read), bytes: written };
}

/** `s` without its first `bytes` bytes, rounded up to a character boundary; and what was dropped. */
export function utf8DropFront(s: string, bytes: number): { text: string; dropped: number } {
  if (bytes <= 0) return { text: s, dropped: 0 };
  let { text: head, bytes: dropped } = utf8Prefix(s, bytes);
  if (dropped < bytes && head.length < s.length) {
    // The cut falls inside a character: drop that character too.
    const cp = s.codePointAt(head.length)!;
    const extra = cp > 0xffff ? 2 : 1;
    dropped += utf8Length(s.slice(head.length, head.length + extra));
    head = s.slice(0, head.length + extra);
  }
  return { text: s.slice(head.length), dropped };
}

/**
 * Whether `s` encodes to more than `maxBytes` UTF-8 bytes; counts only when
 * its length leaves doubt (every UTF-16 unit is 1 to 3 bytes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exceedsUtf8 } from "./utf8.ts";
 * assert.equal(exceedsUtf8("ééé", 5), true);
 * assert.equal(exceedsUtf8("ééé", 6), false);
 * ```
 */
export function exceedsUtf8(s: string, maxBytes: number): boolean {
  if (s.length > maxBytes) return true;
  if (s.length * 3 <= maxBytes) return false;
  return utf8Length(s) > maxBytes;
}

/**
 * The longest suffix of `s` encoding to at most `maxBytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf8Tail } from "./utf8.ts";
 * assert.equal(utf8Tail("abc€", 4), "c€");
 * assert.equal(utf8Tail("abc€", 2), "");
 * ```
 */
export function utf8Tail(s: string, maxBytes: number): string {
  const over = utf8Length(s) - maxBytes;
  return over <= 0 ? s : utf8DropFront(s, over).text;
}

const isContinuation = (byte: number) => (byte & 0xc0) === 0x80;

/**
 * Where bytes `[start, end)` of UTF-8 text may be cut: `end`, or, when the
 * last character in the range is incomplete, its lead byte (`end` again
 * when no lead byte is within three bytes: there is nothing to keep whole).
 * `byteAt(i)` reads byte `i`, so any byte store can be cut this way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf8Boundary } from "./utf8.ts";
 * const bytes = new TextEncoder().encode("a€"); // 61 e2 82 ac
 * assert.equal(utf8Boundary((i) => bytes[i]!, 0, 4), 4);
 * assert.equal(utf8Boundary((i) => bytes[i]!, 0, 3), 1);
 * ```
 */
export function utf8Boundary(
  byteAt: (index: number) => number,
  start: number,
  end: number,
): number {
  let i = end - 1;
  // Step back over at most three continuation bytes (10xxxxxx) to the lead byte.
  while (i >= start && i > end - 4 && isContinuation(byteAt(i))) i--;
  if (i < start) return end;
  const lead = byteAt(i);
  const length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return length > 1 && i + length > end ? i : end;
}

/**
 * Where a reader starting at `offset` should start so as not to decode from
 * the middle of a character: the end of the well-formed multi-byte
 * character of `[start, end)` that `offset` falls inside, or `offset` itself
 * (at a character's start, or among bytes that form no character: those are
 * text of their own, each decoded as U+FFFD, and must not be skipped).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf8CharEnd } from "./utf8.ts";
 * const bytes = new TextEncoder().encode("é€"); // c3 a9 e2 82 ac
 * const at = (i: number) => bytes[i]!;
 * assert.equal(utf8CharEnd(at, 0, 1, 5), 2);
 * assert.equal(utf8CharEnd(at, 0, 3, 5), 5);
 * assert.equal(utf8CharEnd(at, 0, 2, 5), 2);
 * const stray = new Uint8Array([0x61, 0x82, 0xac]); // continuation bytes with no lead
 * assert.equal(utf8CharEnd((i) => stray[i]!, 0, 1, 3), 1);
 * ```
 */
export function utf8CharEnd(
  byteAt: (index: number) => number,
  start: number,
  offset: number,
  end: number,
): number {
  const lead = utf8Boundary(byteAt, start, offset);
  if (lead === offset) return offset;
  const b = byteAt(lead);
  const charEnd = lead + (b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2);
  if (charEnd > end) return offset;
  for (let i = lead + 1; i < charEnd; i++) if (!isContinuation(byteAt(i))) return offset;
  return charEnd;
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c < 0xdc00;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c < 0xe000;

/**
 * The longest prefix of `s` of at most `maxUnits` UTF-16 units that does not
 * end inside a surrogate pair.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf16Prefix } from "./utf8.ts";
 * assert.equal(utf16Prefix("ab😀", 3), "ab"); // the emoji is 2 units: not split
 * assert.equal(utf16Prefix("ab😀", 4), "ab😀");
 * ```
 */
export function utf16Prefix(s: string, maxUnits: number): string {
  if (s.length <= maxUnits) return s;
  const end = Math.max(0, maxUnits);
  return s.slice(0, isHighSurrogate(s.charCodeAt(end - 1)) ? end - 1 : end);
}

/**
 * The longest suffix of `s` of at most `maxUnits` UTF-16 units that does not
 * start inside a surrogate pair.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf16Suffix } from "./utf8.ts";
 * assert.equal(utf16Suffix("😀ab", 3), "ab");
 * assert.equal(utf16Suffix("😀ab", 4), "😀ab");
 * ```
 */
export function utf16Suffix(s: string, maxUnits: number): string {
  if (s.length <= maxUnits) return s;
  const cut = s.length - Math.max(0, maxUnits);
  return s.slice(isLowSurrogate(s.charCodeAt(cut)) ? cut + 1 : cut);
}
