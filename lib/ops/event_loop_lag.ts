/**
 * Event-loop lag: how late a timer fires. One unref'd timer samples it, and
 * the worst lag of each second of the last minute is kept in a fixed ring,
 * so `/health` can say whether anything held up the whole server lately
 * (a stall shows there after the fact, since nothing runs during one).
 *
 * @module
 */

/** Options of {@linkcode EventLoopLag}; every one has a default. */
export interface EventLoopLagOptions {
  /** Time between samples, ms (default 20): shorter stalls show as less than they were. */
  intervalMs?: number;
  /** How far back the maximum looks, ms (default 60 000). */
  windowMs?: number;
  /** Slots the window is kept in (default 60): the memory used, whatever the uptime. */
  slots?: number;
  /** The clock, ms (default `performance.now`); for tests. */
  now?: () => number;
}

/** What `/health` reports. */
export interface EventLoopLagSnapshot {
  /** Lag of the latest sample, or of the one overdue now, ms. */
  current_ms: number;
  /** Worst lag within the window, ms. */
  max_ms: number;
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;

/**
 * Samples event-loop lag in the background.
 *
 * @example Lags recorded a minute apart: only the recent one counts
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventLoopLag } from "./event_loop_lag.ts";
 * let t = 0;
 * const lag = new EventLoopLag({ now: () => t });
 * lag.record(250);
 * t = 30_000;
 * lag.record(40);
 * assert.deepEqual(lag.snapshot(), { current_ms: 40, max_ms: 250 });
 * t = 61_000;
 * assert.deepEqual(lag.snapshot(), { current_ms: 40, max_ms: 40 });
 * ```
 */
export class EventLoopLag {
  readonly #intervalMs: number;
  readonly #slotMs: number;
  readonly #now: () => number;
  /** Worst lag per slot, and which slot of all time (`floor(t / slotMs)`) it is for. */
  readonly #worst: Float64Array;
  readonly #slotOf: Float64Array;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the pending sample should fire. */
  #due = 0;
  #current = 0;

  /** Creates a sampler; {@linkcode start} starts it. */
  constructor(options: EventLoopLagOptions = {}) {
    const slots = options.slots ?? 60;
    this.#intervalMs = options.intervalMs ?? 20;
    this.#slotMs = (options.windowMs ?? 60_000) / slots;
    this.#now = options.now ?? (() => performance.now());
    this.#worst = new Float64Array(slots);
    this.#slotOf = new Float64Array(slots).fill(-1);
  }

  /** Starts sampling; unref'd, so it never keeps the process alive. Idempotent. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#schedule();
  }

  /** Stops sampling. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Notes a lag of `lagMs` now (the sampler's own entry point). */
  record(lagMs: number): void {
    this.#current = lagMs;
    const slot = Math.floor(this.#now() / this.#slotMs);
    const i = slot % this.#worst.length;
    if (this.#slotOf[i] !== slot) {
      this.#slotOf[i] = slot;
      this.#worst[i] = 0;
    }
    if (lagMs > this.#worst[i]!) this.#worst[i] = lagMs;
  }

  /** The latest and the worst lag of the window, ms, to 0.1 ms. */
  snapshot(): EventLoopLagSnapshot {
    const now = this.#now();
    // A sample overdue right now is lag too: the loop has been busy since.
    const overdue = this.#timer === undefined ? 0 : Math.max(0, now - this.#due);
    const oldest = Math.floor(now / this.#slotMs) - this.#worst.length;
    let max = overdue;
    for (let i = 0; i < this.#worst.length; i++) {
      if (this.#slotOf[i]! > oldest && this.#worst[i]! > max) max = this.#worst[i]!;
    }
    return { current_ms: round1(Math.max(this.#current, overdue)), max_ms: round1(max) };
  }

  #schedule(): void {
    this.#due = this.#now() + this.#intervalMs;
    const timer = setTimeout(() => {
      this.record(Math.max(0, this.#now() - this.#due));
      this.#schedule();
    }, this.#intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
