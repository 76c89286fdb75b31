/**
 * Where bytes are sent to a WebSocket client once its session is open, and
 * where back-pressure is measured (only a refusal before any session, such
 * as the session limit, is sent directly by lib/protocol/ws_transport.ts). Deno's server-side WebSocket has `bufferedAmount` but no drain
 * event, so `ready()` polls it. Each socket's queue counts against the
 * server's output budget ({@linkcode OutputMemory}); while that is spent, a
 * socket pauses its producers at {@linkcode QUEUE_FLOOR} rather than at its
 * high-water mark.
 *
 * @module
 */
import type { Metrics } from "../ops/metrics.ts";
import { type OutputMemory, QUEUE_FLOOR } from "../output/memory.ts";

/** The part of a WebSocket the writer needs (a real `WebSocket` fits). */
export interface SendableSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
}

const POLL_MS = 2;
const OPEN = 1;
const RESOLVED = Promise.resolve();

/**
 * Sends text frames and paces producers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SocketWriter } from "./socket_writer.ts";
 * import { Metrics } from "../ops/metrics.ts";
 * const sent: string[] = [];
 * const socket = { readyState: 1, bufferedAmount: 0, send: (d: string) => void sent.push(d) };
 * const writer = new SocketWriter(socket, 1024, new Metrics());
 * writer.send("hello");
 * await writer.ready();
 * assert.deepEqual(sent, ["hello"]);
 * ```
 */
export class SocketWriter {
  readonly #socket: SendableSocket;
  readonly #high: number;
  readonly #low: number;
  readonly #metrics: Metrics;
  readonly #memory: OutputMemory;
  #waiting: Promise<void> | null = null;
  #closed = false;
  readonly #gone = Promise.withResolvers<void>();

  /**
   * Pauses producers above `highWaterMark` queued bytes until below half of
   * it (above {@linkcode QUEUE_FLOOR} until below half of that, while the
   * output budget of `metrics` is spent).
   */
  constructor(socket: SendableSocket, highWaterMark: number, metrics: Metrics) {
    this.#socket = socket;
    this.#high = highWaterMark;
    this.#low = Math.floor(highWaterMark / 2);
    this.#metrics = metrics;
    this.#memory = metrics.outputMemory;
    this.#memory.addQueue(this);
  }

  /** Whether the socket has gone; sends are then dropped. */
  get closed(): boolean {
    return this.#closed || this.#socket.readyState !== OPEN;
  }

  /** Whether more than the high-water mark is queued: a producer that need not wait should fall back. */
  get busy(): boolean {
    return !this.closed && this.#socket.bufferedAmount > this.#high;
  }

  /** Bytes queued on the socket now. */
  get queued(): number {
    return this.#socket.bufferedAmount;
  }

  /** Marks the socket gone, releasing anyone waiting in {@linkcode ready}. */
  close(): void {
    this.#closed = true;
    this.#memory.removeQueue(this);
    this.#gone.resolve();
  }

  /** Resolves once the socket has gone ({@linkcode close}). */
  get gone(): Promise<void> {
    return this.#gone.promise;
  }

  /**
   * Sends one text frame; returns false when the socket is gone. Given a
   * function, calls it for the text only when the socket is still open, so
   * a message for a client that has left is never encoded.
   */
  send(text: string | (() => string)): boolean {
    if (this.closed) {
      this.#metrics.messagesDropped++;
      return false;
    }
    try {
      this.#socket.send(typeof text === "string" ? text : text());
    } catch {
      this.#closed = true;
      this.#metrics.messagesDropped++;
      return false;
    }
    this.#metrics.messagesSent++;
    this.#metrics.noteQueued(this.#socket.bufferedAmount);
    return true;
  }

  /**
   * Resolves when the queue is below the high-water mark, or below
   * {@linkcode QUEUE_FLOOR} while the output budget is spent (at once when
   * closed).
   */
  ready(): Promise<void> {
    if (this.closed) return RESOLVED;
    if (this.#waiting !== null) return this.#waiting;
    const queued = this.#socket.bufferedAmount;
    if (queued <= this.#high) {
      // The budget is looked at only for a queue it could hold back.
      if (queued <= QUEUE_FLOOR || !this.#memory.exhausted) return RESOLVED;
      this.#memory.queueWaits++;
    }
    this.#waiting = this.#drain();
    return this.#waiting;
  }

  async #drain(): Promise<void> {
    this.#metrics.backpressureWaits++;
    const floor = Math.min(this.#low, QUEUE_FLOOR / 2);
    while (!this.closed) {
      const queued = this.#socket.bufferedAmount;
      if (queued <= floor || (queued <= this.#low && !this.#memory.exhausted)) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    this.#waiting = null;
  }
}
