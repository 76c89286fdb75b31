/**
 * Every run's spill on this server: the instance directory and its lock,
 * removing what instances that are gone left, the server-wide cap, and the
 * read block all runs share.
 *
 * @module
 */
import * as fs from "node:fs";
import type { DatabaseSync } from "node:sqlite";
import { logger } from "../log.ts";
import { RunSpill, type SpillHost } from "./run_spill.ts";
import {
  INDEX_EVERY,
  LARGE_TOTAL,
  RECORD_HEADER_BYTES,
  SEGMENT_BYTES,
  WRITE_BUFFER_BYTES,
} from "./spill_format.ts";
import { held, lock, removeLock } from "./spill_lock.ts";
import { errorText, readAll, type Segment } from "./spill_segment.ts";

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
export class SpillStore implements SpillHost {
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
