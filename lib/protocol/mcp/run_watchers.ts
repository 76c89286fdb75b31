/**
 * Following runs for the MCP tools: the listeners of each running
 * execution's events, fed by the sink the run was started with, and waiting
 * on them (an `execute` until its run ends, a `read_output` until output
 * arrives).
 *
 * @module
 */
import type { Execution } from "../../core/execution.ts";
import type { Sink } from "../../core/sink.ts";
import type { ExecutionEvent, ExitInfo } from "../../types.ts";

/** A listener of one execution's events. */
export type Listener = (event: ExecutionEvent) => void;

/**
 * The listeners of a session's running executions, by execution id; a run's
 * entry goes when it completes.
 *
 * @example A watcher sees the events the sink is given
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunWatchers } from "./run_watchers.ts";
 * const watchers = new RunWatchers();
 * const ended: string[] = [];
 * const sink = watchers.sink("x", (exit) => void ended.push(exit.status), () => Promise.resolve());
 * const seen: string[] = [];
 * watchers.watch("x", (e) => void seen.push(e.type));
 * sink.emit({ type: "completed", exit: { status: "completed", exitCode: 0, signal: null,
 *   error: null, executionTime: 0.1 } } as never);
 * assert.deepEqual(seen, ["completed"]);
 * assert.deepEqual(ended, ["completed"]);
 * ```
 */
export class RunWatchers {
  readonly #listeners = new Map<string, Set<Listener>>();

  /**
   * The sink of a run about to start as `id`: tells its watchers each event,
   * and calls `ended` when it completes; `ready` is the client's back-pressure.
   */
  sink(id: string, ended: (exit: ExitInfo) => void, ready: () => Promise<void>): Sink {
    const listeners = new Set<Listener>();
    this.#listeners.set(id, listeners);
    return {
      emit: (event) => {
        for (const listener of listeners) listener(event);
        if (event.type !== "completed") return;
        this.#listeners.delete(id);
        ended(event.exit);
      },
      ready,
    };
  }

  /** Drops the entry of a run that did not start. */
  forget(id: string): void {
    this.#listeners.delete(id);
  }

  /** Calls `listener` with each further event of a running execution; returns the unsubscribe. */
  watch(id: string, listener: Listener): () => void {
    const listeners = this.#listeners.get(id);
    if (listeners === undefined) return () => {};
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /**
   * Waits until `ready()` holds (checked on each event of the run), the run
   * ends, `seconds` pass, or `signal` aborts; true when `ready()` held.
   */
  waitFor(
    exec: Execution,
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
      const unwatch = this.watch(exec.id, () => {
        if (ready()) finish();
      });
      if (seconds !== undefined) timer = setTimeout(finish, seconds * 1000);
      signal.addEventListener("abort", finish, { once: true });
      void exec.done.then(finish);
    });
  }
}
