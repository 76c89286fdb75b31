import assert from "node:assert/strict";
import { OutputLog, PAGE_BYTES } from "../../lib/output/output_log.ts";
import type { StreamName } from "../../lib/types.ts";
import { appendChunk as add } from "../_output.ts";

const dec = new TextDecoder();

/** Asserts two byte arrays are equal (node's deepEqual is slow on large typed arrays). */
function assertBytes(actual: Uint8Array, expected: Uint8Array, message?: string): void {
  assert.equal(actual.length, expected.length, message);
  const at = actual.findIndex((b, i) => b !== expected[i]);
  assert.equal(at, -1, `${message ?? "bytes"} differ at ${at}`);
}

/** The retained chunks' text, one string per chunk. */
function texts(log: OutputLog, from = 0): string[] {
  return log.since(from).chunks.map((c) => dec.decode(log.read(c.seq, c.seq + c.bytes)));
}

Deno.test("OutputLog.since() returns chunks after an offset, and how much was dropped", () => {
  const log = new OutputLog(10);
  add(log, "aaaa");
  add(log, "bbbb");
  add(log, "cccc"); // 12 bytes > 10: "aaaa" goes
  assert.equal(log.first, 4);
  assert.equal(log.next, 12);
  assert.deepEqual(texts(log), ["bbbb", "cccc"]);
  assert.equal(log.since(0).skipped, 4);
  assert.deepEqual(texts(log, 6), ["bbbb", "cccc"]);
  assert.deepEqual(texts(log, 8), ["cccc"]);
  assert.deepEqual(log.since(12).chunks, []);
});

Deno.test("OutputLog keeps each chunk's stream and framing flags", () => {
  const log = new OutputLog(1000);
  add(log, "out\n");
  add(log, "err-a", { stream: "stderr", truncated: true, chunkIndex: 0 });
  add(log, "err-b\n", { stream: "stderr", chunkIndex: 1, totalChunks: 2 });
  add(log, "", { chunkIndex: 7, totalChunks: 8 });
  const chunks = log.since(0).chunks;
  assert.deepEqual(chunks, [
    { stream: "stdout", seq: 0, bytes: 4, truncated: false, chunkIndex: null, totalChunks: null },
    { stream: "stderr", seq: 4, bytes: 5, truncated: true, chunkIndex: 0, totalChunks: null },
    { stream: "stderr", seq: 9, bytes: 6, truncated: false, chunkIndex: 1, totalChunks: 2 },
    { stream: "stdout", seq: 15, bytes: 0, truncated: false, chunkIndex: 7, totalChunks: 8 },
  ]);
});

Deno.test("OutputLog keeps the newest chunk even when it alone exceeds the limit", () => {
  const log = new OutputLog(2);
  add(log, "long chunk");
  assert.deepEqual(texts(log), ["long chunk"]);
});

Deno.test("OutputLog with limit 0 keeps nothing but still tracks offsets", () => {
  const log = new OutputLog(0);
  add(log, "abc");
  assert.equal(log.next, 3);
  assert.deepEqual(log.since(0), { chunks: [], next: 3, skipped: 3 });
  assert.equal(log.held, 0);
});

Deno.test("OutputLog stays bounded across many appends, in bytes and in memory", () => {
  const log = new OutputLog(100);
  for (let i = 0; i < 10_000; i++) add(log, "0123456789");
  assert.equal(log.since(0).chunks.length, 10);
  assert.equal(log.first, 99_900);
  assert.ok(log.held <= 2 * PAGE_BYTES + 64 * 16, `holds ${log.held} bytes`);
});

Deno.test("OutputLog reads bytes back exactly across page boundaries, running and finished", () => {
  const log = new OutputLog(3 * PAGE_BYTES);
  const all: number[] = [];
  // Odd-sized chunks of every byte value, so chunks straddle pages.
  for (let i = 0; i < 50; i++) {
    const data = Uint8Array.from({ length: 1000 + i * 37 }, (_, j) => (i * 7 + j) & 0xff);
    log.append({
      stream: i % 3 === 0 ? "stderr" : "stdout",
      seq: log.next,
      bytes: data.length,
      truncated: false,
      chunkIndex: null,
      totalChunks: null,
    }, data);
    all.push(...data);
  }
  const expected = Uint8Array.from(all.slice(log.first));
  assert.ok(log.first > 0, "the oldest output was dropped");
  assert.ok(log.bytes <= 3 * PAGE_BYTES);
  assertBytes(log.read(0, log.next), expected);
  assertBytes(log.read(log.first + 5, log.first + 20_000), expected.subarray(5, 20_000));
  log.finish();
  assertBytes(log.read(0, log.next), expected, "the same bytes once finished");
  assert.throws(() => add(log, "x"), TypeError);
});

Deno.test("OutputLog.finish() copies a short output out of its mostly empty page", () => {
  const log = new OutputLog(1 << 20);
  add(log, "héllo\n");
  assert.equal(log.held, PAGE_BYTES + 32 * 8);
  log.finish();
  assert.equal(log.held, 7 + 2 * 8, "its bytes and one chunk's metadata");
  assert.equal(dec.decode(log.read(0, log.next)), "héllo\n");
  // A long output keeps its pages: copying it would cost more than it saves.
  const long = new OutputLog(1 << 20);
  for (let i = 0; i < 10; i++) add(long, "x".repeat(PAGE_BYTES - 3));
  const held = long.held;
  long.finish();
  assert.ok(long.held <= held);
  assert.ok(long.held >= 10 * (PAGE_BYTES - 3));
  assert.equal(dec.decode(long.read(long.next - 4, long.next)), "xxxx");
});

Deno.test("OutputLog.trimTo() drops the oldest chunks, keeping the newest", () => {
  const log = new OutputLog(1000);
  for (const t of ["aaaa", "bbbb", "cccc"]) add(log, t);
  assert.equal(log.trimTo(5), 8);
  assert.deepEqual(texts(log), ["cccc"]);
  assert.equal(log.trimTo(0), 0, "the newest chunk stays");
  log.finish();
  assert.deepEqual(texts(log), ["cccc"]);
});

Deno.test("OutputLog.clear() drops the bytes but keeps counting offsets", () => {
  const log = new OutputLog(100);
  add(log, "abc");
  log.clear();
  assert.equal(log.bytes, 0);
  assert.equal(log.held, 0);
  assert.equal(log.next, 3);
  add(log, "de");
  assert.deepEqual(texts(log), ["de"]);
});

Deno.test("OutputLog.append() refuses a chunk out of order", () => {
  const log = new OutputLog(100);
  const stream: StreamName = "stdout";
  const chunk = { stream, seq: 5, bytes: 1, truncated: false, chunkIndex: null, totalChunks: null };
  assert.throws(() => log.append(chunk, new Uint8Array(1)), RangeError);
});
