/**
 * Output chunks as sinks get them, decoded lazily.
 *
 * @module
 */
import type { Frame } from "../output/framer.ts";
import type { Metrics } from "../ops/metrics.ts";
import type { OutputChunk, StreamName } from "../types.ts";

/**
 * Decodes frames: they end between characters, so each decodes on its own;
 * a BOM in the output is text the child wrote, not a marker to strip.
 */
export const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * One message of output as the sink gets it. Its text is decoded only when a
 * sink asks for `data`: output a sink drops (its client is gone) or only
 * retains costs no string.
 */
export class FramedChunk implements OutputChunk {
  readonly stream: StreamName;
  readonly seq: number;
  readonly bytes: number;
  readonly truncated: boolean;
  readonly chunkIndex: number | null;
  readonly totalChunks: number | null;
  readonly #raw: Uint8Array;
  readonly #metrics: Metrics;
  #data: string | null = null;
  #sealed = false;

  /** A chunk of `frame`, at `seq`; its text is decoded on first read of `data`. */
  constructor(stream: StreamName, seq: number, frame: Frame, metrics: Metrics) {
    this.stream = stream;
    this.seq = seq;
    this.bytes = frame.bytes.length;
    this.truncated = frame.truncated;
    this.chunkIndex = frame.chunkIndex;
    this.totalChunks = frame.totalChunks;
    this.#raw = frame.bytes;
    this.#metrics = metrics;
  }

  /** The text, decoded on first use. */
  get data(): string {
    if (this.#data === null) {
      if (this.#sealed) {
        throw new TypeError("Output text read after its event: its bytes have been reused");
      }
      this.#data = decoder.decode(this.#raw);
      this.#metrics.outputDecodedBytes += this.bytes;
    }
    return this.#data;
  }

  /** The child's bytes (a view: copy them to keep them past the event). */
  raw(): Uint8Array {
    if (this.#sealed) {
      throw new TypeError("Output bytes read after their event: they have been reused");
    }
    return this.#raw;
  }

  /** The event is over: the bytes it points into are about to be reused. */
  seal(): void {
    this.#sealed = true;
  }
}
