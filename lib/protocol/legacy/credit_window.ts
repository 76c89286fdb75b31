/**
 * Flow control a client asks for (`window` on `execute` or `attach`): the
 * server sends a run's output to it only while less than `window` bytes
 * of it are unacknowledged, and the client says how far it has got with
 * `ack {execution_id, seq}`. A browser-style WebSocket client reads its
 * socket whatever its own consumer does, so the socket alone cannot hold
 * the run back; with a window, the run is paced by the client's own
 * consumer (a terminal, a pipe), even a detached run, as a local pipe
 * would pace it.
 *
 * @module
 */
import type { Sink } from "../../core/sink.ts";

/** The smallest and largest window a client may ask for, in bytes. */
export const MIN_WINDOW = 64 * 1024;
export const MAX_WINDOW = 64 * 1024 * 1024;

/**
 * A sink for one run that passes events on to `inner` and is ready only
 * while the window has room.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CreditWindow } from "./credit_window.ts";
 * const sink = { emit: () => {}, ready: () => Promise.resolve() };
 * const w = new CreditWindow(sink, 10, 0);
 * w.emit({ type: "output", executionId: "e", chunk: { stream: "stdout", data: "0123456789",
 *   seq: 0, bytes: 10, truncated: false, chunkIndex: null, totalChunks: null } });
 * assert.equal(w.busy(), true);
 * let ready = false;
 * const waiting = w.ready().then(() => ready = true);
 * w.ack(4);
 * await waiting;
 * assert.equal(ready, true);
 * ```
 */
export class CreditWindow implements Sink {
  readonly #inner: Sink;
  readonly #window: number;
  /** End offset of the last output sent. */
  #sent: number;
  /** Offset the client has acknowledged. */
  #acked: number;
  #waiters: (() => void)[] = [];
  #started = false;
  /** Set once the window no longer applies ({@linkcode until}). */
  #open = false;

  /** A window of `window` bytes over `inner`, starting at offset `from`. */
  constructor(inner: Sink, window: number, from: number) {
    this.#inner = inner;
    this.#window = window;
    this.#sent = from;
    this.#acked = from;
  }

  /**
   * From when `signal` settles on, the window holds nothing back (the run is
   * being ended, or the client has gone): pacing must never keep a run
   * from ending.
   */
  until(signal: Promise<unknown>): this {
    void signal.then(() => {
      this.#open = true;
      this.release();
    });
    return this;
  }

  /** The client has written everything before offset `seq`. */
  ack(seq: number): void {
    if (seq <= this.#acked) return;
    this.#acked = Math.min(seq, this.#sent);
    if (!this.#full()) { for (const w of this.#waiters.splice(0)) w(); }
  }

  /** Unblocks whoever waits: the client is gone, nothing will be acknowledged. */
  release(): void {
    this.#acked = this.#sent;
    for (const w of this.#waiters.splice(0)) w();
  }

  #full(): boolean {
    return !this.#open && this.#sent - this.#acked >= this.#window;
  }

  emit(...args: Parameters<Sink["emit"]>): void {
    const [event] = args;
    if (event.type === "output") {
      // Where the replay really starts (the oldest retained, a character's start) needs no ack.
      if (!this.#started) this.#acked = Math.max(this.#acked, event.chunk.seq);
      this.#started = true;
      this.#sent = Math.max(this.#sent, event.chunk.seq + event.chunk.bytes);
    } else if (event.type === "gap") {
      // Bytes that are gone need no ack either, once all before them have one.
      if (this.#acked >= event.from) this.#acked = Math.max(this.#acked, event.to);
      this.#sent = Math.max(this.#sent, event.to);
    }
    this.#inner.emit(event);
  }

  ready(): Promise<void> {
    if (this.#full()) {
      const room = new Promise<void>((resolve) => this.#waiters.push(resolve));
      return room.then(() => this.#inner.ready());
    }
    return this.#inner.ready();
  }

  busy(): boolean {
    return this.#full() || (this.#inner.busy?.() ?? false);
  }

  gone(): boolean {
    return this.#inner.gone?.() ?? false;
  }
}
