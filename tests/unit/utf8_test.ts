import assert from "node:assert/strict";
import fc from "fast-check";
import {
  exceedsUtf8,
  utf16Prefix,
  utf16Suffix,
  utf8Boundary,
  utf8DropFront,
  utf8Length,
  utf8Prefix,
  utf8Tail,
} from "../../lib/utf8.ts";

const encoded = (s: string) => new TextEncoder().encode(s).length;
const text = fc.string({ unit: "binary", maxLength: 200 });

Deno.test("utf8Length() equals the encoded size, lone surrogates as U+FFFD (fast-check)", () => {
  fc.assert(fc.property(text, (s) => assert.equal(utf8Length(s), encoded(s))), { numRuns: 500 });
  assert.equal(utf8Length("\ud800"), 3);
});

Deno.test("exceedsUtf8() agrees with the encoded size around the bound (fast-check)", () => {
  fc.assert(
    fc.property(text, fc.nat(800), (s, max) => assert.equal(exceedsUtf8(s, max), encoded(s) > max)),
    { numRuns: 500 },
  );
});

Deno.test("utf8Prefix() and utf8Tail() cut between characters and fit the budget (fast-check)", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 60 }), fc.nat(200), (s, max) => {
      const head = utf8Prefix(s, max);
      assert.ok(s.startsWith(head.text));
      assert.equal(head.bytes, encoded(head.text));
      assert.ok(head.bytes <= max);
      const tail = utf8Tail(s, max);
      assert.ok(s.endsWith(tail));
      assert.ok(encoded(tail) <= max);
      // A cut inside a surrogate pair would leave half of it at the edge.
      assert.ok(!/[\ud800-\udbff]$/.test(head.text), "prefix ends mid-pair");
      assert.ok(!/^[\udc00-\udfff]/.test(tail), "tail starts mid-pair");
    }),
    { numRuns: 500 },
  );
});

Deno.test("utf8DropFront() rounds a cut inside a character up to its end", () => {
  assert.deepEqual(utf8DropFront("€ab", 1), { text: "ab", dropped: 3 });
  assert.deepEqual(utf8DropFront("a😀b", 2), { text: "b", dropped: 5 });
  assert.deepEqual(utf8DropFront("abc", 0), { text: "abc", dropped: 0 });
});

Deno.test("utf8Boundary() never ends a range inside a character (fast-check)", () => {
  const wellFormed = fc.string({ unit: "grapheme", maxLength: 50 });
  fc.assert(
    fc.property(wellFormed, fc.nat(), (s, n) => {
      const bytes = new TextEncoder().encode(s);
      const end = n % (bytes.length + 1);
      const cut = utf8Boundary((i) => bytes[i]!, 0, end);
      assert.ok(cut <= end && cut >= end - 3);
      // Throws when the cut falls inside a character.
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, cut));
    }),
    { numRuns: 500 },
  );
});

Deno.test("utf16Prefix() and utf16Suffix() fit the budget and never split a pair (fast-check)", () => {
  const wellFormed = fc.string({ unit: "grapheme", maxLength: 50 });
  fc.assert(
    fc.property(wellFormed, fc.nat(60), (s, max) => {
      const head = utf16Prefix(s, max);
      const tail = utf16Suffix(s, max);
      assert.ok(head.length <= max || head === s);
      assert.ok(tail.length <= max || tail === s);
      assert.ok(s.startsWith(head) && s.endsWith(tail));
      assert.ok(head.length >= Math.min(s.length, max) - 1);
      assert.ok(tail.length >= Math.min(s.length, max) - 1);
      assert.equal(head.isWellFormed() && tail.isWellFormed(), true);
    }),
    { numRuns: 500 },
  );
});
