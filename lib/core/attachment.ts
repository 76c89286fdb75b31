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
 *
 * @module
 */
import type { Execution } from "./execution.ts";
import { decoder } from "./framed_chunk.ts";
import type { Sink } from "./sink.ts";
import type { RetainedChunk } from "../output/output_log.ts";
import type { ExecutionEvent, OutputChunk } from "../types.ts";

/** Bytes replayed between two waits for the client (about a socket's worth). */
const REPLAY_BATCH_BYTES = 256 * 1024;

/** A retained chunk as an output event's chunk, its text decoded only when read. */
function replayed(exec: Execution, chunk: RetainedChunk, from: number): OutputChunk {
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
  };
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
 * assert.deepEqual(events.map((e) => e.type), ["output", "completed"]);
 * assert.equal(events[0]!.type === "output" && events[0]!.chunk.data, "hi\n");
 * ```
 */
export class Attachment {
  /** The run attached to. */
  readonly exec: Execution;
  #replayed: Promise<void> | null = null;
  readonly #sink: Sink;
  /** The offset of the next byte the client gets. */
  #cursor: number;
  /** Live events go straight to the client (the replay has caught up). */
  #live = false;
  #closed = false;
  readonly #unsubscribe: () => void;
  /** What the feed gets: live events, filtered while the replay catches up. */
  readonly #feedSink: Sink;

  /**
   * Attaches `sink` to `exec` from byte offset `from` (default: the oldest
   * retained). Events flow once {@linkcode start} is called (after the
   * client has the reply that names the offsets); until then live output
   * waits in the run's log.
   */
  constructor(exec: Execution, sink: Sink, from?: number) {
    this.exec = exec;
    this.#sink = sink;
    this.#cursor = Math.min(from ?? exec.output.first, exec.output.next);
    this.#feedSink = {
      emit: (event) => this.#onLive(event),
      ready: () => sink.ready(),
      gone: () => this.#closed || (sink.gone?.() ?? false),
    };
    this.#unsubscribe = exec.feed.subscribe(this.#feedSink);
  }

  /** The offset the replay starts from. */
  get from(): number {
    return this.#cursor;
  }

  /** Starts the replay; resolves once it has caught up with the run (or ended). Idempotent. */
  start(): Promise<void> {
    return this.#replayed ??= this.#replay();
  }

  /** Whether it has ended (detached, or the run's end was sent: it then holds nothing). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Stops sending; the run goes on. Idempotent. */
  detach(): void {
    this.#closed = true;
    this.#unsubscribe();
  }

  #send(event: ExecutionEvent): void {
    if (!this.#closed) this.#sink.emit(event);
  }

  #onLive(event: ExecutionEvent): void {
    if (this.#closed || this.#replayed === null) {
      // Before the start only events the log does not keep are lost: none matter yet.
      if (this.#closed || event.type === "output" || event.type === "completed") return;
    }
    switch (event.type) {
      case "output": {
        // Until the replay has caught up, the log has this chunk: it is read from there.
        if (!this.#live) return;
        const c = event.chunk;
        if (c.seq + c.bytes <= this.#cursor) return;
        this.#cursor = c.seq + c.bytes;
        this.#send(event);
        return;
      }
      case "started":
        // Sent before anyone could attach, or else replayed from the log as output.
        return;
      case "completed":
        // After the replay's last byte: the replay sends it once caught up.
        if (!this.#live) return;
        this.#send(event);
        this.detach();
        return;
      default:
        this.#send(event);
    }
  }

  async #replay(): Promise<void> {
    const exec = this.exec;
    const log = exec.output;
    while (!this.#closed) {
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
        const event: ExecutionEvent = {
          type: "output",
          executionId: exec.id,
          chunk: replayed(exec, chunk, this.#cursor),
        };
        this.#send(event);
        this.#cursor = chunk.seq + chunk.bytes;
        sent += chunk.bytes;
        if (sent >= REPLAY_BATCH_BYTES) break;
      }
      if (sent === 0) {
        // Nothing retained between here and the end: say so rather than loop.
        const next = log.next;
        this.#send({ type: "gap", executionId: exec.id, from: this.#cursor, to: next });
        this.#cursor = next;
        continue;
      }
      await this.#sink.ready();
    }
  }
}
