/**
 * The CC Executor protocol (PROTOCOL.md part 1 and the part 2 extensions):
 * a method table that drives a {@linkcode Session}, and the encoding of
 * execution events as `process.*` notifications.
 *
 * @module
 */
import type { z } from "zod";
import { hookFields } from "../../ops/hooks.ts";
import { ErrorCode, ExecutorError, InvalidParamsError, NoProcessError } from "../../errors.ts";
import type { ExecRequestConfig } from "../../session/exec_request.ts";
import { CreditWindow } from "./credit_window.ts";
import {
  AckParams,
  AttachParams,
  ControlParams,
  controlSignal,
  EstimateParams,
  HistoryParams,
  InputParams,
  LegacyExecuteParams,
  ListParams,
  parseParams,
} from "../../session/exec_params.ts";
import { type Logger, logger, sessionFields } from "../../log.ts";
import { truncateText } from "../../output/text_truncate.ts";
import type { Session, SessionServices } from "../../session/session.ts";
import type { Run } from "../../core/run.ts";
import type { Sink } from "../../core/sink.ts";
import type { RemoteRunSummary } from "../../cluster/cluster.ts";
import type { SocketWriter } from "../../core/socket_writer.ts";
import type { ExecutionEvent } from "../../types.ts";
import {
  classifyMessage,
  encodeError,
  encodeNotification,
  encodeResult,
  type JsonRpcId,
  parseJson,
  toErrorObject,
} from "../jsonrpc.ts";

/** Version reported in `connected` and `/health`. */
export const PROTOCOL_VERSION = "1.0.0";

/** What a method handler returns: the result, and what to do once it is sent. */
interface Handled {
  result: unknown;
  /** Runs right after the result is sent (notifications that must follow it). */
  after?: () => void;
  /**
   * The reply comes later, without holding the next messages back: `result`
   * is then ignored and this is sent (or its error) once it settles.
   */
  later?: Promise<unknown>;
}

/**
 * A method. Synchronous handlers (control) reply before anything else can
 * run, so no `process.completed` can slip in between a change and its reply.
 */
type Handler = (
  params: unknown,
  receivedAt: number,
) => Handled | null | Promise<Handled | null>;

const log = logger("legacy");

/** Methods whose reply may be large or whose effect is a stream of messages. */
const HEAVY = new Set(["attach", "list", "history", "estimate", "hook_status"]);

/** Longest command text in a `list` entry, in characters (cut on a code point boundary). */
const LIST_COMMAND_CHARS = 1000;

/**
 * Encodes one execution event as its `process.*` notification.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeEvent } from "./legacy.ts";
 * const text = encodeEvent({ type: "started", executionId: "e1", pid: 7, pgid: 7 });
 * assert.deepEqual(JSON.parse(text), { jsonrpc: "2.0", method: "process.started", params:
 *   { status: "started", pid: 7, pgid: 7, exit_code: null, error: null, execution_id: "e1" } });
 * ```
 */
export function encodeEvent(event: ExecutionEvent, base64 = false, node?: string): string {
  const executionId = event.executionId;
  // Every process.* notification names the node that runs it, in a multi-node deployment.
  const notify = (method: string, params: Record<string, unknown>) =>
    encodeNotification(method, node === undefined ? params : { ...params, node });
  switch (event.type) {
    case "started":
      return notify("process.started", {
        status: "started",
        pid: event.pid,
        pgid: event.pgid,
        exit_code: null,
        error: null,
        execution_id: executionId,
      });
    case "output": {
      const c = event.chunk;
      return notify("process.output", {
        type: c.stream,
        // As bytes, for a client that asked: the text would have U+FFFD for invalid UTF-8.
        ...(base64
          ? { data: (c.raw?.() ?? new TextEncoder().encode(c.data)).toBase64(), encoding: "base64" }
          : { data: c.data }),
        truncated: c.truncated,
        chunk_index: c.chunkIndex,
        total_chunks: c.totalChunks,
        execution_id: executionId,
        seq: c.seq,
        // Bytes the child wrote: `data`'s length differs where invalid UTF-8 became U+FFFD.
        bytes: c.bytes,
      });
    }
    case "paused":
    case "resumed":
    case "canceled":
      return notify(`process.${event.type}`, {
        status: event.type,
        pid: event.pid,
        pgid: event.pgid,
        execution_id: executionId,
      });
    case "hook": {
      const o = event.outcome;
      // A hook that failed is a warning: it blocks nothing unless marked required.
      return encodeNotification(o.ok ? "hook.completed" : "hook.warning", {
        ...hookFields(o),
        execution_id: executionId,
      });
    }
    case "gap":
      return notify("process.gap", {
        execution_id: executionId,
        from: event.from,
        to: event.to,
      });
    case "completed": {
      const x = event.exit;
      return notify("process.completed", {
        status: x.status,
        pid: event.pid,
        pgid: event.pgid,
        exit_code: x.exitCode,
        ...(x.signal !== null ? { signal: x.signal } : {}),
        error: x.error,
        execution_time: x.executionTime,
        execution_id: executionId,
      });
    }
  }
}

/**
 * One `list` entry (PROTOCOL.md part 3).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listEntry } from "./legacy.ts";
 * import { Execution } from "../../core/execution.ts";
 * import { Metrics } from "../../ops/metrics.ts";
 * const exec = Execution.spawn({
 *   id: "demo", sessionId: null, metrics: new Metrics(), detached: true,
 *   sink: { emit: () => {}, ready: () => Promise.resolve() },
 *   spec: { argv: ["true"], display: "true", env: { PATH: "/usr/bin:/bin" },
 *     timeout: 10, timeoutSource: "request", idleTimeout: null, framing: "chunk" },
 *   limits: { chunkSize: 65536, lineLimit: 65536, flushIntervalMs: 5, killGraceMs: 1000,
 *     orphanGraceMs: 500, outputRetention: 65536 },
 * });
 * exec.run();
 * await exec.done;
 * const entry = listEntry(exec);
 * assert.equal(entry.state, "ended");
 * assert.equal(entry.status, "completed");
 * assert.equal(entry.detached, true);
 * assert.equal(entry.node, null);
 * ```
 */
export function listEntry(exec: Run): Record<string, unknown> {
  const x = exec.exit;
  return {
    execution_id: exec.id,
    command: truncateText(exec.spec.display, LIST_COMMAND_CHARS),
    state: exec.phase,
    status: exec.state,
    pid: exec.pid,
    pgid: exec.pgid,
    started_at: new Date(exec.startedAt).toISOString(),
    duration_s: exec.durationSeconds,
    exit_code: x?.exitCode ?? null,
    signal: x?.signal ?? null,
    detached: exec.detached,
    attached: exec.attached,
    node: exec.node,
    principal: exec.principal,
    oldest_seq: exec.output.first,
    next_seq: exec.output.next,
  };
}

/** A `list` entry of a run of another node that no relay here follows. */
function remoteEntry({ meta, state }: RemoteRunSummary): Record<string, unknown> {
  return {
    execution_id: meta.id,
    command: truncateText(meta.display, LIST_COMMAND_CHARS),
    state: "running",
    status: state === "running" ? "running" : state,
    pid: meta.pid,
    pgid: meta.pgid,
    started_at: new Date(meta.startedAt).toISOString(),
    duration_s: Math.round(Date.now() - meta.startedAt) / 1000,
    exit_code: null,
    signal: null,
    detached: meta.detached,
    attached: false,
    node: meta.node,
    principal: meta.principal,
    oldest_seq: null,
    next_seq: null,
  };
}

/** Settings the protocol reports or applies. */
export type LegacyConfig = ExecRequestConfig;

/**
 * One session's legacy protocol endpoint. Messages are handled one at a time,
 * in arrival order, so `execute` followed at once by `control` acts on the
 * run the `execute` started.
 */
export class LegacyProtocol {
  readonly #session: Session;
  /** Every line names the session and its principal. */
  readonly #log: Logger;
  readonly #writer: SocketWriter;
  readonly #services: SessionServices;
  /** Every run's events: each names its run. */
  readonly #sink: Sink;
  readonly #handlers: Record<string, Handler>;
  #queue: Promise<void> = Promise.resolve();
  /** Runs whose output this client asked for as bytes (`encoding: "base64"`). */
  readonly #base64 = new Set<string>();
  /** Runs this client holds to its pace (`window`), by id. */
  readonly #windows = new Map<string, CreditWindow>();
  /** The node of each run this client follows, in a multi-node deployment. */
  readonly #nodes = new Map<string, string>();

  /** Binds the protocol to a session and its socket. */
  constructor(session: Session, writer: SocketWriter, services: SessionServices) {
    this.#session = session;
    this.#log = log.with(sessionFields(session));
    this.#writer = writer;
    this.#services = services;
    this.#sink = {
      // Encoded (and its output decoded) only while the client is there to get it.
      emit: (event) => {
        const base64 = this.#base64.has(event.executionId);
        const node = this.#nodes.get(event.executionId);
        writer.send(() => encodeEvent(event, base64, node));
        if (event.type === "completed") {
          this.#base64.delete(event.executionId);
          this.#windows.delete(event.executionId);
          this.#nodes.delete(event.executionId);
        }
      },
      ready: () => writer.ready(),
      gone: () => writer.closed,
      busy: () => writer.busy,
    };
    this.#handlers = {
      execute: (p, t) => this.#execute(p, t),
      control: (p) => this.#control(p),
      attach: (p) => this.#attach(p),
      input: (p) => this.#input(p),
      ack: (p) => this.#ack(p),
      list: (p) => this.#list(p),
      hook_status: () => ({ result: this.#services.hooks.status() }),
      estimate: (p) => this.#estimate(p),
      history: (p) => this.#history(p),
      ping: () => ({ result: {} }),
      pong: () => null,
    };
  }

  /** The first message of every session. */
  connectedMessage(): string {
    return encodeNotification("connected", {
      session_id: this.#session.id,
      version: PROTOCOL_VERSION,
      capabilities: ["execute", "control", "stream"],
    });
  }

  /** A keep-alive `ping` notification (clients need not answer). */
  pingMessage(): string {
    return encodeNotification("ping", { timestamp: Date.now() / 1000 });
  }

  /** Sends an error without an id (e.g. a refused binary frame). */
  sendError(code: number, message: string): void {
    this.#writer.send(encodeError(null, { code, message, data: null }));
  }

  /** Handles one text frame. Never throws; every failure becomes an error reply. */
  handle(text: string): void {
    this.receive(parseJson(text));
  }

  /** Handles one frame already parsed by {@linkcode parseJson}. */
  receive(value: unknown): void {
    const receivedAt = performance.now();
    this.#session.touch();
    this.#queue = this.#queue.then(() => this.#dispatch(value, receivedAt));
  }

  async #dispatch(value: unknown, receivedAt: number): Promise<void> {
    const msg = classifyMessage(value);
    if (msg.kind === "invalid") {
      this.#writer.send(encodeError(msg.id, toErrorObject(msg.error)));
      return;
    }
    const id: JsonRpcId | undefined = msg.kind === "request" ? msg.id : undefined;
    try {
      const handler = Object.hasOwn(this.#handlers, msg.method)
        ? this.#handlers[msg.method]
        : undefined;
      if (handler === undefined) {
        throw new ExecutorError(ErrorCode.MethodNotFound, `Unknown method: ${msg.method}`);
      }
      // A reply that may be large waits until the client takes what is queued:
      // a client that never reads cannot pile them up in the server.
      if (HEAVY.has(msg.method)) await this.#writer.ready();
      const pending = handler(msg.params, receivedAt);
      const handled = pending instanceof Promise ? await pending : pending;
      if (handled === null) return;
      if (handled.later !== undefined) {
        void handled.later.then(
          (result) => id !== undefined && this.#writer.send(encodeResult(id, result)),
          (err) => id !== undefined && this.#writer.send(encodeError(id, toErrorObject(err))),
        );
        return;
      }
      if (id !== undefined) this.#writer.send(encodeResult(id, handled.result));
      handled.after?.();
    } catch (err) {
      if (!(err instanceof ExecutorError)) {
        this.#log.error("Unexpected error in {method}: {error}", {
          method: msg.method,
          error: err,
        });
      }
      // A notification is never answered, not even with an error.
      if (id !== undefined) this.#writer.send(encodeError(id, toErrorObject(err)));
    }
  }

  async #execute(params: unknown, receivedAt: number): Promise<Handled> {
    const { encoding, window, hold, ...request } = parseParams(LegacyExecuteParams, params);
    const credit = window === undefined ? undefined : new CreditWindow(this.#sink, window, 0);
    const { exec, run } = await this.#session.execute(
      { ...request, ...(credit && hold === true ? { paced: true } : {}) },
      credit ?? this.#sink,
      receivedAt,
    );
    if (encoding === "base64") this.#base64.add(exec.id);
    if (exec.node !== null) this.#nodes.set(exec.id, exec.node);
    if (credit !== undefined) this.#keepWindow(exec, credit);
    return {
      result: {
        status: "started",
        pid: exec.pid,
        pgid: exec.pgid,
        execution_id: exec.id,
        timeout: exec.spec.timeout,
        timeout_source: exec.spec.timeoutSource,
        ...(exec.detached ? { detached: true } : {}),
        ...(exec.node !== null ? { node: exec.node } : {}),
      },
      after: run,
    };
  }

  /** `attach`: replay from `from_seq`, then follow live (PROTOCOL.md part 3). */
  async #attach(params: unknown): Promise<Handled> {
    const p = parseParams(AttachParams, params);
    let from = p.from_seq;
    // A run of another node is followed through a relay made here.
    const located = await this.#session.locate(p.execution_id);
    if (p.tail_bytes !== undefined) {
      const log = located?.output;
      // A tail is "the last bytes there are": never a gap before them.
      if (log !== undefined) from = Math.max(log.first, log.next - p.tail_bytes);
    }
    const credit = p.window === undefined
      ? undefined
      : new CreditWindow(this.#sink, p.window, from ?? 0);
    const attachment = this.#session.attach(
      p.execution_id,
      credit ?? this.#sink,
      from,
      { paced: credit !== undefined && p.hold === true },
    );
    const exec = attachment.exec;
    if (p.encoding === "base64") this.#base64.add(exec.id);
    else this.#base64.delete(exec.id);
    this.#windows.get(exec.id)?.release();
    if (credit !== undefined) this.#keepWindow(exec, credit);
    else this.#windows.delete(exec.id);
    if (exec.node !== null) this.#nodes.set(exec.id, exec.node);
    return {
      result: {
        status: "attached",
        execution_id: exec.id,
        state: exec.phase,
        run_status: exec.state,
        from_seq: attachment.from,
        next_seq: exec.output.next,
        oldest_seq: exec.output.first,
        started_at: new Date(exec.startedAt).toISOString(),
        timeout: exec.spec.timeout,
        timeout_source: exec.spec.timeoutSource,
        ...(exec.node !== null ? { node: exec.node } : {}),
      },
      after: () => void attachment.start(),
    };
  }

  /**
   * `input`: bytes for the stdin of a run started with `stdin_open`. Queued
   * in arrival order at once; the reply comes when the child has taken them,
   * without holding back the messages after it (a CANCEL must get through
   * while a child does not read). With `offset`, bytes already accepted are
   * skipped, so a client that lost its connection may send again.
   */
  #input(params: unknown): Handled | Promise<Handled> {
    const p = parseParams(InputParams, params);
    if (this.#session.get(p.execution_id) === undefined) {
      return this.#session.locate(p.execution_id).then(() => this.#inputNow(p));
    }
    return this.#inputNow(p);
  }

  #inputNow(p: z.infer<typeof InputParams>): Handled {
    const exec = this.#session.get(p.execution_id);
    if (exec === undefined) throw new NoProcessError(`No execution with id ${p.execution_id}`);
    let data: Uint8Array;
    try {
      data = p.data_base64 !== undefined
        ? Uint8Array.fromBase64(p.data_base64)
        : new TextEncoder().encode(p.data ?? "");
    } catch {
      throw new InvalidParamsError("Invalid params", {
        data: { field: "data_base64", reason: "not valid base64" },
      });
    }
    if (!exec.active) throw new NoProcessError(`Run ${exec.id} has ended`);
    if (p.offset !== undefined) {
      const accepted = exec.stdinAccepted;
      if (p.offset > accepted) {
        throw new InvalidParamsError("Invalid params", {
          data: {
            field: "offset",
            reason: `past the input accepted so far: ${accepted} bytes`,
            accepted,
          },
        });
      }
      data = data.subarray(Math.min(data.length, accepted - p.offset));
    }
    const write = exec.queueInput(data, p.close === true);
    return {
      result: null,
      later: write.done.then(() => ({
        bytes_written: write.bytes,
        accepted: exec.stdinAccepted,
        stdin_open: exec.stdinOpen,
      })),
    };
  }

  /** Keeps `credit` for `exec`'s acks, until the run is ending or the socket has gone. */
  #keepWindow(exec: Run, credit: CreditWindow): void {
    // Pacing must never keep a run from ending, nor wait for a client that has gone.
    credit.until(Promise.race([exec.ending, this.#writer.gone]));
    this.#windows.set(exec.id, credit);
  }

  /** `ack`: the client has consumed a run's output up to `seq` (see `window`); never answered but on error. */
  #ack(params: unknown): Handled | null {
    const p = parseParams(AckParams, params);
    this.#windows.get(p.execution_id)?.ack(p.seq);
    return { result: {} };
  }

  /** `list`: the principal's newest `limit` executions (an admin's: anyone's), oldest first. */
  async #list(params: unknown): Promise<Handled> {
    const p = parseParams(ListParams, params);
    const here = this.#session.executions()
      .filter((e) => p.state === "all" || p.state === e.phase)
      .map(listEntry);
    // Runs of other nodes no relay here follows: running ones (ended ones are in `history`).
    const elsewhere = p.state === "ended" ? [] : (await this.#session.elsewhere()).map(remoteEntry);
    const all = [...here, ...elsewhere]
      .sort((a, b) => String(a.started_at).localeCompare(String(b.started_at)));
    return { result: { executions: all.slice(-p.limit), total: all.length } };
  }

  #control(params: unknown): Handled | Promise<Handled> {
    const p = parseParams(ControlParams, params);
    // Synchronous for a run known here: nothing can slip in between a change and its reply.
    if (p.execution_id !== undefined && this.#session.get(p.execution_id) === undefined) {
      return this.#session.locate(p.execution_id).then(() => this.#controlNow(p));
    }
    return this.#controlNow(p);
  }

  #controlNow(p: ControlParams): Handled {
    const exec = this.#session.find(p.execution_id);
    switch (p.type) {
      case "PAUSE": {
        const changed = exec.pause();
        return {
          result: { status: "paused" },
          after: changed ? () => this.#announce(exec, "paused") : undefined,
        };
      }
      case "RESUME": {
        const changed = exec.resume();
        return {
          result: { status: "resumed" },
          after: changed ? () => this.#announce(exec, "resumed") : undefined,
        };
      }
      case "CANCEL": {
        // A second CANCEL while the first ends the group is answered, not announced again.
        const first = exec.state !== "terminating";
        void exec.cancel("canceled");
        return {
          result: { status: "canceled" },
          after: first ? () => this.#announce(exec, "canceled") : undefined,
        };
      }
      case "INTERRUPT":
      case "SIGNAL": {
        const signal = controlSignal(p)!;
        exec.signal(signal);
        return {
          result: p.type === "INTERRUPT"
            ? { status: "interrupted" }
            : { status: "signaled", signal: `SIG${signal}` },
        };
      }
    }
  }

  /** `estimate`: the time limit a command would get, and why; runs nothing. */
  async #estimate(params: unknown): Promise<Handled> {
    const p = parseParams(EstimateParams, params);
    const e = await this.#services.timeLimits.estimate(p.args ?? p.command!);
    return { result: { timeout: e.timeout_s, timeout_source: e.source, reasoning: e.reasoning } };
  }

  /**
   * `history`: records of the principal's finished runs (an admin's: all),
   * newest first.
   *
   * @throws {StoreDownError} (code -32004) while the store cannot be reached.
   */
  async #history(params: unknown): Promise<Handled> {
    const p = parseParams(HistoryParams, params);
    const principal = this.#session.principal;
    const records = await this.#services.timeLimits.records({
      limit: p.limit,
      ...(p.class !== undefined ? { class: p.class } : {}),
      ...(principal.admin ? {} : { principal: principal.id }),
    });
    return { result: { records } };
  }

  /**
   * The notification of a control request, sent after its reply to everyone
   * following the run, and to this client even when it does not follow it.
   */
  #announce(exec: Run, type: "paused" | "resumed" | "canceled"): void {
    exec.announce(type);
    if (this.#session.watches(exec)) return;
    const event = { type, executionId: exec.id, pid: exec.pid, pgid: exec.pgid };
    this.#writer.send(() => encodeEvent(event));
  }
}
