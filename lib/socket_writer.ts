/**
 * The one place bytes are sent to a WebSocket client, and where back-pressure
 * is measured. Deno's server-side WebSocket has `bufferedAmount` but no drain
 * event, so `ready()` polls it.
 *
 * @module
 */
import type { Metrics } from "./metrics.ts";

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
 * import { Metrics } from "./metrics.ts";
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
  #waiting: Promise<void> | null = null;
  #closed = false;

  /** Pauses producers above `highWaterMark` queued bytes until below half of it. */
  constructor(socket: SendableSocket, highWaterMark: number, metrics: Metrics) {
    this.#socket = socket;
    this.#high = highWaterMark;
    this.#low = Math.floor(highWaterMark / 2);
    this.#metrics = metrics;
  }

  /** Whether the socket has gone; sends are then dropped. */
  get closed(): boolean {
    return this.#closed || this.#socket.readyState !== OPEN;
  }

  /** Bytes queued on the socket now. */
  get queued(): number {
    return this.#socket.bufferedAmount;
  }

  /** Marks the socket gone, releasing anyone waiting in {@linkcode ready}. */
  close(): void {
    this.#closed = true;
  }

  /** Sends one text frame; returns false when the socket is gone. */
  send(text: string): boolean {
    if (this.closed) return false;
    try {
      this.#socket.send(text);
    } catch {
      this.#closed = true;
      return false;
    }
    this.#metrics.noteQueued(this.#socket.bufferedAmount);
    return true;
  }

  /** Resolves when the queue is below the high-water mark (at once when closed). */
  ready(): Promise<void> {
    if (this.closed || this.#socket.bufferedAmount <= this.#high) return RESOLVED;
    this.#waiting ??= this.#drain();
    return this.#waiting;
  }

  async #drain(): Promise<void> {
    this.#metrics.backpressureWaits++;
    while (!this.closed && this.#socket.bufferedAmount > this.#low) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    this.#waiting = null;
  }
}
