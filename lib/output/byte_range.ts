/**
 * Reading a range of a run's output offsets from whatever holds them (the
 * log in memory, its spill on disk): the clipping and the range check both
 * share.
 *
 * @module
 */

/** Holds the bytes of offsets `first` to `next` and copies any range of them out. */
export interface ByteSource {
  /** Copies bytes `from` to `to` into `target` at `at`; throws RangeError outside what it holds. */
  copyTo(from: number, to: number, target: Uint8Array, at: number): void;
}

/**
 * A copy of bytes `from` to `to` of `source`, clipped to the `first` to
 * `next` it holds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readClipped } from "./byte_range.ts";
 * const bytes = new Uint8Array([10, 11, 12, 13]); // offsets 100 to 104
 * const source = {
 *   copyTo: (from: number, to: number, target: Uint8Array, at: number) =>
 *     target.set(bytes.subarray(from - 100, to - 100), at),
 * };
 * assert.deepEqual([...readClipped(source, 100, 104, 90, 102)], [10, 11]);
 * assert.equal(readClipped(source, 100, 104, 200, 300).length, 0);
 * ```
 */
export function readClipped(
  source: ByteSource,
  first: number,
  next: number,
  from: number,
  to: number,
): Uint8Array {
  const start = Math.max(from, first);
  const end = Math.min(to, next);
  const out = new Uint8Array(Math.max(0, end - start));
  if (end > start) source.copyTo(start, end, out, 0);
  return out;
}

/**
 * Whether `from` to `to` is a range worth copying: false when it is empty;
 * throws when it reaches outside `first` to `next` (`what` says what holds
 * them: "retained", "spilled").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkRange } from "./byte_range.ts";
 * assert.equal(checkRange(5, 5, 0, 10, "retained"), false);
 * assert.equal(checkRange(2, 5, 0, 10, "retained"), true);
 * assert.throws(() => checkRange(2, 12, 0, 10, "retained"), RangeError);
 * ```
 */
export function checkRange(
  from: number,
  to: number,
  first: number,
  next: number,
  what: string,
): boolean {
  if (to <= from) return false;
  if (from < first || to > next) throw new RangeError(`Bytes ${from} to ${to} are not ${what}`);
  return true;
}
