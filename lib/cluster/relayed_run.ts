/**
 * A run whose process is on another node, as this node's sessions see it:
 * the same output log, feed and lifecycle as a local {@linkcode Execution},
 * fed from the run's output stream (`XREAD BLOCK` on a connection of its
 * own), with PAUSE, CANCEL, signals and input sent to the owning node's
 * control stream. Its reads follow its feed's pace, as a local run's pipe
 * reads do; on the node that started it, the entries it has read are acked
 * to the owner, which holds the child back while they lag.
 *
 * @module
 */
import { NoProcessError } from "../errors.ts";
import { ExecutorError } from "../errors.ts";
import type { ClientSignal, Run } from "../core/run.ts";
import { RunFeed } from "../core/run_feed.ts";
import type { EndReason } from "../core/run_text.ts";
import { checkStdinRoom, type StdinWrite } from "../core/stdin_buffer.ts";
import { FramedChunk } from "../core/framed_chunk.ts";
import { OutputLog } from "../output/output_log.ts";
import type { Metrics } from "../ops/metrics.ts";
import { logger } from "../log.ts";
import type { ExecSpec, ExecState, ExecutionEvent, ExitInfo, HookOutcome } from "../types.ts";
import type { ClusterBus, StreamReader } from "./bus.ts";
import type { NodeRegistry } from "./node_registry.ts";
import { sendControl } from "./control.ts";
import {
  type ControlMessage,
  decodeOutputEntry,
  lostExit,
  type OutputEntry,
  type RunMeta,
} from "./relay_entry.ts";

const log = logger("cluster");

/** Entries read between acks to the owner. */
const ACK_EVERY = 16;

/** How long a read blocks before the reader looks around (owner alive?). */
const BLOCK_MS = 1000;

/** Owner not seen alive for this long, with nobody declaring the run lost: it is lost here. */
const LOST_AFTER_MS = 20_000;

/** Longest wait for a new relay to catch up before a request uses it. */
const CAUGHT_UP_WAIT_MS = 5000;

/** Entries asked for per read. */
const READ_COUNT = 32;

/** What a relayed run is made with. */
export interface RelayedRunOptions {
  meta: RunMeta;
  bus: ClusterBus;
  nodes: NodeRegistry;
  /** Its own connection for the blocking reads; released when the run is over. */
  reader: StreamReader;
  /** The stream id to read after ("0": from the start). */
  after: string;
  /** Entries of the stream already consumed before it was made. */
  consumed: number;
  /** Started here: its reads pace the owner, and its abandonment ends the run. */
  origin: boolean;
  /** The session that started it here, if any. */
  sessionId: string | null;
  /** Pre-execute hook outcomes already sent. */
  hooks?: HookOutcome[];
  /** Paused, as its node last said; absent: running. */
  paused?: boolean;
  detachTimeoutMs: number;
  outputRetention: number;
  metrics: Metrics;
}

interface PendingInput {
  write: { bytes: number; written: number; done: Promise<void> };
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * A run on another node, followed from here.
 *
 * @example What it reports before anything is read
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Run } from "../core/run.ts";
 * const isRelayed = (run: Run) => run.relayed;
 * assert.equal(typeof isRelayed, "function");
 * ```
 */
export class RelayedRun implements Run {
  readonly id: string;
  readonly sessionId: string | null;
  readonly principal: string;
  readonly spec: ExecSpec;
  readonly startedAt: number;
  readonly done: Promise<ExitInfo>;
  readonly ending: Promise<void>;
  readonly output: OutputLog;
  readonly feed: RunFeed;
  readonly hooks: HookOutcome[];
  readonly node: string;
  readonly relayed = true;
  readonly pid: number;
  readonly pgid: number;
  readonly #o: RelayedRunOptions;
  #state: ExecState = "running";
  #exit: ExitInfo | null = null;
  #resolveDone!: (exit: ExitInfo) => void;
  #resolveEnding!: () => void;
  #ran = false;
  #closed = false;
  #last: string;
  #consumed: number;
  #acked: number;
  readonly #bytes = { stdout: 0, stderr: 0 };
  #stdinOpen: boolean;
  #accepted = 0;
  #op = 0;
  readonly #inputs = new Map<number, PendingInput>();
  #ownerMissingSince: number | null = null;
  readonly #caughtUp = Promise.withResolvers<void>();
  /** The offset a stream being written from the run's log reaches once caught up. */
  #catchUpTo = 0;

  constructor(options: RelayedRunOptions) {
    const m = options.meta;
    this.#o = options;
    this.id = m.id;
    this.sessionId = options.sessionId;
    this.principal = m.principal;
    this.node = m.node;
    this.pid = m.pid;
    this.pgid = m.pgid;
    this.startedAt = m.startedAt;
    this.hooks = [...(options.hooks ?? [])];
    this.spec = {
      argv: m.argv,
      display: m.display,
      env: {},
      timeout: m.timeout,
      timeoutSource: m.timeoutSource,
      idleTimeout: m.idleTimeout,
      framing: m.framing,
      ...(m.cwd !== undefined ? { cwd: m.cwd } : {}),
      ...(m.limitClass !== undefined ? { limitClass: m.limitClass } : {}),
    };
    this.#stdinOpen = m.stdinOpen;
    if (options.paused === true) this.#state = "paused";
    if (m.nextSeq !== undefined) this.#catchUpTo = m.nextSeq;
    this.#last = options.after;
    this.#consumed = options.consumed;
    this.#acked = options.consumed;
    this.output = new OutputLog(options.outputRetention, options.metrics.outputMemory, m.id);
    this.feed = new RunFeed({
      detached: m.detached,
      detachTimeoutMs: options.detachTimeoutMs,
      abandoned: () => {
        // Only the node that started it decides it was abandoned.
        if (this.active && options.origin) void this.cancel("abandoned");
      },
    });
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
    this.ending = new Promise((resolve) => this.#resolveEnding = resolve);
  }

  /**
   * Resolves once the relay has read what the stream held when it started
   * (or within a few seconds, if Redis is slow to answer), so a replay from
   * an offset finds it.
   */
  get caughtUp(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((r) => timer = setTimeout(r, CAUGHT_UP_WAIT_MS));
    return Promise.race([this.#caughtUp.promise, late]).finally(() => clearTimeout(timer));
  }

  get state(): ExecState {
    return this.#state;
  }

  get active(): boolean {
    return this.#exit === null;
  }

  get exit(): ExitInfo | null {
    return this.#exit;
  }

  get phase(): "running" | "ended" {
    return this.active ? "running" : "ended";
  }

  get detached(): boolean {
    return this.feed.detached;
  }

  get attached(): boolean {
    return this.feed.attached > 0;
  }

  get durationSeconds(): number {
    return this.#exit?.executionTime ?? Math.round(Date.now() - this.startedAt) / 1000;
  }

  get stdinOpen(): boolean {
    return this.active && this.#stdinOpen;
  }

  get stdinAccepted(): number {
    return this.#accepted;
  }

  get stdinPending(): number {
    let n = 0;
    for (const p of this.#inputs.values()) n += p.write.bytes;
    return n;
  }

  get stdinBuffer(): number {
    return this.#o.meta.stdinBuffer;
  }

  get bytes(): { stdout: number; stderr: number } {
    return { ...this.#bytes };
  }

  /** The owner knows; a relay cannot tell an idle limit from a time limit. */
  get idleExpired(): boolean {
    return false;
  }

  recordHook(outcome: HookOutcome, emit = true): void {
    this.hooks.push(outcome);
    if (emit) this.#emit({ type: "hook", executionId: this.id, outcome });
  }

  /** The owner announces changes through the stream; every relay passes them on. */
  announce(_type: "paused" | "resumed" | "canceled"): void {}

  signal(name: ClientSignal): void {
    if (!this.active) throw new NoProcessError();
    this.#control({ t: "signal", id: this.id, signal: name });
  }

  run(): void {
    if (this.#ran) return;
    this.#ran = true;
    void this.#pump();
  }

  /**
   * Sends PAUSE to the run's node, whatever this relay last heard: its node
   * knows the run's state, and a change there is announced to every
   * follower through the stream.
   */
  pause(): boolean {
    if (!this.active || this.#state === "terminating") throw new NoProcessError();
    this.#control({ t: "pause", id: this.id });
    this.#state = "paused";
    return true;
  }

  /** Sends RESUME to the run's node, as {@linkcode pause} does. */
  resume(): boolean {
    if (!this.active || this.#state === "terminating") throw new NoProcessError();
    this.#control({ t: "resume", id: this.id });
    this.#state = "running";
    return true;
  }

  cancel(reason: EndReason = "canceled"): Promise<ExitInfo> {
    if (!this.active) {
      if (reason === "canceled") throw new NoProcessError();
      return this.done;
    }
    if (reason === "shutdown") return Promise.resolve(this.#leave());
    this.run();
    if (this.#state !== "terminating") {
      // Its node ends it for the same reason (a time limit or loss is the node's own to find).
      if (reason === "canceled" || reason === "disconnect" || reason === "abandoned") {
        this.#control({ t: "cancel", id: this.id, reason });
      }
      this.#state = "terminating";
      this.feed.releaseHolds();
      this.#resolveEnding();
    }
    return this.done;
  }

  /**
   * This node shuts down: it stops following the run, which goes on on its
   * node unless it needed its client (not detached). What this node's
   * followers are told is how it ended for them.
   */
  #leave(): ExitInfo {
    if (!this.detached && this.#o.bus.ready) {
      this.#send({ t: "cancel", id: this.id, reason: "disconnect" }).catch(() => {});
    }
    this.close();
    return {
      status: "canceled",
      exitCode: null,
      signal: null,
      error: `Server shutting down: this node stopped following the run on node ${this.node}`,
      executionTime: this.durationSeconds,
    };
  }

  queueInput(input: string | Uint8Array, close = false): StdinWrite {
    if (!this.active) throw new NoProcessError();
    if (!this.#stdinOpen) throw new NoProcessError("stdin is not open");
    const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
    // Bounded here too: input its node has not confirmed counts as pending.
    checkStdinRoom(this.stdinPending, bytes.length, this.stdinBuffer);
    const op = ++this.#op;
    this.#control({ t: "input", id: this.id, op, data: bytes.toBase64(), close });
    this.#accepted += bytes.length;
    if (close) this.#stdinOpen = false;
    const { promise: done, resolve, reject } = Promise.withResolvers<void>();
    // Nobody need wait for it: an input whose caller has answered already may still fail.
    done.catch(() => {});
    const write = { bytes: bytes.length, written: 0, done };
    this.#inputs.set(op, { write, resolve, reject });
    return write;
  }

  async writeInput(text: string | Uint8Array, close = false): Promise<number> {
    const write = this.queueInput(text, close);
    await write.done;
    return write.bytes;
  }

  kill(): void {
    if (this.active) this.#control({ t: "signal", id: this.id, signal: "KILL" });
  }

  /** Stops following (this node shuts down): the run goes on on its node. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#o.origin && this.active && this.#o.bus.ready) {
      // The owner must not wait for acks that will never come.
      this.#send({ t: "release", id: this.id }).catch(() => {});
    }
    this.#o.bus.release(this.#o.reader);
  }

  /** Sends a control message to the owner; throws at once when Redis is away. */
  #control(message: ControlMessage): void {
    this.#o.bus.check();
    this.#send(message).catch((err) => {
      log.warning("Control of {execution_id} not sent to {node}: {error}", {
        execution_id: this.id,
        node: this.node,
        error: String(err),
      });
    });
  }

  #send(message: ControlMessage): Promise<void> {
    return sendControl(this.#o.bus, this.node, message);
  }

  async #pump(): Promise<void> {
    const key = this.#o.bus.keys.output(this.id);
    let delay = 100;
    while (!this.#closed && !this.#fin) {
      if (this.#exit === null) await this.feed.ready();
      if (this.#closed) break;
      let entries;
      try {
        // A relay that has not caught up yet does not wait: there is more to read.
        entries = await this.#o.reader.read(key, this.#last, BLOCK_MS, READ_COUNT);
        delay = 100;
      } catch {
        if (this.#closed) break;
        // Redis is away: the run goes on on its node; read on once it is back.
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(2000, delay * 2);
        continue;
      }
      // Caught up once it has read something (a stream its node only starts now is empty at
      // first) and, for a stream written from the run's log, all the log held then.
      if (
        entries.length < READ_COUNT && this.#consumed > 0 && this.output.next >= this.#catchUpTo
      ) this.#caughtUp.resolve();
      if (entries.length === 0) {
        await this.#ack(true);
        await this.#lookAround();
        continue;
      }
      this.#ownerMissingSince = null;
      for (const entry of entries) {
        this.#last = entry.id;
        this.#consumed++;
        const decoded = decodeOutputEntry(entry);
        if (decoded !== null) this.#apply(decoded);
        if (this.#fin) break;
      }
      await this.#ack(entries.length < READ_COUNT);
    }
    this.#caughtUp.resolve();
    this.#finishFeed();
  }

  #fin = false;

  /** Tells the owner how far this relay has read (only the origin paces it). */
  async #ack(caughtUp: boolean): Promise<void> {
    if (!this.#o.origin || this.#exit !== null) return;
    if (this.#consumed === this.#acked) return;
    if (!caughtUp && this.#consumed - this.#acked < ACK_EVERY) return;
    this.#acked = this.#consumed;
    await this.#send({ t: "ack", id: this.id, n: this.#consumed }).catch(() => {});
  }

  /** Nothing to read: is the owner still there? A run nobody will end is ended here, as lost. */
  async #lookAround(): Promise<void> {
    if (this.#exit !== null) return;
    let alive: boolean;
    try {
      alive = await this.#o.nodes.alive(this.node);
    } catch {
      return; // Redis is away: that says nothing about the owner.
    }
    if (alive) {
      this.#ownerMissingSince = null;
      return;
    }
    const now = Date.now();
    this.#ownerMissingSince ??= now;
    if (now - this.#ownerMissingSince < LOST_AFTER_MS) return;
    const error = `Lost: node ${this.node} stopped answering while it ran; it was not run again`;
    const marked = await this.#o.nodes.markLost(this.id, error).catch(() => null);
    // Redis no longer knows the run (it lost its data): nobody else will end it.
    if (marked === -1) {
      this.#end(lostExit(error, this.durationSeconds));
      this.#fin = true;
    }
  }

  #apply(entry: OutputEntry): void {
    switch (entry.t) {
      case "started":
        this.#emit({ type: "started", executionId: this.id, pid: this.pid, pgid: this.pgid });
        return;
      case "out": {
        const out = entry.out;
        if (out.seq < this.output.next) return; // read already (a stream written again)
        // Trimmed from the stream before this relay read it: followers see the gap in the log.
        if (out.seq > this.output.next) this.output.skipTo(out.seq);
        // The relay's bytes are its own, never reused: the chunk needs no sealing.
        const chunk = new FramedChunk(out.stream, out.seq, out, this.#o.metrics);
        this.#bytes[out.stream] += chunk.bytes;
        this.output.append(chunk, out.bytes);
        if (!this.feed.gone()) this.#emit({ type: "output", executionId: this.id, chunk });
        return;
      }
      case "paused":
      case "resumed":
      case "canceled":
        if (entry.t === "paused" && this.#state === "running") this.#state = "paused";
        if (entry.t === "resumed" && this.#state === "paused") this.#state = "running";
        if (entry.t === "canceled" && this.active) {
          this.#state = "terminating";
          this.feed.releaseHolds();
          this.#resolveEnding();
        }
        this.#emit({ type: entry.t, executionId: this.id, pid: this.pid, pgid: this.pgid });
        return;
      case "hook":
        this.recordHook(entry.outcome);
        return;
      case "inp": {
        if (!entry.open) this.#stdinOpen = false;
        const pending = this.#inputs.get(entry.op);
        if (pending === undefined) return;
        this.#inputs.delete(entry.op);
        if (entry.error !== undefined) {
          const e = entry.error;
          // Refused whole, as a local run refuses it: it was never accepted.
          this.#accepted -= pending.write.bytes;
          pending.reject(new ExecutorError(e.code, e.message, { data: e.data }));
        } else {
          pending.write.written = pending.write.bytes;
          pending.resolve();
        }
        return;
      }
      case "end":
        this.#end(entry.exit);
        return;
      case "fin":
        this.#fin = true;
        return;
      case "start":
        // A stream written from the run's log on demand says where that log ended.
        if (entry.meta.nextSeq !== undefined) {
          this.#catchUpTo = Math.max(this.#catchUpTo, entry.meta.nextSeq);
        }
        return;
      case "err":
        return;
    }
  }

  #end(exit: ExitInfo): void {
    if (this.#exit !== null) return;
    this.#exit = exit;
    this.#state = exit.status;
    this.#stdinOpen = false;
    for (const p of this.#inputs.values()) p.reject(new NoProcessError());
    this.#inputs.clear();
    this.output.finish();
    this.#o.metrics.executionsByStatus[exit.status]++;
    this.#emit({ type: "completed", executionId: this.id, pid: this.pid, pgid: this.pgid, exit });
    this.feed.close();
    this.#resolveEnding();
    this.#resolveDone(exit);
  }

  /** Nothing more comes: followers are let go (after the hooks that follow the end). */
  #finishFeed(): void {
    if (this.#exit === null) {
      // Closed before the end (shutdown): the run goes on elsewhere; nobody here follows it.
      this.feed.clear();
      return;
    }
    this.feed.clear();
    if (!this.#closed) this.close();
  }

  #emit(event: ExecutionEvent): void {
    this.feed.emit(event);
  }
}
