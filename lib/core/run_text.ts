/**
 * What a run's errors say: why we ended it, the note on an automatic time
 * limit, and a refused spawn as the client's error.
 *
 * @module
 */
import { isAbsolute, join, normalize } from "node:path";
import { CommandRefusedError } from "../errors.ts";
import type { ExecSpec, FinalStatus } from "../types.ts";

/** Why a run is being ended by us rather than by itself. */
export type EndReason =
  | "canceled"
  | "timeout"
  | "disconnect"
  | "shutdown"
  | "abandoned"
  | "lost";

const AUTO_SOURCE_TEXT = {
  history: "learned from the history of",
  similar: "learned from classes similar to",
  default: "the default for",
} as const;

/** Says that an automatic limit ended the run, where it came from, and how to set one. */
export function automaticNote(spec: ExecSpec): string {
  if (spec.timeoutSource === "request") return "";
  const cls = spec.limitClass === undefined ? "" : ` ${spec.limitClass}`;
  const from = spec.limitNote ?? `${AUTO_SOURCE_TEXT[spec.timeoutSource]}${cls}`;
  return `: an automatic limit (${from}), doubled for the next run of its kind; ` +
    `set "timeout" to choose the limit, or 0 for none`;
}

/** The error of a run we ended, by why. */
export const REASON_TEXT: Record<Exclude<EndReason, "timeout">, string> = {
  canceled: "Canceled by client",
  disconnect: "Client disconnected",
  shutdown: "Server shutting down",
  abandoned: "Detached run ended: no client attached to it or read it for detach-timeout",
  lost: "Lost: this node was cut off from the cluster and declared dead, so its runs were " +
    "ended (they are never run again)",
};

/**
 * A spawn refused by the service's Deno permissions (NotCapable: the program
 * is outside the `--allow-run` list `deno task start` computed from
 * ALLOWED_COMMANDS) or by the OS (EACCES), as the client's error: a refusal,
 * not an internal error. Null for any other failure.
 */
export function spawnRefusal(err: unknown, spec: ExecSpec): CommandRefusedError | null {
  const program = spec.argv[0] ?? "";
  if (err instanceof Deno.errors.NotCapable) {
    // Deno checks a path as given (resolved against the cwd), a bare name as
    // found on the child's PATH, against the list resolved when it started.
    const path = !program.includes("/")
      ? null
      : isAbsolute(program)
      ? normalize(program)
      : spec.cwd !== undefined
      ? join(spec.cwd, program)
      : program;
    const how = path !== null
      ? `the service's Deno permissions (--allow-run) do not cover '${path}'; to allow it, ` +
        "list that full path in ALLOWED_COMMANDS (--allowed-commands) and restart the service"
      : "on the child's PATH it names a program outside the service's Deno permissions " +
        "(--allow-run); to allow it, list that program's full path in ALLOWED_COMMANDS " +
        "(--allowed-commands) and restart the service, or keep env.PATH to directories " +
        "holding listed programs";
    return new CommandRefusedError(`Command '${program}' is not allowed: ${how}`, {
      data: { reason: "not_permitted", program, ...(path !== null ? { path } : {}) },
      cause: err,
    });
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return new CommandRefusedError(
      `Cannot run '${program}': permission denied (the program is not executable by the ` +
        "service's user, or the working directory is not accessible)",
      { data: { reason: "os_permission_denied", program }, cause: err },
    );
  }
  return null;
}

/** What {@linkcode endOfRun} decides from. */
export interface EndFacts {
  /** Why we ended it, or null when it ended by itself. */
  reason: EndReason | null;
  exitCode: number | null;
  signal: string | null;
  /** The text of the limit that ran out, when one did. */
  expiry: string | null;
  /** The child found its checked cwd changed and did not run the command. */
  cwdChanged: boolean;
  /** Out-of-memory kills in the run's cgroup, and its memory limit. */
  oomKills: number;
  memoryMax: number | null;
}

/**
 * A run's final status and its `error`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { endOfRun } from "./run_text.ts";
 * const base = { exitCode: null, expiry: null, cwdChanged: false, oomKills: 0, memoryMax: null };
 * assert.deepEqual(endOfRun({ ...base, reason: null, signal: "SIGKILL", oomKills: 1 }), {
 *   final: "failed",
 *   error: "Process killed by the out-of-memory killer",
 * });
 * assert.deepEqual(endOfRun({ ...base, reason: "canceled", signal: "SIGTERM" }), {
 *   final: "canceled",
 *   error: "Canceled by client",
 * });
 * ```
 */
export function endOfRun(facts: EndFacts): { final: FinalStatus; error: string | null } {
  const { reason, exitCode, signal } = facts;
  if (reason === "timeout") return { final: "timeout", error: facts.expiry };
  if (reason === "lost") return { final: "lost", error: REASON_TEXT.lost };
  if (reason !== null) return { final: "canceled", error: REASON_TEXT[reason] };
  const final: FinalStatus = exitCode === 0 ? "completed" : "failed";
  let error: string | null = signal === null ? null : `Process killed by ${signal}`;
  if (facts.cwdChanged) {
    error = "Working directory changed during start: cwd no longer led to the directory " +
      "checked against the workspace roots, so the command was not run";
  }
  if (final === "failed" && facts.oomKills > 0) {
    const max = facts.memoryMax;
    error = `${signal === "SIGKILL" ? "Process" : "A process of the run was"} killed by the ` +
      `out-of-memory killer${max === null ? "" : ` (memory-max ${max} bytes)`}`;
  }
  return { final, error };
}
