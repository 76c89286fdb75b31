/**
 * A run's two clocks: its time limit (`timeout`) and its idle limit
 * (`idle_timeout`, restarted by output). Both stop while the run is paused
 * (lib/core/pausable_timer.ts), and either one firing ends the run with a
 * text that says which limit it was.
 *
 * @module
 */
import { PausableTimer } from "./pausable_timer.ts";

/** What ran out: its text for `process.completed.error`, and whether it was the idle limit. */
export interface Expiry {
  text: string;
  idle: boolean;
}

/**
 * The clocks of one run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunClocks } from "./run_clocks.ts";
 * const fired: string[] = [];
 * const clocks = new RunClocks((e) => fired.push(e.text));
 * clocks.start({ timeoutS: null, idleS: 0.01, note: "" });
 * await new Promise((r) => setTimeout(r, 50));
 * assert.deepEqual(fired, ["Process produced no output for 0.01s"]);
 * assert.equal(clocks.expiry?.idle, true);
 * clocks.clear();
 * ```
 */
export class RunClocks {
  #limit: PausableTimer | null = null;
  #idle: PausableTimer | null = null;
  #expiry: Expiry | null = null;
  readonly #onExpired: (expiry: Expiry) => void;

  /** `onExpired` is called once, for the first limit that runs out. */
  constructor(onExpired: (expiry: Expiry) => void) {
    this.#onExpired = onExpired;
  }

  /** What ran out, once one has. */
  get expiry(): Expiry | null {
    return this.#expiry;
  }

  /**
   * Starts the limits (seconds; null: none). `note` follows the time
   * limit's text: where an automatic limit came from.
   */
  start(limits: { timeoutS: number | null; idleS: number | null; note: string }): void {
    const { timeoutS, idleS, note } = limits;
    if (timeoutS !== null) {
      this.#limit = new PausableTimer(
        timeoutS * 1000,
        () => this.#expire({ text: `Process timed out after ${timeoutS}s${note}`, idle: false }),
      );
    }
    if (idleS !== null) {
      this.#idle = new PausableTimer(
        idleS * 1000,
        () => this.#expire({ text: `Process produced no output for ${idleS}s`, idle: true }),
      );
    }
  }

  /** Output arrived: the idle limit starts over. */
  touch(): void {
    this.#idle?.touch();
  }

  /** The run was paused: both clocks stop. */
  pause(): void {
    this.#limit?.pause();
    this.#idle?.pause();
  }

  /** The run goes on: both clocks go on, the idle one from zero. */
  resume(): void {
    this.#limit?.resume();
    this.#idle?.touch();
    this.#idle?.resume();
  }

  /** The run is ending: neither may fire any more. */
  clear(): void {
    this.#limit?.clear();
    this.#idle?.clear();
  }

  #expire(expiry: Expiry): void {
    if (this.#expiry !== null) return;
    this.#expiry = expiry;
    this.#onExpired(expiry);
  }
}
