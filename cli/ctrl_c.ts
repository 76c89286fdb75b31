/**
 * What a Ctrl-C means while a remote run is followed: the first sends
 * INTERRUPT (SIGINT to the remote group, as a terminal does locally), a
 * second within 2 s sends CANCEL (SIGTERM, then SIGKILL), and one more after
 * that stops waiting for the end.
 *
 * @module
 */

/** What to do about one SIGINT. */
export type CtrlCAction = "interrupt" | "cancel" | "abandon" | "ignore";

/** A second Ctrl-C within this long of the first cancels. */
export const CANCEL_WINDOW_MS = 2000;

/**
 * SIGINTs closer together than this are one press: under `deno task` the
 * terminal signals the whole foreground group, and the task runner passes
 * its own SIGINT on to the CLI again, a millisecond later.
 */
export const SAME_PRESS_MS = 150;

/**
 * The meaning of each SIGINT, by when it came.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CtrlC } from "./ctrl_c.ts";
 * const keys = new CtrlC();
 * assert.equal(keys.press(0), "interrupt");
 * assert.equal(keys.press(1), "ignore"); // the task runner's copy of the same press
 * assert.equal(keys.press(900), "cancel");
 * assert.equal(keys.press(5000), "abandon");
 * const slow = new CtrlC();
 * assert.equal(slow.press(0), "interrupt");
 * assert.equal(slow.press(3000), "interrupt"); // too late to count as the second
 * ```
 */
export class CtrlC {
  #first: number | null = null;
  #last = -Infinity;
  #canceled = false;

  /** Whether any press has been seen (the run then exits 130). */
  get pressed(): boolean {
    return this.#first !== null;
  }

  /** The action for a SIGINT at `now` (ms). */
  press(now: number): CtrlCAction {
    if (now - this.#last < SAME_PRESS_MS) return "ignore";
    this.#last = now;
    if (this.#canceled) return "abandon";
    if (this.#first !== null && now - this.#first <= CANCEL_WINDOW_MS) {
      this.#canceled = true;
      return "cancel";
    }
    this.#first = now;
    return "interrupt";
  }
}
