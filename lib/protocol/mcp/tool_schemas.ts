/**
 * The MCP tools' input schemas and their `tools/list` descriptions. The
 * schemas are built from the zod schemas the legacy methods validate with, so
 * both protocols accept the same parameters; unlike the legacy methods, the
 * tools refuse names they do not know (`tool_args.ts`), and their schemas say
 * so (`additionalProperties: false`). The output schemas are in
 * `tool_outputs.ts`.
 *
 * @module
 */
import { z } from "zod";
import type { Tool } from "@modelcontextprotocol/sdk/types";
import type { Config } from "../../config/config.ts";
import { ControlParams, EstimateParams, ExecuteParams } from "../../session/exec_params.ts";
import { OUTPUTS, outputSchema } from "./tool_outputs.ts";

/** Executions listed at most by `list_executions` (the newest). */
export const MAX_LISTED = 100;
/** Seconds `send_input` waits for the process to take its input, by default and at most. */
export const DEFAULT_SEND_WAIT_S = 1;
export const MAX_SEND_WAIT_S = 30;

const WaitSeconds = z.number().min(0).finite();
const ExecutionId = z.string().min(1).max(128).describe(
  "The `execution_id` returned by `execute` or `start`.",
);

/**
 * `execute`/`start` params: the legacy `execute` params without `framing`
 * (no streaming here) and `detach` (every MCP run outlives its session).
 */
export const RunParams = ExecuteParams.omit({ framing: true, detach: true }).extend({
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
      "keeps running in the background and the result says `running: true`. Default: the " +
      "server's `mcp-default-wait` (see the tool's description).",
  ),
});

export const ReadOutputTool = z.looseObject({
  execution_id: ExecutionId,
  offset: z.number().int().min(0).optional().describe(
    "Byte offset to read from: 0 for the beginning, or the `next_offset` of the previous reply.",
  ),
  wait_seconds: WaitSeconds.optional().describe(
    "Wait up to this many seconds (see `wait_for`). Default 0, answer at once; with " +
      "`wait_for`, the server's `mcp-default-wait`.",
  ),
  wait_for: z.enum(["output", "exit"]).optional().describe(
    '"output" (the default when `wait_seconds` is given): answer as soon as there is output ' +
      'past `offset` or the run ends. "exit": answer only when the run has ended (or ' +
      "`wait_seconds` passed), to see a run to its end in one call.",
  ),
  tail_bytes: z.number().int().min(1).optional().describe(
    "Return the last this many bytes of the output (stdout and stderr together, at most the " +
      "server's limit) instead of reading from `offset`; not with `offset`.",
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
    "PAUSE (SIGSTOP), RESUME (SIGCONT), CANCEL (SIGTERM, then SIGKILL after a grace period), " +
      "INTERRUPT (SIGINT, as Ctrl-C) or SIGNAL (the signal named by `signal`), each to the " +
      "whole process group.",
  ),
  execution_id: ControlParams.shape.execution_id.describe(
    "The execution to act on. Default: the most recently started one still running.",
  ),
});

export const ListTool = z.looseObject({
  running_only: z.boolean().optional().describe("List only executions still running."),
});

/**
 * JSON Schema of a tool's input; `$schema` is dropped (MCP assumes 2020-12
 * without it), and names not listed are refused.
 */
function inputSchema(schema: z.ZodType): Tool["inputSchema"] {
  const { $schema: _, ...json } = z.toJSONSchema(schema, { io: "input" });
  return { ...json, additionalProperties: false } as Tool["inputSchema"];
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

/** Per tool: `f` of its name. */
function perTool<T>(f: (name: ToolName) => T): Record<ToolName, T> {
  const names = Object.keys(SCHEMAS) as ToolName[];
  return Object.fromEntries(names.map((name) => [name, f(name)])) as Record<ToolName, T>;
}

const ARG_NAMES = perTool((name): readonly string[] => Object.keys(SCHEMAS[name].properties ?? {}));
const OUTPUT_SCHEMAS = perTool((name) => outputSchema(OUTPUTS[name]));

/**
 * The argument names a tool takes, as its `inputSchema` lists them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argNames } from "./tool_schemas.ts";
 * assert.ok(argNames("read_output").includes("tail_bytes"));
 * ```
 */
export function argNames(tool: ToolName): readonly string[] {
  return ARG_NAMES[tool];
}

/** Settings the descriptions quote. */
export type DescribeConfig = Pick<
  Config,
  | "mcpOutputLimit"
  | "outputRetention"
  | "executionRetention"
  | "stdinBuffer"
  | "mcpDefaultWait"
  | "orphanGrace"
  | "detachTimeout"
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
  ): Tool => ({
    name,
    title,
    description,
    inputSchema: SCHEMAS[name],
    outputSchema: OUTPUT_SCHEMAS[name],
    annotations,
  });
  const wait = `${c.mcpDefaultWait}s`;
  const lifetime = "Runs outlive the MCP session: any session of the same API key can list, " +
    "read and control them, and once the session that started one has ended, a run that no " +
    `session reads or controls for ${c.detachTimeout}s is ended.`;
  return [
    t(
      "execute",
      "Run a command",
      "Run a command on the server and return its result: exit code (or the signal that " +
        "ended it), status, duration, stdout and stderr. Give `command` (a shell command " +
        "line) or `args` (an argv array, run without a shell). Blocks until the command " +
        `ends, or at most \`wait_seconds\` (default ${wait}): a command still running then ` +
        "goes on in the background, and the result says `running: true` with its " +
        "`execution_id` and `next_offset`; follow it with `read_output` (`wait_for: " +
        '"exit"` waits for its end) and steer it with `send_input` and `control`. Output beyond ' +
        `${limit} bytes per stream is cut from the front: the result keeps the end and ` +
        "says how many bytes were left out. A non-zero exit, a signal, a timeout or a " +
        "cancel is reported with isError. Every run has a time limit: `timeout` when " +
        "given (0: none but the server's maximum), else an automatic safety net against " +
        "hung commands that is never below a minute nor below twice the longest successful " +
        "run of the same kind (see `estimate_timeout`); the whole process tree is ended " +
        "when it expires. A process the command leaves in the background (`sleep 100 &`, " +
        `a daemon) is ended at most ${c.orphanGrace}s after the command exits: start servers ` +
        `and watchers with \`start\` instead. ${lifetime}`,
      { destructiveHint: true, openWorldHint: true },
    ),
    t(
      "start",
      "Start a command in the background",
      "Start a command and return at once (it does not block) with its `execution_id`: for " +
        "servers, watchers, long builds and interactive programs; the run lasts as long as " +
        "its command, with everything it started. Same parameters as `execute`; pass " +
        "`stdin_open: true` to type into it later with `send_input`. Then use `read_output` " +
        "for its output and exit status, and `control` to pause, resume, interrupt or cancel " +
        `it. It still has a time limit (\`timeout\`). ${lifetime}`,
      { destructiveHint: true, openWorldHint: true },
    ),
    t(
      "read_output",
      "Read an execution's output",
      "Read an execution's output from a byte offset, and whether it is still running or " +
        "how it ended (exit code, status). Start at offset 0 (or the `next_offset` of an " +
        "`execute` result) and pass each reply's `next_offset` back to continue; " +
        "`remaining_bytes` > 0 means more is already available. `tail_bytes` returns the " +
        'end of the output instead. Blocks only when asked: `wait_for: "output"` waits ' +
        'for new output or the end of the run, `wait_for: "exit"` for the end of the run ' +
        `(seeing a run to its end in one call), each for at most \`wait_seconds\` (default ` +
        `${wait}); without either it answers at once. Works after the run has ended, for ` +
        `${c.executionRetention}s; the newest ${c.outputRetention} bytes of each run are ` +
        "kept, and `skipped_bytes` counts output before that which was dropped.",
      { readOnlyHint: true, openWorldHint: false },
    ),
    t(
      "send_input",
      "Send input to a running command",
      "Write text to the stdin of a running execution that was started with " +
        '`stdin_open: true` (answers to prompts, lines for a REPL; end lines with "\\n"). ' +
        "Set `close_stdin: true` to send end-of-file afterwards. Blocks at most " +
        `\`wait_seconds\` (default ${DEFAULT_SEND_WAIT_S}s, at most ${MAX_SEND_WAIT_S}s) ` +
        "for the process to take the input. Input the process has " +
        `not read yet is buffered, at most ${c.stdinBuffer} bytes per execution: when it ` +
        "has not taken an input within `wait_seconds`, the reply says the process is not " +
        "reading its stdin (the input stays buffered and is written in order); input that " +
        "does not fit in the buffer is refused.",
      { destructiveHint: true, openWorldHint: true },
    ),
    t(
      "control",
      "Pause, resume, interrupt, signal or cancel",
      "Pause (SIGSTOP), resume (SIGCONT), interrupt (SIGINT, as Ctrl-C would), send a signal " +
        '(`type: "SIGNAL"` with `signal` one of INT, TERM, KILL, HUP, QUIT, USR1, USR2) or ' +
        "cancel (SIGTERM, then SIGKILL after a grace period) a running execution together " +
        "with every process it started; it may be one started by another session of the same " +
        "API key. Paused time does not count against its time limit. Returns at once, " +
        "except CANCEL, which blocks until all its processes are gone and returns the final " +
        "status.",
      { destructiveHint: true, openWorldHint: false },
    ),
    t(
      "estimate_timeout",
      "Estimate a command's time limit",
      "Say what automatic time limit `execute` would give a command when no `timeout` is " +
        "passed, and why, term by term: its class (program and sub-command, a loop's shape, " +
        "or for `claude -p` how demanding the prompt is), the learned figure or the " +
        "default, twice the longest success, the floor, any back-off after timeouts, and " +
        "the multiplier applied while the machine is busy. Runs nothing; returns at once.",
      { readOnlyHint: true, openWorldHint: false },
    ),
    t(
      "list_executions",
      "List executions",
      "List the executions of this API key (started in any MCP session), running and " +
        `recently ended (newest ${MAX_LISTED}): execution_id, command, state, status, ` +
        "exit code, duration, output size. Use it to find an execution_id again. Returns " +
        "at once.",
      { readOnlyHint: true, openWorldHint: false },
    ),
  ];
}
