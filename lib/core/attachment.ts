/**
 * A client attached to a run from a byte offset (`attach`): the retained
 * output from that offset is replayed at the client's pace, then the run's
 * live events follow, with no byte lost or repeated where the two meet, and
 * the run's `completed` last. Output that is no longer retained is announced
 * as a `gap` rather than skipped in silence.
 *
 * The replay reads the run's output log, never copies of the live events,
 * so a replay costs no memory beyond the page it is sending; while it
 * catches up, live output events are left to the log and read from there.
 * An attachment never holds the run back: it sends only while its client
 * keeps up (each batch waits for the client's `ready()`), and a client that
 * falls behind while live (its sink is `busy()`) goes back to reading the
 * log, at its own pace, with a `gap` if the log let go of what it missed.
 *
 * @module
 */
import type { Run } from "./run.ts";
import { decoder } from "./framed_chunk.ts";
import type { Sink } from "./sink.ts";
import { utf8CharEnd } from "../utf8.ts";
import type { RetainedChunk } from "../output/output_log.ts";
import type { ExecutionEvent, OutputChunk } from "../types.ts";

/** Bytes replayed between two waits for the client (about a socket's worth). */
const REPLAY_BATCH_BYTES = 256 * 1024;

/** A retained chunk as an output event's chunk, its text decoded only when read. */
function replayed(exec: Run, chunk: RetainedChunk, from: number): OutputChunk {
  const end = chunk.seq + chunk.bytes;
  const start = Math.max(from, chunk.seq);
  let data: string | null = null;
  return {
    stream: chunk.stream,
    seq: start,
    bytes: end - start,
    truncated: chunk.truncated,
    chunkIndex: chunk.chunkIndex,
    totalChunks: chunk.totalChunks,
    get data() {
      return data ??= decoder.decode(exec.output.read(start, end));
    },
    raw: () => exec.output.read(start, end),
  };
}

/** Options of {@linkcode Attachment}. */
export interface AttachOptions {
  /** Also send the run's `started` (the attachment of the client that starts the run). */
  withStart?: boolean;
  /**
   * Hold the run to this client's pace (`sink.ready()`) while attached,
   * even a detached run: the child's pipe is read only as fast as the
   * client takes output, as with a local pipe.
   */
  paces?: boolean;
}

/**
 * One client's attachment to one run.
 *
 * @example Attach to a finished run: its output, then its end
 * ```ts
 * import assert from "node:assert/strict";
 * import { Attachment } from "./attachment.ts";
 * import { Execution } from "./execution.ts";
 * import { Metrics } from "../ops/metrics.ts";
 * import type { ExecutionEvent } from "../types.ts";
 * const exec = Execution.spawn({
 *   id: "demo", sessionId: null, metrics: new Metrics(),
 *   sink: { emit: () => {}, ready: () => Promise.resolve() },
 *   spec: { argv: ["echo", "hi"], display: "echo hi", env: { PATH: "/usr/bin:/bin" },
 *     timeout: 10, timeoutSource: "request", idleTimeout: null, framing: "chunk" },
 *   limits: { chunkSize: 65536, lineLimit: 65536, flushIntervalMs: 5, killGraceMs: 1000,
 *     orphanGraceMs: 500, outputRetention: 65536 },
 * });
 * exec.run();
 * await exec.done;
 * const events: ExecutionEvent[] = [];
 * const attachment = new Attachment(exec, {
 *   emit: (e) => void events.push(e), ready: () => Promise.resolve() });
 * await attachment.start();
 * await attachment.ended;
 * assert.deepEqual(events.map((e) => e.type), ["output", "completed"]);
 * assert.equal(events[0]!.type === "output" && events[0]!.chunk.data, "hi\n");
 * ```
 */
export class Attachment {
  /** The run attached to. */
  readonly exec: Run;
  /** Resolves once the attachment has ended: the run's end was sent, or it was detached. */
  readonly ended: Promise<void>;
  readonly #endedResolve: () => void;
  readonly #sink: Sink;
  readonly #withStart: boolean;
  /** The offset of the next byte the client gets. */
  #cursor: number;
  /** Live events go straight to the client (the replay has caught up). */
  #live = false;
  #started = false;
  #closed = false;
  /** The replay loop is running. */
  #pumping = false;
  /** Resolves when the first replay has caught up with the run. */
  #caughtUp: Promise<void> | null = null;
  readonly #unsubscribe: () => void;
  readonly #feedSink: Sink;

  /**
   * Attaches `sink` to `exec` from byte offset `from` (default: the oldest
   * retained; an offset inside a character moves to the next character, so
   * text is never decoded from the middle of one). Events flow once
   * {@linkcode start} is called (after the client has the reply that names
   * the offsets); until then live output waits in the run's log.
   */
  constructor(exec: Run, sink: Sink, from?: number, options: AttachOptions = {}) {
    this.exec = exec;
    this.#sink = sink;
    this.#withStart = options.withStart === true;
    const log = exec.output;
    let cursor = Math.min(from ?? log.first, log.next);
    if (cursor > log.first) {
      // Within the chunk that holds it: a character never spans two chunks.
      for (const chunk of log.chunksFrom(cursor)) {
        if (chunk.seq < cursor) {
          const end = chunk.seq + chunk.bytes;
          cursor = utf8CharEnd((i) => log.byteAt(i), Math.max(chunk.seq, log.first), cursor, end);
        }
        break;
      }
    }
    this.#cursor = cursor;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.ended = promise;
    this.#endedResolve = resolve;
    const paces = options.paces === true;
    const feedSink: Sink = {
      emit: (event) => this.#onLive(event),
      // Never waits past the attachment's end: a client that left holds nothing.
      ready: paces ? () => Promise.race([sink.ready(), this.ended]) : () => Promise.resolve(),
      gone: () => this.#closed || (sink.gone?.() ?? false),
    };
    // Unless it holds the run, it paces nothing: it keeps up or reads the log.
    this.#feedSink = feedSink;
    this.#unsubscribe = exec.feed.subscribe(feedSink, { paces, holds: paces });
  }

  /** The offset the replay starts from (after moving to a character's start). */
  get from(): number {
    return this.#cursor;
  }

  /** Whether it has ended (detached, or the run's end was sent: it then holds nothing). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Starts the replay; resolves once it has caught up with the run (or ended). Idempotent. */
  start(): Promise<void> {
    this.#started = true;
    return this.#caughtUp ??= this.#pump();
  }

  /**
   * The client's connection dropped: stops sending, and if this attachment
   * holds the run, the run keeps waiting for the client to come back
   * (lib/core/run_feed.ts, `leave`), unless another client holds it by now. Idempotent.
   */
  leave(): void {
    if (this.#closed) return;
    this.exec.feed.leave(this.#feedSink);
    this.detach();
  }

  /** Stops sending; the run goes on. Idempotent. */
  detach(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#endedResolve();
  }

  #send(event: ExecutionEvent): void {
    if (!this.#closed) this.#sink.emit(event);
  }

  #onLive(event: ExecutionEvent): void {
    if (this.#closed) return;
    switch (event.type) {
      case "output": {
        // Until the replay has caught up, the log has this chunk: it is read from there.
        if (!this.#live) return;
        const c = event.chunk;
        if (c.seq !== this.#cursor || this.#sink.busy?.()) {
          // Behind: the rest comes from the log, as fast as the client takes it.
          this.#live = false;
          void this.#pump();
          return;
        }
        this.#cursor = c.seq + c.bytes;
        this.#send(event);
        return;
      }
      case "started":
        // Before anyone could attach, unless this attachment starts the run.
        if (this.#withStart) this.#send(event);
        return;
      case "completed":
        // After the replay's last byte: the replay sends it once caught up.
        if (!this.#live) return;
        this.#send(event);
        this.detach();
        return;
      default:
        if (this.#started) this.#send(event);
    }
  }

  /** Sends from the log until caught up, a batch at a time, each once the client is ready. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      await this.#catchUp();
    } finally {
      this.#pumping = false;
    }
  }

  async #catchUp(): Promise<void> {
    const exec = this.exec;
    const log = exec.output;
    while (!this.#closed) {
      // First the client: a client that does not read gets nothing more queued.
      await this.#sink.ready();
      if (this.#closed) return;
      if (this.#sink.gone?.()) {
        this.detach();
        return;
      }
      const first = log.first;
      if (this.#cursor < first) {
        this.#send({ type: "gap", executionId: exec.id, from: this.#cursor, to: first });
        this.#cursor = first;
      }
      if (this.#cursor >= log.next) {
        // Caught up, in the same turn as the last read: no live event can fall in between.
        this.#live = true;
        const exit = exec.exit;
        if (exit !== null) {
          this.#send({
            type: "completed",
            executionId: exec.id,
            pid: exec.pid,
            pgid: exec.pgid,
            exit,
          });
          // The end was sent: nothing more comes (hooks after it go to the run's starter).
          this.detach();
        }
        return;
      }
      let sent = 0;
      for (const chunk of log.chunksFrom(this.#cursor)) {
        this.#send({
          type: "output",
          executionId: exec.id,
          chunk: replayed(exec, chunk, this.#cursor),
        });
        this.#cursor = chunk.seq + chunk.bytes;
        sent += chunk.bytes;
        if (sent >= REPLAY_BATCH_BYTES) break;
      }
      if (sent === 0) {
        // Nothing retained between here and the end: say so rather than loop.
        const next = log.next;
        this.#send({ type: "gap", executionId: exec.id, from: this.#cursor, to: next });
        this.#cursor = next;
      }
    }
  }
}
