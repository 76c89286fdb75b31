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
 * offset falls in after reading at most that much. Writes are gathered in a
 * buffer of {@linkcode WRITE_BUFFER_BYTES} and written when it fills, when
 * the run ends and before every read. I/O is synchronous: it is a page-cache
 * copy, and an async write would leave the log's range unsettled across
 * turns of the event loop.
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
  /** Open descriptor while it is the one written to, else -1. */
  fd: number;
  /** Offset of its first record's first byte. */
  first: number;
  /** Offset just past its last record. */
  end: number;
  /** File bytes written, buffered ones included. */
  size: number;
  /** File bytes actually written (the rest is in the write buffer). */
  flushed: number;
  /** Sparse index: [offset, file position] pairs of record starts, ascending. */
  index: number[];
  /** Deleted (its records are gone). */
  gone: boolean;
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
  #buffer: Uint8Array | null = null;
  #view: DataView | null = null;
  #buffered = 0;
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

  /** Memory held: the write buffer while the run writes. */
  get held(): number {
    return this.#buffer?.length ?? 0;
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

  /** Writes what is buffered. Never throws: on a disk error the spill is discarded. */
  flush(): void {
    try {
      this.#flush();
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
    this.#releaseBuffer();
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
    this.#releaseBuffer();
    this.#store._forget(this);
    this.#removeDir();
  }

  /** Deletes the oldest segment; {@linkcode first} moves to the next one. */
  dropOldest(): void {
    const seg = this.#segments.shift();
    if (seg === undefined) return;
    if (this.#segments.length === 0) this.#buffered = 0;
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
      this.#prepareRead();
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
    this.#prepareRead();
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
      if (pos >= seg.flushed) this.#prepareRead(); // appended while the reader waited
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

  #prepareRead(): void {
    if (this.#buffered > 0) this.flush();
  }

  #write(chunk: RetainedChunk, need: number, copy: (t: Uint8Array, at: number) => void): void {
    const store = this.#store;
    let seg = this.#segments.at(-1);
    if (seg === undefined || seg.size >= store.segmentBytes) seg = this.#roll();
    if (seg.index.length === 0 || seg.size - seg.index.at(-1)! >= store.indexEvery) {
      seg.index.push(chunk.seq, seg.size);
    }
    if (this.#buffered + need > (this.#buffer?.length ?? 0)) this.#flush();
    if (need > (this.#buffer?.length ?? 0)) {
      // Room for the largest record yet (a chunk is at most `line-limit`, 160 KiB).
      const size = Math.max(WRITE_BUFFER_BYTES, Math.ceil(need / 16384) * 16384);
      this.#charge?.(size - (this.#buffer?.length ?? 0));
      this.#buffer = new Uint8Array(size);
      this.#view = new DataView(this.#buffer.buffer);
    }
    const target = this.#buffer!;
    const at = this.#buffered;
    const view = this.#view!;
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
    this.#buffered += need;
  }

  /** Starts a new segment (the previous one is written out and closed). */
  #roll(): Segment {
    const prev = this.#segments.at(-1);
    if (prev !== undefined) {
      this.#flush();
      this.#closeFd(prev);
    }
    if (!this.#made) {
      fs.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      this.#made = true;
    }
    const path = `${this.#dir}/${String(++this.#count).padStart(6, "0")}.seg`;
    const fd = fs.openSync(path, "w+", 0o600);
    const seg: Segment = {
      path,
      fd,
      first: this.#next,
      end: this.#next,
      size: 0,
      flushed: 0,
      index: [],
      gone: false,
    };
    this.#segments.push(seg);
    return seg;
  }

  #flush(): void {
    if (this.#buffered === 0) return;
    const seg = this.#segments.at(-1)!;
    // Closed when the run ended; a finished run's output may still move here.
    if (seg.fd < 0) seg.fd = fs.openSync(seg.path, "r+");
    const n = this.#buffered;
    this.#buffered = 0;
    writeAll(seg.fd, this.#buffer!.subarray(0, n), seg.flushed);
    seg.flushed += n;
    this.#store._wrote();
  }

  #releaseBuffer(): void {
    if (this.#buffer === null) return;
    this.#charge?.(-this.#buffer.length);
    this.#buffer = null;
    this.#view = null;
    this.#buffered = 0;
  }

  #closeFd(seg: Segment): void {
    if (seg.fd < 0) return;
    try {
      fs.closeSync(seg.fd);
    } catch {
      // already closed
    }
    seg.fd = -1;
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
    this.#buffered = 0;
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
  #blockFd = -1;
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
   * `start`, whose write buffer is reported to `charge`; null once closed.
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
    if (this.#blockSeg === seg) this.#dropBlock();
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
    this.#load(seg, pos, 0);
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
    if (this.#blockSeg !== seg) {
      this.#dropBlock();
      this.#blockFd = fs.openSync(seg.path, "r");
      this.#blockSeg = seg;
    }
    const len = Math.min(this.#block.length, seg.flushed - pos);
    this.#blockLen = 0;
    readAll(this.#blockFd, this.#block, 0, Math.max(len, length), pos);
    this.#blockPos = pos;
    this.#blockLen = Math.max(len, length);
    return 0;
  }

  #dropBlock(): void {
    if (this.#blockFd >= 0) {
      try {
        fs.closeSync(this.#blockFd);
      } catch {
        // already closed
      }
    }
    this.#blockFd = -1;
    this.#blockSeg = null;
    this.#blockLen = 0;
  }

  #oldestFinished(except: RunSpill): RunSpill | null {
    for (const spill of this.#finished) {
      if (spill !== except && spill.diskBytes > 0) return spill;
    }
    return null;
  }
}
