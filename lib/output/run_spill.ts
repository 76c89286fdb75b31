/**
 * The spilled output of one run: its segment files, written through
 * buffers (synchronously, or queued and written off the main thread), the
 * sparse index that finds an offset's record, reads, and the per-run cap.
 * How the buffers and the queue behave is told in ./spill.ts.
 *
 * @module
 */
import { checkRange, readClipped } from "./byte_range.ts";
import * as fs from "node:fs";
import { logger } from "../log.ts";
import type { RetainedChunk } from "./output_log.ts";
import {
  decodeHeader,
  encodeHeader,
  LARGE_AFTER,
  LARGE_BUFFER_BYTES,
  RECORD_HEADER_BYTES,
  WRITE_BUFFER_BYTES,
  WRITE_QUEUE,
} from "./spill_format.ts";
import { errorText, type Pending, type Segment, writeAll } from "./spill_segment.ts";

const log = logger("spill");

/**
 * The store as a run sees it (implemented by {@linkcode SpillStore}): its
 * caps, its accounting and the shared read block. An interface, so this
 * module need not import the store that makes runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SpillHost } from "./run_spill.ts";
 * import { SpillStore } from "./spill.ts";
 * const dir = Deno.makeTempDirSync();
 * const store = SpillStore.open({ dir, perRun: 1 << 20, total: 1 << 20 });
 * const host: SpillHost = store;
 * assert.equal(host.perRun, 1 << 20);
 * store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export interface SpillHost {
  /** File bytes one run keeps at most. */
  readonly perRun: number;
  /** Largest segment file. */
  readonly segmentBytes: number;
  /** File bytes between sparse index entries. */
  readonly indexEvery: number;
  /** Makes room for `need` more bytes of `spill`; false when there is none. */
  _reserve(spill: RunSpill, need: number): boolean;
  /** Takes `bytes` of large write buffers (frees them when negative); false when there is no room. */
  _takeLarge(bytes: number): boolean;
  /** A run's spill failed with `error`: whether to say so. */
  _failed(error: string): boolean;
  /** A write succeeded: the next failure is news. */
  _wrote(): void;
  /** All runs' file bytes changed by `delta`. */
  _grew(delta: number): void;
  /** `spill` finished: it goes first past the total cap. */
  _finished(spill: RunSpill): void;
  /** `spill` was discarded. */
  _forget(spill: RunSpill): void;
  /** A segment was deleted: the read block may not refer to it. */
  _dropped(seg: Segment): void;
  /** The read block, where {@linkcode _header} puts headers. */
  readonly _view: DataView;
  /** Loads the record header at `pos` of `seg`; returns where it sits in {@linkcode _view}. */
  _header(seg: Segment, pos: number): number;
  /** Copies `length` bytes at `pos` of `seg` into `target` at `at`. */
  _copy(seg: Segment, pos: number, length: number, target: Uint8Array, at: number): void;
}

/** A record found while reading: its chunk and where its bytes start in the file. */
interface Found {
  chunk: RetainedChunk;
  seg: Segment;
  /** File position of its first data byte. */
  data: number;
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
  readonly #store: SpillHost;
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
    store: SpillHost,
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
    return readClipped(this, this.#first, this.#next, from, to);
  }

  /**
   * Copies the bytes from `from` to `to` into `target` at `at`.
   *
   * @throws {RangeError} when they are not all on disk, or the disk fails
   * reading them (the spill is then discarded).
   */
  copyTo(from: number, to: number, target: Uint8Array, at: number): void {
    if (!checkRange(from, to, this.#first, this.#next, "spilled")) return;
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
      const chunk = decodeHeader(store._view, at, seq);
      const bytes = chunk.bytes;
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
    encodeHeader(new DataView(target.buffer, target.byteOffset, target.length), at, chunk);
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
    try {
      this.#writeSync(cur);
    } finally {
      // Even when the write fails (a full disk): the buffer is no longer anyone's.
      this.#recycle(cur.buf);
    }
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
