/**
 * Argument names the MCP tools do not know. A model that passes
 * `working_directory` or `timeout_ms` (names of its other tools) would see
 * them ignored and believe they took effect, so a tool call with any unknown
 * name is refused before anything runs, naming the unknown names, the valid
 * ones, and what to use instead where a peer tool's name is recognised. The
 * legacy protocol keeps ignoring unknown params (its schemas are loose).
 *
 * @module
 */
import { InvalidParamsError } from "../../errors.ts";

/** A name models carry over from other tools, and what it means here. */
interface Alias {
  /** The arguments it may stand for, most likely first: the first the tool has is suggested. */
  to: readonly string[];
  /** How the value differs, when it does. */
  note?: string;
}

const MS = "in seconds, not milliseconds";

/** Names seen in peer tools' schemas (shell tools of agents and MCP servers). */
const ALIASES: Readonly<Record<string, Alias>> = {
  working_directory: { to: ["cwd"] },
  workdir: { to: ["cwd"] },
  working_dir: { to: ["cwd"] },
  cwd_path: { to: ["cwd"] },
  dir: { to: ["cwd"] },
  directory: { to: ["cwd"] },
  path: { to: ["cwd"] },
  cmd: { to: ["command"] },
  command_line: { to: ["command"] },
  commandLine: { to: ["command"] },
  script: { to: ["command"] },
  shell_command: { to: ["command"] },
  argv: { to: ["args"] },
  arguments: { to: ["args"] },
  environment: { to: ["env"] },
  env_vars: { to: ["env"] },
  envs: { to: ["env"] },
  timeout_ms: { to: ["timeout", "wait_seconds"], note: MS },
  timeoutMs: { to: ["timeout", "wait_seconds"], note: MS },
  timeout_seconds: { to: ["timeout", "wait_seconds"] },
  timeout_secs: { to: ["timeout", "wait_seconds"] },
  time_limit: { to: ["timeout"] },
  timeout: { to: ["wait_seconds"] },
  yield_time_ms: { to: ["wait_seconds"], note: MS },
  wait: { to: ["wait_seconds"] },
  wait_ms: { to: ["wait_seconds"], note: MS },
  block: { to: ["wait_for"] },
  pid: { to: ["execution_id"], note: "the execution_id that execute or start returned" },
  id: { to: ["execution_id"] },
  exec_id: { to: ["execution_id"] },
  executionId: { to: ["execution_id"] },
  process_id: { to: ["execution_id"] },
  session_id: { to: ["execution_id"] },
  shell_id: { to: ["execution_id"] },
  bash_id: { to: ["execution_id"] },
  input: { to: ["stdin"] },
  stdin: { to: ["input"] },
  text: { to: ["input"] },
  data: { to: ["input"] },
  chars: { to: ["input"] },
  eof: { to: ["close_stdin"] },
  close: { to: ["close_stdin"] },
  tail: { to: ["tail_bytes"] },
  last_bytes: { to: ["tail_bytes"] },
  from: { to: ["offset"] },
  since: { to: ["offset"] },
  cursor: { to: ["offset"] },
  start: { to: ["offset"] },
  max_output: { to: ["max_bytes"] },
  max_output_tokens: { to: ["max_bytes"] },
  limit: { to: ["max_bytes"] },
  action: { to: ["type"] },
  op: { to: ["type"] },
  command_type: { to: ["type"] },
  run_in_background: {
    to: [],
    note: "use the start tool for a run that goes on in the background",
  },
  background: { to: [], note: "use the start tool for a run that goes on in the background" },
  description: { to: [], note: "not needed: leave it out" },
  detach: { to: [], note: "not needed: every run outlives the MCP session; leave it out" },
  signal_name: { to: ["signal"] },
  sig: { to: ["signal"] },
};

/** What to use instead of `name` in a tool whose arguments are `valid`, or null. */
function hint(name: string, valid: ReadonlySet<string>): string | null {
  const alias = Object.hasOwn(ALIASES, name) ? ALIASES[name]! : undefined;
  if (alias === undefined) return null;
  const to = alias.to.find((t) => valid.has(t));
  if (to !== undefined) return `use ${to}` + (alias.note !== undefined ? ` (${alias.note})` : "");
  return alias.to.length === 0 && alias.note !== undefined ? alias.note : null;
}

/**
 * Throws when `args` has a name that is not in `valid`: a -32602 error whose
 * message names each unknown name (with what to use instead, when known),
 * says nothing was done, and lists the valid names; `data` holds the same as
 * `unknown`, `valid` and `hints`.
 *
 * @param tool The tool's name, for the message.
 * @param args The call's arguments (anything but an object is left to the schema).
 * @param valid The tool's argument names.
 * @throws {InvalidParamsError} naming the unknown arguments.
 * @example A peer tool's name gets a hint
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkArgNames } from "./tool_args.ts";
 * const valid = ["command", "args", "cwd", "timeout"];
 * checkArgNames("execute", { command: "ls" }, valid);
 * assert.throws(() => checkArgNames("execute", { cmd: "ls", working_directory: "/" }, valid),
 *   (e: any) => e.code === -32602 && e.data.hints.working_directory === "use cwd" &&
 *     /Unknown arguments for execute: cmd \(use command\)/.test(e.message));
 * ```
 */
export function checkArgNames(tool: string, args: unknown, valid: readonly string[]): void {
  if (typeof args !== "object" || args === null || Array.isArray(args)) return;
  const known = new Set(valid);
  const unknown = Object.keys(args).filter((k) => !known.has(k));
  if (unknown.length === 0) return;
  const hints: Record<string, string> = {};
  const named = unknown.map((name) => {
    const h = hint(name, known);
    if (h === null) return name;
    hints[name] = h;
    return `${name} (${h})`;
  });
  const message = `Unknown argument${unknown.length > 1 ? "s" : ""} for ${tool}: ` +
    `${named.join(", ")}. Nothing was done: call it again with valid arguments only. ` +
    `Valid arguments: ${valid.join(", ")}`;
  throw new InvalidParamsError(message, { data: { unknown, valid: [...valid], hints } });
}
