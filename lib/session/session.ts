/**
 * One client connection's state: the executions it started, its quota, and
 * when it was last active. Protocol-neutral: the legacy and MCP protocols
 * both drive a Session.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import {
  BusyError,
  CommandRefusedError,
  InvalidParamsError,
  NoLiveNodeError,
  NoProcessError,
} from "../errors.ts";
import { type Cluster, placeAmong, type RemoteRunSummary } from "../cluster/cluster.ts";
import { Attachment } from "../core/attachment.ts";
import type { ExecutionLimits } from "../core/execution.ts";
import type { Run } from "../core/run.ts";
import type { ExecutionRegistry } from "../core/execution_registry.ts";
import { type Logger, logger, sessionFields } from "../log.ts";
import { LOCAL, type Principal } from "../security/principal.ts";
import type { Metrics } from "../ops/metrics.ts";
import { truncateText } from "../output/text_truncate.ts";
import type { HookRunner } from "../ops/hooks.ts";
import type { Sink } from "../core/sink.ts";
import type { TimeLimits } from "../timing/time_limits.ts";
import type { ExecSpec, HookOutcome } from "../types.ts";
import { type ExecRequestConfig, resolveExecSpec } from "./exec_request.ts";
import type { ExecuteParams } from "./exec_params.ts";

/** What sessions share. */
export interface SessionDeps {
  registry: ExecutionRegistry;
  metrics: Metrics;
  /** Learned time limits and the history behind them. */
  timeLimits: TimeLimits;
  /** pre_execute hooks run in {@linkcode Session.start}. */
  hooks: HookRunner;
  /** The other nodes, with `redis-url`; absent: this node is the only one. */
  cluster?: Cluster | undefined;
  /** This node's id and labels (placement on one node checks a request against them). */
  node?: { id: string; labels: readonly string[] } | undefined;
  config:
    & ExecRequestConfig
    & Pick<
      Config,
      | "maxExecutionsPerSession"
      | "chunkSize"
      | "lineLimit"
      | "flushInterval"
      | "killGrace"
      | "orphanGrace"
      | "outputRetention"
      | "detachTimeout"
      | "maxDetachedPerPrincipal"
    >;
}

/** What {@linkcode Session.execute} runs: the request as validated, and whether stdin stays open. */
export type ExecuteRequest = Omit<ExecuteParams, "detach"> & {
  stdin_open?: boolean | undefined;
  /** The run survives the session (legacy `detach: true`); MCP sessions detach every run. */
  detach?: boolean | undefined;
  /** Seconds a detached run waits with no one attached, at most `detach-timeout`. */
  detach_timeout?: number | null | undefined;
  /** The run's id, chosen by the client (a UUID not in use): a start it can retry safely. */
  execution_id?: string | undefined;
  /** The client holds the run to its pace while attached, even a detached run. */
  paced?: boolean | undefined;
  /** Run on this node (lib/cluster/). */
  node?: string | undefined;
  /** Run on a live node with every one of these labels. */
  labels?: string[] | undefined;
};

/** A run spawned by {@linkcode Session.execute}, whose output is not flowing yet. */
export interface Spawned {
  exec: Run;
  /** Starts the run: call it once the client has the reply that names the run. */
  run(): void;
}

/** The services a protocol uses beside its session, passed to it explicitly. */
export type SessionServices = Pick<SessionDeps, "timeLimits" | "hooks">;

/**
 * What a session speaks: the legacy protocol over a WebSocket (until an
 * MCP `initialize` turns it into MCP), MCP over a WebSocket, or MCP over
 * Streamable HTTP.
 */
export type SessionProtocol = "legacy_ws" | "mcp_ws" | "mcp_http";

/** Closes the client's connection (code and reason as for a WebSocket close). */
export type CloseConnection = (code: number, reason: string) => void;

const log = logger("session");

/** Longest command preview in a log line, in characters (cut on a code point boundary). */
const PREVIEW_CHARS = 200;

/**
 * Logs in a later turn of the event loop. Deno writes a socket only once the
 * current turn is over, so even the microseconds of a log call would hold
 * back what this turn sends: the `execute` result, `process.completed`.
 */
function logLater(write: () => void): void {
  setTimeout(write, 0);
}

/** The config as execution limits. */
export function executionLimits(config: SessionDeps["config"]): ExecutionLimits {
  return {
    chunkSize: config.chunkSize,
    lineLimit: config.lineLimit,
    flushIntervalMs: config.flushInterval,
    killGraceMs: config.killGrace * 1000,
    orphanGraceMs: config.orphanGrace * 1000,
    outputRetention: config.outputRetention,
    detachTimeoutMs: config.detachTimeout * 1000,
  };
}

/**
 * A client session.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Session } from "./session.ts";
 * import { ExecutionRegistry } from "../core/execution_registry.ts";
 * import { Metrics } from "../ops/metrics.ts";
 * import { HookRunner } from "../ops/hooks.ts";
 * import { createStore } from "../store/store.ts";
 * import { TimeLimits } from "../timing/time_limits.ts";
 * import { DEFAULT_TIMEOUTS_S } from "../timing/estimate.ts";
 * import { loadConfig } from "../config/config.ts";
 * const store = await createStore({ ephemeral: true });
 * const timeLimits = new TimeLimits(store, { multiplier: () => 1 }, { ...DEFAULT_TIMEOUTS_S });
 * const session = new Session({
 *   registry: new ExecutionRegistry({ retentionSeconds: 60, maxRetained: 10 }),
 *   metrics: new Metrics(),
 *   timeLimits,
 *   hooks: HookRunner.none(),
 *   config: loadConfig({ getEnv: () => undefined }),
 * }, () => {});
 * assert.equal(session.runningCount, 0);
 * assert.throws(() => session.find(), { code: -32002 });
 * await store.close();
 * ```
 */
export class Session {
  /** Session id, sent in `connected`. */
  readonly id: string = crypto.randomUUID();
  /** Wall-clock open time, ms since the epoch. */
  readonly openedAt: number = Date.now();
  /** Who the session acts for: it owns the session's executions and history. */
  readonly principal: Principal;
  readonly #deps: SessionDeps;
  readonly #closeConnection: CloseConnection;
  /** Every line of this session names it and its principal. */
  readonly #log: Logger;
  /**
   * Executions this session started, not yet ended, in start order, with the
   * sink subscribed to each (null: it follows the run through an attachment).
   */
  readonly #active = new Map<Run, Sink | null>();
  /** Runs this session attached to (`attach`), by execution id. */
  readonly #attachments = new Map<string, Attachment>();
  /** Requests being handled now (an MCP call waiting on a run): the session is not idle. */
  #inFlight = 0;
  #lastActivity = performance.now();
  #closed = false;
  /** Starts waiting for pre_execute hooks: they hold a slot of the limit. */
  #starting = 0;
  /**
   * Executions this session may run at once. Starts at the config's
   * `maxExecutionsPerSession`; a protocol that runs several at once by
   * design (MCP) raises it for its sessions.
   */
  maxExecutions: number;
  /**
   * Every run of the session survives it, as if started with `detach`: MCP
   * runs belong to the principal, not to the session (lib/protocol/mcp/mcp.ts
   * sets it).
   */
  detachAll = false;
  /** Idle time after which the session expires; undefined: the manager's `session-timeout`. */
  idleLimitMs: number | undefined;
  /**
   * At the session limit, a new session of the same principal may take this
   * one's place once it has been idle a while (MCP over HTTP: no connection
   * holds it open, and most clients never DELETE theirs).
   */
  reclaimable = false;
  /**
   * It runs what another node placed here (lib/protocol/cluster/job_worker.ts):
   * the run's id was claimed in the cluster when it was placed.
   */
  runsPlacedJobs = false;
  /** What it speaks; set by the transport that opened it (`/metrics` counts sessions by it). */
  protocol: SessionProtocol = "legacy_ws";

  /**
   * Creates a session of `principal` (default `local`); `closeConnection`
   * ends the client's connection.
   */
  constructor(deps: SessionDeps, closeConnection: CloseConnection, principal: Principal = LOCAL) {
    this.#deps = deps;
    this.principal = principal;
    this.#closeConnection = closeConnection;
    this.maxExecutions = deps.config.maxExecutionsPerSession;
    this.#log = log.with(sessionFields(this));
  }

  /** Executions running now. */
  get runningCount(): number {
    return this.#active.size;
  }

  /** Whether the session has been closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Milliseconds since the last message or the end of the last run (0 while a request is in flight). */
  idleMs(now = performance.now()): number {
    return this.#inFlight > 0 ? 0 : now - this.#lastActivity;
  }

  /**
   * Marks a request in flight until the returned release is called: the
   * session does not expire under a call that waits on a run.
   */
  hold(): () => void {
    this.#inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
      this.touch();
    };
  }

  /** Whether a request of the session is being handled now ({@linkcode hold}). */
  get inFlight(): boolean {
    return this.#inFlight > 0;
  }

  /** Whether the session follows a run now: one it started, or one it attached to, still running. */
  get following(): boolean {
    if (this.#active.size > 0) return true;
    for (const a of this.#attachments.values()) if (!a.closed && a.exec.active) return true;
    return false;
  }

  /** Records activity (every incoming message). */
  touch(): void {
    this.#lastActivity = performance.now();
  }

  /**
   * The one execute path of both protocols: checks capacity, resolves the
   * request (policy, workspace, environment, time limit), runs the
   * pre_execute hooks and spawns. Every event of the run, hook outcomes
   * included, goes to `sink`, each naming the run. The caller sends its
   * reply, then calls `run()`.
   *
   * @throws {BusyError} at the per-session limit.
   * @throws {InvalidParamsError} for a request that cannot run as given.
   * @throws {CommandRefusedError} when the policy or a required pre_execute hook refused it.
   */
  async execute(
    request: ExecuteRequest,
    sink: Sink,
    receivedAt: number = performance.now(),
  ): Promise<Spawned> {
    this.checkCapacity();
    if (request.node !== undefined || request.labels !== undefined) {
      const remote = await this.#placeElsewhere(request, sink);
      if (remote !== null) return remote;
    }
    const {
      stdin_open,
      detach,
      detach_timeout,
      execution_id,
      paced,
      node: _n,
      labels: _l,
      ...params
    } = request;
    const spec = await resolveExecSpec(params, this.#deps.config, this.#deps.timeLimits);
    const exec = await this.start(
      stdin_open === undefined ? spec : { ...spec, stdinOpen: stdin_open },
      sink,
      {
        receivedAt,
        detached: detach === true || this.detachAll,
        ...(detach_timeout != null ? { detachTimeoutS: detach_timeout } : {}),
        ...(execution_id !== undefined ? { id: execution_id } : {}),
        ...(paced === true ? { paced: true } : {}),
      },
    );
    let started = false;
    return {
      exec,
      run: () => {
        if (started) return;
        started = true;
        exec.run();
      },
    };
  }

  /**
   * Starts `request` on the node its `node`/`labels` choose, when that is
   * another node: the run is placed there, checked and resolved there, and
   * followed from here through its relay. Null when it runs here.
   *
   * @throws {NoLiveNodeError} (-32005) when no live node matches.
   * @throws {ClusterDownError} (-32006) when it needs another node and Redis is away.
   */
  async #placeElsewhere(request: ExecuteRequest, sink: Sink): Promise<Spawned | null> {
    const want = { node: request.node, labels: request.labels };
    const cluster = this.#deps.cluster;
    if (cluster === undefined) {
      const self = this.#deps.node ?? { id: "", labels: [] };
      const here = { id: self.id, labels: [...self.labels], running: 0, started_at: 0 };
      if (placeAmong([here], here.id, want) !== null) return null;
      throw new NoLiveNodeError({ ...want, live: [{ id: here.id, labels: here.labels }] });
    }
    const placement = await cluster.place(want);
    if (placement.here) return null;
    const { execution_id, detach, paced, node: _n, labels: _l, ...rest } = request;
    const id = execution_id ?? crypto.randomUUID();
    if (this.#deps.registry.get(id) !== undefined) {
      throw new InvalidParamsError("Invalid params", {
        data: { field: "execution_id", reason: "in use: choose another" },
      });
    }
    const detached = detach === true || this.detachAll;
    this.#starting++;
    let run;
    try {
      run = await cluster.startRemote(
        placement.node,
        {
          id,
          request: { ...rest, detach: detached, ...(paced === true ? { paced: true } : {}) },
          principal: { id: this.principal.id, admin: this.principal.admin },
        },
        sink,
        {
          sessionId: this.id,
          // A client's own detach timeout can shorten the server's, never lengthen it.
          detachTimeoutMs: Math.min(
            this.#deps.config.detachTimeout * 1000,
            (request.detach_timeout ?? Infinity) * 1000,
          ),
        },
      );
    } finally {
      this.#starting--;
    }
    if (this.#deps.registry.get(run.id) !== undefined) {
      // The same id started here meanwhile: this one must not go on unfollowed.
      void run.cancel("canceled");
      run.run();
      throw new InvalidParamsError("Invalid params", {
        data: { field: "execution_id", reason: "in use: choose another" },
      });
    }
    this.#deps.registry.adopt(run);
    if (this.#closed) {
      // The client left while its run was being placed: it ends as a disconnect would end it.
      void run.cancel(detached ? "shutdown" : "disconnect");
      run.run();
      throw new NoProcessError("Session is closed");
    }
    this.#follow(run, sink, detached, paced === true);
    this.#log.with({ execution_id: run.id, node: run.node }).info(
      "Started {execution_id} on node {node} for {principal}",
    );
    return { exec: run, run: () => run.run() };
  }

  /**
   * Makes `sink` follow `exec`, which this session started: on the feed, or
   * through an attachment when the run is detached and the client can fall
   * behind (it then reads the log instead of holding the run back).
   */
  #follow(exec: Run, sink: Sink, detached: boolean, paced: boolean): void {
    const follows = detached && sink.busy !== undefined;
    if (!follows && !exec.feed.has(sink)) exec.feed.subscribe(sink);
    if (exec.feed.has(sink)) {
      this.#active.set(exec, sink);
    } else {
      const attachment = new Attachment(exec, sink, 0, { withStart: true, paces: paced });
      this.#track(attachment);
      void attachment.start();
      this.#active.set(exec, null);
    }
    void exec.done.then(() => {
      // At once: a request that follows `completed` must find the slot free.
      this.#active.delete(exec);
      this.touch();
    });
  }

  /**
   * Throws what {@linkcode start} would for a full or closed session, before
   * a request is resolved: a client flooding a busy session costs a check,
   * not a classification and an estimate per message.
   *
   * @throws {BusyError} at the per-session limit.
   */
  checkCapacity(): void {
    if (this.#closed) throw new NoProcessError("Session is closed");
    if (this.#active.size + this.#starting >= this.maxExecutions) throw new BusyError();
  }

  /** @throws {BusyError} when the principal has `max-detached-per-principal` detached runs running. */
  #checkDetachedCapacity(): void {
    const max = this.#deps.config.maxDetachedPerPrincipal;
    if (this.#deps.registry.runningDetached(this.principal.id) < max) return;
    throw new BusyError(
      `${max} detached executions of this API key are running, the limit ` +
        "(max-detached-per-principal): wait for one to end or cancel one",
    );
  }

  /**
   * Runs the pre_execute hooks (their outcomes go to `sink`), then spawns an
   * already resolved `spec` as an execution owned by this session
   * ({@linkcode execute} is the path of a client's request). Call `run()` on
   * it once the client has been told it started.
   *
   * @throws {BusyError} at the per-session limit.
   * @throws {CommandRefusedError} when a required pre_execute hook failed.
   * @throws {InvalidParamsError} when the program or directory does not exist.
   */
  async start(
    spec: ExecSpec,
    sink: Sink,
    options: {
      id?: string;
      receivedAt?: number;
      detached?: boolean;
      detachTimeoutS?: number;
      paced?: boolean;
    } = {},
  ): Promise<Run> {
    if (this.#closed) throw new NoProcessError("Session is closed");
    // Reserved before any await, so concurrent starts cannot overshoot the limit.
    if (this.#active.size + this.#starting >= this.maxExecutions) throw new BusyError();
    // A client's own id (a start it may retry): never one in use, whoever's it is.
    if (options.id !== undefined && this.#deps.registry.get(options.id) !== undefined) {
      throw new InvalidParamsError("Invalid params", {
        data: { field: "execution_id", reason: "in use: choose another" },
      });
    }
    if (options.detached === true) this.#checkDetachedCapacity();
    // Held before any await, in every session of the principal alike.
    const release = options.detached === true
      ? this.#deps.registry.holdDetached(this.principal.id)
      : () => {};
    const id = options.id ?? crypto.randomUUID();
    this.#starting++;
    let exec: Run;
    let pre: HookOutcome[];
    try {
      // Not in use on any node either: attach and control by id reach every node.
      if (
        options.id !== undefined && !this.runsPlacedJobs &&
        !(await this.#deps.cluster?.claim(options.id) ?? true)
      ) {
        throw new InvalidParamsError("Invalid params", {
          data: { field: "execution_id", reason: "in use: choose another" },
        });
      }
      pre = await this.#preExecute(id, spec, sink);
      if (this.#closed) throw new NoProcessError("Session is closed");
      // A detached run's client follows it through an attachment when it can
      // fall behind (a socket): then it reads the log instead of holding the run back.
      const follows = options.detached === true && sink.busy !== undefined;
      const { detachTimeoutS, paced: _, ...spawnOptions } = options;
      const limits = executionLimits(this.#deps.config);
      exec = this.#deps.registry.spawn({
        ...spawnOptions,
        id,
        sessionId: this.id,
        principal: this.principal.id,
        node: this.#deps.cluster?.id ?? null,
        spec,
        sink: follows ? undefined : sink,
        // A client's own detach timeout can shorten the server's, never lengthen it.
        limits: detachTimeoutS === undefined ? limits : {
          ...limits,
          detachTimeoutMs: Math.min(limits.detachTimeoutMs ?? Infinity, detachTimeoutS * 1000),
        },
        metrics: this.#deps.metrics,
      });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        // The OS does not say which is missing when a cwd was given too.
        const reason = spec.cwd === undefined
          ? "program not found"
          : "program or working directory not found";
        throw new InvalidParamsError(`Cannot run '${spec.argv[0]}': ${reason}`, {
          data: { field: spec.cwd === undefined ? "args" : "cwd", reason },
        });
      }
      throw err;
    } finally {
      this.#starting--;
      release();
    }
    // Sent to the client already, before the run existed.
    for (const outcome of pre) exec.recordHook(outcome, false);
    // Known to the other nodes: listed, attached and controlled from any of them.
    this.#deps.cluster?.register(exec);
    this.#follow(exec, sink, options.detached === true, options.paced === true);
    const runLog = this.#log.with({ execution_id: exec.id, pid: exec.pid });
    // The command, never its env (values may be secrets).
    logLater(() =>
      runLog.info("Started {execution_id} for {principal} (pid {pid}): {command}", {
        command: truncateText(spec.display, PREVIEW_CHARS),
      })
    );
    void exec.done.then((exit) => {
      // Once its hooks have reported, the ended run lets go of its followers.
      void this.#postExecute(exec).finally(() => exec.feed.clear());
      logLater(() =>
        runLog.info("Ended {execution_id}: {status} in {seconds}s", {
          status: exit.status,
          seconds: exit.executionTime,
        })
      );
    });
    return exec;
  }

  /** on_timeout and post_execute hooks of an ended run; their outcomes go to whoever follows it. */
  async #postExecute(exec: Run): Promise<void> {
    for (const outcome of await this.#deps.hooks.afterRun(exec)) exec.recordHook(outcome);
  }

  async #preExecute(id: string, spec: ExecSpec, sink: Sink): Promise<HookOutcome[]> {
    const hooks = this.#deps.hooks;
    if (!hooks.has("pre_execute")) return [];
    const outcomes = await hooks.run("pre_execute", { executionId: id, command: spec.display });
    for (const outcome of outcomes) sink.emit({ type: "hook", executionId: id, outcome });
    const blocking = outcomes.find((o) => o.required && !o.ok);
    if (blocking !== undefined) {
      throw new CommandRefusedError(
        `Required pre_execute hook '${blocking.name}' failed: ${blocking.error}`,
        { data: { hook: blocking.name, status: blocking.status, exit_code: blocking.exitCode } },
      );
    }
    return outcomes;
  }

  /**
   * The execution a control request is for: the one named, or else the most
   * recently started one still running, or else the one attached to last
   * that still runs.
   *
   * @throws {NoProcessError} when there is none, or it has ended.
   */
  find(executionId?: string): Run {
    if (executionId !== undefined) {
      const exec = this.get(executionId);
      if (exec === undefined) throw new NoProcessError(`No execution with id ${executionId}`);
      if (!exec.active) throw new NoProcessError();
      exec.feed.touch();
      return exec;
    }
    let latest: Run | undefined;
    for (const exec of this.#active.keys()) latest = exec;
    if (latest === undefined) {
      for (const a of this.#attachments.values()) if (a.exec.active) latest = a.exec;
    }
    if (latest === undefined) throw new NoProcessError();
    return latest;
  }

  /**
   * Attaches `sink` to the principal's execution `executionId` from byte
   * offset `from` (default: the oldest retained): the retained output is
   * replayed, then the run streams live (lib/core/attachment.ts). A second
   * attach to the same run replaces the first.
   *
   * @throws {NoProcessError} when the id is unknown (or another principal's).
   */
  attach(
    executionId: string,
    sink: Sink,
    from?: number,
    options: { paced?: boolean } = {},
  ): Attachment {
    if (this.#closed) throw new NoProcessError("Session is closed");
    const exec = this.get(executionId);
    if (exec === undefined) throw new NoProcessError(`No execution with id ${executionId}`);
    if (from !== undefined && from > exec.output.next) {
      throw new InvalidParamsError("Invalid params", {
        data: {
          field: "from_seq",
          reason: `past the run's output: next_seq is ${exec.output.next}`,
          next_seq: exec.output.next,
        },
      });
    }
    this.#attachments.get(executionId)?.detach();
    // The run's starting sink, if it is this session's, would send everything twice.
    const own = this.#active.get(exec);
    if (own !== undefined && own !== null) exec.feed.unsubscribe(own);
    const attachment = new Attachment(exec, sink, from, { paces: options.paced === true });
    this.#track(attachment);
    return attachment;
  }

  /** Keeps `attachment` until it ends, so a long session does not pile up ended ones. */
  #track(attachment: Attachment): void {
    const id = attachment.exec.id;
    this.#attachments.set(id, attachment);
    void attachment.ended.then(() => {
      if (this.#attachments.get(id) === attachment) this.#attachments.delete(id);
    });
  }

  /** Whether this session gets `exec`'s events (it started it, or attached to it). */
  watches(exec: Run): boolean {
    const own = this.#active.get(exec);
    return (own !== undefined && own !== null && exec.feed.has(own)) ||
      this.#attachments.get(exec.id)?.closed === false;
  }

  /**
   * This session's execution `executionId`, running or finished (while
   * retained); for an admin, any execution. Another session's (or
   * principal's) is undefined, exactly as an unknown id is.
   */
  get(executionId: string): Run | undefined {
    const exec = this.#deps.registry.get(executionId);
    if (exec === undefined || !this.#sees(exec)) return undefined;
    // Read or controlled: a detached run nobody is attached to is not abandoned.
    exec.feed.touch();
    return exec;
  }

  /**
   * {@linkcode get}, and for a run of another node (lib/cluster/) this
   * node's relay of it, made on first use and caught up with what its
   * stream holds, so `attach` and control work from any node.
   */
  async locate(executionId: string): Promise<Run | undefined> {
    const here = this.get(executionId);
    const cluster = this.#deps.cluster;
    if (here !== undefined || cluster === undefined) return here;
    const run = await cluster.follow(executionId, this.principal);
    if (run === undefined) return undefined;
    if (this.#deps.registry.get(executionId) !== undefined) {
      // Another request made a relay of it meanwhile.
      run.close();
      return this.get(executionId);
    }
    this.#deps.registry.adopt(run);
    run.run();
    await run.caughtUp;
    return run;
  }

  /** Runs of other nodes this session may see that no relay here follows (for `list`). */
  async elsewhere(): Promise<RemoteRunSummary[]> {
    const cluster = this.#deps.cluster;
    if (cluster === undefined) return [];
    const remote = await cluster.remoteRunning(this.principal);
    return remote.filter((r) => this.#deps.registry.get(r.meta.id) === undefined);
  }

  /**
   * This session's executions, running and finished (while retained),
   * oldest first; for an admin, every execution.
   */
  executions(): Run[] {
    return this.#deps.registry.list().filter((e) => this.#sees(e));
  }

  /** Whether this session may see and control `exec`: its principal's, or an admin's view. */
  #sees(exec: Run): boolean {
    return exec.principal === this.principal.id || this.principal.admin;
  }

  /**
   * Ends every execution of the session and waits until their process groups
   * are gone; then, if `close` is given, closes the connection. Idempotent.
   */
  async end(
    reason: "disconnect" | "shutdown",
    close?: { code: number; reason: string },
  ): Promise<void> {
    this.#closed = true;
    const attachments = [...this.#attachments.values()];
    this.#attachments.clear();
    const ending: Run[] = [];
    for (const [exec, sink] of this.#active) {
      // A detached run goes on without us (shutdown ends every run through the registry).
      if (exec.detached && reason === "disconnect") {
        if (sink !== null) exec.feed.unsubscribe(sink);
      } else {
        ending.push(exec);
      }
    }
    if (reason === "shutdown") {
      // Every run is being ended: clients attached to one still get its end.
      await Promise.all([
        ...ending.map((e) => e.cancel(reason)),
        ...attachments.map((a) => a.ended),
      ]);
    } else {
      // A client that held a run to its pace may come back to it: the run waits (`leave`).
      for (const attachment of attachments) {
        if (reason === "disconnect") attachment.leave();
        else attachment.detach();
      }
      await Promise.all(ending.map((e) => e.cancel(reason)));
    }
    if (close) this.#closeConnection(close.code, close.reason);
  }

  /** Closes the connection without waiting (idle expiry: nothing is running). */
  closeConnection(code: number, reason: string): void {
    this.#closeConnection(code, reason);
  }
}
