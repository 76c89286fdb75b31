import assert from "node:assert/strict";
import { ChunkIndex } from "../../lib/output/chunk_index.ts";
import type { RetainedChunk } from "../../lib/output/output_log.ts";

/** A stdout chunk of `bytes` at `seq`, whole. */
const chunk = (seq: number, bytes: number, extra: Partial<RetainedChunk> = {}): RetainedChunk => ({
  stream: "stdout",
  seq,
  bytes,
  truncated: false,
  chunkIndex: null,
  totalChunks: null,
  ...extra,
});

Deno.test("ChunkIndex keeps each chunk's stream and framing flags", () => {
  const index = new ChunkIndex(null);
  const chunks = [
    chunk(0, 4),
    chunk(4, 5, { stream: "stderr", truncated: true, chunkIndex: 0 }),
    chunk(9, 6, { stream: "stderr", chunkIndex: 1, totalChunks: 2 }),
    chunk(15, 0, { chunkIndex: 7, totalChunks: 8 }),
  ];
  for (const c of chunks) index.push(c.seq + c.bytes, c);
  assert.deepEqual([...index.from(0, 0)], chunks);
  assert.deepEqual([...index.backward(0)], [...chunks].reverse());
  assert.deepEqual([...index.from(9, 0)], chunks.slice(2));
});

Deno.test("ChunkIndex.dropOldest() returns where the next chunk starts", () => {
  const index = new ChunkIndex(null);
  for (let i = 0; i < 3; i++) index.push((i + 1) * 10, chunk(i * 10, 10));
  assert.equal(index.dropOldest(), 10);
  assert.equal(index.count, 2);
  assert.ok(index.hasDropped);
  assert.deepEqual([...index.from(0, 10)].map((c) => c.seq), [10, 20]);
  assert.equal(index.dropOldest(), 20);
  assert.equal(index.dropOldest(), 30);
  assert.equal(index.count, 0);
  assert.equal(index.hasDropped, false, "empty: starts over at the front");
});

Deno.test("ChunkIndex charges exactly the memory its metadata holds", () => {
  let charged = 0;
  const index = new ChunkIndex((delta) => charged += delta);
  for (let i = 0; i < 100; i++) index.push(i + 1, chunk(i, 1));
  assert.equal(charged, index.heldBytes);
  for (let i = 0; i < 60; i++) index.dropOldest();
  index.compact();
  assert.equal(index.heldBytes, 40 * 16, "compacted to the chunks left");
  assert.equal(charged, index.heldBytes);
  assert.deepEqual([...index.from(0, 60)].map((c) => c.seq).slice(0, 2), [60, 61]);
  index.clear();
  assert.equal(charged, 0);
});
