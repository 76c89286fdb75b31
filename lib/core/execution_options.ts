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
  /** Milliseconds a detached run goes on with no one attached or reading it; default an hour. */
  detachTimeoutMs?: number;
}

/** Everything needed to start an execution. */
export interface ExecutionOptions {
  id: string;
  /** Owning session, for listings; null when none. */
  sessionId: string | null;
  /** Who started it (lib/security/principal.ts): only it, or an admin, may see or control it. Default `local`. */
  principal?: string;
  /** The node it runs on, in a multi-node deployment (lib/cluster/); absent: none. */
  node?: string | null | undefined;
  spec: ExecSpec;
  /** Where its events go first (the starting client); more may subscribe to `feed`. Absent: no one yet. */
  sink?: Sink | undefined;
  /** The run survives its consumers (see lib/core/run_feed.ts); default false. */
  detached?: boolean;
  limits: ExecutionLimits;
  metrics: Metrics;
  /** `performance.now()` when the request arrived, for the start latency figure. */
  receivedAt?: number;
  /** Bytes of input {@linkcode Execution.writeInput} holds while the child does not read it. */
  stdinBuffer?: number;
}
