/**
 * Following runs for the MCP tools: the sink of the runs a session starts
 * (which reports their ends and hooks to that session's client), and
 * listeners on any run of the principal, whichever session started it,
 * subscribed to the run's feed for as long as a call waits on it (an
 * `execute` until its run ends, a `read_output` until output arrives).
 *
 * @module
 */
import type { Run } from "../../core/run.ts";
import type { Sink } from "../../core/sink.ts";
import { MAX_TIMER_MS } from "../../async.ts";
import type { ExecutionEvent, ExitInfo, HookOutcome } from "../../types.ts";

/** A listener of one execution's events. */
export type Listener = (event: ExecutionEvent) => void;

/** What the session-wide sink reports besides feeding the watchers. */
export interface SinkReports {
  /** A run ended. */
  ended(executionId: string, exit: ExitInfo): void;
  /** A hook of a run (pre_execute, post_execute, on_timeout) finished. */
  hook(executionId: string, outcome: HookOutcome): void;
  /** Resolves when the client's connection can take more (back-pressure). */
  ready(): Promise<void>;
}

/**
 * The sink of a session's runs, and listeners on any run.
 *
 * @example The sink reports a run's end
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunWatchers } from "./run_watchers.ts";
 * const ended: string[] = [];
 * const watchers = new RunWatchers({
 *   ended: (id, exit) => void ended.push(`${id} ${exit.status}`),
 *   hook: () => {},
 *   ready: () => Promise.resolve(),
 * });
 * watchers.sink.emit({ type: "completed", executionId: "x", pid: 1, pgid: 1,
 *   exit: { status: "completed", exitCode: 0, signal: null, error: null, executionTime: 0.1 } });
 * assert.deepEqual(ended, ["x completed"]);
 * ```
 */
export class RunWatchers {
  /** The sink of every run the session starts. */
  readonly sink: Sink;

  /** Creates the watchers and their sink. */
  constructor(reports: SinkReports) {
    this.sink = {
      emit: (event) => {
        const id = event.executionId;
        if (event.type === "hook") reports.hook(id, event.outcome);
        if (event.type === "completed") reports.ended(id, event.exit);
      },
      ready: () => reports.ready(),
    };
  }

  /**
   * Calls `listener` with each further event of a run not yet ended; returns
   * the unsubscribe. It does not pace the run, but counts as attached: a
   * call waiting on a detached run keeps `detach-timeout` from ending it.
   */
  watch(exec: Pick<Run, "active" | "feed">, listener: Listener): () => void {
    if (!exec.active) return () => {};
    const sink: Sink = { emit: listener, ready: () => Promise.resolve() };
    return exec.feed.subscribe(sink, { paces: false, attaches: true });
  }

  /**
   * Waits until `ready()` holds (checked on each event of the run), the run
   * ends, `seconds` pass, or `signal` aborts; true when `ready()` held.
   */
  waitFor(
    exec: Run,
    ready: () => boolean,
    seconds: number | undefined,
    signal: AbortSignal,
  ): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unwatch();
        signal.removeEventListener("abort", finish);
        resolve(ready());
      };
      const unwatch = this.watch(exec, () => {
        if (ready()) finish();
      });
      // Past what one timer holds (about 24.8 days) it would fire at once: such a wait is that long.
      if (seconds !== undefined) timer = setTimeout(finish, Math.min(seconds * 1000, MAX_TIMER_MS));
      signal.addEventListener("abort", finish, { once: true });
      void exec.done.then(finish);
    });
  }
}
