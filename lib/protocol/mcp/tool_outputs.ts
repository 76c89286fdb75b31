/**
 * The MCP tools' output schemas: the shape of each tool's
 * `structuredContent`, declared in `tools/list` as `outputSchema`. A client
 * such as the official SDK's validates every `structuredContent` against
 * it, error results included (it skips only results without one), so each
 * schema admits either the tool's result or a tool error (`{error: {code,
 * message, data}}`). Objects are open: a field added later does not break a
 * client that validates.
 *
 * @module
 */
import { z } from "zod";
import type { Tool } from "@modelcontextprotocol/sdk/types";

const Seconds = z.number().min(0);
const Count = z.number().int().min(0);

/** A hook's outcome as the wire carries it (`hookFields`). */
const HookResult = z.looseObject({
  hook: z.enum(["pre_execute", "post_execute", "on_timeout"]),
  name: z.string(),
  status: z.enum(["completed", "failed", "timeout", "error"]),
  exit_code: z.number().int().nullable(),
  duration: Seconds,
  required: z.boolean(),
  error: z.string().nullable(),
  output: z.string(),
});

/**
 * What every result says about a run (`summary()` in `tool_render.ts`).
 *
 * @example Fields added later pass
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunSummary } from "./tool_outputs.ts";
 * const run = { execution_id: "e1", command: "true", state: "ended", status: "completed",
 *   running: false, exit_code: 0, signal: null, error: null, duration_seconds: 0.01,
 *   timeout: 60, timeout_source: "default", pid: 10, pgid: 10, stdin_open: false,
 *   output_bytes: 0, started_at: "2026-01-01T00:00:00.000Z", principal: "local",
 *   detached: true, attached: false, node: null };
 * assert.ok(RunSummary.safeParse({ ...run, later: 1 }).success);
 * assert.equal(RunSummary.safeParse({ ...run, state: "paused" }).success, false);
 * ```
 */
export const RunSummary = z.looseObject({
  execution_id: z.string(),
  command: z.string(),
  state: z.enum(["running", "ended"]).describe("running (paused included) or ended"),
  status: z.enum([
    "running",
    "paused",
    "terminating",
    "completed",
    "failed",
    "canceled",
    "timeout",
  ]),
  running: z.boolean(),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  error: z.string().nullable(),
  duration_seconds: Seconds,
  timeout: z.number().nullable(),
  timeout_source: z.string(),
  pid: z.number().int(),
  pgid: z.number().int(),
  stdin_open: z.boolean(),
  output_bytes: Count,
  started_at: z.string(),
  principal: z.string(),
  detached: z.boolean().describe("it outlives the session that started it (every MCP run does)"),
  attached: z.boolean().describe("a client follows it now"),
  node: z.string().nullable().describe("the node that runs it; null on a single node"),
  hooks: z.array(HookResult).optional().describe("hooks that ran for it, when any did"),
});

/** `execute`: the summary and the tail of each stream. */
const RunOutput = RunSummary.extend({
  stdout: z.string(),
  stderr: z.string(),
  stdout_omitted_bytes: Count,
  stderr_omitted_bytes: Count,
  next_offset: Count,
});

/** `read_output`: the summary and one page of output. */
const PageOutput = RunSummary.extend({
  offset: Count,
  next_offset: Count,
  remaining_bytes: Count,
  skipped_bytes: Count,
  stdout: z.string(),
  stderr: z.string(),
});

/** `send_input`. */
const StdinOutput = z.looseObject({
  execution_id: z.string(),
  bytes_written: Count,
  bytes_pending: Count,
  stdin_open: z.boolean(),
});

/** `estimate_timeout`. */
const EstimateOutput = z.looseObject({
  timeout: z.number(),
  timeout_source: z.string(),
  reasoning: z.looseObject({ class: z.string(), rule: z.string() }),
});

/** `list_executions`. */
const ListOutput = z.looseObject({
  executions: z.array(RunSummary),
  total: Count,
});

/**
 * A tool error (`errorResult()`): what failed, as a JSON-RPC error object.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ToolErrorOutput } from "./tool_outputs.ts";
 * assert.ok(ToolErrorOutput.safeParse({ error: { code: -32602, message: "Invalid params" } })
 *   .success);
 * ```
 */
export const ToolErrorOutput = z.looseObject({
  error: z.looseObject({
    code: z.number().int(),
    message: z.string(),
    data: z.unknown().optional(),
  }),
});

/**
 * Each tool's result, before errors are admitted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OUTPUTS } from "./tool_outputs.ts";
 * assert.ok(OUTPUTS.send_input.safeParse({ execution_id: "e1", bytes_written: 3,
 *   bytes_pending: 0, stdin_open: true }).success);
 * ```
 */
export const OUTPUTS = {
  execute: RunOutput,
  start: RunSummary,
  read_output: PageOutput,
  send_input: StdinOutput,
  control: RunSummary,
  estimate_timeout: EstimateOutput,
  list_executions: ListOutput,
} as const;

/**
 * The `outputSchema` of a tool whose results are `schema`: an object that is
 * either such a result or a tool error.
 *
 * @param schema The zod schema of the tool's successful `structuredContent`.
 * @returns A JSON Schema (2020-12, without `$schema`) of type object.
 * @example A result or an error
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { outputSchema } from "./tool_outputs.ts";
 * const json = outputSchema(z.object({ n: z.number() }));
 * assert.equal(json.type, "object");
 * assert.equal((json.anyOf as unknown[]).length, 2);
 * ```
 */
export function outputSchema(schema: z.ZodType): NonNullable<Tool["outputSchema"]> {
  const json = (s: z.ZodType) => {
    const { $schema: _, ...rest } = z.toJSONSchema(s, { io: "output" });
    return rest;
  };
  return { type: "object", anyOf: [json(schema), json(ToolErrorOutput)] };
}
