/**
 * Service-wide counters reported by `/health`, and the output memory budget
 * they travel with.
 *
 * @module
 */
import { DEFAULT_OUTPUT_BUDGET, OutputMemory } from "../output/memory.ts";

/** Options of {@linkcode Metrics}. */
export interface MetricsOptions {
  /** Bytes of retained and queued output the server holds at most (`output-memory-budget`). */
  outputMemoryBudget?: number;
}

/**
 * Counters updated on the hot paths (plain field increments, nothing more).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Metrics } from "./metrics.ts";
 * const m = new Metrics();
 * m.recordStartLatency(2);
 * m.recordStartLatency(4);
 * assert.equal(m.meanStartLatencyMs, 3);
 * ```
 */
export class Metrics {
  /**
   * The server-wide budget for retained and queued output. It lives here
   * because everything that produces or queues output (executions, socket
   * writers) is already handed the metrics.
   */
  readonly outputMemory: OutputMemory;
  /** Output bytes read from children and sent to clients. */
  bytesStreamed = 0;
  /** Messages sent on WebSockets. */
  messagesSent = 0;
  /** Messages for WebSockets that had closed, dropped without being encoded. */
  messagesDropped = 0;
  /** Bytes of input accepted for children's stdin and not yet taken by them, all runs together. */
  stdinPendingBytes = 0;
  /** Output bytes decoded to text for a client (retained output is decoded only when read). */
  outputDecodedBytes = 0;
  /** Times an execution stopped reading a pipe because its socket was over the high-water mark. */
  backpressureWaits = 0;
  /** Largest send queue seen on any one socket, in bytes. */
  peakQueuedBytes = 0;
  /** Executions started since startup. */
  executionsStarted = 0;
  /** Executions finished since startup. */
  executionsFinished = 0;
  /** Sessions opened since startup. */
  sessionsOpened = 0;
  /** Sessions refused at the limit since startup. */
  sessionsRefused = 0;
  /** Idle MCP HTTP sessions ended at the session limit to make room for a new one of their principal. */
  sessionsReclaimed = 0;
  #latencyTotalMs = 0;
  #latencyCount = 0;

  /** Counters at zero, and an output budget of `output-memory-budget` (default 64 MiB). */
  constructor(options: MetricsOptions = {}) {
    this.outputMemory = new OutputMemory({
      budget: options.outputMemoryBudget ?? DEFAULT_OUTPUT_BUDGET,
    });
  }

  /** Records the time from receiving `execute` to sending `process.started`. */
  recordStartLatency(ms: number): void {
    this.#latencyTotalMs += ms;
    this.#latencyCount++;
  }

  /** Mean execute-to-start latency in ms (0 before the first run). */
  get meanStartLatencyMs(): number {
    return this.#latencyCount === 0 ? 0 : this.#latencyTotalMs / this.#latencyCount;
  }

  /** Notes a socket's current queue, keeping the peak. */
  noteQueued(bytes: number): void {
    if (bytes > this.peakQueuedBytes) this.peakQueuedBytes = bytes;
  }
}
