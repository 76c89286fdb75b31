/**
 * Reading a child's pipe into one reused buffer.
 *
 * @module
 */

/** Bytes read from a pipe at once. */
export const READ_BYTES = 64 * 1024;

const EMPTY = new ArrayBuffer(0);

/**
 * Reads a pipe into one buffer that every read reuses (a BYOB reader), so
 * streaming output allocates nothing per read: a fresh 64 KiB buffer per
 * read is garbage outside the JS heap that the collector frees only late.
 * What a read returns is valid until the next read. Falls back to the
 * stream's own chunks for a stream that is not a byte stream.
 */
export class PipeReader {
  readonly #byob: ReadableStreamBYOBReader | null;
  readonly #plain: ReadableStreamDefaultReader<Uint8Array> | null;
  #buffer = new ArrayBuffer(READ_BYTES);

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
    // The read transferred the buffer: take it back for the next one.
    if (result.value !== undefined) this.#buffer = result.value.buffer as ArrayBuffer;
    return result as ReadableStreamReadResult<Uint8Array>;
  }

  /** Abandons the read in progress and the stream. */
  cancel(): Promise<void> {
    return (this.#byob ?? this.#plain!).cancel();
  }

  /**
   * Lets go of the stream, and of the buffer: a finished run's pipes stay
   * reachable for as long as its record, and a hundred of them would
   * otherwise hold 64 KiB per pipe each outside the JS heap.
   */
  releaseLock(): void {
    this.#buffer = EMPTY;
    (this.#byob ?? this.#plain!).releaseLock();
  }
}
