import assert from "node:assert/strict";
import fc from "fast-check";
import { type Frame, OutputFramer } from "../../lib/output/framer.ts";
import { utf8Boundary } from "../../lib/utf8.ts";

const enc = new TextEncoder();
const text = (f: Frame) => new TextDecoder().decode(f.bytes);

Deno.test("OutputFramer chunk mode coalesces whole lines and holds a partial line", () => {
  const f = new OutputFramer({ framing: "chunk", chunkSize: 1024, lineLimit: 1024 });
  assert.deepEqual(f.push(enc.encode("a\nbb\ncc")).map(text), ["a\nbb\n"]);
  assert.equal(f.pending, 2);
  assert.deepEqual(f.push(enc.encode("c\n")).map(text), ["ccc\n"]);
  assert.deepEqual(f.end(), []);
});

Deno.test("OutputFramer chunk mode never exceeds chunkSize for coalesced lines", () => {
  const f = new OutputFramer({ framing: "chunk", chunkSize: 10, lineLimit: 20 });
  const frames = f.push(enc.encode("aaaa\nbbbb\ncccc\n"));
  assert.deepEqual(frames.map(text), ["aaaa\nbbbb\n", "cccc\n"]);
  // A line longer than a chunk but within the line limit still goes whole.
  assert.deepEqual(f.push(enc.encode("x".repeat(15) + "\n")).map(text), ["x".repeat(15) + "\n"]);
});

Deno.test("OutputFramer line mode sends one line per frame", () => {
  const f = new OutputFramer({ framing: "line", chunkSize: 1024, lineLimit: 1024 });
  assert.deepEqual(f.push(enc.encode("a\nb\nc\n")).map(text), ["a\n", "b\n", "c\n"]);
});

Deno.test("OutputFramer splits a long line into indexed pieces", () => {
  const f = new OutputFramer({ framing: "chunk", chunkSize: 4, lineLimit: 4 });
  const frames = [...f.push(enc.encode("abcdefghij")), ...f.push(enc.encode("k\nz\n"))];
  assert.deepEqual(frames.map((x) => [text(x), x.truncated, x.chunkIndex, x.totalChunks]), [
    ["abcd", true, 0, null],
    ["efgh", true, 1, null],
    ["ijk\n", false, 2, 3],
    ["z\n", false, null, null],
  ]);
});

Deno.test("OutputFramer never cuts inside a UTF-8 character when splitting", () => {
  const f = new OutputFramer({ framing: "line", chunkSize: 4, lineLimit: 4 });
  const frames = [...f.push(enc.encode("a€€€\n")), ...f.end()];
  for (const frame of frames) assert.ok(!text(frame).includes("\uFFFD"), text(frame));
  assert.equal(frames.map(text).join(""), "a€€€\n");
});

Deno.test("OutputFramer.flushPartial() sends a prompt but keeps an incomplete character", () => {
  const f = new OutputFramer({ framing: "chunk", chunkSize: 64, lineLimit: 64 });
  f.push(new Uint8Array([0x3e, 0x20, 0xe2, 0x82])); // "> " and 2 of 3 bytes of "€"
  const flushed = f.flushPartial();
  assert.deepEqual(flushed.map((x) => [text(x), x.truncated, x.chunkIndex, x.totalChunks]), [
    ["> ", false, null, null],
  ]);
  assert.equal(f.pending, 2);
  const rest = f.push(new Uint8Array([0xac, 0x0a]));
  assert.deepEqual(rest.map((x) => [text(x), x.truncated, x.chunkIndex, x.totalChunks]), [
    ["€\n", false, null, null],
  ]);
});

Deno.test("OutputFramer.flushPartial() of a partial line is not a split; the line's end is not either", () => {
  const f = new OutputFramer({ framing: "line", chunkSize: 64, lineLimit: 64 });
  f.push(enc.encode("prompt> "));
  const flushed = f.flushPartial();
  assert.deepEqual(flushed.map((x) => [text(x), x.truncated, x.chunkIndex, x.totalChunks]), [
    ["prompt> ", false, null, null],
  ]);
  assert.deepEqual(f.flushPartial(), []);
  assert.deepEqual(
    f.push(enc.encode("done\n")).map((x) => [text(x), x.truncated, x.chunkIndex, x.totalChunks]),
    [["done\n", false, null, null]],
  );
  // A partial line at the end of the stream is not a split either.
  f.push(enc.encode("tail"));
  assert.deepEqual(f.flushPartial().map((x) => [x.truncated, x.chunkIndex]), [[false, null]]);
  assert.deepEqual(f.end(), []);
});

Deno.test("OutputFramer.flushPartial() during a split line sends the next truncated piece", () => {
  const f = new OutputFramer({ framing: "chunk", chunkSize: 4, lineLimit: 4 });
  const frames = [
    ...f.push(enc.encode("abcdef")),
    ...f.flushPartial(),
    ...f.push(enc.encode("gh\n")),
  ];
  assert.deepEqual(frames.map((x) => [text(x), x.truncated, x.chunkIndex, x.totalChunks]), [
    ["abcd", true, 0, null],
    ["ef", true, 1, null],
    ["gh\n", false, 2, 3],
  ]);
  // Stopped mid-split, the stream's end closes the line with an empty last piece.
  const g = new OutputFramer({ framing: "chunk", chunkSize: 4, lineLimit: 4 });
  const cut = [...g.push(enc.encode("abcdef")), ...g.flushPartial(), ...g.end()];
  assert.deepEqual(cut.map((x) => [text(x), x.truncated, x.chunkIndex, x.totalChunks]), [
    ["abcd", true, 0, null],
    ["ef", true, 1, null],
    ["", false, 2, 3],
  ]);
});

Deno.test("utf8Boundary() steps back over an incomplete sequence only", () => {
  const cut = (buf: Uint8Array, start: number, end: number) =>
    utf8Boundary((i) => buf[i]!, start, end);
  const euro = enc.encode("a€"); // 61 e2 82 ac
  assert.equal(cut(euro, 0, 4), 4);
  assert.equal(cut(euro, 0, 3), 1);
  assert.equal(cut(euro, 0, 2), 1);
  assert.equal(cut(new Uint8Array([0x80, 0x80, 0x80, 0x80]), 0, 4), 4);
});

Deno.test("OutputFramer frames concatenate to the input for any bytes and any split (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 600 }),
      fc.array(fc.nat(600), { maxLength: 8 }),
      fc.constantFrom("chunk" as const, "line" as const),
      fc.integer({ min: 4, max: 40 }),
      fc.boolean(),
      (bytes, cuts, framing, limit, flush) => {
        const f = new OutputFramer({ framing, chunkSize: limit, lineLimit: limit * 2 });
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const frames: Frame[] = [];
        let prev = 0;
        for (const p of [...points, bytes.length]) {
          // Copy each frame: frames are views valid until the next push.
          frames.push(
            ...f.push(bytes.slice(prev, p)).map((x) => ({ ...x, bytes: x.bytes.slice() })),
          );
          if (flush) {
            frames.push(...f.flushPartial().map((x) => ({ ...x, bytes: x.bytes.slice() })));
          }
          prev = p;
        }
        frames.push(...f.end());
        const joined = new Uint8Array(frames.reduce((n, x) => n + x.bytes.length, 0));
        let o = 0;
        for (const x of frames) {
          joined.set(x.bytes, o);
          o += x.bytes.length;
          assert.ok(x.bytes.length <= limit * 2, "no frame exceeds the line limit");
        }
        assert.deepEqual(joined, bytes);
        // A split line's pieces are numbered 0..n-1, only the last is not
        // truncated, and only a line of at least the line limit is split: a
        // flushed partial line is not.
        let expect = 0;
        let lineBytes = 0;
        for (const x of frames) {
          if (x.chunkIndex === null) {
            assert.equal(x.truncated, false);
            assert.equal(expect, 0, "a whole frame never interrupts a split line");
            continue;
          }
          assert.equal(x.chunkIndex, expect);
          lineBytes += x.bytes.length;
          if (x.truncated) {
            expect++;
            continue;
          }
          assert.equal(x.totalChunks, expect + 1);
          assert.ok(lineBytes >= limit * 2, "only a line of at least lineLimit is split");
          expect = 0;
          lineBytes = 0;
        }
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("OutputFramer frames of valid UTF-8 decode without U+FFFD (fast-check)", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), fc.nat(50), (s, cut) => {
      const bytes = enc.encode(s.replaceAll("\uFFFD", "?"));
      const f = new OutputFramer({ framing: "line", chunkSize: 8, lineLimit: 8 });
      const c = cut % (bytes.length + 1);
      const frames = [
        ...f.push(bytes.slice(0, c)).map((x) => text(x)),
        ...f.flushPartial().map((x) => text(x)),
        ...f.push(bytes.slice(c)).map((x) => text(x)),
        ...f.end().map((x) => text(x)),
      ];
      for (const t of frames) assert.ok(!t.includes("\uFFFD"));
    }),
    { numRuns: 300 },
  );
});
