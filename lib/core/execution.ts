/**
 * One run of one command: running ⇄ paused → terminating → completed |
 * failed | canceled | timeout. Pipes the process group's output through a
 * framer into a sink, enforces time limits (not counting paused time), and
 * ends with exactly one `completed` event, after which nothing of the group
 * is left running.
 *
 * @module
 */
import { LOCAL } from "../security/principal.ts";
import { ProcessGroup } from "../process/process_group.ts";
import { RunCgroup } from "../process/cgroup.ts";
import { OutputLog } from "../output/output_log.ts";
import {
  DEFAULT_STDIN_BUFFER,
  StdinBuffer,
  type StdinWrite,
  writeAndClose,
} from "./stdin_buffer.ts";
import { utf8Length } from "../utf8.ts";
import { RunClocks } from "./run_clocks.ts";
import { GroupStopper } from "./group_stop.ts";
import { settlesWithin } from "../async.ts";
import { NoProcessError } from "../errors.ts";
import { OutputPipes } from "./output_pipes.ts";
import { RunFeed } from "./run_feed.ts";
import type { ClientSignal, Run } from "./run.ts";
import { automaticNote, endOfRun, type EndReason, spawnRefusal } from "./run_text.ts";
import type { ExecutionLimits, ExecutionOptions } from "./execution_options.ts";
import { CWD_CHANGED_EXIT, CWD_CHANGED_MESSAGE } from "../process/launch.ts";
import type { Metrics } from "../ops/metrics.ts";
import type {
  ExecSpec,
  ExecState,
  ExecutionEvent,
  ExitInfo,
  FinalStatus,
  HookOutcome,
} from "../types.ts";

export type { EndReason, ExecutionLimits, ExecutionOptions };

export { CLIENT_SIGNALS } from "./run.ts";
export type { ClientSignal, Run } from "./run.ts";

/** Default `detach-timeout`: an hour. */
const DEFAULT_DETACH_TIMEOUT_MS = 3_600_000;

const isFinal = (s: ExecState): s is FinalStatus =>
  s === "completed" || s === "failed" || s === "canceled" || s === "timeout" || s === "lost";

/**
 * A running (or finished) command.
 *
 * @example Run `echo hi` and collect its events
 * ```ts
 * import assert from "node:assert/strict";
 * import { Execution } from "./execution.ts";
 * import { Metrics } from "../ops/metrics.ts";
 * import type { ExecutionEvent } from "../types.ts";
 * const events: ExecutionEvent[] = [];
 * const exec = Execution.spawn({
 *   id: "demo", sessionId: null, metrics: new Metrics(),
 *   sink: { emit: (e) => void events.push(e), ready: () => Promise.resolve() },
 *   spec: { argv: ["echo", "hi"], display: "echo hi", env: { PATH: "/usr/bin:/bin" },
 *     timeout: 10, timeoutSource: "request", idleTimeout: null, framing: "chunk" },
 *   limits: { chunkSize: 65536, lineLimit: 65536, flushIntervalMs: 5, killGraceMs: 1000,
 *     orphanGraceMs: 500, outputRetention: 65536 },
 * });
 * exec.run();
 * const exit = await exec.done;
 * assert.equal(exit.status, "completed");
 * assert.equal(exit.exitCode, 0);
 * assert.deepEqual(events.map((e) => e.type), ["started", "output", "completed"]);
 * ```
 */
export class Execution implements Run {
  /** Unique id (`execution_id` on the wire). */
  readonly id: string;
  readonly sessionId: string | null;
  /** The id of the principal that started it. */
  readonly principal: string;
  readonly spec: ExecSpec;
  /** Wall-clock start, ms since the epoch. */
  readonly startedAt: number;
  /** Resolves with the run's end, once `completed` has been emitted. */
  readonly done: Promise<ExitInfo>;
  /**
   * Resolves once the run is being ended (a cancel, a time limit, a
   * disconnect, shutdown) or has ended: whoever paces it should let go then.
   */
  readonly ending: Promise<void>;
  #resolveEnding!: () => void;
  /** The newest output, for replay and reads. */
  readonly output: OutputLog;
  /**
   * Everyone following the run now: the connection that started it, those
   * attached later, calls waiting on it. It is the run's sink.
   */
  readonly feed: RunFeed;
  /** Outcomes of the run's hooks so far (pre_execute, then on_timeout and post_execute). */
  readonly hooks: HookOutcome[] = [];

  readonly #group: ProcessGroup;
  readonly #limits: ExecutionLimits;
  readonly #metrics: Metrics;
  readonly #receivedAt: number | undefined;
  readonly #t0 = performance.now();
  #resolveDone!: (exit: ExitInfo) => void;
  #state: ExecState = "running";
  #reason: EndReason | null = null;
  /** The time and idle limits; either one ending the run cancels it as "timeout". */
  readonly #clocks = new RunClocks(() => {
    if (this.active && this.#reason === null) void this.cancel("timeout");
  });
  readonly #pipes: OutputPipes;
  #exit: ExitInfo | null = null;
  #ran = false;
  /** PAUSE's SIGSTOP, sent again shortly after for children forked meanwhile. */
  readonly #stopper = new GroupStopper((sig) => void this.#group.signal(sig));
  /** Resolves once the command itself has exited (its group may live on). */
  readonly #exited: Promise<void>;
  /** stdin kept open for {@linkcode writeInput} (spec.stdinOpen); null once the run has ended. */
  #stdin: StdinBuffer | null = null;

  private constructor(options: ExecutionOptions, group: ProcessGroup) {
    this.id = options.id;
    this.sessionId = options.sessionId;
    this.principal = options.principal ?? LOCAL.id;
    this.spec = options.spec;
    this.startedAt = Date.now();
    this.node = options.node ?? null;
    this.#group = group;
    this.feed = new RunFeed({
      detached: options.detached === true,
      detachTimeoutMs: options.limits.detachTimeoutMs ?? DEFAULT_DETACH_TIMEOUT_MS,
      abandoned: () => {
        if (this.active) void this.cancel("abandoned");
      },
    });
    if (options.sink !== undefined) this.feed.subscribe(options.sink);
    this.#limits = options.limits;
    this.#metrics = options.metrics;
    this.#receivedAt = options.receivedAt;
    this.output = new OutputLog(
      options.limits.outputRetention,
      options.metrics.outputMemory,
      options.id,
    );
    this.#exited = group.status.then(() => {}, () => {});
    this.#pipes = new OutputPipes({
      executionId: options.id,
      spec: options.spec,
      limits: options.limits,
      sink: this.feed,
      metrics: options.metrics,
      output: this.output,
      exited: this.#exited,
      onRead: () => this.#clocks.touch(),
    });
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
    this.ending = new Promise((resolve) => this.#resolveEnding = resolve);
    if (options.spec.stdinOpen && group.stdin) {
      const metrics = options.metrics;
      this.#stdin = new StdinBuffer(
        group.stdin.getWriter(),
        options.stdinBuffer ?? DEFAULT_STDIN_BUFFER,
        (delta) => metrics.stdinPendingBytes += delta,
      );
    }
  }

  /**
   * Spawns the process group. Call {@linkcode run} once the caller has told
   * its client the run started (the `execute` result precedes `process.started`).
   *
   * @throws {Deno.errors.NotFound} when the program or cwd does not exist.
   * @throws {CommandRefusedError} (code -32001) when the service's Deno
   * permissions (a scoped `--allow-run`) or the OS refuse to run the program.
   */
  static spawn(options: ExecutionOptions): Execution {
    let group: ProcessGroup;
    try {
      group = ProcessGroup.spawn({
        argv: options.spec.argv,
        cwd: options.spec.cwd,
        cwdChecked: options.spec.cwdChecked,
        confinement: options.spec.confinement,
        env: options.spec.env,
        stdin: options.spec.stdin !== undefined || options.spec.stdinOpen === true,
        cgroup: options.spec.cgroup && RunCgroup.create({
          placement: options.spec.cgroup,
          name: options.id,
          memoryMax: options.spec.memoryMax,
          pidsMax: options.spec.pidsMax,
        }),
      });
    } catch (err) {
      throw spawnRefusal(err, options.spec) ?? err;
    }
    options.metrics.executionsStarted++;
    return new Execution(options, group);
  }

  /** Pid of the command. */
  get pid(): number {
    return this.#group.pid;
  }

  /** Process group id. */
  get pgid(): number {
    return this.#group.pgid;
  }

  /** The run's cgroup directories, v2 first (for `killCgroup()`); empty without. */
  get cgroups(): readonly string[] {
    return this.#group.cgroup?.paths ?? [];
  }

  /** Current state. */
  get state(): ExecState {
    return this.#state;
  }

  /** Whether the run has not ended yet (running, paused or terminating). */
  get active(): boolean {
    return !isFinal(this.#state);
  }

  /** The end, once reached. */
  get exit(): ExitInfo | null {
    return this.#exit;
  }

  /** Whether stdin is open for {@linkcode writeInput}. */
  get stdinOpen(): boolean {
    return this.#stdin?.open ?? false;
  }

  /** Bytes of input accepted for the child's stdin since the start, the initial `stdin` included. */
  get stdinAccepted(): number {
    return this.#stdin?.accepted ?? 0;
  }

  /** Bytes of input accepted and not yet taken by the child's stdin. */
  get stdinPending(): number {
    return this.#stdin?.pending ?? 0;
  }

  /** Bytes of input the run holds at most while its child does not read (`stdin-buffer`). */
  get stdinBuffer(): number {
    return this.#stdin?.capacity ?? 0;
  }

  /** The node that runs it (this one), for listings; null on a single node. */
  readonly node: string | null;
  /** Always false: its process runs here. */
  readonly relayed = false;

  /** Wall-clock seconds the run took, or has taken so far. */
  get durationSeconds(): number {
    return this.#exit?.executionTime ?? Math.round(Date.now() - this.startedAt) / 1000;
  }

  /** `running` until the run has ended, then `ended` (what `list` filters on). */
  get phase(): "running" | "ended" {
    return this.active ? "running" : "ended";
  }

  /** Whether the run survives its connection (legacy `detach: true`, every MCP run). */
  get detached(): boolean {
    return this.feed.detached;
  }

  /** Whether a client is attached to it now. */
  get attached(): boolean {
    return this.feed.attached > 0;
  }

  /**
   * Records a hook's outcome and, unless `emit` is false (it was sent
   * already, before the run existed), sends it to everyone following the run.
   */
  recordHook(outcome: HookOutcome, emit = true): void {
    this.hooks.push(outcome);
    if (emit) this.#emit({ type: "hook", executionId: this.id, outcome });
  }

  /**
   * Tells everyone following the run that it was paused, resumed or
   * canceled (sent after the reply to the `control` that did it).
   */
  announce(type: "paused" | "resumed" | "canceled"): void {
    this.#emit({ type, executionId: this.id, pid: this.pid, pgid: this.pgid });
  }

  /**
   * Sends `name` (SIGINT for `INTERRUPT`) to the whole group. The run goes
   * on if the command survives it; a paused group gets it once resumed.
   *
   * @throws {NoProcessError} when the run has ended.
   */
  signal(name: ClientSignal): void {
    // While terminating too: a client may send KILL rather than wait out the grace.
    if (!this.active) throw new NoProcessError();
    void this.#group.signal(`SIG${name}`);
  }

  /** Output bytes so far, per stream. */
  get bytes(): { stdout: number; stderr: number } {
    return this.#pipes.bytes;
  }

  /** Starts streaming and the time limits; emits `started` first. Idempotent. */
  run(): void {
    if (this.#ran) return;
    this.#ran = true;
    void this.#run();
  }

  /**
   * Stops the whole group (SIGSTOP) and the time-limit clock.
   *
   * @returns false when it was already paused.
   * @throws {NoProcessError} when the run is not running.
   */
  pause(): boolean {
    if (this.#state === "paused") return false;
    if (this.#state !== "running") throw new NoProcessError();
    this.#state = "paused";
    this.#clocks.pause();
    this.#stopper.stop(() => this.#state === "paused");
    return true;
  }

  /**
   * Continues the group (SIGCONT) and the clock.
   *
   * @returns false when it was not paused.
   * @throws {NoProcessError} when the run has ended or is being ended.
   */
  resume(): boolean {
    if (this.#state === "running") return false;
    if (this.#state !== "paused") throw new NoProcessError();
    this.#state = "running";
    this.#stopper.clear();
    void this.#group.signal("SIGCONT");
    this.#clocks.resume();
    return true;
  }

  /**
   * Ends the run: SIGCONT, SIGTERM to the group, SIGKILL after the grace.
   * The final status is "canceled" (or "timeout" for `timeout`). The first
   * reason given wins; later calls only wait.
   *
   * @throws {NoProcessError} for a client cancel when the run has already ended.
   */
  cancel(reason: EndReason = "canceled"): Promise<ExitInfo> {
    if (!this.active) {
      if (reason === "canceled") throw new NoProcessError();
      return this.done;
    }
    // done resolves only through #run: make sure it is running.
    this.run();
    if (this.#reason === null) {
      this.#reason = reason;
      this.#state = "terminating";
      this.#stopper.clear();
      this.#clocks.clear();
      // Its last output is read as it ends, whoever was holding it to their pace.
      this.feed.releaseHolds();
      this.#resolveEnding();
      void this.#group.terminate(this.#limits.killGraceMs);
    }
    return this.done;
  }

  /**
   * Accepts `input` (text or bytes) for the command's stdin, to be written after input
   * accepted before, then closes stdin if `close` is set. Only for runs
   * spawned with `spec.stdinOpen`. Returns at once; the result tells how
   * much has been written and when all of it is. Input that does not fit in
   * the run's stdin buffer with what is still pending is refused whole.
   *
   * @throws {NoProcessError} when the run has ended or stdin is not open.
   * @throws {InvalidParamsError} (-32602) when it does not fit the buffer
   * (the process is not reading its stdin); nothing of it is kept.
   */
  queueInput(input: string | Uint8Array, close = false): StdinWrite {
    if (!this.active) throw new NoProcessError();
    const stdin = this.#stdin;
    if (stdin === null || !stdin.open) throw new NoProcessError("stdin is not open");
    if (typeof input !== "string") return stdin.write(input, close);
    // Checked before encoding: refused input costs no copy.
    stdin.check(utf8Length(input));
    return stdin.write(new TextEncoder().encode(input), close);
  }

  /**
   * {@linkcode queueInput}, resolving once the pipe has taken all of `text`
   * (a child that does not read can make this wait).
   *
   * @returns the number of bytes written.
   * @throws {NoProcessError} when the run has ended, stdin is not open, or
   * the child no longer reads it.
   * @throws {InvalidParamsError} (-32602) when it does not fit the buffer.
   */
  async writeInput(text: string | Uint8Array, close = false): Promise<number> {
    const write = this.queueInput(text, close);
    await write.done;
    return write.bytes;
  }

  /** SIGKILLs the whole group at once (last resort at shutdown). */
  kill(): void {
    void this.#group.signal("SIGKILL");
  }

  async #run(): Promise<void> {
    const spec = this.spec;
    this.#emit({ type: "started", executionId: this.id, pid: this.pid, pgid: this.pgid });
    if (this.#receivedAt !== undefined) {
      this.#metrics.recordStartLatency(performance.now() - this.#receivedAt);
    }
    if (this.#reason === null) {
      this.#clocks.start({
        timeoutS: spec.timeout,
        idleS: spec.idleTimeout,
        note: automaticNote(spec),
      });
    }
    if (this.#state === "paused") this.#clocks.pause();
    if (this.#stdin !== null) {
      // The request's own stdin, bounded by max-stdin-bytes, is taken whatever the buffer's size.
      if (spec.stdin) this.#stdin.write(new TextEncoder().encode(spec.stdin), false, true);
    } else if (this.#group.stdin) {
      void writeAndClose(this.#group.stdin, spec.stdin ?? "");
    }
    const pumps = Promise.all([
      this.#pipes.pump(this.#group.stdout, "stdout"),
      this.#pipes.pump(this.#group.stderr, "stderr"),
    ]);
    const status = await this.#group.status;
    // Processes the command left behind may hold its pipes: give them the
    // orphan grace to finish writing, then end the group either way.
    await settlesWithin(pumps, this.#limits.orphanGraceMs);
    await this.#group.terminate(this.#limits.killGraceMs);
    // Nobody is left to read stdin. Abort rather than close: a write blocked
    // on a pipe held by an escaped process would keep a close waiting.
    const stdin = this.#stdin;
    this.#stdin = null;
    if (stdin !== null) await stdin.abort();
    await this.#pipes.drain(pumps);
    this.#clocks.clear();
    this.#finish(status);
  }

  /** Whether the child refused to start because its checked cwd had changed (lib/process/launch.ts). */
  #cwdChanged(exitCode: number | null): boolean {
    return exitCode === CWD_CHANGED_EXIT && this.spec.cwdChecked === true &&
      this.#pipes.stderrHead === CWD_CHANGED_MESSAGE;
  }

  /** Whether `idle_timeout` (not the time limit) ended the run. */
  get idleExpired(): boolean {
    return this.#clocks.expiry?.idle === true;
  }

  #finish(status: Deno.CommandStatus): void {
    const signal = status.signal ?? null;
    const exitCode = signal === null ? status.code : null;
    const { final, error } = endOfRun({
      reason: this.#reason,
      exitCode,
      signal,
      expiry: this.#clocks.expiry?.text ?? null,
      cwdChanged: this.#cwdChanged(exitCode),
      oomKills: this.#group.cgroup?.oomKills ?? 0,
      memoryMax: this.#group.cgroup?.memoryMax ?? null,
    });
    const exit: ExitInfo = {
      status: final,
      exitCode,
      signal,
      error,
      executionTime: Math.round(performance.now() - this.#t0) / 1000,
    };
    this.#state = final;
    this.#exit = exit;
    this.output.finish();
    this.#metrics.recordFinish(exit);
    this.#emit({ type: "completed", executionId: this.id, pid: this.pid, pgid: this.pgid, exit });
    this.feed.close();
    this.#resolveEnding();
    this.#resolveDone(exit);
  }

  #emit(event: ExecutionEvent): void {
    this.feed.emit(event);
  }
}
