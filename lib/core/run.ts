/**
 * What sessions and protocols see of a run, wherever its process is: an
 * {@linkcode Execution} here, or a run relayed from another node
 * (lib/cluster/relayed_run.ts). Both keep the same output log, feed and
 * lifecycle, so attach, replay, pacing and control work the same on either.
 *
 * @module
 */
import type { OutputLog } from "../output/output_log.ts";
import type { RunFeed } from "./run_feed.ts";
import type { StdinWrite } from "./stdin_buffer.ts";
import type { EndReason } from "./run_text.ts";
import type { ExecSpec, ExecState, ExitInfo, HookOutcome } from "../types.ts";

/** Signals a client may send a run's group (`control` `SIGNAL`). */
export const CLIENT_SIGNALS = ["INT", "TERM", "KILL", "HUP", "QUIT", "USR1", "USR2"] as const;

/** One of {@linkcode CLIENT_SIGNALS}. */
export type ClientSignal = typeof CLIENT_SIGNALS[number];

/**
 * A running (or finished) command, local or relayed.
 *
 * @example What a listing reads of a run
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Run } from "./run.ts";
 * const describe = (run: Run) => `${run.id} on ${run.node ?? "this node"}: ${run.state}`;
 * assert.equal(typeof describe, "function");
 * ```
 */
export interface Run {
  /** Unique id (`execution_id` on the wire). */
  readonly id: string;
  /** The session that started it here; null for one started elsewhere or by no session. */
  readonly sessionId: string | null;
  /** The id of the principal that started it. */
  readonly principal: string;
  /** The command as resolved (a relayed run knows what its node reported, without env). */
  readonly spec: ExecSpec;
  /** Wall-clock start, ms since the epoch. */
  readonly startedAt: number;
  /** Resolves with the run's end, once `completed` has been emitted. */
  readonly done: Promise<ExitInfo>;
  /** Resolves once the run is being ended or has ended: whoever paces it should let go then. */
  readonly ending: Promise<void>;
  /** The newest output, for replay and reads. */
  readonly output: OutputLog;
  /** Everyone following the run now. */
  readonly feed: RunFeed;
  /** Outcomes of the run's hooks so far. */
  readonly hooks: HookOutcome[];
  /** The node that runs it; null on a single node. */
  readonly node: string | null;
  /** True when its process runs on another node and this is its relay. */
  readonly relayed: boolean;
  readonly pid: number;
  readonly pgid: number;
  readonly state: ExecState;
  readonly active: boolean;
  readonly exit: ExitInfo | null;
  readonly phase: "running" | "ended";
  readonly detached: boolean;
  readonly attached: boolean;
  readonly durationSeconds: number;
  readonly stdinOpen: boolean;
  readonly stdinAccepted: number;
  readonly stdinPending: number;
  readonly stdinBuffer: number;
  readonly bytes: { stdout: number; stderr: number };
  /** Whether `idle_timeout` (not the time limit) ended the run. */
  readonly idleExpired: boolean;
  /** Records a hook's outcome and, unless `emit` is false, sends it to everyone following. */
  recordHook(outcome: HookOutcome, emit?: boolean): void;
  /** Tells everyone following that it was paused, resumed or canceled. */
  announce(type: "paused" | "resumed" | "canceled"): void;
  /** Sends a signal to the whole group. @throws {NoProcessError} once ended. */
  signal(name: ClientSignal): void;
  /** Starts streaming; idempotent. */
  run(): void;
  /** Stops the group; false when already paused. @throws {NoProcessError} unless running. */
  pause(): boolean;
  /** Continues the group; false when not paused. @throws {NoProcessError} once ending. */
  resume(): boolean;
  /** Ends the run; the first reason wins. @throws {NoProcessError} for a client cancel once ended. */
  cancel(reason?: EndReason): Promise<ExitInfo>;
  /** Accepts input for stdin (runs started with `stdin_open`). */
  queueInput(input: string | Uint8Array, close?: boolean): StdinWrite;
  /** {@linkcode queueInput}, resolving with the bytes once the child has taken them. */
  writeInput(text: string | Uint8Array, close?: boolean): Promise<number>;
  /** SIGKILLs the whole group at once (last resort at shutdown). */
  kill(): void;
}
