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
 * The listeners of a session's running executions, by execution id, fed by
 * one sink for all of the session's runs (each event names its run); a
 * run's entry goes when it completes.
 *
 * @example A watcher sees the events of its run
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunWatchers } from "./run_watchers.ts";
 * const ended: string[] = [];
 * const watchers = new RunWatchers({
 *   ended: (id, exit) => void ended.push(`${id} ${exit.status}`),
 *   hook: () => {},
 *   ready: () => Promise.resolve(),
 * });
 * const seen: string[] = [];
 * watchers.watch({ id: "x", active: true }, (e) => void seen.push(e.type));
 * watchers.sink.emit({ type: "completed", executionId: "x", pid: 1, pgid: 1,
 *   exit: { status: "completed", exitCode: 0, signal: null, error: null, executionTime: 0.1 } });
 * assert.deepEqual(seen, ["completed"]);
 * assert.deepEqual(ended, ["x completed"]);
 * ```
 */
export class RunWatchers {
  readonly #listeners = new Map<string, Set<Listener>>();
  /** The sink of every run of the session. */
  readonly sink: Sink;

  /** Creates the watchers and their sink. */
  constructor(reports: SinkReports) {
    this.sink = {
      emit: (event) => {
        const id = event.executionId;
        const listeners = this.#listeners.get(id);
        if (listeners !== undefined) { for (const listener of listeners) listener(event); }
        if (event.type === "hook") reports.hook(id, event.outcome);
        if (event.type !== "completed") return;
        this.#listeners.delete(id);
        reports.ended(id, event.exit);
      },
      ready: () => reports.ready(),
    };
  }

  /**
   * Calls `listener` with each further event of a run not yet ended;
   * returns the unsubscribe.
   */
  watch(exec: Pick<Execution, "id" | "active">, listener: Listener): () => void {
    if (!exec.active) return () => {};
    let listeners = this.#listeners.get(exec.id);
    if (listeners === undefined) this.#listeners.set(exec.id, listeners = new Set());
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#listeners.get(exec.id) === listeners) {
        this.#listeners.delete(exec.id);
      }
    };
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
      const unwatch = this.watch(exec, () => {
        if (ready()) finish();
      });
      if (seconds !== undefined) timer = setTimeout(finish, seconds * 1000);
      signal.addEventListener("abort", finish, { once: true });
      void exec.done.then(finish);
    });
  }
}
