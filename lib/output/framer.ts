/**
 * Cuts one output stream's bytes into messages. Works on bytes, not text, so
 * finding newlines costs one `indexOf` and a cut never lands inside a UTF-8
 * character. The concatenation of all frames equals the input exactly.
 *
 * @module
 */
import type { Framing, LinePiece } from "../types.ts";
import { utf8Boundary } from "../utf8.ts";

/** One message's worth of bytes, and where it sits in its line. */
export interface Frame extends LinePiece {
  /** A view into the pushed data: decode before the next push. */
  bytes: Uint8Array;
}

/** Limits for {@linkcode OutputFramer}. */
export interface FramerOptions {
  /** `chunk` coalesces whole lines; `line` sends one line per frame. */
  framing: Framing;
  /** Largest frame of coalesced lines, in bytes (framing `chunk`). */
  chunkSize: number;
  /** Longest line sent whole; must be >= chunkSize. Longer lines are split. */
  lineLimit: number;
}

const NL = 0x0a;
const EMPTY = new Uint8Array(0);

/**
 * Frames one stream.
 *
 * @example Whole lines are coalesced; a partial line waits for its newline
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputFramer } from "./framer.ts";
 * const framer = new OutputFramer({ framing: "chunk", chunkSize: 1024, lineLimit: 1024 });
 * const text = (f: { bytes: Uint8Array }) => new TextDecoder().decode(f.bytes);
 * const frames = framer.push(new TextEncoder().encode("a\nb\nc"));
 * assert.deepEqual(frames.map(text), ["a\nb\n"]);
 * assert.deepEqual(framer.end().map(text), ["c"]);
 * ```
 */
export class OutputFramer {
  readonly #framing: Framing;
  readonly #chunkSize: number;
  readonly #lineLimit: number;
  #rest: Uint8Array = EMPTY;
  /** Index of the next piece of a line being split, or -1. */
  #piece = -1;

  /** Creates a framer. */
  constructor(options: FramerOptions) {
    if (options.lineLimit < options.chunkSize) {
      throw new RangeError("lineLimit must be at least chunkSize");
    }
    this.#framing = options.framing;
    this.#chunkSize = options.chunkSize;
    this.#lineLimit = options.lineLimit;
  }

  /** Bytes held back waiting for a newline. */
  get pending(): number {
    return this.#rest.length;
  }

  /** Adds bytes; returns the frames now complete. */
  push(data: Uint8Array): Frame[] {
    let buf = data;
    if (this.#rest.length > 0) {
      buf = new Uint8Array(this.#rest.length + data.length);
      buf.set(this.#rest);
      buf.set(data, this.#rest.length);
    }
    const frames: Frame[] = [];
    const end = buf.length;
    let pos = 0;
    while (pos < end) {
      if (this.#piece >= 0) {
        const next = this.#continueSplit(buf, pos, end, frames);
        if (next === pos) break;
        pos = next;
        continue;
      }
      if (this.#framing === "chunk") {
        const window = buf.subarray(pos, Math.min(end, pos + this.#chunkSize));
        const lastNl = window.lastIndexOf(NL);
        if (lastNl !== -1) {
          frames.push(whole(buf.subarray(pos, pos + lastNl + 1)));
          pos += lastNl + 1;
          continue;
        }
        // No newline in a window shorter than a chunk: wait for more.
        if (window.length < this.#chunkSize) break;
      }
      // One line (framing "line", or a chunk-mode line longer than a chunk).
      const nl = buf.subarray(pos, Math.min(end, pos + this.#lineLimit)).indexOf(NL);
      if (nl !== -1) {
        frames.push(whole(buf.subarray(pos, pos + nl + 1)));
        pos += nl + 1;
        continue;
      }
      if (end - pos < this.#lineLimit) break;
      this.#piece = 0;
      pos = this.#splitPiece(buf, pos, pos + this.#lineLimit, frames);
    }
    // Copy the remainder: it is small (< lineLimit) and must not pin `data`.
    this.#rest = pos < end ? buf.slice(pos) : EMPTY;
    return frames;
  }

  /**
   * Sends what is held back (a prompt with no newline yet), so interactive
   * output is not delayed: used after a short quiet period, and before the
   * other stream's data is sent. A partial line is not a split: its frame has
   * `truncated: false` and `chunkIndex: null`, and what follows starts afresh.
   * Only the rest of a line already being split (longer than the line limit)
   * goes out as its next truncated piece. Keeps back only an incomplete
   * trailing character.
   *
   * @example A prompt is sent whole, not as a piece of a split line
   * ```ts
   * import assert from "node:assert/strict";
   * import { OutputFramer } from "./framer.ts";
   * const framer = new OutputFramer({ framing: "chunk", chunkSize: 1024, lineLimit: 1024 });
   * framer.push(new TextEncoder().encode("prompt> "));
   * const [frame] = framer.flushPartial();
   * assert.equal(new TextDecoder().decode(frame!.bytes), "prompt> ");
   * assert.equal(frame!.truncated, false);
   * assert.equal(frame!.chunkIndex, null);
   * ```
   */
  flushPartial(): Frame[] {
    if (this.#rest.length === 0) return [];
    const rest = this.#rest;
    const cut = utf8Boundary((i) => rest[i]!, 0, rest.length);
    if (cut === 0) return [];
    this.#rest = rest.slice(cut);
    if (this.#piece < 0) return [whole(rest.subarray(0, cut))];
    const frames: Frame[] = [];
    this.#splitPiece(rest, 0, cut, frames);
    return frames;
  }

  /** The stream ended: returns whatever is left as the final frame. */
  end(): Frame[] {
    if (this.#rest.length === 0 && this.#piece < 0) return [];
    const piece = this.#piece;
    const frame: Frame = {
      bytes: this.#rest,
      truncated: false,
      chunkIndex: piece >= 0 ? piece : null,
      totalChunks: piece >= 0 ? piece + 1 : null,
    };
    this.#rest = EMPTY;
    this.#piece = -1;
    return frame.bytes.length > 0 || piece >= 0 ? [frame] : [];
  }

  /** Emits the next piece of a line being split; returns the new position. */
  #continueSplit(buf: Uint8Array, pos: number, end: number, frames: Frame[]): number {
    const nl = buf.subarray(pos, Math.min(end, pos + this.#lineLimit)).indexOf(NL);
    if (nl !== -1) {
      const piece = this.#piece;
      frames.push({
        bytes: buf.subarray(pos, pos + nl + 1),
        truncated: false,
        chunkIndex: piece,
        totalChunks: piece + 1,
      });
      this.#piece = -1;
      return pos + nl + 1;
    }
    if (end - pos < this.#lineLimit) return pos;
    return this.#splitPiece(buf, pos, pos + this.#lineLimit, frames);
  }

  /** Emits `buf[pos, limit)` (cut back to a character boundary) as a non-final piece. */
  #splitPiece(buf: Uint8Array, pos: number, limit: number, frames: Frame[]): number {
    let cut = utf8Boundary((i) => buf[i]!, pos, limit);
    if (cut === pos) cut = limit;
    frames.push({
      bytes: buf.subarray(pos, cut),
      truncated: true,
      chunkIndex: this.#piece,
      totalChunks: null,
    });
    this.#piece++;
    return cut;
  }
}

function whole(bytes: Uint8Array): Frame {
  return { bytes, truncated: false, chunkIndex: null, totalChunks: null };
}
