/**
 * The MCP tools: `execute`, `start`, `read_output`, `send_input`, `control`
 * and `list_executions`, mapped onto a {@linkcode Session}. Input schemas are
 * generated from the zod schemas the legacy methods validate with, so both
 * protocols accept the same parameters. Independent of the transport.
 *
 * Tool-level failures (bad arguments, no such execution, a refused command)
 * are tool results with `isError: true`, as the 2025-11-25 spec asks, so the
 * model sees the reason and can correct itself; only an unknown tool is a
 * JSON-RPC error.
 *
 * @module
 */
import { z } from "zod";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types";
import type { Config } from "../../config/config.ts";
import {
  BusyError,
  ErrorCode,
  ExecutorError,
  InvalidParamsError,
  NoProcessError,
} from "../../errors.ts";
import {
  ControlParams,
  EstimateParams,
  ExecuteParams,
  parseParams,
} from "../../session/exec_params.ts";
import { truncateText } from "../../output/text_truncate.ts";
import { abortable, resolvesWithin } from "../../async.ts";
import { explainEstimate } from "../../timing/explain.ts";
import { type ExecRequestConfig, resolveExecSpec } from "../../session/exec_request.ts";
import type { Execution } from "../../core/execution.ts";
import { readOutput, tailOutput } from "../../output/text.ts";
import { utf8Length } from "../../utf8.ts";
import type { Session } from "../../session/session.ts";
import type { Sink } from "../../core/sink.ts";
import type { ExecutionEvent, ExitInfo } from "../../types.ts";
import {
  PROGRESS_DEFAULTS,
  type ProgressOptions,
  ProgressReporter,
  type SendProgress,
} from "./progress.ts";

/** Settings the tools apply or describe. */
export type McpToolsConfig =
  & ExecRequestConfig
  & Pick<Config, "mcpOutputLimit" | "outputRetention" | "executionRetention" | "stdinBuffer">;

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
  ended(exec: Execution, exit: ExitInfo): void;
  /** Pace of progress notifications; default {@linkcode PROGRESS_DEFAULTS}. */
  progress?: ProgressOptions;
}

/** Largest tool result, encoded; the transport's limit is 1 MiB for the whole message. */
const MAX_RESULT_BYTES = 1024 * 1024 - 4096;
/** Executions listed at most by `list_executions` (the newest). */
const MAX_LISTED = 100;
/** Seconds `send_input` waits for the process to take its input, by default and at most. */
const DEFAULT_SEND_WAIT_S = 1;
const MAX_SEND_WAIT_S = 30;

const WaitSeconds = z.number().min(0).finite();
const ExecutionId = z.string().min(1).describe(
  "The `execution_id` returned by `execute` or `start`.",
);

/** `execute`/`start` params: the legacy `execute` params without `framing` (no streaming here). */
const RunParams = ExecuteParams.omit({ framing: true }).extend({
  stdin: z.string().optional().describe(
    "Text written to the command's stdin. stdin is then closed, unless `stdin_open` is true.",
  ),
  stdin_open: z.boolean().optional().describe(
    "Keep stdin open so `send_input` can write to it later (interactive programs, REPLs). " +
      "Leave unset for ordinary commands: a program that reads stdin would wait for input.",
  ),
});

const ExecuteTool = RunParams.extend({
  wait_seconds: WaitSeconds.optional().describe(
    "Return after at most this many seconds even if the command is still running; it then " +
      "keeps running in the background. Default: wait until it ends.",
  ),
});

const ReadOutputTool = z.looseObject({
  execution_id: ExecutionId,
  offset: z.number().int().min(0).optional().describe(
    "Byte offset to read from: 0 for the beginning, or the `next_offset` of the previous reply.",
  ),
  wait_seconds: WaitSeconds.optional().describe(
    "Wait up to this many seconds for output past `offset` or for the run to end. " +
      "Default 0: answer at once.",
  ),
  max_bytes: z.number().int().min(256).optional().describe(
    "Most output bytes to return (stdout and stderr together); default and ceiling are the " +
      "server's limit.",
  ),
});

const SendInputTool = z.looseObject({
  execution_id: ExecutionId,
  input: z.string().optional().describe(
    'Text to write to stdin, as is: end a line with "\\n". May be empty to only close stdin.',
  ),
  close_stdin: z.boolean().optional().describe(
    "Close stdin after writing (end of file: programs like `cat` or `sort` finish only then).",
  ),
  wait_seconds: WaitSeconds.max(MAX_SEND_WAIT_S).optional().describe(
    "How long to wait for the process to take the input before answering that it is not " +
      `reading its stdin (the input then stays buffered). Default ${DEFAULT_SEND_WAIT_S}.`,
  ),
});

const ControlTool = ControlParams.extend({
  type: ControlParams.shape.type.describe(
    "PAUSE (SIGSTOP), RESUME (SIGCONT) or CANCEL (SIGTERM, then SIGKILL after a grace period).",
  ),
  execution_id: ControlParams.shape.execution_id.describe(
    "The execution to act on. Default: the most recently started one still running.",
  ),
});

const ListTool = z.looseObject({
  running_only: z.boolean().optional().describe("List only executions still running."),
});

/** JSON Schema of a tool's input; `$schema` is dropped (MCP assumes 2020-12 without it). */
function inputSchema(schema: z.ZodType): Tool["inputSchema"] {
  const { $schema: _, ...json } = z.toJSONSchema(schema, { io: "input" });
  return json as Tool["inputSchema"];
}

const SCHEMAS = {
  execute: inputSchema(ExecuteTool),
  start: inputSchema(RunParams),
  read_output: inputSchema(ReadOutputTool),
  send_input: inputSchema(SendInputTool),
  control: inputSchema(ControlTool),
  list_executions: inputSchema(ListTool),
  estimate_timeout: inputSchema(EstimateParams),
};

type ToolName = keyof typeof SCHEMAS;

/** Seconds, for text. */
const secs = (s: number) => `${Math.round(s * 1000) / 1000}s`;

/** Wall-clock seconds a run has taken so far, or in total. */
function duration(exec: Execution): number {
  return exec.exit?.executionTime ?? Math.round(Date.now() - exec.startedAt) / 1000;
}

/** What every result says about a run. */
function summary(exec: Execution): Record<string, unknown> {
  const x = exec.exit;
  return {
    execution_id: exec.id,
    command: exec.spec.display,
    status: exec.state,
    running: exec.active,
    exit_code: x?.exitCode ?? null,
    signal: x?.signal ?? null,
    error: x?.error ?? null,
    duration_seconds: duration(exec),
    timeout: exec.spec.timeout,
    timeout_source: exec.spec.timeoutSource,
    pid: exec.pid,
    pgid: exec.pgid,
    stdin_open: exec.stdinOpen,
    output_bytes: exec.output.next,
    started_at: new Date(exec.startedAt).toISOString(),
    // Whose it is: the caller's own, unless the caller is an admin.
    principal: exec.principal,
  };
}

/** One sentence on where a run stands. */
function outcome(exec: Execution): string {
  const x = exec.exit;
  if (x === null) {
    return `Still running (${exec.state}) after ${secs(duration(exec))}; ` +
      `execution_id ${exec.id}.`;
  }
  const after = `after ${secs(x.executionTime)}`;
  switch (x.status) {
    case "completed":
      return `Exited with code 0 ${after}.`;
    case "failed":
      return x.signal !== null
        ? `Killed by ${x.signal} ${after} (failed).`
        : `Exited with code ${x.exitCode} ${after} (failed).`;
    case "timeout":
      return `Timed out: ${x.error} (status timeout, ${after}).`;
    case "canceled":
      return `Canceled: ${x.error} (${after}).`;
  }
}

/** The output sections of a text result. */
function sections(parts: { name: string; text: string; omitted: number }[]): string {
  const out: string[] = [];
  for (const { name, text, omitted } of parts) {
    if (text.length === 0 && omitted === 0) continue;
    const note = omitted > 0
      ? ` (last ${utf8Length(text)} bytes; ${omitted} earlier bytes left out)`
      : "";
    out.push(`--- ${name}${note} ---\n${text}${text.endsWith("\n") ? "" : "\n"}`);
  }
  return out.length > 0 ? out.join("") : "(no output)\n";
}

function result(
  text: string,
  structured: Record<string, unknown>,
  isError = false,
): CallToolResult {
  return {
    content: [{ type: "text", text }],
    structuredContent: structured,
    ...(isError ? { isError: true } : {}),
  };
}

/** A tool-level failure as a result the model can read. */
export function errorResult(err: ExecutorError): CallToolResult {
  const data = err.data as { field?: unknown; reason?: unknown; issues?: unknown } | null;
  let text = `Error ${err.code}: ${err.message}`;
  if (Array.isArray(data?.issues)) {
    text += ": " +
      data.issues.map((i: { field: string; reason: string }) => `${i.field}: ${i.reason}`)
        .join("; ");
  } else if (data?.field !== undefined) {
    text += `: ${String(data.field)}: ${String(data.reason)}`;
  }
  return result(text, { error: { code: err.code, message: err.message, data: err.data } }, true);
}

/** Builds a result with a per-output budget, halving it until the encoded result fits. */
function fit(limit: number, build: (limit: number) => CallToolResult): CallToolResult {
  for (let budget = limit;; budget = Math.floor(budget / 2)) {
    const r = build(budget);
    if (budget <= 256 || utf8Length(JSON.stringify(r)) <= MAX_RESULT_BYTES) return r;
  }
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
 * const tools = new McpTools(session, config,
 *   { ready: () => Promise.resolve(), ended: () => {} });
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
  readonly #watchers = new Map<string, Set<(event: ExecutionEvent) => void>>();
  readonly #tools: Tool[];
  readonly #handlers: Record<ToolName, (args: unknown, call: ToolCall) => Promise<CallToolResult>>;

  /** Binds the tools to a session. */
  constructor(session: Session, config: McpToolsConfig, hooks: ToolHooks) {
    this.#session = session;
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
    this.#tools = this.#describe();
  }

  /** The `tools/list` entries. */
  list(): Tool[] {
    return this.#tools;
  }

  /**
   * Runs a tool. Failures of the tool are results with `isError: true`.
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
      return await handler(args ?? {}, call);
    } catch (err) {
      if (err instanceof ExecutorError) return errorResult(err);
      throw err;
    }
  }

  #describe(): Tool[] {
    const c = this.#config;
    const limit = c.mcpOutputLimit;
    const t = (
      name: ToolName,
      title: string,
      description: string,
      annotations: Tool["annotations"],
    ): Tool => ({ name, title, description, inputSchema: SCHEMAS[name], annotations });
    return [
      t(
        "execute",
        "Run a command",
        "Run a command on the server and return its result: exit code (or the signal that " +
          "ended it), status, duration, stdout and stderr. Give `command` (a shell command " +
          "line) or `args` (an argv array, run without a shell). Waits until the command " +
          "ends, or at most `wait_seconds`: a command still running then keeps running in the " +
          "background, and the result gives its `execution_id` and `next_offset` for " +
          "`read_output`, `send_input` and `control`. Output beyond " +
          `${limit} bytes per stream is cut from the front: the result keeps the end and ` +
          "says how many bytes were left out. A non-zero exit, a signal, a timeout or a " +
          "cancel is reported with isError. Every run has a time limit: `timeout` when " +
          "given (0: none but the server's maximum), else an automatic safety net against " +
          "hung commands that is never below a minute nor below twice the longest successful " +
          "run of the same kind (see `estimate_timeout`); the whole process tree is ended " +
          "when it expires.",
        { destructiveHint: true, openWorldHint: true },
      ),
      t(
        "start",
        "Start a command in the background",
        "Start a command and return at once with its `execution_id`, without waiting for " +
          "output: for servers, watchers, long builds and interactive programs. Same " +
          "parameters as `execute`; pass `stdin_open: true` to type into it later with " +
          "`send_input`. Then use `read_output` for its output and exit status, and " +
          "`control` to pause, resume or cancel it. It still has a time limit (`timeout`).",
        { destructiveHint: true, openWorldHint: true },
      ),
      t(
        "read_output",
        "Read an execution's output",
        "Read an execution's output from a byte offset, and whether it is still running or " +
          "how it ended (exit code, status). Start at offset 0 (or the `next_offset` of an " +
          "`execute` result) and pass each reply's `next_offset` back to continue; " +
          "`remaining_bytes` > 0 means more is already available. With `wait_seconds`, " +
          "waits for new output or for the end of the run, so you can follow a run without " +
          `busy polling. Works after the run has ended, for ${c.executionRetention}s; the ` +
          `newest ${c.outputRetention} bytes of each run are kept, and \`skipped_bytes\` ` +
          "counts output before that which was dropped.",
        { readOnlyHint: true, openWorldHint: false },
      ),
      t(
        "send_input",
        "Send input to a running command",
        "Write text to the stdin of a running execution that was started with " +
          '`stdin_open: true` (answers to prompts, lines for a REPL; end lines with "\\n"). ' +
          "Set `close_stdin: true` to send end-of-file afterwards. Input the process has " +
          `not read yet is buffered, at most ${c.stdinBuffer} bytes per execution: when it ` +
          "has not taken an input within `wait_seconds`, the reply says the process is not " +
          "reading its stdin (the input stays buffered and is written in order); input that " +
          "does not fit in the buffer is refused.",
        { destructiveHint: true, openWorldHint: true },
      ),
      t(
        "control",
        "Pause, resume or cancel",
        "Pause (SIGSTOP), resume (SIGCONT) or cancel (SIGTERM, then SIGKILL after a grace " +
          "period) a running execution together with every process it started. Paused time " +
          "does not count against its time limit. CANCEL returns once all its processes are " +
          "gone, with the final status.",
        { destructiveHint: true, openWorldHint: false },
      ),
      t(
        "estimate_timeout",
        "Estimate a command's time limit",
        "Say what automatic time limit `execute` would give a command when no `timeout` is " +
          "passed, and why, term by term: its class (program and sub-command, a loop's shape, " +
          "or for `claude -p` how demanding the prompt is), the learned figure or the " +
          "default, twice the longest success, the floor, any back-off after timeouts, and " +
          "the multiplier applied while the machine is busy. Runs nothing.",
        { readOnlyHint: true, openWorldHint: false },
      ),
      t(
        "list_executions",
        "List executions",
        "List this session's executions, running and recently ended (newest " +
          `${MAX_LISTED}): execution_id, command, status, exit code, duration, output size. ` +
          "Use it to find an execution_id again.",
        { readOnlyHint: true, openWorldHint: false },
      ),
    ];
  }

  /** Spawns and runs a command for `execute`/`start`. */
  async #run(params: z.output<typeof RunParams>): Promise<Execution> {
    const receivedAt = performance.now();
    const { stdin_open, ...request } = params;
    const id = crypto.randomUUID();
    let exec: Execution;
    try {
      this.#session.checkCapacity();
      const spec = await resolveExecSpec(request, this.#config, this.#session.timeLimits);
      exec = await this.#session.start(
        { ...spec, stdinOpen: stdin_open === true },
        this.#sink(id),
        {
          id,
          receivedAt,
        },
      );
    } catch (err) {
      this.#watchers.delete(id);
      if (err instanceof BusyError) {
        throw new BusyError(
          `This session already runs ${this.#session.maxExecutions} executions, its limit: ` +
            "wait for one to end (read_output with wait_seconds) or cancel one (control)",
        );
      }
      throw err;
    }
    exec.run();
    return exec;
  }

  async #execute(args: unknown, call: ToolCall): Promise<CallToolResult> {
    const { wait_seconds, ...params } = parseParams(ExecuteTool, args);
    const exec = await this.#run(params);
    let reporter: ProgressReporter | undefined;
    let unwatch = () => {};
    if (call.progress !== null) {
      const progress = new ProgressReporter(call.progress, this.#progress);
      reporter = progress;
      progress.note(`started execution ${exec.id} (pid ${exec.pid})`);
      unwatch = this.#watch(exec.id, (e) => {
        if (e.type === "output") progress.output(e.chunk.data);
      });
    }
    const onAbort = () => {
      // A cancelled call ends its run; a closed connection is left to the session.
      if (call.signal.reason === CLIENT_CANCELLED && exec.active) void exec.cancel("canceled");
    };
    call.signal.addEventListener("abort", onAbort, { once: true });
    try {
      await this.#waitFor(exec, () => !exec.active, wait_seconds, call.signal);
    } finally {
      call.signal.removeEventListener("abort", onAbort);
      unwatch();
      reporter?.stop();
    }
    if (call.signal.aborted) onAbort();
    return this.#runResult(exec);
  }

  /** The `execute` result: the run's outcome and the tail of each stream. */
  #runResult(exec: Execution): CallToolResult {
    return fit(this.#config.mcpOutputLimit, (limit) => {
      const tail = tailOutput(exec.output, limit);
      const omitted = {
        stdout: Math.max(0, exec.bytes.stdout - tail.kept.stdout),
        stderr: Math.max(0, exec.bytes.stderr - tail.kept.stderr),
      };
      const x = exec.exit;
      let text = outcome(exec) + "\n";
      text += `execution_id: ${exec.id}; timeout: ${exec.spec.timeout ?? "none"}s ` +
        `(${exec.spec.timeoutSource})\n`;
      if (x === null) {
        text += `Continue with read_output from offset ${tail.next}.\n`;
      }
      if (omitted.stdout + omitted.stderr > 0) {
        text += "Earlier output was left out; read_output returns what the server still " +
          "retains from offset 0.\n";
      }
      text += sections([
        { name: "stdout", text: tail.stdout, omitted: omitted.stdout },
        { name: "stderr", text: tail.stderr, omitted: omitted.stderr },
      ]);
      return result(text, {
        ...summary(exec),
        stdout: tail.stdout,
        stderr: tail.stderr,
        stdout_omitted_bytes: omitted.stdout,
        stderr_omitted_bytes: omitted.stderr,
        next_offset: tail.next,
      }, x !== null && x.status !== "completed");
    });
  }

  async #start(args: unknown): Promise<CallToolResult> {
    const exec = await this.#run(parseParams(RunParams, args));
    const text = `Started execution ${exec.id} (pid ${exec.pid}); timeout ` +
      `${exec.spec.timeout ?? "none"}s (${exec.spec.timeoutSource})` +
      (exec.stdinOpen ? "; stdin is open for send_input" : "") +
      ". Use read_output to follow it.\n";
    return result(text, summary(exec));
  }

  async #readOutput(args: unknown, call: ToolCall): Promise<CallToolResult> {
    const p = parseParams(ReadOutputTool, args);
    const exec = this.#own(p.execution_id);
    const offset = p.offset ?? 0;
    if (p.wait_seconds !== undefined && p.wait_seconds > 0) {
      // A long wait still shows progress, so a client timeout that resets on it holds.
      const heartbeat = call.progress === null
        ? null
        : new ProgressReporter(call.progress, this.#progress);
      try {
        await this.#waitFor(
          exec,
          () => exec.output.next > offset || !exec.active,
          p.wait_seconds,
          call.signal,
        );
      } finally {
        heartbeat?.stop();
      }
    }
    const max = Math.min(p.max_bytes ?? Infinity, this.#config.mcpOutputLimit);
    return fit(max, (limit) => {
      const page = readOutput(exec.output, offset, limit);
      let text = outcome(exec) + "\n";
      if (exec.exit !== null && exec.exit.exitCode !== null && exec.exit.status !== "completed") {
        text += `exit_code: ${exec.exit.exitCode}\n`;
      }
      text += `Output bytes ${page.start} to ${page.next}; next_offset: ${page.next}`;
      if (page.remaining > 0) text += `; ${page.remaining} more bytes available now`;
      if (page.skipped > 0) text += `; ${page.skipped} bytes before it are no longer retained`;
      text += ".\n" + sections([
        { name: "stdout", text: page.stdout, omitted: 0 },
        { name: "stderr", text: page.stderr, omitted: 0 },
      ]);
      return result(text, {
        ...summary(exec),
        offset: page.start,
        next_offset: page.next,
        remaining_bytes: page.remaining,
        skipped_bytes: page.skipped,
        stdout: page.stdout,
        stderr: page.stderr,
      });
    });
  }

  async #sendInput(args: unknown, call: ToolCall): Promise<CallToolResult> {
    const p = parseParams(SendInputTool, args);
    const exec = this.#own(p.execution_id);
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
      const known = this.#own(p.execution_id);
      if (!known.active) throw this.#ended(known);
    }
    const exec = this.#session.find(p.execution_id);
    switch (p.type) {
      case "PAUSE": {
        exec.pause();
        return result(`Paused ${exec.id}.\n`, summary(exec));
      }
      case "RESUME": {
        exec.resume();
        return result(`Resumed ${exec.id}.\n`, summary(exec));
      }
      case "CANCEL": {
        await exec.cancel("canceled");
        return result(`${outcome(exec)}\n`, summary(exec));
      }
    }
  }

  /** `estimate_timeout`: the limit a command would get, and why; runs nothing. */
  async #estimateTimeout(args: unknown): Promise<CallToolResult> {
    const p = parseParams(EstimateParams, args);
    const e = await this.#session.timeLimits.estimate(p.args ?? p.command!);
    const text = explainEstimate(e) + "\n";
    return result(text, { timeout: e.timeout_s, timeout_source: e.source, reasoning: e.reasoning });
  }

  #list(args: unknown): Promise<CallToolResult> {
    const p = parseParams(ListTool, args);
    let all = this.#session.executions();
    if (p.running_only === true) all = all.filter((e) => e.active);
    const shown = all.slice(-MAX_LISTED).reverse();
    const lines = shown.map((e) => {
      const code = e.exit?.signal ?? e.exit?.exitCode;
      const command = truncateText(e.spec.display, 200);
      return `${e.id}  ${e.state}${code !== undefined && code !== null ? ` (${code})` : ""}  ` +
        `${secs(duration(e))}  ${command}`;
    });
    const text = shown.length === 0
      ? "No executions.\n"
      : `${all.length} executions` + (all.length > shown.length ? `, newest ${shown.length}` : "") +
        ":\n" + lines.join("\n") + "\n";
    return Promise.resolve(
      result(text, { executions: shown.map(summary), total: all.length }),
    );
  }

  /** This session's execution, or a -32002 error naming the id. */
  #own(executionId: string): Execution {
    const exec = this.#session.get(executionId);
    if (exec === undefined) {
      throw new NoProcessError(
        `No execution with id ${executionId} in this session (ended runs are kept for ` +
          `${this.#config.executionRetention}s)`,
      );
    }
    return exec;
  }

  #ended(exec: Execution): NoProcessError {
    return new NoProcessError(`Execution ${exec.id} has already ended (${exec.state})`);
  }

  /** A sink that tells watchers of `id` about its events. */
  #sink(id: string): Sink {
    const listeners = new Set<(event: ExecutionEvent) => void>();
    this.#watchers.set(id, listeners);
    return {
      emit: (event) => {
        for (const listener of listeners) listener(event);
        if (event.type !== "completed") return;
        this.#watchers.delete(id);
        const exec = this.#session.get(id);
        if (exec !== undefined) this.#hooks.ended(exec, event.exit);
      },
      ready: () => this.#hooks.ready(),
    };
  }

  /** Calls `listener` with each further event of a running execution; returns the unsubscribe. */
  #watch(id: string, listener: (event: ExecutionEvent) => void): () => void {
    const listeners = this.#watchers.get(id);
    if (listeners === undefined) return () => {};
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /**
   * Waits until `ready()` holds (checked on each event of the run), the run
   * ends, `seconds` pass, or `signal` aborts; true when `ready()` held.
   */
  #waitFor(
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
      const unwatch = this.#watch(exec.id, () => {
        if (ready()) finish();
      });
      if (seconds !== undefined) timer = setTimeout(finish, seconds * 1000);
      signal.addEventListener("abort", finish, { once: true });
      void exec.done.then(finish);
    });
  }
}
