/**
 * Input on its way to a child's stdin, bounded per execution. Input is
 * accepted while what is still waiting for the pipe plus the new input fits
 * in `capacity`, and refused whole otherwise, at once: a child that does not
 * read its stdin can hold at most `capacity` bytes of the server's memory,
 * and a caller never waits on it for longer than it chooses to. Accepted
 * input is written in order, a slice at a time, so the pipe's stream never
 * queues more than one slice and each input's progress is known.
 *
 * @module
 */
import { InvalidParamsError, NoProcessError } from "../errors.ts";

/** Default capacity: 1 MiB (`stdin-buffer`). */
export const DEFAULT_STDIN_BUFFER = 1024 * 1024;
/** Largest write handed to the pipe at once. */
const SLICE_BYTES = 64 * 1024;

/** One accepted input. */
export interface StdinWrite {
  /** Its size in bytes. */
  readonly bytes: number;
  /** Bytes of it the pipe has taken so far. */
  readonly written: number;
  /**
   * Resolves once all of it (and the close, when asked for) has gone through;
   * rejects with a {@linkcode NoProcessError} when the child stops reading
   * its stdin or the run ends first.
   */
  readonly done: Promise<void>;
}

interface Pending {
  data: Uint8Array;
  /** Bytes of `data` written. */
  off: number;
  close: boolean;
  write: { bytes: number; written: number; done: Promise<void> };
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The pending input of one child's stdin.
 *
 * @example Input beyond the buffer is refused, not queued
 * ```ts
 * import assert from "node:assert/strict";
 * import { StdinBuffer } from "./stdin_buffer.ts";
 * // A pipe that never takes anything: a child that does not read.
 * const stalled = new WritableStream<Uint8Array>({ write: () => new Promise(() => {}) });
 * const stdin = new StdinBuffer(stalled.getWriter(), 8);
 * const first = stdin.write(new TextEncoder().encode("hello"));
 * assert.equal(stdin.pending, 5);
 * assert.throws(() => stdin.write(new TextEncoder().encode("world")), { code: -32602 });
 * assert.equal(stdin.pending, 5, "nothing of the refused input was kept");
 * await stdin.abort();
 * await assert.rejects(first.done, { code: -32002 });
 * ```
 */
export class StdinBuffer {
  /** Bytes of input accepted and not yet taken by the pipe, at most. */
  readonly capacity: number;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #onPending: (delta: number) => void;
  readonly #queue: Pending[] = [];
  #pending = 0;
  #accepted = 0;
  #writing = false;
  /** Why no more input is taken, once none is. */
  #shut: "closing" | "failed" | "aborted" | null = null;

  /**
   * Buffers input for `writer`; `onPending` hears every change of the
   * pending total (for the server-wide figure).
   */
  constructor(
    writer: WritableStreamDefaultWriter<Uint8Array>,
    capacity: number,
    onPending: (delta: number) => void = () => {},
  ) {
    this.#writer = writer;
    this.capacity = capacity;
    this.#onPending = onPending;
  }

  /** Bytes of input accepted since the start, written or not (the stdin stream's length). */
  get accepted(): number {
    return this.#accepted;
  }

  /** Whether input is still taken (stdin not closed, nor asked to close). */
  get open(): boolean {
    return this.#shut === null;
  }

  /** Bytes accepted and not yet taken by the pipe. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Refuses an input of `bytes` that does not fit, before it is encoded.
   *
   * @throws {InvalidParamsError} (-32602) when it does not fit.
   */
  check(bytes: number): void {
    checkStdinRoom(this.#pending, bytes, this.capacity);
  }

  /**
   * Accepts `data` to be written after what is already pending, then closes
   * stdin if `close` is set (no input is taken after that). `force` skips
   * the capacity check (the run's initial `stdin`, already bounded).
   *
   * @throws {InvalidParamsError} (-32602) when it does not fit.
   * @throws {NoProcessError} when stdin is closed or closing.
   */
  write(data: Uint8Array, close = false, force = false): StdinWrite {
    if (this.#shut !== null) throw new NoProcessError("stdin is not open");
    if (!force) this.check(data.length);
    if (close) this.#shut = "closing";
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Nobody need wait for it: an input whose caller has answered already may still fail.
    done.catch(() => {});
    const write = { bytes: data.length, written: 0, done };
    this.#accepted += data.length;
    this.#queue.push({ data, off: 0, close, write, resolve, reject });
    this.#add(data.length);
    if (!this.#writing) void this.#pump();
    return write;
  }

  /**
   * The run has ended: drops what is pending, fails the inputs waiting for
   * it, and aborts the pipe (a write blocked on a pipe held by an escaped
   * process would keep a close waiting).
   */
  async abort(): Promise<void> {
    if (this.#shut !== "failed") this.#shut = "aborted";
    this.#fail(
      (p) =>
        new NoProcessError(
          `The run ended before the process read ${p.data.length - p.off} bytes of this input`,
        ),
    );
    await this.#writer.abort().catch(() => {});
  }

  async #pump(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const head = this.#queue[0]!;
        if (head.off < head.data.length) {
          const slice = head.data.subarray(head.off, head.off + SLICE_BYTES);
          await this.#writer.write(slice);
          if (this.#queue[0] !== head) continue; // aborted meanwhile
          head.off += slice.length;
          head.write.written = head.off;
          this.#add(-slice.length);
          if (head.off < head.data.length) continue;
        }
        if (head.close) await this.#writer.close();
        if (this.#queue[0] !== head) continue;
        this.#queue.shift();
        head.resolve();
      }
    } catch {
      // EPIPE: the child closed its stdin or exited.
      if (this.#shut !== "aborted") this.#shut = "failed";
      this.#fail(() => new NoProcessError("The process no longer reads its stdin"));
    } finally {
      this.#writing = false;
    }
  }

  #fail(error: (p: Pending) => Error): void {
    for (const p of this.#queue.splice(0)) {
      this.#add(-(p.data.length - p.off));
      p.reject(error(p));
    }
  }

  #add(delta: number): void {
    if (delta === 0) return;
    this.#pending += delta;
    this.#onPending(delta);
  }
}

/**
 * Writes `text` to `stdin` and closes it: the request's one-shot `stdin`.
 * Runs alongside the output pumps, so a child that echoes a large stdin
 * cannot deadlock us; a child that closed its stdin or exited (EPIPE)
 * simply gets nothing more.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeAndClose } from "./stdin_buffer.ts";
 * const child = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
 * await writeAndClose(child.stdin, "hi\n");
 * assert.equal(new TextDecoder().decode((await child.output()).stdout), "hi\n");
 * ```
 */
export async function writeAndClose(
  stdin: WritableStream<Uint8Array>,
  text: string,
): Promise<void> {
  const writer = stdin.getWriter();
  try {
    if (text.length > 0) await writer.write(new TextEncoder().encode(text));
    await writer.close();
  } catch {
    // The child closed its stdin or exited early (EPIPE): nothing to deliver to.
  }
}

/**
 * Refuses an input of `bytes` that does not fit a stdin buffer of
 * `capacity` holding `pending` bytes: the same refusal for a run here and
 * for one on another node (lib/cluster/relayed_run.ts).
 *
 * @throws {InvalidParamsError} (-32602) when it does not fit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkStdinRoom } from "./stdin_buffer.ts";
 * checkStdinRoom(0, 10, 10);
 * assert.throws(() => checkStdinRoom(5, 10, 10), { code: -32602 });
 * ```
 */
export function checkStdinRoom(pending: number, bytes: number, capacity: number): void {
  if (bytes > capacity) {
    throw new InvalidParamsError(
      `Input of ${bytes} bytes is larger than the stdin buffer (${capacity} bytes, ` +
        "stdin-buffer): send it in smaller parts",
      { data: { reason: "stdin_input_too_large", bytes, stdin_buffer: capacity } },
    );
  }
  if (pending + bytes > capacity) {
    throw new InvalidParamsError(
      `The process is not reading its stdin: ${pending} bytes sent earlier are still ` +
        `waiting to be written (the stdin buffer holds ${capacity}); this input of ` +
        `${bytes} bytes was refused and nothing of it was written`,
      { data: { reason: "stdin_full", bytes_pending: pending, stdin_buffer: capacity } },
    );
  }
}
