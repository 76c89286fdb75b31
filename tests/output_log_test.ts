import assert from "node:assert/strict";
import { OutputLog } from "../lib/output_log.ts";
import type { OutputChunk } from "../lib/types.ts";

const chunk = (seq: number, data: string): OutputChunk => ({
  stream: "stdout",
  data,
  seq,
  bytes: data.length,
  truncated: false,
  chunkIndex: null,
  totalChunks: null,
});

Deno.test("OutputLog.since() returns chunks after an offset, and how much was dropped", () => {
  const log = new OutputLog(10);
  log.append(chunk(0, "aaaa"));
  log.append(chunk(4, "bbbb"));
  log.append(chunk(8, "cccc")); // 12 bytes > 10: "aaaa" goes
  assert.equal(log.first, 4);
  assert.equal(log.next, 12);
  assert.deepEqual(log.since(0).chunks.map((c) => c.data), ["bbbb", "cccc"]);
  assert.equal(log.since(0).skipped, 4);
  assert.deepEqual(log.since(6).chunks.map((c) => c.data), ["bbbb", "cccc"]);
  assert.deepEqual(log.since(8).chunks.map((c) => c.data), ["cccc"]);
  assert.deepEqual(log.since(12).chunks, []);
});

Deno.test("OutputLog keeps the newest chunk even when it alone exceeds the limit", () => {
  const log = new OutputLog(2);
  log.append(chunk(0, "long chunk"));
  assert.deepEqual(log.since(0).chunks.map((c) => c.data), ["long chunk"]);
});

Deno.test("OutputLog with limit 0 keeps nothing but still tracks offsets", () => {
  const log = new OutputLog(0);
  log.append(chunk(0, "abc"));
  assert.equal(log.next, 3);
  assert.deepEqual(log.since(0), { chunks: [], next: 3, skipped: 3 });
});

Deno.test("OutputLog stays bounded across many appends", () => {
  const log = new OutputLog(100);
  for (let i = 0; i < 10_000; i++) log.append(chunk(i * 10, "0123456789"));
  assert.equal(log.since(0).chunks.length, 10);
  assert.equal(log.first, 99_900);
});

Deno.test("OutputLog.clear() drops the text but keeps counting offsets", () => {
  const log = new OutputLog(100);
  log.append(chunk(0, "abc"));
  log.clear();
  assert.equal(log.bytes, 0);
  assert.equal(log.next, 3);
  log.append(chunk(3, "de"));
  assert.deepEqual(log.since(0).chunks.map((c) => c.data), ["de"]);
});
