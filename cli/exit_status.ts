/**
 * The CLI's exit status for a remote run, as a local shell would give it:
 * the remote exit code, 128+N for a signal, 124 for a time limit (as
 * `timeout(1)`), 130 after Ctrl-C, and 255 when the run's end was not seen.
 *
 * @module
 */
import { constants } from "node:os";

/** The status when the end of the run was not seen, or the server failed. */
export const EXIT_TRANSPORT = 255;
/** The status after the user interrupted the run (Ctrl-C), as a shell gives for SIGINT. */
export const EXIT_INTERRUPTED = 130;
/** The status of a run its time limit ended, as `timeout(1)` gives. */
export const EXIT_TIMEOUT = 124;
/** The status when the program (or its directory) does not exist, as a shell gives. */
export const EXIT_NOT_FOUND = 127;
/** The status when the program cannot be executed (permission denied), as a shell gives. */
export const EXIT_NOT_EXECUTABLE = 126;
/** The status of a usage error (unknown flag, missing argument). */
export const EXIT_USAGE = 2;
/** The status of a request the server refused (unknown id, invalid params). */
export const EXIT_REFUSED = 1;

/** What `process.completed` says of a run's end. */
export interface RunEnd {
  status: string;
  exit_code?: number | null;
  signal?: string | null;
}

/**
 * 128 + the number of signal `name` (`SIGTERM` or `TERM`); null for a name
 * this platform does not know.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { signalStatus } from "./exit_status.ts";
 * assert.equal(signalStatus("SIGTERM"), 143);
 * assert.equal(signalStatus("KILL"), 137);
 * assert.equal(signalStatus("SIGNOPE"), null);
 * ```
 */
export function signalStatus(name: string): number | null {
  const key = (name.startsWith("SIG") ? name : `SIG${name}`) as keyof typeof constants.signals;
  const n = constants.signals[key];
  return typeof n === "number" ? 128 + n : null;
}

/**
 * The exit status for a run that ended as `end` says.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exitStatus } from "./exit_status.ts";
 * assert.equal(exitStatus({ status: "completed", exit_code: 0 }), 0);
 * assert.equal(exitStatus({ status: "failed", exit_code: 7 }), 7);
 * assert.equal(exitStatus({ status: "failed", exit_code: null, signal: "SIGTERM" }), 143);
 * assert.equal(exitStatus({ status: "timeout", exit_code: null, signal: "SIGTERM" }), 124);
 * assert.equal(exitStatus({ status: "canceled", exit_code: null, signal: "SIGKILL" }), 137);
 * assert.equal(exitStatus({ status: "failed", exit_code: 1 }, { interrupted: true }), 130);
 * assert.equal(exitStatus({ status: "lost" }), 255);
 * ```
 */
export function exitStatus(end: RunEnd, options: { interrupted?: boolean } = {}): number {
  if (options.interrupted) return EXIT_INTERRUPTED;
  const code = end.exit_code ?? null;
  const bySignal = end.signal ? signalStatus(end.signal) : null;
  switch (end.status) {
    case "completed":
      return code ?? 0;
    case "failed":
      return code ?? bySignal ?? 1;
    case "timeout":
      return EXIT_TIMEOUT;
    case "canceled":
      // Ended by someone else's CANCEL: as if killed by the signal that ended it.
      return bySignal ?? (code !== null && code !== 0 ? code : 128 + constants.signals.SIGTERM);
    default:
      // "lost" (its node died) and anything newer than this client.
      return EXIT_TRANSPORT;
  }
}
