/**
 * The most recent output of one execution, bounded in bytes and addressed by
 * absolute offsets (`seq`), so a reader can ask for "everything after X"
 * while the run goes on or after it has ended.
 *
 * Output is kept as the raw bytes the child wrote, never as strings: text is
 * decoded only when it is read (`read_output`, the tail of an MCP result,
 * a replay). Strings held for the life of a run are promoted to V8's old
 * generation and linger there until a full collection; bytes live outside
 * the JS heap, in fixed-size pages a running run reuses as its oldest output
 * is dropped. When the run ends its pages stay, unless they are mostly
 * empty (a short output): those few bytes are copied into a buffer of their
 * exact size.
 * Per chunk only its end offset and framing flags are kept, in a typed array
 * (a chunk starts where the previous one ended; lib/output/chunk_index.ts).
 *
 * What memory gives up (past `output-retention`, or under the server's
 * budget) spills to disk first when the log's memory has a spill store
 * (lib/output/spill.ts): the reading API ({@linkcode OutputLog.first},
 * `chunksFrom`, `read`, `copyTo`, `byteAt`) covers the spilled range too,
 * so readers never know where the bytes come from. Disk and memory meet:
 * the spill ends where memory starts. {@linkcode OutputLog.evict} moves
 * all of a finished run's output to disk; {@linkcode OutputLog.clear}
 * forgets it, files included.
 *
 * @module
 */
import type { StreamName } from "../types.ts";
import { CHUNK_META_BYTES, ChunkIndex } from "./chunk_index.ts";
import { release } from "./memory.ts";
import { checkRange, readClipped } from "./byte_range.ts";
import type { RunSpill, SpillStore } from "./spill.ts";

/** A retained chunk: where it sits in the run's output and how it was framed. */
export interface RetainedChunk {
  stream: StreamName;
  /** Offset of the chunk's first byte in the run's combined output. */
  seq: number;
  /** Its length in bytes. */
  bytes: number;
  /** True on every piece of a split line but the last. */
  truncated: boolean;
  /** Index of this piece within a split line, else null. */
  chunkIndex: number | null;
  /** Number of pieces of a split line, on its last piece, else null. */
  totalChunks: number | null;
}

/** What {@linkcode OutputLog.since} returns. */
export interface OutputSlice {
  chunks: RetainedChunk[];
  /** Offset to ask for next time. */
  next: number;
  /** Bytes between the requested offset and the first retained one (dropped). */
  skipped: number;
}

/**
 * Where a log's memory comes from and is accounted: pages to write into, and
 * the bytes it holds otherwise. Without one, a log allocates its own pages.
 * The server's {@linkcode OutputMemory} is one, with a budget behind it.
 */
export interface LogMemory {
  /** Size of every page {@linkcode take} returns. */
  readonly pageSize: number;
  /** A page for `log` to write into (asked for after {@linkcode room}). */
  take(log: OutputLog): Uint8Array;
  /** Takes back a page `log` no longer uses. */
  give(log: OutputLog, page: Uint8Array): void;
  /** Whether `need` more bytes fit, after reclaiming what others may give up. */
  room(log: OutputLog, need: number): boolean;
  /** `log` holds `delta` more bytes besides its pages (exact buffers, chunk metadata). */
  charge(log: OutputLog, delta: number): void;
  /** `log` will take no more output. */
  finished(log: OutputLog): void;
  /** `log` holds nothing any more and will hold nothing again. */
  forget(log: OutputLog): void;
  /** Bytes a running log is left under pressure. */
  readonly runMinimum: number;
  /** Where output memory gives up goes, if anywhere. */
  readonly spill?: SpillStore | null;
}

/** Size of the pages a log allocates itself when it has no {@linkcode LogMemory}. */
export const PAGE_BYTES = 16 * 1024;
/** Bytes of spilled output {@linkcode OutputLog.chunksBackward} goes back at most (1 MiB). */
export const BACKWARD_SPILL_BYTES = 1024 * 1024;
/**
 * A byte-bounded ring of one run's output chunks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputLog } from "./output_log.ts";
 * const log = new OutputLog(8);
 * const add = (text: string) => {
 *   const data = new TextEncoder().encode(text);
 *   log.append({ stream: "stdout", seq: log.next, bytes: data.length,
 *     truncated: false, chunkIndex: null, totalChunks: null }, data);
 * };
 * add("hello\n");
 * add("world\n"); // pushes "hello\n" out
 * const slice = log.since(0);
 * assert.equal(slice.skipped, 6);
 * assert.deepEqual(slice.chunks.map((c) => [c.seq, c.bytes]), [[6, 6]]);
 * assert.equal(new TextDecoder().decode(log.read(6, 12)), "world\n");
 * assert.equal(slice.next, 12);
 * ```
 */
export class OutputLog {
  readonly #limit: number;
  readonly #memory: LogMemory | null;
  readonly #pageSize: number;
  readonly #index: ChunkIndex;
  readonly #name: string;
  /** Where dropped chunks go: null until the first drop; undefined when there is no spill. */
  #spill: RunSpill | null | undefined = null;
  /** Offset of the oldest byte in memory. */
  #first = 0;
  #next = 0;
  /** While running: pages holding offsets from #base on. */
  #pages: Uint8Array[] = [];
  #base = 0;
  /** Instead of pages, once finished with little output: exactly the bytes from #sealedBase to #next. */
  #sealed: Uint8Array | null = null;
  #sealedBase = 0;
  #finished = false;

  /**
   * Keeps at most `limitBytes` of the newest output in memory (always the
   * newest chunk), with its memory from `memory` when given, and spills
   * what it drops to `memory.spill` when there is one, under `name` (the
   * execution id).
   */
  constructor(limitBytes: number, memory: LogMemory | null = null, name = "run") {
    this.#limit = limitBytes;
    this.#memory = memory;
    this.#name = name;
    this.#pageSize = memory?.pageSize ?? PAGE_BYTES;
    this.#index = new ChunkIndex(memory === null ? null : (delta) => memory.charge(this, delta));
  }

  /** Offset just past the last byte appended. */
  get next(): number {
    return this.#next;
  }

  /** Offset of the oldest retained byte, on disk or in memory. */
  get first(): number {
    const spill = this.#spill;
    return spill && spill.bytes > 0 ? spill.first : this.#first;
  }

  /** Bytes retained in memory now. */
  get bytes(): number {
    return this.#next - this.#first;
  }

  /** Bytes of output on disk now (before those in memory). */
  get spilled(): number {
    return this.#spill?.bytes ?? 0;
  }

  /** Whether the run has ended ({@linkcode finish}). */
  get finished(): boolean {
    return this.#finished;
  }

  /** Resolves once the spill has no write under way (its write buffers are then freed). */
  settled(): Promise<void> {
    return this.#spill?.settled() ?? Promise.resolve();
  }

  /** Memory this log holds: its pages (or exact buffer), chunk metadata, the spill's write buffers. */
  get held(): number {
    return this.#pages.length * this.#pageSize + (this.#sealed?.length ?? 0) +
      this.#index.heldBytes + (this.#spill?.held ?? 0);
  }

  /**
   * Adds a chunk and its bytes; chunks arrive in order, each starting where
   * the previous one ended (`chunk.seq === next`). The bytes are copied.
   *
   * @throws {RangeError} when `chunk.seq` is not {@linkcode next}.
   * @throws {TypeError} after {@linkcode finish}.
   */
  append(chunk: RetainedChunk, data: Uint8Array): void {
    if (chunk.seq !== this.#next) {
      throw new RangeError(`Chunk at offset ${chunk.seq}, expected ${this.#next}`);
    }
    if (this.#finished) throw new TypeError("The log is finished");
    const n = data.length;
    if (this.#limit === 0) {
      this.#spillTo()?.append(chunk, (target, at) => target.set(data, at));
      this.#next += n;
      this.#first = this.#next;
      return;
    }
    // Drop first, so the pages that frees are the ones this chunk reuses.
    while (this.#index.count > 0 && this.bytes + n > this.#limit) this.#dropOldest();
    const memory = this.#memory;
    if (memory !== null && !memory.room(this, this.#pagesNeeded(n) + CHUNK_META_BYTES)) {
      // Over the budget even after others gave up what they could: this run keeps its minimum.
      while (this.#index.count > 0 && this.bytes + n > memory.runMinimum) this.#dropOldest();
    }
    this.#releasePages();
    this.#write(data);
    this.#index.push(this.#next + n, chunk);
    this.#next += n;
  }

  /**
   * Drops the oldest chunks until at most `maxBytes` are retained (the
   * newest chunk always stays); returns the bytes dropped. A running run
   * gives up output this way when the server's budget runs short.
   */
  trimTo(maxBytes: number): number {
    const before = this.bytes;
    while (this.#index.count > 1 && this.bytes > maxBytes) this.#dropOldest();
    if (this.#sealed !== null) this.#reseal();
    else this.#releasePages();
    return before - this.bytes;
  }

  /**
   * Forgets everything retained, in memory and on disk (offsets keep
   * counting): the execution itself is being dropped.
   */
  clear(): void {
    this.#first = this.#next;
    this.#index.clear();
    this.#releasePages();
    this.#setSealed(null);
    this.#spill?.discard();
    this.#spill = undefined;
    if (this.#finished) this.#memory?.forget(this);
  }

  /**
   * Goes on at `offset`: the output before it never reached this log (a
   * relay that joined a run late, or fell behind its trimmed stream). What
   * is retained is forgotten, as by {@linkcode clear}: the log stays one run
   * of consecutive bytes.
   *
   * @throws {RangeError} when `offset` is before {@linkcode next}.
   */
  skipTo(offset: number): void {
    if (offset < this.#next) throw new RangeError(`Offset ${offset} is before ${this.#next}`);
    if (offset === this.#next) return;
    if (this.#next > this.#first || this.spilled > 0) this.clear();
    this.#next = offset;
    this.#first = offset;
  }

  /**
   * Gives up all the memory the log holds: its output moves to the spill
   * (where there is one, and room), else it is dropped. Returns the bytes
   * memory gave up. A finished run's output stays readable this way
   * (`retained-output-total`, the server's budget).
   *
   * @example A finished run's output moves to disk and reads back from there
   * ```ts
   * import assert from "node:assert/strict";
   * import { OutputMemory } from "./memory.ts";
   * import { OutputLog } from "./output_log.ts";
   * import { SpillStore } from "./spill.ts";
   * const dir = Deno.makeTempDirSync();
   * const memory = new OutputMemory({ budget: 1 << 20 });
   * memory.spill = SpillStore.open({ dir, perRun: 1 << 20, total: 1 << 20 });
   * const log = new OutputLog(1024, memory, "demo");
   * const data = new TextEncoder().encode("built\n");
   * log.append({ stream: "stdout", seq: 0, bytes: data.length, truncated: false,
   *   chunkIndex: null, totalChunks: null }, data);
   * log.finish();
   * assert.equal(log.evict(), 6);
   * assert.equal(log.held, 0, "no memory held");
   * assert.deepEqual([log.first, log.spilled], [0, 6]);
   * assert.equal(new TextDecoder().decode(log.read(0, 6)), "built\n");
   * log.clear(); // the execution is dropped: its files go
   * assert.equal(memory.spill.runs, 0);
   * memory.spill.close();
   * Deno.removeSync(dir, { recursive: true });
   * ```
   */
  evict(): number {
    const before = this.bytes;
    while (this.#index.count > 0) this.#dropOldest();
    this.#index.clear();
    this.#releasePages();
    this.#setSealed(null);
    if (this.#finished) {
      this.#spill?.finish();
      this.#memory?.forget(this);
    }
    return before;
  }

  /**
   * The run has ended: no more output comes. Pages that are mostly empty
   * give their bytes to one buffer of the exact size and go back (copying a
   * long output would only cost time and, for a while, twice the memory).
   * Idempotent.
   */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const waste = this.#pages.length * this.#pageSize - this.bytes;
    if (waste > this.bytes / 4) {
      const sealed = new Uint8Array(this.bytes);
      this.#copyMemory(this.#first, this.#next, sealed, 0);
      for (const page of this.#pages) this.#memory?.give(this, page);
      this.#pages = [];
      this.#setSealed(sealed);
    }
    this.#index.compact();
    this.#spill?.finish();
    this.#memory?.finished(this);
  }

  /** Retained chunks (disk included) that end after `offset`, oldest first. */
  since(offset: number): OutputSlice {
    const skipped = Math.max(0, Math.min(this.first, this.#next) - offset);
    return { chunks: [...this.chunksFrom(offset)], next: this.#next, skipped };
  }

  /**
   * Retained chunks (disk included) that end after `offset`, oldest first,
   * one at a time. Read it through before the log changes again.
   */
  *chunksFrom(offset: number): Generator<RetainedChunk> {
    const spill = this.#spill;
    // Chunks that move to disk while a reader waits are read there: memory starts after them.
    if (spill && spill.bytes > 0 && offset < spill.next) yield* spill.chunksFrom(offset);
    yield* this.#index.from(offset, this.#first);
  }

  /**
   * Retained chunks, newest first, one at a time: those in memory, then at
   * most the newest {@linkcode BACKWARD_SPILL_BYTES} on disk (a tail needs
   * no more, and going further back costs disk reads).
   */
  *chunksBackward(): Generator<RetainedChunk> {
    yield* this.#index.backward(this.#first);
    const spill = this.#spill;
    if (!spill || spill.bytes === 0) return;
    const stop = spill.next - BACKWARD_SPILL_BYTES;
    for (const chunk of spill.chunksBackward()) {
      yield chunk;
      if (chunk.seq <= stop) return;
    }
  }

  /** A copy of the retained bytes (disk included) from `from` to `to` (clipped to what is retained). */
  read(from: number, to: number): Uint8Array {
    return readClipped(this, this.first, this.#next, from, to);
  }

  /**
   * Copies the retained bytes (disk included) from `from` to `to` into
   * `target` at `at`.
   *
   * @throws {RangeError} when they are not all retained, or the disk fails.
   */
  copyTo(from: number, to: number, target: Uint8Array, at: number): void {
    if (!checkRange(from, to, this.first, this.#next, "retained")) return;
    if (from < this.#first) {
      const split = Math.min(to, this.#first);
      this.#spill!.copyTo(from, split, target, at);
      at += split - from;
      from = split;
      if (from >= to) return;
    }
    this.#copyMemory(from, to, target, at);
  }

  /** The retained byte at `offset` (disk included). */
  byteAt(offset: number): number {
    if (offset < this.#first) return this.#spill!.byteAt(offset);
    if (this.#sealed !== null) return this.#sealed[offset - this.#sealedBase]!;
    const rel = offset - this.#base;
    const index = Math.floor(rel / this.#pageSize);
    return this.#pages[index]![rel - index * this.#pageSize]!;
  }

  /** Copies bytes held in memory. */
  #copyMemory(from: number, to: number, target: Uint8Array, at: number): void {
    if (this.#sealed !== null) {
      target.set(this.#sealed.subarray(from - this.#sealedBase, to - this.#sealedBase), at);
      return;
    }
    const size = this.#pageSize;
    let rel = from - this.#base;
    const end = to - this.#base;
    while (rel < end) {
      const index = Math.floor(rel / size);
      const pos = rel - index * size;
      const len = Math.min(size - pos, end - rel);
      target.set(this.#pages[index]!.subarray(pos, pos + len), at);
      at += len;
      rel += len;
    }
  }

  /** Drops the oldest chunk from memory, spilling it first. */
  #dropOldest(): void {
    const spill = this.#spillTo();
    if (spill) {
      const chunk = this.#index.oldest(this.#first)!;
      spill.append(chunk, (target, at) => {
        this.#copyMemory(chunk.seq, chunk.seq + chunk.bytes, target, at);
      });
    }
    this.#first = this.#index.dropOldest();
  }

  /** The run's spill, opened on first use; null when there is none (or it failed). */
  #spillTo(): RunSpill | null {
    if (this.#spill === null) {
      const memory = this.#memory;
      this.#spill = memory?.spill?.run(this.#name, this.#first, (d) => memory.charge(this, d)) ??
        undefined;
      // A finished run's output moves to disk at once, not through the write queue.
      if (this.#finished) this.#spill?.finish();
    }
    const spill = this.#spill;
    return spill === undefined || spill.discarded ? null : spill;
  }

  /** Bytes of new pages writing `n` more bytes takes. */
  #pagesNeeded(n: number): number {
    const room = this.#pages.length * this.#pageSize - (this.#next - this.#base);
    return n <= room ? 0 : Math.ceil((n - room) / this.#pageSize) * this.#pageSize;
  }

  #write(data: Uint8Array): void {
    if (this.#pages.length === 0) this.#base = this.#next;
    const size = this.#pageSize;
    let rel = this.#next - this.#base;
    let off = 0;
    while (off < data.length) {
      const index = Math.floor(rel / size);
      if (index === this.#pages.length) this.#pages.push(this.#newPage());
      const pos = rel - index * size;
      const len = Math.min(size - pos, data.length - off);
      this.#pages[index]!.set(data.subarray(off, off + len), pos);
      off += len;
      rel += len;
    }
  }

  #newPage(): Uint8Array {
    return this.#memory?.take(this) ?? new Uint8Array(this.#pageSize);
  }

  /** Gives back the pages that hold only dropped bytes. */
  #releasePages(): void {
    const pages = this.#pages;
    if (this.#first === this.#next) {
      for (const page of pages) this.#memory?.give(this, page);
      this.#pages = [];
      return;
    }
    let drop = 0;
    while (drop < pages.length && this.#first - this.#base >= this.#pageSize) {
      this.#memory?.give(this, pages[drop]!);
      this.#base += this.#pageSize;
      drop++;
    }
    if (drop > 0) pages.splice(0, drop);
  }

  /** A sealed log that lost its oldest chunks keeps only the rest. */
  #reseal(): void {
    const sealed = this.#sealed!;
    const offset = this.#first - this.#sealedBase;
    if (offset > 0) this.#setSealed(sealed.slice(offset));
    if (this.#index.hasDropped) this.#index.compact();
  }

  #setSealed(sealed: Uint8Array | null): void {
    this.#memory?.charge(this, (sealed?.length ?? 0) - (this.#sealed?.length ?? 0));
    const old = this.#sealed;
    this.#sealed = sealed;
    this.#sealedBase = this.#first;
    // Only this log refers to its sealed buffer: free it now, not at the next full collection.
    if (old !== null && old !== sealed) release(old);
  }
}
