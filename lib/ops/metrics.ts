/**
 * Service-wide counters reported by `/health`, and the output memory budget
 * they travel with.
 *
 * @module
 */
import { DEFAULT_OUTPUT_BUDGET, OutputMemory } from "../output/memory.ts";
import type { ExitInfo, FinalStatus, StreamName } from "../types.ts";

/** Options of {@linkcode Metrics}. */
export interface MetricsOptions {
  /** Bytes of retained and queued output the server holds at most (`output-memory-budget`). */
  outputMemoryBudget?: number;
}

/**
 * Told of each run's start latency and end, once per run (what a histogram
 * needs and a counter cannot hold: lib/ops/prometheus.ts).
 */
export interface RunObserver {
  /** The time from receiving `execute` to sending `process.started`, ms. */
  started(latencyMs: number): void;
  /** How a run ended. */
  finished(exit: ExitInfo): void;
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
 * m.recordFinish({ status: "failed", exitCode: 3, signal: null, error: null, executionTime: 0.1 });
 * assert.equal(m.executionsByStatus.failed, 1);
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
  /** {@linkcode bytesStreamed}, by the stream it was read from. */
  readonly outputBytes: Record<StreamName, number> = { stdout: 0, stderr: 0 };
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
  /** {@linkcode executionsFinished}, by final status. */
  readonly executionsByStatus: Record<FinalStatus, number> = {
    completed: 0,
    failed: 0,
    canceled: 0,
    timeout: 0,
    lost: 0,
  };
  /** Requests refused (401) for a missing or wrong API key. */
  authFailures = 0;
  /** Told of each run's start and end; null: nobody is. */
  observer: RunObserver | null = null;
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
    this.observer?.started(ms);
  }

  /** Records how a run ended. */
  recordFinish(exit: ExitInfo): void {
    this.executionsFinished++;
    this.executionsByStatus[exit.status]++;
    this.observer?.finished(exit);
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
