/**
 * Executions spawned straight from the core, for tests below the session:
 * a spec from an argv, and small limits.
 *
 * @module
 */
import type { ExecutionLimits } from "../lib/core/execution.ts";
import type { ExecSpec } from "../lib/types.ts";

/** The spec of `argv` with a request limit of 30 s and a minimal PATH; `extra` overrides. */
export function execSpec(argv: string[], extra: Partial<ExecSpec> = {}): ExecSpec {
  return {
    argv,
    display: argv.join(" "),
    env: { PATH: "/usr/bin:/bin" },
    timeout: 30,
    timeoutSource: "request",
    idleTimeout: null,
    framing: "chunk",
    ...extra,
  };
}

/** Small limits: 1 KiB messages, short graces; `extra` overrides. */
export function execLimits(extra: Partial<ExecutionLimits> = {}): ExecutionLimits {
  return {
    chunkSize: 1024,
    lineLimit: 1024,
    flushIntervalMs: 5,
    killGraceMs: 500,
    orphanGraceMs: 200,
    outputRetention: 64,
    ...extra,
  };
}
