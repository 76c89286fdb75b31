/**
 * One segment file of a run's spill as its run and the store's read block
 * share it: its state and the write buffers that hold its bytes until they
 * are in the file, and whole reads and writes at a file position.
 *
 * @module
 */
import * as fs from "node:fs";

/** One segment file of a run's spill. */
export interface Segment {
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
export interface Pending {
  seg: Segment;
  pos: number;
  buf: Uint8Array;
  len: number;
  /** Written synchronously already (a queued write of it may still be under way). */
  synced: boolean;
}

/**
 * The message of a thrown value, for a log line or an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorText } from "./spill_segment.ts";
 * assert.equal(errorText(new Error("disk full")), "disk full");
 * assert.equal(errorText("odd"), "odd");
 * ```
 */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Writes all of `bytes` at `position` of `fd`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import * as fs from "node:fs";
 * import { readAll, writeAll } from "./spill_segment.ts";
 * const path = Deno.makeTempFileSync();
 * const fd = fs.openSync(path, "r+");
 * writeAll(fd, new TextEncoder().encode("spill"), 2);
 * const back = new Uint8Array(5);
 * readAll(fd, back, 0, 5, 2);
 * assert.equal(new TextDecoder().decode(back), "spill");
 * assert.throws(() => readAll(fd, back, 0, 5, 4), RangeError);
 * fs.closeSync(fd);
 * Deno.removeSync(path);
 * ```
 */
export function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}

/**
 * Reads `length` bytes at `position` of `fd` into `target` at `at`; throws if the file is shorter.
 *
 * @throws {RangeError} when the file ends before `length` bytes.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import * as fs from "node:fs";
 * import { readAll } from "./spill_segment.ts";
 * const path = Deno.makeTempFileSync();
 * Deno.writeTextFileSync(path, "abc");
 * const fd = fs.openSync(path, "r");
 * const target = new Uint8Array(2);
 * readAll(fd, target, 0, 2, 1);
 * assert.equal(new TextDecoder().decode(target), "bc");
 * fs.closeSync(fd);
 * Deno.removeSync(path);
 * ```
 */
export function readAll(
  fd: number,
  target: Uint8Array,
  at: number,
  length: number,
  position: number,
) {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, target, at + done, length - done, position + done);
    if (n === 0) throw new RangeError("Spill file is shorter than recorded");
    done += n;
  }
}
