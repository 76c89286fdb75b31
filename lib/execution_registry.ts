/**
 * Every execution by id, apart from sessions: a run has a lifecycle of its
 * own, so it can be listed, read and (later) re-attached to independently of
 * the connection that started it. Finished runs are kept for a while,
 * bounded in count and age.
 *
 * @module
 */
import { Execution, type ExecutionOptions } from "./execution.ts";
import type { ExitInfo } from "./types.ts";

/**
 * Told when a process group starts and when it is gone, e.g. to keep a crash
 * journal (lib/crash_recovery.ts). Both calls are synchronous; `spawned`
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
   * Output bytes kept by finished executions, all together; past it the
   * oldest finished runs lose their output (their record stays).
   */
  maxRetainedOutput?: number;
  /** Bytes of stdin input each execution holds while its child does not read (`stdin-buffer`). */
  stdinBuffer?: number;
  /** Called once per execution after it ends (recording, post hooks). */
  onFinished?: (exec: Execution) => void;
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
  readonly #all = new Map<string, Execution>();
  /** Finished ids in the order they finished, with when. */
  readonly #finished: { id: string; at: number }[] = [];
  readonly #options: RegistryOptions;
  #running = 0;

  /** Creates an empty registry. */
  constructor(options: RegistryOptions) {
    this.#options = options;
  }

  /** Executions not yet ended. */
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

  /** An execution by id (running or retained). */
  get(id: string): Execution | undefined {
    return this.#all.get(id);
  }

  /** All tracked executions, oldest first. */
  list(): Execution[] {
    return [...this.#all.values()];
  }

  /** Executions not yet ended. */
  running(): Execution[] {
    return this.list().filter((e) => e.active);
  }

  /** Ends every running execution (shutdown) and waits for all of them. */
  async terminateAll(): Promise<ExitInfo[]> {
    return await Promise.all(this.running().map((e) => e.cancel("shutdown")));
  }

  /** Drops finished executions past their retention. */
  prune(now = Date.now()): void {
    const { retentionSeconds, maxRetained } = this.#options;
    const cutoff = now - retentionSeconds * 1000;
    let drop = 0;
    while (
      drop < this.#finished.length &&
      (this.#finished.length - drop > maxRetained || this.#finished[drop]!.at <= cutoff)
    ) {
      const id = this.#finished[drop]!.id;
      // Its output goes now, whoever still holds the execution.
      this.#all.get(id)?.output.clear();
      this.#all.delete(id);
      drop++;
    }
    if (drop > 0) this.#finished.splice(0, drop);
    const budget = this.#options.maxRetainedOutput;
    if (budget === undefined) return;
    let total = 0;
    for (const f of this.#finished) total += this.#all.get(f.id)?.output.bytes ?? 0;
    for (let i = 0; i < this.#finished.length && total > budget; i++) {
      const output = this.#all.get(this.#finished[i]!.id)?.output;
      if (output === undefined || output.bytes === 0) continue;
      total -= output.bytes;
      output.clear();
    }
  }

  #onDone(exec: Execution): void {
    // An execution ends only once its group is gone (Execution.done).
    this.#options.groups?.gone(exec);
    this.#running--;
    this.#finished.push({ id: exec.id, at: Date.now() });
    this.prune();
    this.#options.onFinished?.(exec);
  }
}
