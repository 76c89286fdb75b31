/**
 * The on-disk layout of a run's spill: its sizes and limits, and the
 * 16-byte header before each chunk's bytes in a segment file (length,
 * stream and flags, piece index, piece count, little-endian), so chunks read
 * back framed exactly as they were written.
 *
 * @module
 */
import type { RetainedChunk } from "./output_log.ts";

/** Largest segment file: 8 MiB (smaller when a quarter of the per-run cap is less). */
export const SEGMENT_BYTES = 8 * 1024 * 1024;
/** File bytes between two entries of the sparse index: 64 KiB. */
export const INDEX_EVERY = 64 * 1024;
/** Size of a run's write buffer (larger if a record needs it), and of the shared read block: 64 KiB. */
export const WRITE_BUFFER_BYTES = 64 * 1024;
/** Size of the write buffers of a run that spills a lot, written off the main thread: 256 KiB. */
export const LARGE_BUFFER_BYTES = 256 * 1024;
/** Bytes a run spills through {@linkcode WRITE_BUFFER_BYTES} buffers before it may take large ones: 4 MiB. */
export const LARGE_AFTER = 4 * 1024 * 1024;
/** Bytes of large write buffers all runs together hold at most: 4 MiB. */
export const LARGE_TOTAL = 4 * 1024 * 1024;
/** Full large write buffers a run queues for writing off the main thread at most; past it, writes are synchronous. */
export const WRITE_QUEUE = 1;
/** Bytes of a record's header. */
export const RECORD_HEADER_BYTES = 16;

const STDERR = 1;
const TRUNCATED = 2;

/**
 * Writes the header of `chunk`'s record at `at` of `view`. A null piece
 * index or count is stored as 0, others one more than they are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeHeader, encodeHeader, RECORD_HEADER_BYTES } from "./spill_format.ts";
 * const view = new DataView(new ArrayBuffer(RECORD_HEADER_BYTES));
 * const chunk = { stream: "stderr" as const, seq: 7, bytes: 5, truncated: true,
 *   chunkIndex: 0, totalChunks: 2 };
 * encodeHeader(view, 0, chunk);
 * assert.deepEqual(decodeHeader(view, 0, 7), chunk);
 * ```
 */
export function encodeHeader(view: DataView, at: number, chunk: RetainedChunk): void {
  let flags = chunk.stream === "stderr" ? STDERR : 0;
  if (chunk.truncated) flags |= TRUNCATED;
  view.setUint32(at, chunk.bytes, true);
  view.setUint32(at + 4, flags, true);
  view.setUint32(at + 8, chunk.chunkIndex === null ? 0 : chunk.chunkIndex + 1, true);
  view.setUint32(at + 12, chunk.totalChunks === null ? 0 : chunk.totalChunks + 1, true);
}

/**
 * The chunk whose record header sits at `at` of `view`, starting at offset
 * `seq` (the header does not hold it: records follow each other).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeHeader } from "./spill_format.ts";
 * const view = new DataView(new ArrayBuffer(16));
 * view.setUint32(0, 6, true);
 * assert.deepEqual(decodeHeader(view, 0, 100), { stream: "stdout", seq: 100, bytes: 6,
 *   truncated: false, chunkIndex: null, totalChunks: null });
 * ```
 */
export function decodeHeader(view: DataView, at: number, seq: number): RetainedChunk {
  const bytes = view.getUint32(at, true);
  const flags = view.getUint32(at + 4, true);
  const index = view.getUint32(at + 8, true);
  const total = view.getUint32(at + 12, true);
  return {
    stream: flags & STDERR ? "stderr" : "stdout",
    seq,
    bytes,
    truncated: (flags & TRUNCATED) !== 0,
    chunkIndex: index === 0 ? null : index - 1,
    totalChunks: total === 0 ? null : total - 1,
  };
}
