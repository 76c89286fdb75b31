/**
 * A one-shot timer that can be paused, so time a run spends paused does not
 * count against its time limit.
 *
 * @module
 */
import { MAX_TIMER_MS } from "../async.ts";

/**
 * Fires `onFire` once after `ms` of un-paused time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PausableTimer } from "./pausable_timer.ts";
 * let fired = false;
 * const timer = new PausableTimer(10_000, () => fired = true);
 * timer.pause();
 * assert.ok(timer.remaining() > 9_000);
 * timer.clear();
 * assert.equal(fired, false);
 * ```
 */
export class PausableTimer {
  readonly #ms: number;
  readonly #onFire: () => void;
  #remaining: number;
  #startedAt = 0;
  #handle: ReturnType<typeof setTimeout> | undefined;
  #done = false;
  #touchedAt = -Infinity;

  /** Creates and starts the timer. */
  constructor(ms: number, onFire: () => void) {
    this.#ms = ms;
    this.#onFire = onFire;
    this.#remaining = ms;
    this.#arm();
  }

  /** Milliseconds of un-paused time left. */
  remaining(): number {
    if (this.#handle === undefined) return this.#remaining;
    return Math.max(0, this.#remaining - (performance.now() - this.#startedAt));
  }

  /** Stops the clock; `resume()` continues with the time that was left. */
  pause(): void {
    if (this.#handle === undefined) return;
    this.#remaining = this.remaining();
    clearTimeout(this.#handle);
    this.#handle = undefined;
  }

  /** Restarts the clock after `pause()`. */
  resume(): void {
    if (this.#handle === undefined) this.#arm();
  }

  /**
   * Restarts the full duration from now (idle timers, on each output). Lazy:
   * it only records the time, and a firing timer re-arms for what is left,
   * so calling it per chunk costs nothing.
   */
  touch(): void {
    this.#touchedAt = performance.now();
  }

  /** Cancels the timer for good. */
  clear(): void {
    this.#done = true;
    if (this.#handle !== undefined) clearTimeout(this.#handle);
    this.#handle = undefined;
  }

  #arm(): void {
    if (this.#done) return;
    this.#startedAt = performance.now();
    this.#handle = setTimeout(() => {
      this.#handle = undefined;
      // A limit beyond what one timer holds (about 24.8 days) arms again for the rest.
      const elapsed = performance.now() - this.#startedAt;
      if (elapsed < this.#remaining - 1) {
        this.#remaining -= elapsed;
        this.#arm();
        return;
      }
      const sinceTouch = performance.now() - this.#touchedAt;
      if (sinceTouch < this.#ms) {
        this.#remaining = this.#ms - sinceTouch;
        this.#arm();
        return;
      }
      this.#done = true;
      this.#onFire();
    }, Math.min(this.#remaining, MAX_TIMER_MS));
  }
}
