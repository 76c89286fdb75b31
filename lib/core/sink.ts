/**
 * Where an execution's events go. The core only knows this interface; each
 * protocol supplies one that encodes events for its wire.
 *
 * @module
 */
import type { ExecutionEvent } from "../types.ts";

/**
 * Receives one execution's events in order.
 *
 * @example A sink that collects events, for a quick look at a run
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Sink } from "./sink.ts";
 * import type { ExecutionEvent } from "../types.ts";
 * const events: ExecutionEvent[] = [];
 * const sink: Sink = {
 *   emit: (e) => void events.push(e),
 *   ready: () => Promise.resolve(),
 *   gone: () => false,
 * };
 * sink.emit({ type: "paused", executionId: "e1", pid: 7, pgid: 7 });
 * assert.equal(events.length, 1);
 * assert.equal(sink.gone?.(), false);
 * ```
 */
export interface Sink {
  /** Sends one event. Never blocks: pacing is what {@linkcode ready} is for. */
  emit(event: ExecutionEvent): void;
  /**
   * Resolves once the consumer can take more (its queue is below the
   * high-water mark), or at once when the consumer is gone. The execution
   * awaits it before each read of the child's pipes, so a slow consumer
   * blocks the child rather than growing the server's memory.
   */
  ready(): Promise<void>;
  /**
   * Whether the consumer is gone for good (its socket closed), so events
   * would only be dropped. The execution then stops making them: output
   * goes only to the run's retained bytes, undecoded, and the pipes are not
   * read again until the process has exited (a run whose client is gone is
   * being ended). Absent: never gone.
   */
  gone?(): boolean;
  /**
   * Whether the consumer is behind now (a socket queue above its high-water
   * mark). A sink that can say so follows a detached run through an
   * attachment (lib/core/attachment.ts), which reads from the run's log when
   * the consumer lags, so no consumer holds a detached run back. Absent: it
   * never lags.
   */
  busy?(): boolean;
}
