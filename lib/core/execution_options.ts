/**
 * What an execution is started with: its options and the limits it runs
 * under (from the config).
 *
 * @module
 */
import type { Metrics } from "../ops/metrics.ts";
import type { Sink } from "./sink.ts";
import type { ExecSpec } from "../types.ts";

/** Limits an execution runs under (from the config). */
export interface ExecutionLimits {
  chunkSize: number;
  lineLimit: number;
  flushIntervalMs: number;
  killGraceMs: number;
  orphanGraceMs: number;
  outputRetention: number;
}

/** Everything needed to start an execution. */
export interface ExecutionOptions {
  id: string;
  /** Owning session, for listings; null when none. */
  sessionId: string | null;
  /** Who started it (lib/security/principal.ts): only it, or an admin, may see or control it. Default `local`. */
  principal?: string;
  spec: ExecSpec;
  sink: Sink;
  limits: ExecutionLimits;
  metrics: Metrics;
  /** `performance.now()` when the request arrived, for the start latency figure. */
  receivedAt?: number;
  /** Bytes of input {@linkcode Execution.writeInput} holds while the child does not read it. */
  stdinBuffer?: number;
}
