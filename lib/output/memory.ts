/**
 * One server-wide budget for the output the server holds at once: what runs
 * retain for reads ({@linkcode OutputLog}s) and what waits on sockets to be
 * sent. Per-run retention (`output-retention`) and the finished runs' cap
 * (`retained-output-total`) still apply; this bounds their sum with the
 * send queues, which per-socket high-water marks alone do not (a hundred
 * slow clients may each queue up to the mark).
 *
 * When a log needs memory the budget does not have, output is given up in
 * order of how little it is worth: finished runs' output first (oldest run
 * first, whole), then running runs' oldest output beyond a minimum. Given
 * up is not lost where there is a {@linkcode OutputMemory.spill}: the
 * output moves to disk and stays readable (lib/output/spill.ts); disk bytes
 * do not count against the budget. When
 * the send queues alone leave no room, sockets are paused at a small queue
 * ({@linkcode QUEUE_FLOOR}) instead of their high-water mark. The sum can
 * then only exceed the budget by what the minimums guarantee: each running
 * run's minimum and each socket's floor plus one read.
 *
 * Pages freed by one run are pooled for the next, so steady output costs no
 * allocation.
 *
 * @module
 */
import type { LogMemory, OutputLog } from "./output_log.ts";
import type { SpillStore } from "./spill.ts";

/** Default budget: 32 MiB. */
export const DEFAULT_OUTPUT_BUDGET = 32 * 1024 * 1024;
/** Size of a page of running output. */
export const OUTPUT_PAGE_BYTES = 16 * 1024;
/** What a running run keeps however short the budget runs: 64 KiB. */
export const RUN_MINIMUM = 64 * 1024;
/** Bytes a socket may queue while the budget is spent: the smallest high-water mark. */
export const QUEUE_FLOOR = 64 * 1024;
/**
 * Free pages kept for reuse at most (4 MiB of 16 KiB pages): enough for the
 * pages a burst of runs frees to serve the next, rather than be left to the
 * collector and allocated again.
 */
const POOL_BYTES = 4 * 1024 * 1024;
/** How long a sum of the send queues is reused: they are summed at most once a millisecond. */
const QUEUED_TTL_MS = 1;

/**
 * Frees the memory of `bytes` now, when it owns its whole buffer and nothing
 * else refers to it (the caller's promise): a dropped page would otherwise
 * stay allocated outside the JS heap until a full collection, and rounds of
 * output piled up that way between collections.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { release } from "./memory.ts";
 * const page = new Uint8Array(1024);
 * release(page);
 * assert.equal(page.buffer.byteLength, 0);
 * const view = new Uint8Array(new ArrayBuffer(8), 2);
 * release(view); // a view into a larger buffer is left alone
 * assert.equal(view.buffer.byteLength, 8);
 * ```
 */
export function release(bytes: Uint8Array): void {
  const buffer = bytes.buffer;
  if (!(buffer instanceof ArrayBuffer) || bytes.byteOffset !== 0) return;
  if (bytes.length !== buffer.byteLength || buffer.byteLength === 0) return;
  buffer.transfer(0);
}

/** Something whose queued bytes count against the budget (a socket's send queue). */
export interface QueuedBytes {
  /** Bytes waiting to be sent now. */
  readonly queued: number;
}

/** Options of {@linkcode OutputMemory}. */
export interface OutputMemoryOptions {
  /** Bytes of retained and queued output together. */
  budget: number;
  /** Page size; default {@linkcode OUTPUT_PAGE_BYTES}. */
  pageSize?: number;
  /** What a running run keeps under pressure; default {@linkcode RUN_MINIMUM}. */
  runMinimum?: number;
}

/**
 * The budget, and the pool of pages logs write into.
 *
 * @example Finished output goes first when a running run needs room
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputMemory } from "./memory.ts";
 * import { OutputLog } from "./output_log.ts";
 * const memory = new OutputMemory({ budget: 64 * 1024, pageSize: 1024, runMinimum: 4096 });
 * const chunk = (log: OutputLog, n: number) =>
 *   log.append({ stream: "stdout", seq: log.next, bytes: n, truncated: false,
 *     chunkIndex: null, totalChunks: null }, new Uint8Array(n));
 * const old = new OutputLog(1 << 20, memory);
 * chunk(old, 40_000);
 * old.finish();
 * const live = new OutputLog(1 << 20, memory);
 * for (let i = 0; i < 40; i++) chunk(live, 1000);
 * assert.equal(old.bytes, 0, "the finished run's output was dropped");
 * assert.equal(live.bytes, 40_000, "the running run kept all of its own");
 * assert.ok(memory.retained <= memory.budget);
 * assert.equal(memory.droppedBytes, 40_000);
 * ```
 */
export class OutputMemory implements LogMemory {
  /** Bytes of retained and queued output the server aims to hold at most. */
  readonly budget: number;
  readonly pageSize: number;
  readonly runMinimum: number;
  /** Where logs' dropped output goes (set at startup); null: it is lost. */
  spill: SpillStore | null = null;
  /** Bytes of finished runs' output taken out of memory for the budget (to disk, or lost), since startup. */
  droppedBytes = 0;
  /** Bytes of running runs' output trimmed from memory for the budget (to disk, or lost), since startup. */
  trimmedBytes = 0;
  /** Times a socket was paused at {@linkcode QUEUE_FLOOR} because the budget was spent. */
  queueWaits = 0;
  #retained = 0;
  /** Logs of running executions that hold output, oldest first. */
  readonly #running = new Set<OutputLog>();
  /** Logs of finished executions that hold output, in the order they finished. */
  readonly #finished = new Set<OutputLog>();
  readonly #queues = new Set<QueuedBytes>();
  #queued = 0;
  #queuedAt = -Infinity;
  readonly #pool: Uint8Array[] = [];

  /** Creates an empty budget. */
  constructor(options: OutputMemoryOptions) {
    this.budget = options.budget;
    this.pageSize = options.pageSize ?? OUTPUT_PAGE_BYTES;
    this.runMinimum = options.runMinimum ?? RUN_MINIMUM;
  }

  /** Bytes held by logs now: pages in use, finished runs' buffers, chunk metadata. */
  get retained(): number {
    return this.#retained;
  }

  /** The part of {@linkcode retained} held by finished runs. */
  get retainedFinished(): number {
    let total = 0;
    for (const log of this.#finished) total += log.held;
    return total;
  }

  /** Bytes in free pages kept for reuse (not counted in the budget). */
  get pooled(): number {
    return this.#pool.length * this.pageSize;
  }

  /** Bytes queued on every registered socket (summed at most once a millisecond). */
  get queued(): number {
    const now = performance.now();
    if (now - this.#queuedAt >= QUEUED_TTL_MS) {
      let total = 0;
      for (const q of this.#queues) total += q.queued;
      this.#queued = total;
      this.#queuedAt = now;
    }
    return this.#queued;
  }

  /**
   * Whether retained and queued output exceed the budget even after
   * dropping what may be dropped: sockets should then queue no more than
   * {@linkcode QUEUE_FLOOR}.
   */
  get exhausted(): boolean {
    if (this.#over(0) <= 0) return false;
    this.#reclaim(0, null);
    return this.#over(0) > 0;
  }

  /** Counts `source`'s queued bytes against the budget until {@linkcode removeQueue}. */
  addQueue(source: QueuedBytes): void {
    this.#queues.add(source);
    this.#queuedAt = -Infinity;
  }

  /** Stops counting `source`. */
  removeQueue(source: QueuedBytes): void {
    this.#queues.delete(source);
    this.#queuedAt = -Infinity;
  }

  room(log: OutputLog, need: number): boolean {
    if (!log.finished) this.#running.add(log);
    if (this.#over(need) <= 0) return true;
    this.#reclaim(need, log);
    return this.#over(need) <= 0;
  }

  take(log: OutputLog): Uint8Array {
    if (!log.finished) this.#running.add(log);
    this.#retained += this.pageSize;
    return this.#pool.pop() ?? new Uint8Array(this.pageSize);
  }

  give(_log: OutputLog, page: Uint8Array): void {
    this.#retained -= this.pageSize;
    if (this.pooled < POOL_BYTES && page.length === this.pageSize) this.#pool.push(page);
    else release(page);
  }

  charge(_log: OutputLog, delta: number): void {
    this.#retained += delta;
  }

  finished(log: OutputLog): void {
    this.#running.delete(log);
    if (log.held > 0) this.#finished.add(log);
  }

  forget(log: OutputLog): void {
    this.#running.delete(log);
    this.#finished.delete(log);
  }

  /** Bytes by which holding `need` more would exceed the budget. */
  #over(need: number): number {
    return this.#retained + need - this.budget + this.queued;
  }

  /** Evicts finished output, oldest first, then trims running runs (but `keep`) to their minimum. */
  #reclaim(need: number, keep: OutputLog | null): void {
    for (const log of this.#finished) {
      if (this.#over(need) <= 0) return;
      this.droppedBytes += log.evict();
    }
    for (const log of this.#running) {
      if (this.#over(need) <= 0) return;
      if (log !== keep) this.trimmedBytes += log.trimTo(this.runMinimum);
    }
  }
}
