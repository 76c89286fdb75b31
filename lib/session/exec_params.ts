/**
 * The zod schemas of request params, shared by every protocol (the legacy
 * JSON-RPC methods and the MCP tools), and the mapping of a validation
 * failure to a -32602 error that names the field.
 *
 * @module
 */
import { z } from "zod";
import { InvalidParamsError } from "../errors.ts";
import { CLIENT_SIGNALS, type ClientSignal } from "../core/run.ts";

/** A number of seconds, or a numeric string as Python would write one ("30", "2.5", "1e3", ".5"). */
const SecondsText = z.union([
  z.number(),
  z.string().trim().regex(/^\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i, "expected a number of seconds")
    .transform(Number),
]);

/** Seconds: a positive number, a numeric string ("30"), or null for "not given". */
const Seconds = SecondsText.pipe(z.number().positive("must be greater than 0").finite()).nullish();

/** A time limit: as {@linkcode Seconds}, and 0 for "no automatic limit". */
const Limit = SecondsText.pipe(z.number().nonnegative("must be 0 or more").finite()).nullish();

const NoNul = (what: string) => z.string().refine((s) => !s.includes("\0"), `${what} contains NUL`);

/** Params of `execute` (unknown params are ignored, as real clients send extras). */
export const ExecuteParams = z.looseObject({
  command: NoNul("command").optional().describe(
    "Shell command line, run as `<shell> -c <command>`. Give this or `args`.",
  ),
  args: z.array(NoNul("argument")).min(1).optional().describe(
    "argv array run without a shell; args[0] is the program. Give this or `command`.",
  ),
  timeout: Limit.describe(
    "Time limit in seconds (paused time does not count). Absent or null: an automatic limit, " +
      "learned from similar runs and never below `min-auto-timeout` (60 s by default); " +
      "0: no automatic limit (only the server's `max-timeout` applies).",
  ),
  idle_timeout: Seconds.describe("End the run after this many seconds without output."),
  cwd: NoNul("cwd").min(1).optional().describe("Working directory."),
  env: z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "env names are letters, digits and _"),
    NoNul("env value"),
  ).optional().describe("Extra environment variables for the child."),
  stdin: z.string().optional().describe("Text written to stdin, which is then closed."),
  framing: z.enum(["chunk", "line"]).optional().describe(
    "`chunk` (default): whole lines coalesced; `line`: one line per message.",
  ),
  memory_max: z.number().int().positive("must be greater than 0").nullish().describe(
    "Memory the whole run may use, swap included, in bytes; at most the server's `memory-max` " +
      "(a larger value is refused). Past it the out-of-memory killer ends processes of the run. " +
      "Needs cgroup containment with a memory controller (`/health` `containment`).",
  ),
  pids_max: z.number().int().positive("must be greater than 0").nullish().describe(
    "Processes and threads the run may have at once; at most the server's `pids-max` (a larger " +
      "value is refused). Past it fork fails. Needs a pids controller (`/health` `containment`).",
  ),
  detach: z.boolean().optional().describe(
    "The run survives its connection: re-attach with `attach` from any connection of the same " +
      "API key, until it ends, its limit, or `detach-timeout` with no one attached.",
  ),
  node: z.string().regex(/^[\w:.\-]{1,100}$/, "a node id: letters, digits, _ : . -")
    .optional().describe(
      "Run on this node (its `node-id`; `/health` lists the live ones). Absent: the node " +
        "connected to, unless `labels` is given.",
    ),
  labels: z.array(z.string().regex(/^[\w:.\-]{1,100}$/, "a label: letters, digits, _ : . -"))
    .min(1).max(16).optional().describe(
      "Run on a live node that has every one of these labels (`node-labels`); among several, " +
        "the one running the fewest executions. With `node`: that node, if it has them.",
    ),
});

/** Validated `execute` params. */
export type ExecuteParams = z.infer<typeof ExecuteParams>;

/** How a legacy client gets output `data`: decoded text (the default) or the child's bytes. */
const OutputEncoding = z.enum(["utf8", "base64"]).optional().describe(
  "`utf8` (default): `data` is text, invalid bytes as U+FFFD; `base64`: `data` is the child's " +
    'bytes exactly, base64-encoded, and the message has `encoding: "base64"`.',
);

/** Flow control: at most this many bytes of output unacknowledged (`ack`); it paces the run. */
const FlowWindow = z.number().int().min(64 * 1024).max(64 * 1024 * 1024).optional().describe(
  "Send at most this many bytes of the run's output that the client has not acknowledged with " +
    "`ack` (64 KiB to 64 MiB); behind, the client reads on from what is retained.",
);

/** With a window: hold the run itself to the client's pace, even a detached run. */
const Hold = z.boolean().optional().describe(
  "With `window`: the run itself waits for this client (its pipes are read only as fast as the " +
    "client acknowledges), even a detached run, and while the client is away after a dropped " +
    "connection; one client holds a run at a time, the latest to ask.",
);

/** Params of the legacy `execute`: {@linkcode ExecuteParams} and what only that protocol has. */
export const LegacyExecuteParams = ExecuteParams.extend({
  stdin_open: z.boolean().optional().describe(
    "Keep stdin open after `stdin` for `input` requests, until one has `close: true`.",
  ),
  detach_timeout: Seconds.describe(
    "With `detach`: end the run after this many seconds with no one attached (at most the " +
      "server's `detach-timeout`).",
  ),
  encoding: OutputEncoding,
  execution_id: z.uuid().optional().describe(
    "The run's id, chosen by the client (a UUID not in use): a client that lost the reply can " +
      "`attach` to it, or start it again if it is unknown, without running it twice.",
  ),
  window: FlowWindow,
  hold: Hold,
});

/** Validated legacy `execute` params. */
export type LegacyExecuteParams = z.infer<typeof LegacyExecuteParams>;

/** A signal name as clients write it: `INT`, `SIGINT`, `int`. */
const SignalName = z.string().trim().transform((s) => s.toUpperCase().replace(/^SIG/, "")).pipe(
  z.enum(CLIENT_SIGNALS, { error: `one of ${CLIENT_SIGNALS.join(", ")}` }),
);

/** An execution id as clients send it (ours are UUIDs; anything longer is not one). */
const ExecutionIdParam = z.string().min(1).max(128);

/** Params of `control`. */
export const ControlParams = z.looseObject({
  type: z.enum(["PAUSE", "RESUME", "CANCEL", "INTERRUPT", "SIGNAL"]),
  execution_id: ExecutionIdParam.optional(),
  signal: SignalName.optional().describe(
    `For SIGNAL: the signal to send the whole group, one of ${CLIENT_SIGNALS.join(", ")}.`,
  ),
});

/**
 * The signal a validated `control` asks for: SIGINT for `INTERRUPT`, the
 * `signal` param for `SIGNAL`, null for the other types.
 *
 * @throws {InvalidParamsError} for `SIGNAL` without `signal`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ControlParams, controlSignal, parseParams } from "./exec_params.ts";
 * assert.equal(controlSignal(parseParams(ControlParams, { type: "SIGNAL", signal: "SIGHUP" })), "HUP");
 * assert.equal(controlSignal(parseParams(ControlParams, { type: "INTERRUPT" })), "INT");
 * assert.throws(() => controlSignal(parseParams(ControlParams, { type: "SIGNAL" })), { code: -32602 });
 * ```
 */
export function controlSignal(p: ControlParams): ClientSignal | null {
  if (p.type === "INTERRUPT") return "INT";
  if (p.type !== "SIGNAL") return null;
  if (p.signal !== undefined) return p.signal;
  const reason = `SIGNAL needs \`signal\`: one of ${CLIENT_SIGNALS.join(", ")}`;
  throw new InvalidParamsError("Invalid params", {
    data: { field: "signal", reason, issues: [{ field: "signal", reason }] },
  });
}

/** Params of `attach`. */
export const AttachParams = z.looseObject({
  execution_id: ExecutionIdParam,
  from_seq: z.number().int().min(0).optional(),
  tail_bytes: z.number().int().min(0).optional().describe(
    "Instead of `from_seq`: start this many bytes before the end of the output so far.",
  ),
  encoding: OutputEncoding,
  window: FlowWindow,
  hold: Hold,
}).refine((p) => p.from_seq === undefined || p.tail_bytes === undefined, {
  message: "give from_seq or tail_bytes, not both",
  path: ["tail_bytes"],
});

/** Params of the legacy `ack`: the client has consumed a run's output up to `seq`. */
export const AckParams = z.looseObject({
  execution_id: ExecutionIdParam,
  seq: z.number().int().min(0),
});

/** Params of the legacy `input`: bytes for a run's stdin, which must have been kept open. */
export const InputParams = z.looseObject({
  execution_id: ExecutionIdParam,
  data: z.string().optional().describe("Text to write."),
  data_base64: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "expected base64").optional()
    .describe("Bytes to write, base64-encoded (instead of `data`)."),
  offset: z.number().int().min(0).optional().describe(
    "Where the input starts in the run's stdin stream, in bytes: bytes already accepted are " +
      "skipped, so a client may resend after a reconnect without doubling them.",
  ),
  close: z.boolean().optional().describe("Close stdin after this input."),
}).refine((p) => p.data === undefined || p.data_base64 === undefined, {
  message: "give data or data_base64, not both",
  path: ["data_base64"],
});

/** Params of `list`. */
export const ListParams = z.looseObject({
  state: z.enum(["running", "ended", "all"]).default("all"),
  limit: z.number().int().min(1).max(1000).default(100),
});

/** Validated `control` params. */
export type ControlParams = z.infer<typeof ControlParams>;

/** Params of `estimate` (and the MCP `estimate_timeout` tool). */
export const EstimateParams = z.looseObject({
  command: NoNul("command").min(1).optional().describe(
    "The command line to estimate a time limit for. Give this or `args`.",
  ),
  args: z.array(NoNul("argument")).min(1).optional().describe(
    "An argv (run without a shell) to estimate a time limit for. Give this or `command`.",
  ),
}).refine((p) => (p.command === undefined) !== (p.args === undefined), {
  message: "give either command or args",
  path: ["command"],
});

/** Params of `history`. */
export const HistoryParams = z.looseObject({
  limit: z.number().int().min(1).max(1000).default(20).describe("Records to return, newest first."),
  class: z.string().min(1).optional().describe("Only runs of this command class."),
});

/**
 * `params` without its null members: clients written in Python send
 * `"cwd": None` for "not given", and no param gives null a meaning of its
 * own (`timeout: null` is an automatic limit, as when it is absent).
 */
function withoutNulls(params: unknown): unknown {
  if (typeof params !== "object" || params === null || Array.isArray(params)) return params;
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== null));
}

/**
 * Validates `params` against `schema`, or throws a -32602 error whose `data`
 * says which field and why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ControlParams, parseParams } from "./exec_params.ts";
 * assert.throws(() => parseParams(ControlParams, { type: "STOP" }), (e: any) =>
 *   e.code === -32602 && e.data.field === "type");
 * ```
 */
export function parseParams<T extends z.ZodType>(schema: T, params: unknown): z.output<T> {
  const result = schema.safeParse(withoutNulls(params ?? {}));
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join(".") || "params";
  throw new InvalidParamsError("Invalid params", {
    data: {
      field,
      reason: issue.message,
      issues: result.error.issues.map((i) => ({
        field: i.path.map(String).join(".") || "params",
        reason: i.message,
      })),
    },
  });
}
