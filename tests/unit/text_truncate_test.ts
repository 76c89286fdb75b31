import assert from "node:assert/strict";
import fc from "fast-check";
import { truncateText, truncateUtf8 } from "../../lib/output/text_truncate.ts";

const codePoints = (s: string): number => [...s].length;
const utf8Bytes = (s: string): number => new TextEncoder().encode(s).length;
// Any code point, astral ones included, so surrogate pairs are common.
const text = fc.string({ unit: "binary", maxLength: 40 });

Deno.test("truncateText() returns text that fits unchanged", () => {
  assert.equal(truncateText("", 0), "");
  assert.equal(truncateText("hello", 5), "hello");
  assert.equal(truncateText("😀😀", 2), "😀😀"); // 4 code units, 2 code points
});

Deno.test("truncateText() counts the marker in the limit", () => {
  assert.equal(truncateText("hello world", 6), "hello…");
  assert.equal(truncateText("hello world", 8, "[cut]"), "hel[cut]");
  assert.equal(truncateText("hello world", 5, ""), "hello");
});

Deno.test("truncateText() never splits a surrogate pair", () => {
  assert.equal(truncateText("a😀b", 2), "a…");
  assert.equal(truncateText("😀😀😀", 2), "😀…");
  assert.equal(truncateText("😀😀😀", 2, ""), "😀😀");
  assert.ok(truncateText("x😀😀", 2, "").isWellFormed());
});

Deno.test("truncateText() returns a bare prefix when the marker does not fit", () => {
  assert.equal(truncateText("hello", 0), "");
  assert.equal(truncateText("hello", 1), "h");
  assert.equal(truncateText("hello", 3, "[cut]"), "hel");
});

Deno.test("truncateText() rejects a negative or NaN limit", () => {
  assert.throws(() => truncateText("x", -1), RangeError);
  assert.throws(() => truncateText("x", Number.NaN), RangeError);
});

Deno.test("truncateText() keeps within the limit and keeps text well-formed", () => {
  fc.assert(fc.property(text, fc.nat(45), (s, max) => {
    const out = truncateText(s, max);
    assert.ok(codePoints(out) <= max);
    assert.ok(out.isWellFormed());
    if (codePoints(s) <= max) assert.equal(out, s);
    else if (max > 1) assert.ok(out.endsWith("…") && s.startsWith(out.slice(0, -1)));
  }));
});

Deno.test("truncateUtf8() cuts at a character boundary", () => {
  assert.equal(truncateUtf8("héllo", 1), "h");
  assert.equal(truncateUtf8("héllo", 2), "h");
  assert.equal(truncateUtf8("héllo", 3), "hé");
  assert.equal(truncateUtf8("日本語", 5), "日"); // 3 bytes each
  assert.equal(truncateUtf8("日本語", 6), "日本");
  assert.equal(truncateUtf8("a😀", 4), "a"); // the emoji is 4 bytes
  assert.equal(truncateUtf8("a😀", 5), "a😀");
  assert.equal(truncateUtf8("abc", 0), "");
});

Deno.test("truncateUtf8() returns text that fits unchanged", () => {
  assert.equal(truncateUtf8("日本語", 9), "日本語");
  assert.equal(truncateUtf8("", 0), "");
  assert.equal(truncateUtf8("abc", Infinity), "abc");
});

Deno.test("truncateUtf8() rejects a negative or NaN limit", () => {
  assert.throws(() => truncateUtf8("x", -1), RangeError);
  assert.throws(() => truncateUtf8("x", Number.NaN), RangeError);
});

Deno.test("truncateUtf8() returns the longest well-formed prefix that fits", () => {
  fc.assert(fc.property(text, fc.nat(120), (s, max) => {
    const out = truncateUtf8(s, max);
    assert.ok(s.startsWith(out));
    assert.ok(out.isWellFormed());
    assert.ok(utf8Bytes(out) <= max);
    if (out.length < s.length) {
      // The next whole character would not have fitted.
      const next = String.fromCodePoint(s.codePointAt(out.length)!);
      assert.ok(utf8Bytes(out + next) > max);
    }
  }));
});
