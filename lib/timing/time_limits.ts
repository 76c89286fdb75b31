/**
 * Learned time limits, end to end: estimates a limit for a command from its
 * class's history (lib/timing/estimate.ts), and records every finished run
 * (timing history per class, plus an execution record) in the store. A
 * store that has gone away never fails a run: estimates fall back to the
 * defaults and recording is skipped, with a log line.
 *
 * @module
 */
import type { Run } from "../core/run.ts";
import { logger, runFields } from "../log.ts";
import {
  type ExecutionRecord,
  type RecordQuery,
  type Store,
  StoreUnavailableError,
} from "../store/store.ts";
import { StoreDownError } from "../errors.ts";
import { classify, type CommandClass, type CommandLine } from "./classify.ts";
import { type Complexity, DEFAULT_MIN_AUTO_TIMEOUT_S } from "./complexity.ts";
import { type Estimate, estimateTimeout, restate } from "./estimate.ts";

const log = logger("timing");

/** Options of {@linkcode TimeLimits}. */
export interface TimeLimitOptions {
  /** `min-auto-timeout`: no automatic limit is below it (default 60 s). */
  floorS?: number;
  /** `max-timeout`: no limit is above it (default none). */
  maxS?: number;
}

/** How long an estimate is reused, ms: a class's percentile moves slowly once learned. */
const CACHE_MS = 10_000;
/** Classes whose estimates are cached at most. */
const CACHE_CLASSES = 1000;
/** How long the list of known classes is reused, ms (similar pooling reads it). */
const CLASS_LIST_MS = 10_000;

/**
 * Estimates and records time limits.
 *
 * @example Three successful runs teach a class its limit
 * ```ts
 * import assert from "node:assert/strict";
 * import { createStore } from "../store/store.ts";
 * import { TimeLimits } from "./time_limits.ts";
 * import { DEFAULT_TIMEOUTS_S } from "./complexity.ts";
 * const store = await createStore({ ephemeral: true });
 * const limits = new TimeLimits(store, { multiplier: () => 1 }, { ...DEFAULT_TIMEOUTS_S });
 * assert.equal((await limits.estimate("git clone https://x/y")).timeout_s, 600);
 * for (let i = 0; i < 3; i++) {
 *   await store.appendRun("cmd:rsync",
 *     { duration_s: 10, exit_code: 0, status: "completed", timed_out: false, at: Date.now() });
 * }
 * const e = await limits.estimate("rsync -a src dst");
 * assert.equal(e.source, "history");
 * assert.equal(e.timeout_s, 60); // 10 s x 1.2, 2 x 10 s: both below the 60 s floor
 * // A build class never learns below its default: one class holds small and big builds.
 * assert.equal((await limits.estimate("make build")).timeout_s, 600);
 * await store.close();
 * ```
 */
export class TimeLimits {
  readonly #store: Store;
  readonly #monitor: { multiplier(): number };
  readonly #defaults: Record<Complexity, number>;
  readonly #floorS: number;
  readonly #maxS: number | undefined;
  /** Every class with history, refreshed now and then, so a new class's estimate is not O(classes). */
  #classList: { classes: Set<string>; at: number } | null = null;
  /** Recent estimates by class, before the load multiplier (a store read per execute otherwise). */
  readonly #cache = new Map<string, { estimate: Estimate; at: number }>();

  /** Creates the estimator over a store and a resource monitor. */
  constructor(
    store: Store,
    monitor: { multiplier(): number },
    defaults: Record<Complexity, number>,
    options: TimeLimitOptions = {},
  ) {
    this.#store = store;
    this.#monitor = monitor;
    this.#defaults = defaults;
    this.#floorS = options.floorS ?? DEFAULT_MIN_AUTO_TIMEOUT_S;
    this.#maxS = options.maxS;
  }

  /** The store in use. */
  get store(): Store {
    return this.#store;
  }

  /**
   * An automatic time limit for `command` (a shell line or an argv), with its
   * reasoning. Never throws for the store.
   */
  async estimate(
    command: CommandLine,
    commandClass: CommandClass = classify(command),
  ): Promise<Estimate> {
    const cls = commandClass.class;
    const hit = this.#cache.get(cls);
    if (hit !== undefined && performance.now() - hit.at < CACHE_MS) {
      // The machine's load and what this command states are read fresh;
      // only the history behind them is reused.
      return restate(hit.estimate, this.#monitor.multiplier(), commandClass.statedSeconds);
    }
    const estimate = await estimateTimeout({
      command,
      cls: commandClass,
      store: { history: (c) => this.#store.history(c), classes: () => this.#classes() },
      monitor: this.#monitor,
      defaults: this.#defaults,
      floorS: this.#floorS,
      maxS: this.#maxS,
    });
    // An estimate made without the store is not kept: recovery shows at once.
    if (estimate.reasoning.store_error === undefined) {
      if (this.#cache.size >= CACHE_CLASSES) this.#cache.clear();
      this.#cache.set(cls, { estimate, at: performance.now() });
    }
    return estimate;
  }

  /** The store's classes, read at most every {@linkcode CLASS_LIST_MS}. */
  async #classes(): Promise<string[]> {
    const now = performance.now();
    if (this.#classList === null || now - this.#classList.at >= CLASS_LIST_MS) {
      this.#classList = { classes: new Set(await this.#store.classes()), at: now };
    }
    return [...this.#classList.classes];
  }

  /**
   * Records a finished run: its duration under its class, and its execution
   * record. Store failures are logged, never thrown.
   */
  async record(exec: Run): Promise<void> {
    const exit = exec.exit;
    // A lost run says nothing of its class, and whoever declared it lost recorded it.
    if (exit === null || exit.status === "lost") return;
    const spec = exec.spec;
    const cls = spec.limitClass ?? classify(spec.line ?? spec.display).class;
    // An idle_timeout says nothing about how long the class takes.
    const timedOut = exit.status === "timeout" && !exec.idleExpired;
    // Forget the class's estimate when this run changes it: a class still
    // learning, a run ended by its limit (back-off) or the first success
    // after one, or a run longer than the longest success so far.
    // Forgotten now and again once the run is stored (an estimate made in
    // between read the store without it).
    const forgetIfChanged = () => {
      const r = this.#cache.get(cls)?.estimate;
      if (
        r === undefined || r.source !== "history" || timedOut ||
        r.reasoning.timeouts_since_success > 0 ||
        exit.executionTime > (r.reasoning.longest_success_s ?? 0)
      ) this.#cache.delete(cls);
    };
    forgetIfChanged();
    const at = Date.now();
    try {
      await this.#store.appendRun(cls, {
        duration_s: exit.executionTime,
        exit_code: exit.exitCode,
        status: exit.status,
        timed_out: timedOut,
        limit_s: spec.timeout,
        auto: spec.timeoutSource !== "request",
        at,
      });
      forgetIfChanged();
      this.#classList?.classes.add(cls);
      await this.#store.appendRecord({
        execution_id: exec.id,
        command: exec.spec.display,
        class: cls,
        started_at: exec.startedAt,
        duration_s: exit.executionTime,
        status: exit.status,
        exit_code: exit.exitCode,
        signal: exit.signal,
        timeout_s: exec.spec.timeout,
        timeout_source: exec.spec.timeoutSource,
        bytes_out: exec.bytes.stdout,
        bytes_err: exec.bytes.stderr,
        principal: exec.principal,
      });
    } catch (err) {
      log.warning("Run {execution_id} not recorded: {error}", {
        ...runFields(exec),
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /**
   * Execution records, newest first.
   *
   * @throws {StoreDownError} (code -32004) while the store cannot be reached:
   * an outage the client can wait out, not a fault of ours.
   */
  async records(query: RecordQuery): Promise<ExecutionRecord[]> {
    try {
      return await this.#store.records(query);
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        throw new StoreDownError(err.backend, err.reason, { cause: err });
      }
      throw err;
    }
  }
}
