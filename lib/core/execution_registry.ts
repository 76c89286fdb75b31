/**
 * Every execution by id, apart from sessions: a run has a lifecycle of its
 * own, so it can be listed, read and (later) re-attached to independently of
 * the connection that started it. Finished runs are kept for a while,
 * bounded in count and age.
 *
 * @module
 */
import { Execution, type ExecutionOptions } from "./execution.ts";
import type { Run } from "./run.ts";
import type { ExitInfo } from "../types.ts";

/**
 * Told when a process group starts and when it is gone, e.g. to keep a crash
 * journal (lib/core/crash_recovery.ts). Both calls are synchronous; `spawned`
 * comes before the run's `process.started`.
 */
export interface GroupTracker {
  /** `exec` was spawned between `before` and `after` (`performance.now()`). */
  spawned(exec: Execution, before: number, after: number): void;
  /** Nothing of `exec`'s group is left running. */
  gone(exec: Execution): void;
}

/** Retention of finished executions. */
export interface RegistryOptions {
  /** Seconds a finished execution is kept. */
  retentionSeconds: number;
  /** Finished executions kept at most. */
  maxRetained: number;
  /**
   * Output bytes kept in memory by finished executions, all together; past
   * it the oldest finished runs' output leaves memory (their record stays):
   * to disk where output spills, else it is lost.
   */
  maxRetainedOutput?: number;
  /** Bytes of stdin input each execution holds while its child does not read (`stdin-buffer`). */
  stdinBuffer?: number;
  /**
   * Called once per execution after it ends (recording, post hooks): in a
   * later turn of the event loop, all runs that ended in one turn together.
   * Deno writes a socket only once the current turn is over, so work done in
   * the turn `completed` is sent in would hold that message back.
   */
  onFinished?: (exec: Run) => void;
  /** Told of every group spawned and gone. */
  groups?: GroupTracker | undefined;
}

/**
 * The registry of executions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExecutionRegistry } from "./execution_registry.ts";
 * const registry = new ExecutionRegistry({ retentionSeconds: 60, maxRetained: 10 });
 * assert.equal(registry.get("missing"), undefined);
 * assert.equal(registry.runningCount, 0);
 * ```
 */
export class ExecutionRegistry {
  readonly #all = new Map<string, Run>();
  /** Detached runs being started, by principal. */
  readonly #startingDetached = new Map<string, number>();
  /** Finished ids in the order they finished, with when and the output bytes they keep. */
  readonly #finished: { id: string; at: number; bytes: number }[] = [];
  /** Output bytes kept by the finished runs, all together. */
  #finishedBytes = 0;
  /** Finished runs before this index keep no output: clearing resumes here. */
  #clearedBelow = 0;
  readonly #options: RegistryOptions;
  #running = 0;
  /** Ended runs waiting for `onFinished`, and the timer that will hand them over. */
  #ended: Run[] = [];
  #endedTimer: ReturnType<typeof setTimeout> | undefined;

  /** Creates an empty registry. */
  constructor(options: RegistryOptions) {
    this.#options = options;
  }

  /** Executions of this node not yet ended (relayed runs are their own node's). */
  get runningCount(): number {
    return this.#running;
  }

  /** Spawns an execution and tracks it until it is pruned. */
  spawn(options: Omit<ExecutionOptions, "id"> & { id?: string }): Execution {
    const id = options.id ?? crypto.randomUUID();
    const before = performance.now();
    const exec = Execution.spawn({ stdinBuffer: this.#options.stdinBuffer, ...options, id });
    this.#options.groups?.spawned(exec, before, performance.now());
    this.#all.set(exec.id, exec);
    this.#running++;
    void exec.done.then(() => this.#onDone(exec));
    return exec;
  }

  /**
   * Tracks a run relayed from another node (lib/cluster/relayed_run.ts) like
   * one of this node's, for `get`, `list` and retention: its node records
   * it, counts it and reaps its group.
   */
  adopt(run: Run): void {
    if (this.#all.has(run.id)) throw new RangeError(`Execution ${run.id} is tracked already`);
    this.#all.set(run.id, run);
    void run.done.then(() => this.#onDone(run));
  }

  /** An execution by id (running or retained). */
  get(id: string): Run | undefined {
    return this.#all.get(id);
  }

  /** All tracked executions, oldest first. */
  list(): Run[] {
    return [...this.#all.values()];
  }

  /** Detached executions not yet ended, and how many of them no client is attached to. */
  detachedCounts(): { running: number; unattached: number } {
    let running = 0;
    let unattached = 0;
    for (const e of this.#all.values()) {
      if (!e.active || !e.detached || e.relayed) continue;
      running++;
      if (!e.attached) unattached++;
    }
    return { running, unattached };
  }

  /** Detached executions of `principal` not yet ended, and those being started ({@linkcode holdDetached}). */
  runningDetached(principal: string): number {
    let n = this.#startingDetached.get(principal) ?? 0;
    for (const e of this.#all.values()) {
      if (e.active && e.detached && !e.relayed && e.principal === principal) n++;
    }
    return n;
  }

  /**
   * Counts a detached run of `principal` as running while it is being
   * started (its hooks may take a while), so concurrent starts in any
   * session cannot overshoot a limit; call the returned release once it has
   * been spawned or has failed.
   */
  holdDetached(principal: string): () => void {
    this.#startingDetached.set(principal, (this.#startingDetached.get(principal) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const n = (this.#startingDetached.get(principal) ?? 1) - 1;
      if (n > 0) this.#startingDetached.set(principal, n);
      else this.#startingDetached.delete(principal);
    };
  }

  /** Executions not yet ended, relayed ones included. */
  running(): Run[] {
    return this.list().filter((e) => e.active);
  }

  /**
   * Ends every running execution of this node (shutdown) and waits for all
   * of them; relayed runs go on on their own nodes.
   */
  async terminateAll(): Promise<ExitInfo[]> {
    return await Promise.all(
      this.running().filter((e) => !e.relayed).map((e) => e.cancel("shutdown")),
    );
  }

  /**
   * Drops finished executions past their retention (their output is
   * forgotten, spill files included), then evicts the output of the oldest
   * from memory while all of it is over the budget. Runs as each one ends,
   * so it costs no more than what it drops or clears, not a walk of them all.
   */
  prune(now = Date.now()): void {
    const { retentionSeconds, maxRetained } = this.#options;
    const cutoff = now - retentionSeconds * 1000;
    let drop = 0;
    while (
      drop < this.#finished.length &&
      (this.#finished.length - drop > maxRetained || this.#finished[drop]!.at <= cutoff)
    ) {
      const f = this.#finished[drop]!;
      // Its output goes now, whoever still holds the execution.
      this.#all.get(f.id)?.output.clear();
      this.#all.delete(f.id);
      this.#finishedBytes -= f.bytes;
      drop++;
    }
    if (drop > 0) this.#finished.splice(0, drop);
    this.#clearedBelow = Math.max(0, this.#clearedBelow - drop);
    const budget = this.#options.maxRetainedOutput;
    if (budget === undefined) return;
    // Oldest first: everything before #clearedBelow keeps nothing already.
    for (; this.#clearedBelow < this.#finished.length; this.#clearedBelow++) {
      if (this.#finishedBytes <= budget) break;
      const f = this.#finished[this.#clearedBelow]!;
      this.#all.get(f.id)?.output.evict();
      this.#finishedBytes -= f.bytes;
      f.bytes = 0;
    }
  }

  #onDone(exec: Run): void {
    // An execution ends only once its group is gone (Execution.done).
    if (exec instanceof Execution) {
      this.#options.groups?.gone(exec);
      this.#running--;
    }
    // A finished run's output no longer grows: counted once, here.
    const bytes = exec.output.bytes;
    this.#finished.push({ id: exec.id, at: Date.now(), bytes });
    this.#finishedBytes += bytes;
    this.prune();
    // A relayed run's history is its own node's to record.
    if (this.#options.onFinished === undefined || exec.relayed) return;
    this.#ended.push(exec);
    this.#endedTimer ??= setTimeout(() => this.#handOver(), 0);
  }

  #handOver(): void {
    this.#endedTimer = undefined;
    for (const exec of this.#ended.splice(0)) {
      try {
        this.#options.onFinished?.(exec);
      } catch (err) {
        reportError(err); // as uncaught, but without costing the others their call
      }
    }
  }
}
