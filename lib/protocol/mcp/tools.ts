/**
 * The MCP tools' handlers: `execute`, `start`, `read_output`, `send_input`,
 * `control`, `estimate_timeout` and `list_executions`, mapped onto a
 * {@linkcode Session}. Their schemas and descriptions are in
 * `tool_schemas.ts`, their results are rendered by `tool_render.ts`.
 * Independent of the transport.
 *
 * Tool-level failures (bad arguments, no such execution, a refused command)
 * are tool results with `isError: true`, as the 2025-11-25 spec asks, so the
 * model sees the reason and can correct itself; only an unknown tool is a
 * JSON-RPC error.
 *
 * @module
 */
import type { z } from "zod";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types";
import {
  BusyError,
  ErrorCode,
  ExecutorError,
  InvalidParamsError,
  NoProcessError,
} from "../../errors.ts";
import { controlSignal, EstimateParams, parseParams } from "../../session/exec_params.ts";
import { abortable, resolvesWithin } from "../../async.ts";
import { explainEstimate } from "../../timing/explain.ts";
import type { ExecRequestConfig } from "../../session/exec_request.ts";
import type { Run } from "../../core/run.ts";
import { utf8Length } from "../../utf8.ts";
import type { Session, SessionServices, Spawned } from "../../session/session.ts";
import type { ExitInfo, HookOutcome } from "../../types.ts";
import { RunWatchers } from "./run_watchers.ts";
import {
  PROGRESS_DEFAULTS,
  type ProgressOptions,
  ProgressReporter,
  type SendProgress,
} from "./progress.ts";
import {
  argNames,
  ControlTool,
  DEFAULT_SEND_WAIT_S,
  type DescribeConfig,
  describeTools,
  ExecuteTool,
  ListTool,
  ReadOutputTool,
  RunParams,
  SendInputTool,
  type ToolName,
} from "./tool_schemas.ts";
import { checkArgNames } from "./tool_args.ts";
import {
  errorResult,
  listResult,
  outcome,
  pageResult,
  result,
  runResult,
  startResult,
  summaryResult,
} from "./tool_render.ts";

export { errorResult };

/** Settings the tools apply or describe (those the descriptions quote are the ones they apply). */
export type McpToolsConfig = ExecRequestConfig & DescribeConfig;

/** The abort reason of a call the client cancelled (`notifications/cancelled`). */
export const CLIENT_CANCELLED = "cancelled by the client";

/** One `tools/call` in progress. */
export interface ToolCall {
  /**
   * Aborted when the call ends early: with {@linkcode CLIENT_CANCELLED} when
   * the client cancels it (an `execute` then ends its run), otherwise because
   * the connection closed (the session ends its runs itself).
   */
  signal: AbortSignal;
  /** Sends `notifications/progress` when the caller gave a progress token, else null. */
  progress: SendProgress | null;
}

/** What the tools need from the protocol around them. */
export interface ToolHooks {
  /** Resolves when the client's connection can take more (back-pressure). */
  ready(): Promise<void>;
  /** A run of this session ended (for `notifications/message`). */
  ended(exec: Run, exit: ExitInfo): void;
  /** A hook of a run of this session finished (for `notifications/message`). */
  hook(executionId: string, outcome: HookOutcome): void;
  /** Pace of progress notifications; default {@linkcode PROGRESS_DEFAULTS}. */
  progress?: ProgressOptions;
}

/**
 * One MCP session's tools.
 *
 * @example List the tools
 * ```ts
 * import assert from "node:assert/strict";
 * import { McpTools } from "./tools.ts";
 * import { Session } from "../../session/session.ts";
 * import { ExecutionRegistry } from "../../core/execution_registry.ts";
 * import { Metrics } from "../../ops/metrics.ts";
 * import { loadConfig } from "../../config/config.ts";
 * import { HookRunner } from "../../ops/hooks.ts";
 * import { createStore } from "../../store/store.ts";
 * import { TimeLimits } from "../../timing/time_limits.ts";
 * import { DEFAULT_TIMEOUTS_S } from "../../timing/estimate.ts";
 * const config = loadConfig({ getEnv: () => undefined });
 * const store = await createStore({ ephemeral: true });
 * const services = { hooks: HookRunner.none(),
 *   timeLimits: new TimeLimits(store, { multiplier: () => 1 }, { ...DEFAULT_TIMEOUTS_S }) };
 * const session = new Session({
 *   registry: new ExecutionRegistry({ retentionSeconds: 60, maxRetained: 10 }),
 *   metrics: new Metrics(), config, ...services }, () => {});
 * const tools = new McpTools(session, config, services,
 *   { ready: () => Promise.resolve(), ended: () => {}, hook: () => {} });
 * const names = tools.list().map((t) => t.name);
 * assert.deepEqual(names,
 *   ["execute", "start", "read_output", "send_input", "control", "estimate_timeout",
 *     "list_executions"]);
 * await store.close();
 * ```
 */
export class McpTools {
  readonly #session: Session;
  readonly #config: McpToolsConfig;
  readonly #hooks: ToolHooks;
  readonly #progress: ProgressOptions;
  /** Listeners of each running execution's events (removed when it completes). */
  readonly #watchers: RunWatchers;
  readonly #timeLimits: SessionServices["timeLimits"];
  readonly #tools: Tool[];
  readonly #handlers: Record<ToolName, (args: unknown, call: ToolCall) => Promise<CallToolResult>>;

  /** Binds the tools to a session. */
  constructor(
    session: Session,
    config: McpToolsConfig,
    services: Pick<SessionServices, "timeLimits">,
    hooks: ToolHooks,
  ) {
    this.#session = session;
    this.#timeLimits = services.timeLimits;
    this.#watchers = new RunWatchers({
      ended: (id, exit) => {
        const exec = session.get(id);
        if (exec !== undefined) hooks.ended(exec, exit);
      },
      hook: (id, outcome) => hooks.hook(id, outcome),
      ready: () => hooks.ready(),
    });
    this.#config = config;
    this.#hooks = hooks;
    this.#progress = hooks.progress ?? PROGRESS_DEFAULTS;
    this.#handlers = {
      execute: (a, c) => this.#execute(a, c),
      start: (a) => this.#start(a),
      read_output: (a, c) => this.#readOutput(a, c),
      send_input: (a, c) => this.#sendInput(a, c),
      control: (a) => this.#control(a),
      list_executions: (a) => this.#list(a),
      estimate_timeout: (a) => this.#estimateTimeout(a),
    };
    this.#tools = describeTools(config);
  }

  /** The `tools/list` entries. */
  list(): Tool[] {
    return this.#tools;
  }

  /**
   * Runs a tool. Failures of the tool are results with `isError: true`,
   * among them arguments the tool does not take (then nothing is done).
   *
   * @throws {ExecutorError} -32602 for an unknown tool.
   */
  async call(name: string, args: unknown, call: ToolCall): Promise<CallToolResult> {
    const handler = Object.hasOwn(this.#handlers, name)
      ? this.#handlers[name as ToolName]
      : undefined;
    if (handler === undefined) {
      throw new ExecutorError(ErrorCode.InvalidParams, `Unknown tool: ${name}`);
    }
    try {
      checkArgNames(name, args, argNames(name as ToolName));
      return await handler(args ?? {}, call);
    } catch (err) {
      if (err instanceof ExecutorError) return errorResult(err);
      throw err;
    }
  }

  /** Spawns a command for `execute`/`start` (not running yet: the caller calls `run()`). */
  async #spawn(params: z.output<typeof RunParams>): Promise<Spawned> {
    try {
      return await this.#session.execute(params, this.#watchers.sink);
    } catch (err) {
      // The session's own limit; the principal's (max-detached-per-principal) says itself.
      if (err instanceof BusyError && this.#session.runningCount >= this.#session.maxExecutions) {
        throw new BusyError(
          `This session already runs ${this.#session.maxExecutions} executions, its limit: ` +
            "wait for one to end (read_output with wait_seconds) or cancel one (control)",
        );
      }
      throw err;
    }
  }

  async #execute(args: unknown, call: ToolCall): Promise<CallToolResult> {
    const { wait_seconds, ...params } = parseParams(ExecuteTool, args);
    const { exec, run } = await this.#spawn({ ...params, stdin_open: params.stdin_open === true });
    let reporter: ProgressReporter | undefined;
    let unwatch = () => {};
    if (call.progress !== null) {
      const progress = new ProgressReporter(call.progress, this.#progress);
      reporter = progress;
      progress.note(`started execution ${exec.id} (pid ${exec.pid})`);
      unwatch = this.#watchers.watch(exec, (e) => {
        if (e.type === "output") progress.output(e.chunk.data);
      });
    }
    // Watched first, so no output is missed.
    run();
    const onAbort = () => {
      // A cancelled call ends its run; a closed connection is left to the session.
      if (call.signal.reason === CLIENT_CANCELLED && exec.active) void exec.cancel("canceled");
    };
    call.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const waitS = wait_seconds ?? this.#config.mcpDefaultWait;
      await this.#watchers.waitFor(exec, () => !exec.active, waitS, call.signal);
    } finally {
      call.signal.removeEventListener("abort", onAbort);
      unwatch();
      reporter?.stop();
    }
    if (call.signal.aborted) onAbort();
    return runResult(exec, this.#config.mcpOutputLimit);
  }

  async #start(args: unknown): Promise<CallToolResult> {
    const params = parseParams(RunParams, args);
    const { exec, run } = await this.#spawn({ ...params, stdin_open: params.stdin_open === true });
    run();
    return startResult(exec);
  }

  async #readOutput(args: unknown, call: ToolCall): Promise<CallToolResult> {
    const p = parseParams(ReadOutputTool, args);
    if (p.tail_bytes !== undefined && p.offset !== undefined) {
      throw new InvalidParamsError("Invalid params", {
        data: {
          field: "tail_bytes",
          reason: "give offset (read forward from it) or tail_bytes (the last bytes), not both",
        },
      });
    }
    const exec = await this.#own(p.execution_id);
    const offset = p.offset ?? 0;
    if (offset > exec.output.next && !exec.active) {
      // Never reached now: a stale offset (another run's, a typo) is said, not read as "the end".
      // While the run goes on, an offset ahead is a wait for output up to there.
      throw new InvalidParamsError("Invalid params", {
        data: {
          field: "offset",
          reason: `past the run's output: next_offset is ${exec.output.next}`,
          next_offset: exec.output.next,
        },
      });
    }
    const waitS = p.wait_seconds ?? (p.wait_for === undefined ? 0 : this.#config.mcpDefaultWait);
    if (waitS > 0) {
      // With a tail, new output is output past the end as it is now.
      const past = p.tail_bytes === undefined ? offset : exec.output.next;
      const until = p.wait_for === "exit"
        ? () => !exec.active
        : () => exec.output.next > past || !exec.active;
      // A long wait still shows progress, so a client timeout that resets on it holds.
      const heartbeat = call.progress === null
        ? null
        : new ProgressReporter(call.progress, this.#progress);
      try {
        await this.#watchers.waitFor(exec, until, waitS, call.signal);
      } finally {
        heartbeat?.stop();
      }
      // A long wait is a use too: the detach-timeout starts again when it ends.
      exec.feed.touch();
    }
    const max = Math.min(p.max_bytes ?? Infinity, this.#config.mcpOutputLimit);
    const from = p.tail_bytes === undefined ? offset : { tail: p.tail_bytes };
    return pageResult(exec, from, max);
  }

  async #sendInput(args: unknown, call: ToolCall): Promise<CallToolResult> {
    const p = parseParams(SendInputTool, args);
    const exec = await this.#own(p.execution_id);
    if (!exec.active) throw this.#ended(exec);
    if (!exec.stdinOpen) {
      throw new NoProcessError(
        `stdin of execution ${exec.id} is not open: it was closed, or the run was not ` +
          "started with stdin_open: true",
      );
    }
    const input = p.input ?? "";
    // The same bound as `stdin` given at the start, per call.
    if (utf8Length(input) > this.#config.maxStdinBytes) {
      throw new InvalidParamsError("Invalid params", {
        data: { field: "input", reason: `longer than ${this.#config.maxStdinBytes} bytes` },
      });
    }
    // Refused at once (-32602) when the input does not fit with what is still pending.
    const write = exec.queueInput(input, p.close_stdin === true);
    const waitS = p.wait_seconds ?? DEFAULT_SEND_WAIT_S;
    const through = await abortable(
      resolvesWithin(write.done, waitS * 1000),
      call.signal,
      () => new NoProcessError("The call was cancelled"),
    );
    const stdin = {
      execution_id: exec.id,
      bytes_written: write.written,
      bytes_pending: exec.stdinPending,
      stdin_open: exec.stdinOpen,
    };
    if (!through) {
      // Accepted but not taken: say so now rather than hold the call, and keep the input.
      const message = `The process is not reading its stdin: ${write.written} of ` +
        `${write.bytes} bytes of this input were written within ${waitS}s. The rest stays ` +
        `buffered (${exec.stdinPending} bytes are waiting in all; the buffer holds ` +
        `${exec.stdinBuffer}) and will be written in order as the process reads: do not send ` +
        "it again. Input that does not fit in the buffer is refused.";
      return result(`Error ${ErrorCode.InvalidParams}: ${message}\n`, {
        ...stdin,
        error: {
          code: ErrorCode.InvalidParams,
          message,
          data: { reason: "stdin_not_read", stdin_buffer: exec.stdinBuffer },
        },
      }, true);
    }
    const text = `Wrote ${write.bytes} bytes to stdin of ${exec.id}` +
      (exec.stdinOpen ? "." : "; stdin is closed.") + "\n";
    return result(text, stdin);
  }

  async #control(args: unknown): Promise<CallToolResult> {
    const p = parseParams(ControlTool, args);
    if (p.execution_id !== undefined) {
      const known = await this.#own(p.execution_id);
      if (!known.active) throw this.#ended(known);
    }
    const exec = this.#session.find(p.execution_id);
    switch (p.type) {
      case "PAUSE": {
        if (exec.pause()) exec.announce("paused");
        return summaryResult(exec, `Paused ${exec.id}.\n`);
      }
      case "RESUME": {
        if (exec.resume()) exec.announce("resumed");
        return summaryResult(exec, `Resumed ${exec.id}.\n`);
      }
      case "CANCEL": {
        const ended = exec.cancel("canceled");
        exec.announce("canceled");
        await ended;
        return summaryResult(exec, `${outcome(exec)}\n`);
      }
      case "INTERRUPT":
      case "SIGNAL": {
        const signal = controlSignal(p)!;
        exec.signal(signal);
        return summaryResult(exec, `Sent SIG${signal} to ${exec.id}.\n`);
      }
    }
  }

  /** `estimate_timeout`: the limit a command would get, and why; runs nothing. */
  async #estimateTimeout(args: unknown): Promise<CallToolResult> {
    const p = parseParams(EstimateParams, args);
    const e = await this.#timeLimits.estimate(p.args ?? p.command!);
    const text = explainEstimate(e) + "\n";
    return result(text, { timeout: e.timeout_s, timeout_source: e.source, reasoning: e.reasoning });
  }

  async #list(args: unknown): Promise<CallToolResult> {
    const p = parseParams(ListTool, args);
    let all = this.#session.executions();
    if (p.running_only === true) all = all.filter((e) => e.active);
    // Running runs of other nodes too (their ended ones are in the history).
    return listResult(all, await this.#session.elsewhere());
  }

  /**
   * An execution this session may see (its principal's, from any session,
   * on any node: a run of another node is followed through a relay), or a
   * -32002 error naming the id. Looking it up counts as using it (see
   * `Session.get`).
   */
  async #own(executionId: string): Promise<Run> {
    const exec = await this.#session.locate(executionId);
    if (exec === undefined) {
      throw new NoProcessError(
        `No execution with id ${executionId} for this API key (ended runs are kept for ` +
          `${this.#config.executionRetention}s)`,
      );
    }
    return exec;
  }

  #ended(exec: Run): NoProcessError {
    return new NoProcessError(`Run ${exec.id} has already ended (${exec.state})`);
  }
}
