/**
 * Progress of one MCP `tools/call`: the run's new output, sent as
 * `notifications/progress` a few times a second at most, and a heartbeat
 * while the run is silent, so a client whose request timeout resets on
 * progress keeps waiting on a long run.
 *
 * @module
 */
import { utf16Suffix } from "../../utf8.ts";

/** How often progress is sent. */
export interface ProgressOptions {
  /** Least time between two notifications. */
  minIntervalMs: number;
  /** A silent run still reports this often. */
  heartbeatMs: number;
  /** Longest message; the newest output is kept. */
  maxMessageChars: number;
}

/** Defaults: at most 4 notifications a second, a heartbeat every 5 s, 2000 characters. */
export const PROGRESS_DEFAULTS: ProgressOptions = {
  minIntervalMs: 250,
  heartbeatMs: 5000,
  maxMessageChars: 2000,
};

/** Sends one `notifications/progress` (the protocol adds the token). */
export type SendProgress = (progress: number, message: string) => void;

/**
 * Rate-limits a run's progress. `progress` is the seconds since the call
 * began, strictly increasing as the spec requires; the run's length is not
 * known, so there is no `total`.
 *
 * @example Output pushed in a burst is sent as one notification
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressReporter } from "./progress.ts";
 * const sent: string[] = [];
 * const reporter = new ProgressReporter((_, m) => void sent.push(m),
 *   { minIntervalMs: 20, heartbeatMs: 10_000, maxMessageChars: 100 });
 * reporter.output("a\n");
 * reporter.output("b\n");
 * await new Promise((r) => setTimeout(r, 50));
 * reporter.stop();
 * assert.deepEqual(sent, ["a\nb\n"]);
 * ```
 */
export class ProgressReporter {
  readonly #send: SendProgress;
  readonly #options: ProgressOptions;
  readonly #t0 = performance.now();
  #pending = "";
  #lastSentAt = -Infinity;
  /** Last progress sent, in whole milliseconds (kept integral so +1 stays exact). */
  #lastMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  /** Starts the heartbeat clock. */
  constructor(send: SendProgress, options: ProgressOptions = PROGRESS_DEFAULTS) {
    this.#send = send;
    this.#options = options;
    this.#schedule();
  }

  /** Queues new output; it is sent within `minIntervalMs`. */
  output(text: string): void {
    if (this.#stopped || text.length === 0) return;
    this.#pending += text;
    const max = this.#options.maxMessageChars;
    if (this.#pending.length > max) {
      // Keep the newest output, without splitting a surrogate pair.
      this.#pending = "…" + utf16Suffix(this.#pending, max - 1);
    }
    this.#schedule();
  }

  /** Sends a status line as soon as the rate allows (before any queued output). */
  note(message: string): void {
    if (this.#stopped) return;
    this.#pending = `${message}\n${this.#pending}`;
    this.#schedule();
  }

  /** Stops; nothing more is sent. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const now = performance.now();
    const due = this.#pending.length > 0
      ? this.#lastSentAt + this.#options.minIntervalMs
      : Math.max(this.#lastSentAt, this.#t0) + this.#options.heartbeatMs;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, due - now));
  }

  #fire(): void {
    if (this.#stopped) return;
    const now = performance.now();
    const seconds = (now - this.#t0) / 1000;
    const message = this.#pending.length > 0
      ? this.#pending
      : `still running after ${Math.round(seconds)}s, no new output`;
    this.#pending = "";
    this.#lastSentAt = now;
    this.#lastMs = Math.max(Math.round(now - this.#t0), this.#lastMs + 1);
    this.#send(this.#lastMs / 1000, message);
    this.#schedule();
  }
}
