/**
 * Output that memory no longer holds, on disk: one capped log per run, so a
 * long run can be read back from offset 0 while memory stays bounded.
 *
 * A run's spill is a directory of segment files
 * (`<dir>/<instance>/<run>/<n>.seg`, {@linkcode SEGMENT_BYTES} each at
 * most), holding chunk records in order: a 16-byte header (length, stream
 * and flags, piece index, piece count) and the chunk's bytes, so chunks read
 * back framed exactly as they were written. A sparse index in memory (one
 * entry every {@linkcode INDEX_EVERY} bytes of file) finds the record an
 * offset falls in after reading at most that much.
 *
 * Writes are gathered in a buffer of {@linkcode WRITE_BUFFER_BYTES}, written
 * synchronously when it fills (a page-cache copy). A run that has spilled
 * {@linkcode LARGE_AFTER} (a big streaming output) gathers them in buffers
 * of {@linkcode LARGE_BUFFER_BYTES} instead, while all runs' large buffers
 * stay within {@linkcode LARGE_TOTAL}: a full one joins the run's write
 * queue, written off the main thread (one write at a time, each at its
 * file position), so the pipe-reading path only copies bytes. At most
 * {@linkcode WRITE_QUEUE} buffers wait: past that a buffer is written at
 * once, synchronously, so a slow disk costs time as it did before, never
 * memory. Every buffer a run holds is charged to the output memory budget. Readers never wait for a write: bytes still in a
 * buffer are read from it. {@linkcode RunSpill.flush} and
 * {@linkcode RunSpill.finish} write what is queued synchronously.
 *
 * Past its cap (`output-spill-per-run`) a run's oldest segment is deleted;
 * past the server's cap (`output-spill-total`) the oldest finished runs'
 * spill is deleted first, then the writing run drops its own oldest output,
 * so its spill stops growing. A disk error (full, read-only, files removed)
 * discards that run's spill: its files are deleted where possible, a warning
 * is logged once, and what only the disk held becomes a gap. Nothing here
 * throws into the writer (the pipe-reading path); a read that fails throws.
 *
 * @module
 */
import * as fs from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { logger } from "../log.ts";
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

const log = logger("spill");

/** Options of {@linkcode SpillStore.open}. */
export interface SpillOptions {
  /** The spill directory (`<data-dir>/spill`); this server's files go in a directory of its own inside. */
  dir: string;
  /** File bytes one run keeps at most (`output-spill-per-run`). */
  perRun: number;
  /** File bytes all runs keep together at most (`output-spill-total`). */
  total: number;
  /** Largest segment file; default {@linkcode SEGMENT_BYTES} (at most a quarter of `perRun`). */
  segmentBytes?: number;
  /** File bytes between sparse index entries; default {@linkcode INDEX_EVERY}. */
  indexEvery?: number;
}

/** One segment file of a run's spill. */
interface Segment {
  path: string;
  /** The write queue's file while it is the one written to, else null. */
  file: Deno.FsFile | null;
  /** Where the write queue's file is positioned. */
  filePos: number;
  /** Descriptor of synchronous writes (opened when one is needed), else -1. */
  syncFd: number;
  /** Its descriptors close once the write queue holds nothing of it. */
  closing: boolean;
  /** Buffers holding bytes of it that may not be in the file yet, by position. */
  pending: Pending[];
  /** Offset of its first record's first byte. */
  first: number;
  /** Offset just past its last record. */
  end: number;
  /** File bytes written, buffered ones included. */
  size: number;
  /** Sparse index: [offset, file position] pairs of record starts, ascending. */
  index: number[];
  /** Deleted (its records are gone). */
  gone: boolean;
}

/** A write buffer: `len` bytes for file position `pos` of `seg`. */
interface Pending {
  seg: Segment;
  pos: number;
  buf: Uint8Array;
  len: number;
  /** Written synchronously already (a queued write of it may still be under way). */
  synced: boolean;
}

/** A record found while reading: its chunk and where its bytes start in the file. */
interface Found {
  chunk: RetainedChunk;
  seg: Segment;
  /** File position of its first data byte. */
  data: number;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Writes all of `bytes` at `position` of `fd`. */
function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}

/** Reads `length` bytes at `position` of `fd` into `target` at `at`; throws if the file is shorter. */
function readAll(fd: number, target: Uint8Array, at: number, length: number, position: number) {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, target, at + done, length - done, position + done);
    if (n === 0) throw new RangeError("Spill file is shorter than recorded");
    done += n;
  }
}

/**
 * Takes the lock that says an instance is alive: an SQLite file in
 * exclusive locking mode, held while the connection is open (as the crash
 * journals are, lib/core/group_record.ts). Throws "database is locked"
 * when another connection holds it; no waiting.
 */
function lock(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("PRAGMA journal_mode = MEMORY"); // no file beside it
    // The exclusive lock comes with the first write, and stays.
    db.exec("CREATE TABLE IF NOT EXISTS held (at INTEGER); INSERT INTO held VALUES (1)");
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Whether a live instance holds the lock at `path`. */
function held(path: string): boolean {
  if (!fs.existsSync(path)) return false;
  try {
    lock(path).close();
    return false;
  } catch (e) {
    return /locked|busy/i.test(errorText(e));
  }
}

/** Removes `path` and the files SQLite keeps beside it. */
function removeLock(path: string): void {
  for (const p of [path, `${path}-journal`, `${path}-wal`, `${path}-shm`]) {
    fs.rmSync(p, { force: true });
  }
}

/**
 * The spilled output of one run: chunks from {@linkcode first} to
 * {@linkcode next}, oldest first, contiguous. Made by
 * {@linkcode SpillStore.run}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SpillStore } from "./spill.ts";
 * const dir = Deno.makeTempDirSync();
 * const store = SpillStore.open({ dir, perRun: 1 << 20, total: 1 << 20 });
 * const spill = store.run("demo", 0)!;
 * const data = new TextEncoder().encode("hello\n");
 * spill.append({ stream: "stdout", seq: 0, bytes: 6, truncated: false,
 *   chunkIndex: null, totalChunks: null }, (target, at) => target.set(data, at));
 * assert.equal(spill.next, 6);
 * assert.equal(new TextDecoder().decode(spill.read(0, 6)), "hello\n");
 * store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class RunSpill {
  readonly #store: SpillStore;
  readonly #dir: string;
  readonly #charge: ((delta: number) => void) | null;
  #segments: Segment[] = [];
  #made = false;
  #count = 0;
  #first: number;
  #next: number;
  /** The buffer being filled (the tail segment's last entry in `pending`). */
  #current: Pending | null = null;
  /** Buffers handed over to be written off the main thread, in order; the first is under way. */
  #queue: Pending[] = [];
  #busy = false;
  /** Buffers free for reuse. */
  #free: Uint8Array[] = [];
  /** Bytes of every buffer held (current, queued, free), charged to `#charge`. */
  #held = 0;
  /** Its buffers of {@linkcode LARGE_BUFFER_BYTES}, counted in the store's {@linkcode LARGE_TOTAL}. */
  readonly #large = new Set<Uint8Array>();
  /** Bytes appended since it was made. */
  #appended = 0;
  #waiters: (() => void)[] = [];
  #state: "open" | "finished" | "gone" = "open";
  /** File bytes, buffered ones included. */
  #disk = 0;

  /** @internal Made by {@linkcode SpillStore.run}. */
  constructor(
    store: SpillStore,
    dir: string,
    start: number,
    charge: ((delta: number) => void) | null,
  ) {
    this.#store = store;
    this.#dir = dir;
    this.#first = start;
    this.#next = start;
    this.#charge = charge;
  }

  /** Offset of the oldest byte on disk (equal to {@linkcode next} when there is none). */
  get first(): number {
    return this.#first;
  }

  /** Offset just past the newest byte spilled. */
  get next(): number {
    return this.#next;
  }

  /** Output bytes on disk (record headers not counted). */
  get bytes(): number {
    return this.#next - this.#first;
  }

  /** File bytes on disk, record headers included. */
  get diskBytes(): number {
    return this.#disk;
  }

  /** Memory held: write buffers, being filled or waiting to be written. */
  get held(): number {
    return this.#held;
  }

  /** Resolves once no write is queued or under way (its buffers are then free). */
  settled(): Promise<void> {
    if (!this.#busy && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Whether the run has ended ({@linkcode finish}). */
  get finished(): boolean {
    return this.#state !== "open";
  }

  /** Whether the spill was discarded (a disk error, or {@linkcode discard}): it takes nothing more. */
  get discarded(): boolean {
    return this.#state === "gone";
  }

  /**
   * Writes `chunk` (which `copy` copies into a buffer at an index) as the
   * newest record. Never throws: on a disk error the spill is discarded.
   * A chunk that does not start at {@linkcode next} (output was lost in
   * between) starts the spill afresh.
   */
  append(chunk: RetainedChunk, copy: (target: Uint8Array, at: number) => void): void {
    if (this.#state === "gone") return;
    const n = chunk.bytes;
    const end = chunk.seq + n;
    try {
      if (chunk.seq !== this.#next) this.#dropAll();
      if (this.#first === this.#next) this.#first = this.#next = chunk.seq;
      const need = RECORD_HEADER_BYTES + n;
      if (!this.#store._reserve(this, need)) {
        // No room even after dropping what could go: this chunk is a gap.
        this.#first = this.#next = end;
        return;
      }
      this.#write(chunk, need, copy);
      this.#next = end;
      while (this.#disk > this.#store.perRun && this.#segments.length > 1) this.dropOldest();
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * Writes what is buffered or queued, synchronously. Never throws: on a
   * disk error the spill is discarded.
   */
  flush(): void {
    if (this.#state === "gone") return;
    try {
      this.#handOff(false);
      for (const e of [...this.#queue]) {
        if (!e.synced && !e.seg.gone) this.#writeSync(e);
      }
      this.#dropQueued();
      this.#settle();
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * The run has ended, or a finished run's output was just moved here:
   * what is buffered is written, and the buffer and descriptor freed.
   */
  finish(): void {
    if (this.#state === "gone") return;
    this.flush();
    if (this.discarded) return;
    this.#releaseBuffers();
    const tail = this.#segments.at(-1);
    if (tail !== undefined) this.#closeFd(tail);
    if (this.#state !== "open") return;
    this.#state = "finished";
    this.#store._finished(this);
  }

  /** Deletes the files; the spill takes nothing more. Idempotent. */
  discard(): void {
    if (this.#state === "gone") return;
    this.#dropAll();
    this.#state = "gone";
    this.#dropQueued();
    this.#releaseBuffers();
    this.#store._forget(this);
    this.#removeDir();
  }

  /** Deletes the oldest segment; {@linkcode first} moves to the next one. */
  dropOldest(): void {
    const seg = this.#segments.shift();
    if (seg === undefined) return;
    if (this.#segments.length === 0) this.#dropCurrent();
    this.#remove(seg);
    this.#first = this.#segments[0]?.first ?? this.#next;
  }

  /**
   * Chunks on disk that end after `offset`, oldest first.
   *
   * @throws {RangeError} when the disk fails (the spill is then discarded).
   */
  *chunksFrom(offset: number): Generator<RetainedChunk> {
    try {
      for (const found of this.#records(offset)) {
        if (found.chunk.seq + found.chunk.bytes > offset) yield found.chunk;
      }
    } catch (err) {
      throw this.#readFailed(err);
    }
  }

  /**
   * Chunks on disk, newest first, read one index interval (64 KiB of file)
   * at a time.
   *
   * @throws {RangeError} when the disk fails (the spill is then discarded).
   */
  *chunksBackward(): Generator<RetainedChunk> {
    try {
      for (let s = this.#segments.length - 1; s >= 0; s--) {
        const seg = this.#segments[s]!;
        for (let i = seg.index.length - 2; i >= 0; i -= 2) {
          const stop = i + 2 < seg.index.length ? seg.index[i + 3]! : seg.size;
          const batch: RetainedChunk[] = [];
          for (const f of this.#walk(seg, seg.index[i + 1]!, seg.index[i]!, stop)) {
            batch.push(f.chunk);
          }
          for (let j = batch.length - 1; j >= 0; j--) yield batch[j]!;
          if (seg.gone) return;
        }
      }
    } catch (err) {
      throw this.#readFailed(err);
    }
  }

  /** A copy of the bytes from `from` to `to`, clipped to what is on disk. */
  read(from: number, to: number): Uint8Array {
    const start = Math.max(from, this.#first);
    const end = Math.min(to, this.#next);
    const out = new Uint8Array(Math.max(0, end - start));
    this.copyTo(start, end, out, 0);
    return out;
  }

  /**
   * Copies the bytes from `from` to `to` into `target` at `at`.
   *
   * @throws {RangeError} when they are not all on disk, or the disk fails
   * reading them (the spill is then discarded).
   */
  copyTo(from: number, to: number, target: Uint8Array, at: number): void {
    if (to <= from) return;
    if (from < this.#first || to > this.#next) {
      throw new RangeError(`Bytes ${from} to ${to} are not spilled`);
    }
    try {
      for (const { chunk, seg, data } of this.#records(from)) {
        const a = Math.max(chunk.seq, from);
        const b = Math.min(chunk.seq + chunk.bytes, to);
        if (b > a) {
          this.#store._copy(seg, data + (a - chunk.seq), b - a, target, at + (a - from));
        }
        if (chunk.seq + chunk.bytes >= to) return;
      }
    } catch (err) {
      throw this.#readFailed(err);
    }
    throw new RangeError(`Bytes ${from} to ${to} are no longer spilled`);
  }

  /** A read failed: the spill is discarded, and the error to throw says so. */
  #readFailed(err: unknown): RangeError {
    if (err instanceof RangeError && this.#state === "gone") return err;
    this.#fail(err);
    return new RangeError(`Spilled output could not be read: ${errorText(err)}`, { cause: err });
  }

  /** The byte at `offset` (on disk). */
  byteAt(offset: number): number {
    const one = new Uint8Array(1);
    this.copyTo(offset, offset + 1, one, 0);
    return one[0]!;
  }

  /** Records from the one `offset` falls in (or the oldest) to the newest. */
  *#records(offset: number): Generator<Found> {
    if (offset >= this.#next) return;
    const target = Math.max(offset, this.#first);
    let s = 0;
    while (s < this.#segments.length - 1 && this.#segments[s]!.end <= target) s++;
    // Segments are followed by reference: one may be dropped while a reader waits between chunks.
    for (let seg = this.#segments[s]; seg !== undefined; seg = this.#after(seg)) {
      // The last index entry at or before the target.
      const idx = seg.index;
      let lo = 0;
      let hi = idx.length / 2 - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (idx[mid * 2]! <= target) lo = mid;
        else hi = mid - 1;
      }
      yield* this.#walk(seg, idx[lo * 2 + 1]!, idx[lo * 2]!, Infinity);
      if (seg.gone) return;
    }
  }

  /** The segment after `seg`, if any (none when `seg` was dropped). */
  #after(seg: Segment): Segment | undefined {
    const at = this.#segments.indexOf(seg);
    return at < 0 ? undefined : this.#segments[at + 1];
  }

  /**
   * Records of `seg` from file position `pos` (a record start at offset
   * `seq`) up to `stop`, or its end as it grows.
   */
  *#walk(seg: Segment, pos: number, seq: number, stop: number): Generator<Found> {
    const store = this.#store;
    while (pos < Math.min(stop, seg.size) && !seg.gone) {
      const at = store._header(seg, pos);
      const h = store._view;
      const bytes = h.getUint32(at, true);
      const flags = h.getUint32(at + 4, true);
      const index = h.getUint32(at + 8, true);
      const total = h.getUint32(at + 12, true);
      const chunk: RetainedChunk = {
        stream: flags & STDERR ? "stderr" : "stdout",
        seq,
        bytes,
        truncated: (flags & TRUNCATED) !== 0,
        chunkIndex: index === 0 ? null : index - 1,
        totalChunks: total === 0 ? null : total - 1,
      };
      yield { chunk, seg, data: pos + RECORD_HEADER_BYTES };
      pos += RECORD_HEADER_BYTES + bytes;
      seq += bytes;
    }
  }

  #write(chunk: RetainedChunk, need: number, copy: (t: Uint8Array, at: number) => void): void {
    const store = this.#store;
    let seg = this.#segments.at(-1);
    if (seg === undefined || seg.size >= store.segmentBytes) seg = this.#roll();
    if (seg.index.length === 0 || seg.size - seg.index.at(-1)! >= store.indexEvery) {
      seg.index.push(chunk.seq, seg.size);
    }
    let cur = this.#current;
    if (cur !== null && cur.len + need > cur.buf.length) {
      this.#handOff(true);
      cur = null;
    }
    if (cur === null) cur = this.#current = this.#open(seg, need);
    const target = cur.buf;
    const at = cur.len;
    const view = new DataView(target.buffer, target.byteOffset, target.length);
    let flags = chunk.stream === "stderr" ? STDERR : 0;
    if (chunk.truncated) flags |= TRUNCATED;
    view.setUint32(at, chunk.bytes, true);
    view.setUint32(at + 4, flags, true);
    view.setUint32(at + 8, chunk.chunkIndex === null ? 0 : chunk.chunkIndex + 1, true);
    view.setUint32(at + 12, chunk.totalChunks === null ? 0 : chunk.totalChunks + 1, true);
    copy(target, at + RECORD_HEADER_BYTES);
    seg.size += need;
    seg.end = chunk.seq + chunk.bytes;
    this.#disk += need;
    store._grew(need);
    cur.len += need;
    this.#appended += need;
  }

  /** A buffer to fill for `seg` from its end, with room for `need` bytes. */
  #open(seg: Segment, need: number): Pending {
    let buf = this.#free.pop();
    if (buf !== undefined && buf.length < need) {
      this.#drop(buf);
      buf = undefined;
    }
    // A run that spills a lot writes large buffers off the main thread, while the server has some.
    const largeWanted = this.#state === "open" && this.#appended >= LARGE_AFTER &&
      need <= LARGE_BUFFER_BYTES && (buf === undefined || !this.#large.has(buf));
    const large = largeWanted && this.#store._takeLarge(LARGE_BUFFER_BYTES);
    if (large && buf !== undefined) {
      this.#drop(buf);
      buf = undefined;
    }
    if (buf === undefined) {
      // Room for the largest record yet (a chunk is at most `line-limit`, 160 KiB).
      const size = large
        ? LARGE_BUFFER_BYTES
        : Math.max(WRITE_BUFFER_BYTES, Math.ceil(need / 16384) * 16384);
      buf = new Uint8Array(size);
      if (large) this.#large.add(buf);
      this.#held += size;
      this.#charge?.(size);
    }
    const entry: Pending = { seg, pos: seg.size, buf, len: 0, synced: false };
    seg.pending.push(entry);
    return entry;
  }

  /**
   * The buffer being filled goes to be written: to the queue when `queue`,
   * the run is running, the buffer is a large one and the queue has room;
   * else at once, synchronously (a finished run's output moving to disk is
   * not on the streaming path, and a 64 KiB write costs the main thread less
   * done synchronously than handed to a thread).
   */
  #handOff(queue: boolean): void {
    const cur = this.#current;
    if (cur === null || cur.len === 0) return;
    this.#current = null;
    const seg = cur.seg;
    if (
      queue && this.#state === "open" && this.#large.has(cur.buf) &&
      this.#queue.length < WRITE_QUEUE
    ) {
      // Closed when the run ended; a finished run's output may still move here.
      if (seg.file === null) {
        seg.file = Deno.openSync(seg.path, { read: true, write: true });
        seg.filePos = 0;
      }
      seg.closing = false;
      this.#queue.push(cur);
      this.#next_();
      return;
    }
    this.#writeSync(cur);
    this.#recycle(cur.buf);
  }

  /** Writes `e` now, synchronously; it leaves the segment's pending buffers. */
  #writeSync(e: Pending): void {
    const seg = e.seg;
    if (seg.syncFd < 0) seg.syncFd = fs.openSync(seg.path, "r+");
    writeAll(seg.syncFd, e.buf.subarray(0, e.len), e.pos);
    e.synced = true;
    this.#unpend(e);
    this.#store._wrote();
  }

  #unpend(e: Pending): void {
    const at = e.seg.pending.indexOf(e);
    if (at >= 0) e.seg.pending.splice(at, 1);
  }

  /** Starts writing the first queued buffer, off the main thread, unless a write is under way. */
  #next_(): void {
    while (!this.#busy && this.#queue.length > 0) {
      const e = this.#queue[0]!;
      if (e.seg.gone || e.synced) {
        this.#queue.shift();
        this.#recycle(e.buf);
        this.#closeIfIdle(e.seg);
        continue;
      }
      this.#busy = true;
      this.#writeAsync(e).then((err) => this.#written(e, err)).catch((error) => {
        try {
          this.#fail(error);
        } catch {
          // nothing here reaches the pipe path, nor goes unhandled
        }
      });
    }
    this.#settle();
  }

  /** Writes `e` through its segment's file, on a blocking thread; resolves with the error if any. */
  async #writeAsync(e: Pending): Promise<unknown> {
    const seg = e.seg;
    const file = seg.file!;
    try {
      if (seg.filePos !== e.pos) {
        seg.filePos = -1;
        await file.seek(e.pos, Deno.SeekMode.Start);
        seg.filePos = e.pos;
      }
      const bytes = e.buf.subarray(0, e.len);
      let done = 0;
      while (done < bytes.length) done += await file.write(bytes.subarray(done));
      seg.filePos += done;
      return null;
    } catch (err) {
      seg.filePos = -1;
      return err;
    }
  }

  /** A queued write ended, with `err` if it failed. */
  #written(e: Pending, err: unknown): void {
    this.#busy = false;
    if (this.#queue[0] === e) this.#queue.shift();
    if (!e.synced) this.#unpend(e);
    this.#recycle(e.buf);
    this.#closeIfIdle(e.seg);
    if (e.seg.gone || this.#state === "gone") {
      // Its output is gone already: neither news nor an error.
    } else if (err) {
      this.#fail(err);
    } else {
      this.#store._wrote();
    }
    if (this.#state === "gone") {
      this.#settle();
      return;
    }
    try {
      this.#next_();
    } catch (error) {
      this.#fail(error);
    }
  }

  /** Wakes {@linkcode settled} waiters once nothing is queued. */
  #settle(): void {
    if (this.#busy || this.#queue.length > 0 || this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** A buffer is no longer written from: kept for reuse while the run writes, else freed. */
  #recycle(buf: Uint8Array): void {
    const reusable = buf.length === WRITE_BUFFER_BYTES || this.#large.has(buf);
    if (this.#state === "open" && reusable && this.#free.length <= WRITE_QUEUE) {
      this.#free.push(buf);
    } else {
      this.#drop(buf);
    }
  }

  #drop(buf: Uint8Array): void {
    if (this.#large.delete(buf)) this.#store._takeLarge(-buf.length);
    this.#held -= buf.length;
    this.#charge?.(-buf.length);
  }

  /** Starts a new segment (the previous one is written out and closed). */
  #roll(): Segment {
    const prev = this.#segments.at(-1);
    if (prev !== undefined) {
      this.#handOff(true);
      this.#closeFd(prev);
    }
    if (!this.#made) {
      fs.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      this.#made = true;
    }
    const path = `${this.#dir}/${String(++this.#count).padStart(6, "0")}.seg`;
    const file = Deno.openSync(path, {
      read: true,
      write: true,
      create: true,
      truncate: true,
      mode: 0o600,
    });
    const seg: Segment = {
      path,
      file,
      filePos: 0,
      syncFd: -1,
      closing: false,
      pending: [],
      first: this.#next,
      end: this.#next,
      size: 0,
      index: [],
      gone: false,
    };
    this.#segments.push(seg);
    return seg;
  }

  /** Queued buffers not under way leave the queue (they are written, or their segment is gone). */
  #dropQueued(): void {
    const rest = this.#busy ? this.#queue.splice(1) : this.#queue.splice(0);
    for (const e of rest) {
      this.#unpend(e);
      this.#recycle(e.buf);
      this.#closeIfIdle(e.seg);
    }
  }

  /** The buffer being filled is emptied (its segment is gone). */
  #dropCurrent(): void {
    const cur = this.#current;
    if (cur === null) return;
    this.#current = null;
    this.#unpend(cur);
    this.#recycle(cur.buf);
  }

  /** Frees the buffers not being written from. */
  #releaseBuffers(): void {
    const cur = this.#current;
    if (cur !== null) {
      this.#unpend(cur);
      this.#drop(cur.buf);
      this.#current = null;
    }
    for (const buf of this.#free) this.#drop(buf);
    this.#free = [];
  }

  /** Closes `seg`'s descriptors, once the write queue holds nothing of it. */
  #closeFd(seg: Segment): void {
    seg.closing = true;
    this.#closeIfIdle(seg);
  }

  #closeIfIdle(seg: Segment): void {
    if (!seg.closing || this.#queue.some((e) => e.seg === seg)) return;
    try {
      seg.file?.close();
    } catch {
      // already closed
    }
    seg.file = null;
    for (const fd of [seg.syncFd]) {
      if (fd < 0) continue;
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    }
    seg.syncFd = -1;
    seg.closing = false;
  }

  /** Deletes one segment's file and its accounting. */
  #remove(seg: Segment): void {
    seg.gone = true;
    this.#closeFd(seg);
    this.#store._dropped(seg);
    this.#disk -= seg.size;
    this.#store._grew(-seg.size);
    try {
      fs.unlinkSync(seg.path);
    } catch {
      // gone already, or the disk refuses: the directory goes with the run
    }
  }

  /** Deletes every segment: nothing is on disk, {@linkcode first} is {@linkcode next}. */
  #dropAll(): void {
    for (const seg of this.#segments) this.#remove(seg);
    this.#segments = [];
    this.#dropCurrent();
    this.#first = this.#next;
  }

  #removeDir(): void {
    if (!this.#made) return;
    try {
      fs.rmSync(this.#dir, { recursive: true, force: true });
    } catch {
      // the disk refuses: the instance directory goes at shutdown or next start
    }
  }

  /** A disk error: the spill is discarded, said once. */
  #fail(err: unknown): void {
    if (this.#state === "gone") return;
    const error = errorText(err);
    // A disk that stays full fails every run the same way: said once until a write succeeds.
    const level = this.#store._failed(error) ? "warning" : "debug";
    log[level]("Output spill {dir} failed and is discarded; its output is a gap: {error}", {
      dir: this.#dir,
      error,
    });
    this.discard();
  }
}

/**
 * Every run's spill, under one directory per server instance, and the
 * server-wide cap. {@linkcode SpillStore.open} removes the spill of
 * instances that are gone (runs do not survive a restart): an instance is
 * alive while it holds the lock file beside its directory
 * (`<instance>.lock`), so servers sharing a data directory keep each
 * other's. {@linkcode close} removes this one's.
 *
 * @example The oldest finished run's spill goes first past the total cap
 * ```ts
 * import assert from "node:assert/strict";
 * import { SpillStore } from "./spill.ts";
 * const dir = Deno.makeTempDirSync();
 * const store = SpillStore.open({ dir, perRun: 1 << 20, total: 3000, segmentBytes: 1024 });
 * const fill = (name: string) => {
 *   const spill = store.run(name, 0)!;
 *   spill.append({ stream: "stdout", seq: 0, bytes: 1000, truncated: false,
 *     chunkIndex: null, totalChunks: null }, () => {});
 *   return spill;
 * };
 * const old = fill("old");
 * old.finish();
 * const a = fill("a");
 * const b = fill("b");
 * assert.equal(old.bytes, 0, "the finished run's spill was deleted");
 * assert.deepEqual([a.bytes, b.bytes], [1000, 1000]);
 * assert.ok(store.bytes <= 3000);
 * store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class SpillStore {
  /** This instance's directory (`<dir>/<pid>-<8 hex digits>`). */
  readonly dir: string;
  readonly perRun: number;
  readonly total: number;
  readonly segmentBytes: number;
  readonly indexEvery: number;
  /** Bytes of spilled output deleted to keep within the caps, since startup. */
  droppedBytes = 0;
  /** Runs whose spill was discarded for a disk error, since startup. */
  failedRuns = 0;
  #lastFailure: string | null = null;
  #bytes = 0;
  /** Bytes of large write buffers held by all runs. */
  #large = 0;
  #closed = false;
  #lock: DatabaseSync | null = null;
  #names = 0;
  readonly #runs = new Set<RunSpill>();
  /** Finished runs in the order they finished: deleted first past the cap. */
  readonly #finished = new Set<RunSpill>();
  // The shared read block: one segment's bytes from #blockPos.
  readonly #block = new Uint8Array(WRITE_BUFFER_BYTES);
  readonly #blockView = new DataView(this.#block.buffer);
  #blockSeg: Segment | null = null;
  /** The read descriptor, of segment #fdSeg. */
  #blockFd = -1;
  #fdSeg: Segment | null = null;
  #blockPos = 0;
  #blockLen = 0;

  private constructor(dir: string, options: SpillOptions) {
    this.dir = dir;
    this.perRun = options.perRun;
    this.total = options.total;
    this.segmentBytes = Math.max(
      4096,
      Math.min(options.segmentBytes ?? SEGMENT_BYTES, Math.floor(options.perRun / 4)),
    );
    this.indexEvery = options.indexEvery ?? INDEX_EVERY;
  }

  /**
   * Opens the store in a new instance directory under `options.dir`,
   * first removing what instances that are no longer running left there.
   * Never throws: a directory that cannot be used gives a closed store
   * (nothing spills; a warning says why).
   */
  static open(options: SpillOptions): SpillStore {
    const suffix = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16).padStart(8, "0");
    const store = new SpillStore(`${options.dir}/${Deno.pid}-${suffix}`, options);
    try {
      fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
      store.#lock = lock(`${store.dir}.lock`);
      fs.mkdirSync(store.dir, { mode: 0o700 });
    } catch (err) {
      log.warning("No output spill: cannot use {dir}: {error}", {
        dir: options.dir,
        error: errorText(err),
      });
      store.close();
      return store;
    }
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(options.dir);
    } catch {
      // nothing to clean that can be seen
    }
    for (const entry of entries) {
      const name = entry.replace(/\.lock(-journal|-wal|-shm)?$/, "");
      const path = `${options.dir}/${name}`;
      if (path === store.dir || held(`${path}.lock`)) continue;
      try {
        fs.rmSync(path, { recursive: true, force: true });
        removeLock(`${path}.lock`);
      } catch (err) {
        log.warning("Cannot remove the output spill of a gone instance, {path}: {error}", {
          path,
          error: errorText(err),
        });
      }
    }
    return store;
  }

  /** Whether runs spill here: false once closed, or when the directory could not be used. */
  get open(): boolean {
    return !this.#closed;
  }

  /** File bytes of all runs' spill together. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Runs with a spill. */
  get runs(): number {
    return this.#runs.size;
  }

  /**
   * A new spill for the run `name` (an execution id), starting at offset
   * `start`, whose write buffers are reported to `charge`; null once closed.
   */
  run(
    name: string,
    start: number,
    charge: ((delta: number) => void) | null = null,
  ): RunSpill | null {
    if (this.#closed) return null;
    const safe = /^[A-Za-z0-9_-]{1,100}$/.test(name) ? name : "run";
    const spill = new RunSpill(this, `${this.dir}/${safe}.${++this.#names}`, start, charge);
    this.#runs.add(spill);
    return spill;
  }

  /** Removes every run's spill and the instance directory; runs take nothing more. */
  close(): void {
    if (this.#closed) return;
    for (const spill of [...this.#runs]) spill.discard();
    this.#closed = true;
    this.#dropBlock();
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
      this.#lock?.close();
      this.#lock = null;
      removeLock(`${this.dir}.lock`);
    } catch {
      // the next start removes it
    }
  }

  /** @internal Makes room for `need` more bytes of `spill`; false when there is none. */
  _reserve(spill: RunSpill, need: number): boolean {
    if (this.#closed) return false;
    while (this.#bytes + need > this.total) {
      const victim = this.#oldestFinished(spill);
      if (victim !== null) {
        this.droppedBytes += victim.bytes;
        victim.discard();
      } else if (spill.diskBytes > 0) {
        this.droppedBytes += spill.bytes;
        spill.dropOldest();
      } else {
        return false;
      }
    }
    return true;
  }

  /** @internal Takes `bytes` of large write buffers (frees them when negative); false when there is no room. */
  _takeLarge(bytes: number): boolean {
    if (bytes > 0 && this.#large + bytes > LARGE_TOTAL) return false;
    this.#large += bytes;
    return true;
  }

  /** @internal A run's spill failed with `error`: whether to say so (not when the last one did). */
  _failed(error: string): boolean {
    this.failedRuns++;
    const code = /^[A-Z]+\b|os error \d+/.exec(error)?.[0] ?? error;
    const say = code !== this.#lastFailure;
    this.#lastFailure = code;
    return say;
  }

  /** @internal A write succeeded: the next failure is news. */
  _wrote(): void {
    this.#lastFailure = null;
  }

  /** @internal */
  _grew(delta: number): void {
    this.#bytes += delta;
  }

  /** @internal */
  _finished(spill: RunSpill): void {
    if (this.#runs.has(spill)) this.#finished.add(spill);
  }

  /** @internal */
  _forget(spill: RunSpill): void {
    this.#runs.delete(spill);
    this.#finished.delete(spill);
  }

  /** @internal A segment was deleted: the read block may not refer to it. */
  _dropped(seg: Segment): void {
    if (this.#blockSeg === seg || this.#fdSeg === seg) this.#dropBlock();
  }

  /** @internal The read block, where {@linkcode _header} puts headers. */
  get _view(): DataView {
    return this.#blockView;
  }

  /** @internal Loads the record header at `pos` of `seg`; returns where it sits in {@linkcode _view}. */
  _header(seg: Segment, pos: number): number {
    return this.#load(seg, pos, RECORD_HEADER_BYTES);
  }

  /** @internal Copies `length` bytes at `pos` of `seg` into `target` at `at`. */
  _copy(seg: Segment, pos: number, length: number, target: Uint8Array, at: number): void {
    if (length <= this.#block.length) {
      const from = this.#load(seg, pos, length);
      target.set(this.#block.subarray(from, from + length), at);
      return;
    }
    this.#fill(seg, target, at, pos, length);
  }

  /**
   * Copies `length` bytes at `pos` of `seg` into `target` at `at`: from
   * the buffers that hold them while they may not be written yet, the
   * rest from the file.
   */
  #fill(seg: Segment, target: Uint8Array, at: number, pos: number, length: number): void {
    const end = pos + length;
    let p = pos;
    for (const e of seg.pending) {
      const stop = Math.min(e.pos + e.len, end);
      if (stop <= p) continue;
      if (e.pos >= end) break;
      if (e.pos > p) {
        this.#readFile(seg, target, at + (p - pos), e.pos - p, p);
        p = e.pos;
      }
      target.set(e.buf.subarray(p - e.pos, stop - e.pos), at + (p - pos));
      p = stop;
    }
    if (p < end) this.#readFile(seg, target, at + (p - pos), end - p, p);
  }

  #readFile(seg: Segment, target: Uint8Array, at: number, length: number, pos: number): void {
    if (this.#fdSeg !== seg) {
      this.#closeBlockFd();
      this.#blockFd = fs.openSync(seg.path, "r");
      this.#fdSeg = seg;
    }
    readAll(this.#blockFd, target, at, length, pos);
  }

  /** Makes bytes `pos` to `pos + length` of `seg` sit in the read block; returns where. */
  #load(seg: Segment, pos: number, length: number): number {
    if (
      this.#blockSeg === seg && pos >= this.#blockPos &&
      pos + length <= this.#blockPos + this.#blockLen
    ) {
      return pos - this.#blockPos;
    }
    const len = Math.max(Math.min(this.#block.length, seg.size - pos), length);
    this.#blockLen = 0;
    this.#fill(seg, this.#block, 0, pos, len);
    this.#blockSeg = seg;
    this.#blockPos = pos;
    this.#blockLen = len;
    return 0;
  }

  #dropBlock(): void {
    this.#closeBlockFd();
    this.#blockSeg = null;
    this.#blockLen = 0;
  }

  #closeBlockFd(): void {
    if (this.#blockFd >= 0) {
      try {
        fs.closeSync(this.#blockFd);
      } catch {
        // already closed
      }
    }
    this.#blockFd = -1;
    this.#fdSeg = null;
  }

  #oldestFinished(except: RunSpill): RunSpill | null {
    for (const spill of this.#finished) {
      if (spill !== except && spill.diskBytes > 0) return spill;
    }
    return null;
  }
}
