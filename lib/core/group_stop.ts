/**
 * Stopping a run's process group for PAUSE so that it stays stopped: a child
 * forked at the very moment of the SIGSTOP can miss it, so the group is
 * stopped again shortly after, while the run is still paused.
 *
 * @module
 */

/** When a paused group is stopped again, in ms after the first SIGSTOP. */
const RESTOP_AFTER_MS = [20, 100];

/**
 * The re-stops of one run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GroupStopper } from "./group_stop.ts";
 * const sent: string[] = [];
 * const stopper = new GroupStopper((sig) => void sent.push(sig));
 * stopper.stop(() => true);
 * stopper.clear(); // resumed at once: no re-stop comes
 * await new Promise((r) => setTimeout(r, 150));
 * assert.deepEqual(sent, ["SIGSTOP"]);
 * ```
 */
export class GroupStopper {
  #timers: ReturnType<typeof setTimeout>[] = [];
  readonly #signal: (signal: "SIGSTOP") => void;

  /** `signal` sends SIGSTOP to the group. */
  constructor(signal: (signal: "SIGSTOP") => void) {
    this.#signal = signal;
  }

  /** SIGSTOP now, and again after each delay while `stillPaused()`. */
  stop(stillPaused: () => boolean): void {
    this.clear();
    this.#signal("SIGSTOP");
    this.#timers = RESTOP_AFTER_MS.map((ms) =>
      setTimeout(() => {
        if (stillPaused()) this.#signal("SIGSTOP");
      }, ms)
    );
  }

  /** No more re-stops (resumed, or ending). */
  clear(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
  }
}
