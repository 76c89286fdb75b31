/**
 * The MCP tools' input schemas and their `tools/list` descriptions. The
 * schemas are built from the zod schemas the legacy methods validate with, so
 * both protocols accept the same parameters.
 *
 * @module
 */
import { z } from "zod";
import type { Tool } from "@modelcontextprotocol/sdk/types";
import type { Config } from "../../config/config.ts";
import { ControlParams, EstimateParams, ExecuteParams } from "../../session/exec_params.ts";

/** Executions listed at most by `list_executions` (the newest). */
export const MAX_LISTED = 100;
/** Seconds `send_input` waits for the process to take its input, by default and at most. */
export const DEFAULT_SEND_WAIT_S = 1;
export const MAX_SEND_WAIT_S = 30;

const WaitSeconds = z.number().min(0).finite();
const ExecutionId = z.string().min(1).describe(
  "The `execution_id` returned by `execute` or `start`.",
);

/** `execute`/`start` params: the legacy `execute` params without `framing` (no streaming here). */
export const RunParams = ExecuteParams.omit({ framing: true }).extend({
  stdin: z.string().optional().describe(
    "Text written to the command's stdin. stdin is then closed, unless `stdin_open` is true.",
  ),
  stdin_open: z.boolean().optional().describe(
    "Keep stdin open so `send_input` can write to it later (interactive programs, REPLs). " +
      "Leave unset for ordinary commands: a program that reads stdin would wait for input.",
  ),
});

export const ExecuteTool = RunParams.extend({
  wait_seconds: WaitSeconds.optional().describe(
    "Return after at most this many seconds even if the command is still running; it then " +
      "keeps running in the background. Default: wait until it ends.",
  ),
});

export const ReadOutputTool = z.looseObject({
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

export const SendInputTool = z.looseObject({
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

export const ControlTool = ControlParams.extend({
  type: ControlParams.shape.type.describe(
    "PAUSE (SIGSTOP), RESUME (SIGCONT) or CANCEL (SIGTERM, then SIGKILL after a grace period).",
  ),
  execution_id: ControlParams.shape.execution_id.describe(
    "The execution to act on. Default: the most recently started one still running.",
  ),
});

export const ListTool = z.looseObject({
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

/** The name of one of our tools. */
export type ToolName = keyof typeof SCHEMAS;

/** Settings the descriptions quote. */
export type DescribeConfig = Pick<
  Config,
  "mcpOutputLimit" | "outputRetention" | "executionRetention" | "stdinBuffer"
>;

/**
 * The `tools/list` entries.
 *
 * @example Every tool has an object input schema
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeTools } from "./tool_schemas.ts";
 * import { loadConfig } from "../../config/config.ts";
 * const tools = describeTools(loadConfig({ getEnv: () => undefined }));
 * assert.equal(tools.length, 7);
 * assert.ok(tools.every((t) => t.inputSchema.type === "object"));
 * ```
 */
export function describeTools(c: DescribeConfig): Tool[] {
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
