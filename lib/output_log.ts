/**
 * The most recent output of one execution, bounded in bytes and addressed by
 * absolute offsets (`seq`), so a reader can ask for "everything after X"
 * while the run goes on or after it has ended.
 *
 * @module
 */
import type { OutputChunk } from "./types.ts";

/** What {@linkcode OutputLog.since} returns. */
export interface OutputSlice {
  chunks: OutputChunk[];
  /** Offset to ask for next time. */
  next: number;
  /** Bytes between the requested offset and the first retained one (dropped). */
  skipped: number;
}

/**
 * A byte-bounded ring of output chunks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputLog } from "./output_log.ts";
 * const log = new OutputLog(8);
 * const chunk = (seq: number, data: string) => ({
 *   stream: "stdout" as const, data, seq, bytes: data.length,
 *   truncated: false, chunkIndex: null, totalChunks: null,
 * });
 * log.append(chunk(0, "hello\n"));
 * log.append(chunk(6, "world\n")); // pushes "hello\n" out
 * const slice = log.since(0);
 * assert.equal(slice.skipped, 6);
 * assert.deepEqual(slice.chunks.map((c) => c.data), ["world\n"]);
 * assert.equal(slice.next, 12);
 * ```
 */
export class OutputLog {
  readonly #limit: number;
  /** Dropped slots are cleared at once (undefined), so their text can be collected. */
  #chunks: (OutputChunk | undefined)[] = [];
  #head = 0;
  #bytes = 0;
  #next = 0;

  /** Keeps at most `limitBytes` of the newest output (always the newest chunk). */
  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  /** Offset just past the last byte appended. */
  get next(): number {
    return this.#next;
  }

  /** Bytes retained now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Drops everything retained (offsets keep counting). */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#bytes = 0;
  }

  /** Offset of the oldest retained byte. */
  get first(): number {
    return this.#chunks[this.#head]?.seq ?? this.#next;
  }

  /** Adds a chunk (chunks arrive in seq order). */
  append(chunk: OutputChunk): void {
    this.#next = chunk.seq + chunk.bytes;
    if (this.#limit === 0) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.bytes;
    while (this.#bytes > this.#limit && this.#chunks.length - this.#head > 1) {
      this.#bytes -= this.#chunks[this.#head]!.bytes;
      this.#chunks[this.#head] = undefined;
      this.#head++;
    }
    // Compact now and then so the array of empty slots does not grow forever.
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Retained chunks that end after `offset`, oldest first. */
  since(offset: number): OutputSlice {
    const chunks: OutputChunk[] = [];
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const c = this.#chunks[i]!;
      if (c.seq + c.bytes > offset) chunks.push(c);
    }
    const skipped = Math.max(0, Math.min(this.first, this.#next) - offset);
    return { chunks, next: this.#next, skipped };
  }
}
