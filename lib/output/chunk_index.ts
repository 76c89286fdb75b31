/**
 * Where each retained chunk of an `OutputLog` (lib/output/output_log.ts)
 * ends and how it was framed, kept as two float64 per chunk in one typed
 * array rather than as objects: a chunk starts where the previous one
 * ended, so its end offset and its flags are all it needs.
 *
 * @module
 */
import type { RetainedChunk } from "./output_log.ts";

/** Bytes of metadata per chunk: its end offset and its flags, as two float64. */
export const CHUNK_META_BYTES = 16;

const STDERR = 1;
const TRUNCATED = 2;
const LAST_PIECE = 4;
const FLAGS = 8;

function encodeMeta(c: RetainedChunk): number {
  let meta = c.stream === "stderr" ? STDERR : 0;
  if (c.truncated) meta |= TRUNCATED;
  if (c.totalChunks !== null) meta |= LAST_PIECE;
  // chunkIndex + 1 above the flags; a float64 holds it exactly for any real run.
  return meta + (c.chunkIndex === null ? 0 : (c.chunkIndex + 1) * FLAGS);
}

/**
 * The chunks of one log, oldest first; the oldest are dropped from the
 * front. Offsets are the log's; the oldest chunk's start (the log's first
 * retained byte) is passed in where it is needed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ChunkIndex } from "./chunk_index.ts";
 * const index = new ChunkIndex(null);
 * const piece = { truncated: false, chunkIndex: null, totalChunks: null };
 * index.push(4, { stream: "stdout", seq: 0, bytes: 4, ...piece });
 * index.push(9, { stream: "stderr", seq: 4, bytes: 5, ...piece });
 * assert.equal(index.dropOldest(), 4); // the next chunk starts there
 * assert.deepEqual([...index.from(0, 4)], [{ stream: "stderr", seq: 4, bytes: 5, ...piece }]);
 * ```
 */
export class ChunkIndex {
  /** Told how many bytes the metadata grew (or shrank) by. */
  readonly #charge: ((delta: number) => void) | null;
  /** [end offset, meta] of each chunk; chunks #head to #tail - 1 are retained. */
  #entries: Float64Array = new Float64Array(0);
  #head = 0;
  #tail = 0;

  /** An empty index, whose metadata bytes are reported to `charge`. */
  constructor(charge: ((delta: number) => void) | null) {
    this.#charge = charge;
  }

  /** Chunks retained. */
  get count(): number {
    return this.#tail - this.#head;
  }

  /** Whether chunks were dropped from the front since the last compaction. */
  get hasDropped(): boolean {
    return this.#head > 0;
  }

  /** Memory the metadata holds. */
  get heldBytes(): number {
    return this.#entries.length * 8;
  }

  /** Adds `chunk`, which ends at offset `end`. */
  push(end: number, chunk: RetainedChunk): void {
    if (this.#tail * 2 === this.#entries.length) {
      if (this.#head > 0) {
        // Reuse the room dropped chunks left before growing.
        this.#entries.copyWithin(0, this.#head * 2, this.#tail * 2);
        this.#tail -= this.#head;
        this.#head = 0;
      }
      if (this.#tail * 2 === this.#entries.length) {
        const grown = new Float64Array(Math.max(32, this.#entries.length * 2));
        grown.set(this.#entries);
        this.#setEntries(grown);
      }
    }
    this.#entries[this.#tail * 2] = end;
    this.#entries[this.#tail * 2 + 1] = encodeMeta(chunk);
    this.#tail++;
  }

  /** The oldest chunk, which starts at `first`; undefined when there is none. */
  oldest(first: number): RetainedChunk | undefined {
    return this.#tail > this.#head ? this.#chunk(this.#head, first) : undefined;
  }

  /** Drops the oldest chunk; returns its end, where the oldest one left starts. */
  dropOldest(): number {
    const end = this.#entries[this.#head * 2]!;
    this.#head++;
    if (this.#head === this.#tail) this.#head = this.#tail = 0;
    return end;
  }

  /** Drops every chunk and the memory they held. */
  clear(): void {
    this.#head = this.#tail = 0;
    this.#setEntries(new Float64Array(0));
  }

  /** Moves the retained chunks into an array of their exact size. */
  compact(): void {
    this.#setEntries(this.#entries.slice(this.#head * 2, this.#tail * 2));
    this.#tail -= this.#head;
    this.#head = 0;
  }

  /** Chunks that end after `offset`, oldest first; `first` is where the oldest starts. */
  *from(offset: number, first: number): Generator<RetainedChunk> {
    let lo = this.#head;
    let hi = this.#tail;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#entries[mid * 2]! > offset) hi = mid;
      else lo = mid + 1;
    }
    for (let i = lo; i < this.#tail; i++) yield this.#chunk(i, first);
  }

  /** Chunks newest first; `first` is where the oldest starts. */
  *backward(first: number): Generator<RetainedChunk> {
    for (let i = this.#tail - 1; i >= this.#head; i--) yield this.#chunk(i, first);
  }

  #chunk(i: number, first: number): RetainedChunk {
    const e = this.#entries;
    const seq = i === this.#head ? first : e[(i - 1) * 2]!;
    const meta = e[i * 2 + 1]!;
    const flags = meta % FLAGS;
    const index = Math.floor(meta / FLAGS) - 1;
    return {
      stream: flags & STDERR ? "stderr" : "stdout",
      seq,
      bytes: e[i * 2]! - seq,
      truncated: (flags & TRUNCATED) !== 0,
      chunkIndex: index < 0 ? null : index,
      totalChunks: flags & LAST_PIECE ? index + 1 : null,
    };
  }

  #setEntries(entries: Float64Array): void {
    this.#charge?.(entries.length * 8 - this.#entries.length * 8);
    this.#entries = entries;
  }
}
