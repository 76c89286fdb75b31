/**
 * Writes a remote run's output to the CLI's own stdout and stderr, byte for
 * byte, in the order it arrived (across both streams), one write at a time.
 * It counts what is queued so the caller can stop taking output from the
 * server while a slow reader (`| less`) holds it back.
 *
 * @module
 */

/** Where bytes go: `Deno.stdout`, `Deno.stderr`, or a stand-in in tests. */
export interface ByteStream {
  write(p: Uint8Array): Promise<number>;
}

/** The CLI's own streams. */
export type LocalStream = "stdout" | "stderr";

/** Told before and after each write, so a progress line can step aside. */
export interface WriteObserver {
  /** Before bytes go to `stream`. */
  beforeWrite(stream: LocalStream): void;
  /** After `bytes` went to `stream`. */
  afterWrite(stream: LocalStream, bytes: Uint8Array): void;
}

interface Queued {
  stream: LocalStream;
  bytes: Uint8Array;
  written?: (() => void) | undefined;
}

/**
 * An ordered writer to two byte streams.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputWriter } from "./output_writer.ts";
 * const got: string[] = [];
 * const sink = (name: string) => ({
 *   write: (p: Uint8Array) => (got.push(name + ":" + new TextDecoder().decode(p)), Promise.resolve(p.length)),
 * });
 * const out = new OutputWriter({ stdout: sink("out"), stderr: sink("err") });
 * out.write("stdout", new TextEncoder().encode("a\n"));
 * out.write("stderr", new TextEncoder().encode("b\n"));
 * await out.drained();
 * assert.deepEqual(got, ["out:a\n", "err:b\n"]);
 * ```
 */
export class OutputWriter {
  readonly #streams: Record<LocalStream, ByteStream>;
  readonly #observer: WriteObserver | undefined;
  readonly #queue: Queued[] = [];
  #queued = 0;
  #pumping = false;
  #broken: LocalStream | null = null;
  #idle = Promise.withResolvers<void>();
  readonly #brokenSignal = Promise.withResolvers<LocalStream>();

  /** Writes to `streams`, telling `observer` around each write. */
  constructor(
    streams: Record<LocalStream, ByteStream> = { stdout: Deno.stdout, stderr: Deno.stderr },
    observer?: WriteObserver,
  ) {
    this.#streams = streams;
    this.#observer = observer;
    this.#idle.resolve();
  }

  /** Bytes accepted and not yet written. */
  get queued(): number {
    return this.#queued;
  }

  /** The stream whose reader went away (EPIPE), once one has; nothing is written after that. */
  get broken(): LocalStream | null {
    return this.#broken;
  }

  /** Resolves when a stream's reader goes away (e.g. `| head` has read enough). */
  get brokenPipe(): Promise<LocalStream> {
    return this.#brokenSignal.promise;
  }

  /**
   * Queues `bytes` for `stream`, after everything queued before (for either
   * stream); `written` is called once they are written.
   */
  write(stream: LocalStream, bytes: Uint8Array, written?: () => void): void {
    // Nobody reads any more: the bytes are done with all the same (flow control must go on).
    if (this.#broken !== null || bytes.length === 0) return written?.();
    this.#queue.push({ stream, bytes, written });
    this.#queued += bytes.length;
    if (!this.#pumping) {
      this.#pumping = true;
      this.#idle = Promise.withResolvers<void>();
      void this.#pump();
    }
  }

  /** Resolves once everything queued has been written (or a stream broke). */
  drained(): Promise<void> {
    return this.#idle.promise;
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#broken === null) {
        const { stream, bytes, written } = this.#queue.shift()!;
        this.#observer?.beforeWrite(stream);
        try {
          let off = 0;
          while (off < bytes.length) off += await this.#streams[stream].write(bytes.subarray(off));
        } catch {
          // EPIPE mostly; any stream that cannot be written is one nobody reads.
          this.#broken = stream;
          this.#brokenSignal.resolve(stream);
        }
        this.#queued -= bytes.length;
        this.#observer?.afterWrite(stream, bytes);
        written?.();
      }
    } finally {
      for (const q of this.#queue) q.written?.();
      this.#queue.length = 0;
      this.#queued = 0;
      this.#pumping = false;
      this.#idle.resolve();
    }
  }
}
