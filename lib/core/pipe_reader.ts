/**
 * Reading a child's pipe into one reused buffer.
 *
 * @module
 */

/** Bytes read from a pipe at once, at most. */
export const READ_BYTES = 64 * 1024;
/**
 * Bytes of a pipe's first read. Most pipes carry little (stderr above all),
 * and every running run holds one buffer per pipe: a hundred runs at 64 KiB
 * each would hold 12.5 MiB before writing a byte. A read that fills its
 * buffer means the pipe has more: the next reads get four times as much, up
 * to {@linkcode READ_BYTES}, so a stream is read in full-size reads from its
 * third read on.
 */
export const FIRST_READ_BYTES = 4 * 1024;

const EMPTY = new ArrayBuffer(0);

/**
 * Reads a pipe into one buffer that every read reuses (a BYOB reader), so
 * streaming output allocates nothing per read: a fresh 64 KiB buffer per
 * read is garbage outside the JS heap that the collector frees only late.
 * The buffer starts small and grows while reads fill it
 * ({@linkcode FIRST_READ_BYTES}). What a read returns is valid until the
 * next read. Falls back to the stream's own chunks for a stream that is not
 * a byte stream.
 *
 * @example Reads grow while they fill the buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import { FIRST_READ_BYTES, PipeReader, READ_BYTES } from "./pipe_reader.ts";
 * // A byte stream that always has more: every read fills the buffer.
 * const pipe = new ReadableStream({
 *   type: "bytes",
 *   pull(controller) {
 *     const request = controller.byobRequest!;
 *     request.respond(request.view!.byteLength);
 *   },
 * });
 * const reader = new PipeReader(pipe);
 * const sizes = [];
 * for (let i = 0; i < 4; i++) sizes.push((await reader.read()).value!.length);
 * assert.deepEqual(sizes, [FIRST_READ_BYTES, 4 * FIRST_READ_BYTES, READ_BYTES, READ_BYTES]);
 * reader.releaseLock();
 * ```
 */
export class PipeReader {
  readonly #byob: ReadableStreamBYOBReader | null;
  readonly #plain: ReadableStreamDefaultReader<Uint8Array> | null;
  #buffer = new ArrayBuffer(FIRST_READ_BYTES);

  /** Takes the stream's reader (BYOB when it is a byte stream). */
  constructor(stream: ReadableStream<Uint8Array>) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = stream.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream.
    }
    this.#byob = byob;
    this.#plain = byob === null ? stream.getReader() : null;
  }

  /** The next bytes, valid until the next read. */
  async read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    if (this.#byob === null) return await this.#plain!.read();
    const result = await this.#byob.read(new Uint8Array(this.#buffer));
    const value = result.value;
    if (value !== undefined) {
      // The read transferred the buffer: take it back for the next one,
      // or a larger one when this read filled it.
      const buffer = value.buffer as ArrayBuffer;
      this.#buffer = value.length === buffer.byteLength && buffer.byteLength < READ_BYTES
        ? new ArrayBuffer(Math.min(READ_BYTES, buffer.byteLength * 4))
        : buffer;
    }
    return result as ReadableStreamReadResult<Uint8Array>;
  }

  /** Abandons the read in progress and the stream. */
  cancel(): Promise<void> {
    return (this.#byob ?? this.#plain!).cancel();
  }

  /**
   * Lets go of the stream, and frees the buffer at once: a finished run's
   * pipes stay reachable for as long as its record, and a buffer that lived
   * as long as its run is freed by the collector only at a full collection,
   * so a hundred runs ending would hold 64 KiB per pipe each outside the JS
   * heap until then. What the last read returned is no longer valid.
   */
  releaseLock(): void {
    // Detaching frees the backing store now; a buffer lent to a read in
    // progress is detached already, and goes with the read.
    if (!this.#buffer.detached) this.#buffer.transfer(0);
    this.#buffer = EMPTY;
    (this.#byob ?? this.#plain!).releaseLock();
  }
}
