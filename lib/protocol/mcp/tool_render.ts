/**
 * The text and structured content of MCP tool results: a run's outcome in a
 * sentence, its output in sections, each result kept under the message cap.
 * Pure: reads an {@linkcode Execution}, changes nothing.
 *
 * @module
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types";
import type { ExecutorError } from "../../errors.ts";
import { hookFields } from "../../ops/hooks.ts";
import type { HookOutcome } from "../../types.ts";
import type { Run } from "../../core/run.ts";
import type { RemoteRunSummary } from "../../cluster/cluster.ts";
import { readOutput, tailOutput } from "../../output/text.ts";
import { truncateText } from "../../output/text_truncate.ts";
import { utf8Length } from "../../utf8.ts";
import { MAX_LISTED } from "./tool_schemas.ts";

/** Largest tool result, encoded; the transport's limit is 1 MiB for the whole message. */
const MAX_RESULT_BYTES = 1024 * 1024 - 4096;
/** Below this per-output budget a result is sent as it is. */
const MIN_BUDGET = 256;

/** Seconds, for text. */
const secs = (s: number) => `${Math.round(s * 1000) / 1000}s`;

/** What every result says about a run. */
export function summary(exec: Run): Record<string, unknown> {
  const x = exec.exit;
  return {
    execution_id: exec.id,
    command: exec.spec.display,
    state: exec.phase,
    status: exec.state,
    running: exec.active,
    exit_code: x?.exitCode ?? null,
    signal: x?.signal ?? null,
    error: x?.error ?? null,
    duration_seconds: exec.durationSeconds,
    timeout: exec.spec.timeout,
    timeout_source: exec.spec.timeoutSource,
    pid: exec.pid,
    pgid: exec.pgid,
    stdin_open: exec.stdinOpen,
    output_bytes: exec.output.next,
    started_at: new Date(exec.startedAt).toISOString(),
    // Whose it is: the caller's own, unless the caller is an admin.
    principal: exec.principal,
    detached: exec.detached,
    attached: exec.attached,
    node: exec.node,
  };
}

/** One line on a hook's outcome, with what it printed when it failed. */
function hookLine(o: HookOutcome): string {
  const code = o.exitCode !== null ? ` (exit ${o.exitCode})` : "";
  let line = `Hook ${o.kind} ${o.name}: ${o.status}${code} after ${secs(o.duration)}` +
    (o.required ? ", required" : "") + (o.error !== null ? `: ${o.error}` : "") + "\n";
  if (!o.ok && o.output.length > 0) {
    line += o.output + (o.output.endsWith("\n") ? "" : "\n");
  }
  return line;
}

/**
 * The hooks that ran for a run, for a result: a line each for the text and
 * `hooks` (their wire fields) for the structured content; nothing when no
 * hook ran.
 */
function hookParts(exec: Run): { text: string; structured: Record<string, unknown> } {
  if (exec.hooks.length === 0) return { text: "", structured: {} };
  return {
    text: exec.hooks.map(hookLine).join(""),
    structured: { hooks: exec.hooks.map(hookFields) },
  };
}

/**
 * A result of `start` or `control`: `text`, then the run's hooks, and the
 * run's summary.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Execution } from "../../core/execution.ts";
 * import { Metrics } from "../../ops/metrics.ts";
 * import { summaryResult } from "./tool_render.ts";
 * const exec = Execution.spawn({
 *   id: "demo", sessionId: null, metrics: new Metrics(),
 *   sink: { emit: () => {}, ready: () => Promise.resolve() },
 *   spec: { argv: ["true"], display: "true", env: { PATH: "/usr/bin:/bin" },
 *     timeout: 10, timeoutSource: "request", idleTimeout: null, framing: "chunk" },
 *   limits: { chunkSize: 65536, lineLimit: 65536, flushIntervalMs: 5, killGraceMs: 1000,
 *     orphanGraceMs: 500, outputRetention: 65536 },
 * });
 * exec.run();
 * await exec.done;
 * const r = summaryResult(exec, "Done.\n");
 * assert.deepEqual(r.content, [{ type: "text", text: "Done.\n" }]);
 * assert.equal((r.structuredContent as { state: string }).state, "ended");
 * ```
 */
export function summaryResult(exec: Run, text: string): CallToolResult {
  const hooks = hookParts(exec);
  return result(text + hooks.text, { ...summary(exec), ...hooks.structured });
}

/** One sentence on where a run stands. */
export function outcome(exec: Run): string {
  const x = exec.exit;
  if (x === null) {
    return `Still running (${exec.state}) after ${secs(exec.durationSeconds)}; ` +
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
    case "lost":
      return `Lost: ${x.error} (${after}; it was not run again).`;
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

export function result(
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

/** A result built for a budget, and the output bytes it holds (at most the budget). */
export type Built = [result: CallToolResult, outputBytes: number];

/**
 * Builds a result with a per-output budget, shrinking it until the encoded
 * result fits. Each build is measured once, and the next budget is the
 * output it held scaled by how far over the cap it was (the encoding grows
 * about linearly with the output), so an oversized output costs two or three
 * encodings rather than one per halving.
 *
 * @example A budget that would overflow is cut to fit
 * ```ts
 * import assert from "node:assert/strict";
 * import { fit, result } from "./tool_render.ts";
 * const output = "\u0001".repeat(1024 * 1024); // six bytes each once escaped
 * const builds: number[] = [];
 * const r = fit(4 * 1024 * 1024, (budget) => {
 *   builds.push(budget);
 *   const text = output.slice(0, budget);
 *   return [result(text, {}), text.length];
 * });
 * assert.ok(JSON.stringify(r).length <= 1024 * 1024);
 * assert.ok(builds.length <= 3, `builds: ${builds}`);
 * ```
 */
export function fit(limit: number, build: (budget: number) => Built): CallToolResult {
  for (let budget = limit;;) {
    const [r, used] = build(budget);
    if (budget <= MIN_BUDGET) return r;
    const size = utf8Length(JSON.stringify(r));
    if (size <= MAX_RESULT_BYTES) return r;
    // Never the same budget twice: at least a little smaller each round.
    const scaled = Math.floor(Math.min(used, budget) * (MAX_RESULT_BYTES / size) * 0.95);
    budget = Math.max(MIN_BUDGET, Math.min(scaled, budget - 1));
  }
}

/** The `execute` result: the run's outcome and the tail of each stream, in `limit` bytes each. */
export function runResult(exec: Run, outputLimit: number): CallToolResult {
  return fit(outputLimit, (limit) => {
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
      text += "It goes on in the background: read_output with this execution_id and offset " +
        `${tail.next} continues the output (wait_for "exit" waits for its end); control ` +
        "CANCEL ends it.\n";
    }
    const hooks = hookParts(exec);
    text += hooks.text;
    if (omitted.stdout + omitted.stderr > 0) {
      text += "Earlier output was left out; read_output returns what the server still " +
        "retains from offset 0.\n";
    }
    text += sections([
      { name: "stdout", text: tail.stdout, omitted: omitted.stdout },
      { name: "stderr", text: tail.stderr, omitted: omitted.stderr },
    ]);
    const built = result(text, {
      ...summary(exec),
      ...hooks.structured,
      stdout: tail.stdout,
      stderr: tail.stderr,
      stdout_omitted_bytes: omitted.stdout,
      stderr_omitted_bytes: omitted.stderr,
      next_offset: tail.next,
    }, x !== null && x.status !== "completed");
    return [built, Math.max(tail.kept.stdout, tail.kept.stderr)];
  });
}

/** The `start` result: where the run can be followed. */
export function startResult(exec: Run): CallToolResult {
  const text = `Started execution ${exec.id} (pid ${exec.pid}); timeout ` +
    `${exec.spec.timeout ?? "none"}s (${exec.spec.timeoutSource})` +
    (exec.stdinOpen ? "; stdin is open for send_input" : "") +
    ". Use read_output to follow it.\n";
  return summaryResult(exec, text);
}

/**
 * The `read_output` result: at most `max` bytes of output from `from`, or
 * the last `from.tail` bytes (at most `max`).
 */
export function pageResult(
  exec: Run,
  from: number | { tail: number },
  max: number,
): CallToolResult {
  return fit(max, (limit) => {
    const offset = typeof from === "number"
      ? from
      : Math.max(0, exec.output.next - Math.min(from.tail, limit));
    const page = readOutput(exec.output, offset, limit);
    let text = outcome(exec) + "\n";
    if (exec.exit !== null && exec.exit.exitCode !== null && exec.exit.status !== "completed") {
      text += `exit_code: ${exec.exit.exitCode}\n`;
    }
    const hooks = hookParts(exec);
    text += hooks.text;
    text += `Output bytes ${page.start} to ${page.next}; next_offset: ${page.next}`;
    if (page.remaining > 0) text += `; ${page.remaining} more bytes available now`;
    if (page.skipped > 0) text += `; ${page.skipped} bytes before it are no longer retained`;
    text += ".\n" + sections([
      { name: "stdout", text: page.stdout, omitted: 0 },
      { name: "stderr", text: page.stderr, omitted: 0 },
    ]);
    const built = result(text, {
      ...summary(exec),
      ...hooks.structured,
      offset: page.start,
      next_offset: page.next,
      remaining_bytes: page.remaining,
      skipped_bytes: page.skipped,
      stdout: page.stdout,
      stderr: page.stderr,
    });
    return [built, page.next - page.start];
  });
}

/** The `list_executions` result: the newest {@linkcode MAX_LISTED} of `all`. */
export function listResult(all: Run[], elsewhere: RemoteRunSummary[] = []): CallToolResult {
  // One list, oldest first: this node's runs and those of other nodes.
  const entries = [
    ...all.map((e) => ({ at: e.startedAt, line: () => listLine(e), structured: () => summary(e) })),
    ...elsewhere.map((r) => ({
      at: r.meta.startedAt,
      line: () =>
        `${r.meta.id}  ${r.state}  ${secs(age(r))}  ${truncateText(r.meta.display, 200)}` +
        `  (node ${r.meta.node})`,
      structured: () => remoteSummary(r),
    })),
  ].sort((a, b) => a.at - b.at);
  const shown = entries.slice(-MAX_LISTED).reverse();
  const text = shown.length === 0 ? "No executions.\n" : `${entries.length} executions` +
    (entries.length > shown.length ? `, newest ${shown.length}` : "") +
    ":\n" + shown.map((e) => e.line()).join("\n") + "\n";
  return result(text, { executions: shown.map((e) => e.structured()), total: entries.length });
}

function listLine(e: Run): string {
  const code = e.exit?.signal ?? e.exit?.exitCode;
  const command = truncateText(e.spec.display, 200);
  return `${e.id}  ${e.state}${code !== undefined && code !== null ? ` (${code})` : ""}  ` +
    `${secs(e.durationSeconds)}  ${command}` + (e.node !== null ? `  (node ${e.node})` : "");
}

function age(r: RemoteRunSummary): number {
  return Math.round(Date.now() - r.meta.startedAt) / 1000;
}

/** {@linkcode summary} of a running run of another node that no relay here follows. */
function remoteSummary(r: RemoteRunSummary): Record<string, unknown> {
  const m = r.meta;
  return {
    execution_id: m.id,
    command: m.display,
    state: "running",
    status: r.state === "paused" ? "paused" : "running",
    running: true,
    exit_code: null,
    signal: null,
    error: null,
    duration_seconds: age(r),
    timeout: m.timeout,
    timeout_source: m.timeoutSource,
    pid: m.pid,
    pgid: m.pgid,
    stdin_open: m.stdinOpen,
    output_bytes: null,
    started_at: new Date(m.startedAt).toISOString(),
    principal: m.principal,
    detached: m.detached,
    attached: false,
    node: m.node,
  };
}
