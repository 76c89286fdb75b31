/**
 * Turns validated `execute` params into an {@linkcode ExecSpec}: what argv
 * runs, in which directory and environment, under which time limit. The one
 * place those decisions are made, whatever protocol the request came in on.
 *
 * @module
 */
import { checkArgv, checkCommand } from "../security/command_policy.ts";
import type { Config } from "../config/config.ts";
import { buildChildEnv } from "../security/child_env.ts";
import { CommandRefusedError, InvalidParamsError } from "../errors.ts";
import { resolveCwd } from "../security/workspace.ts";
import { exceedsUtf8 } from "../utf8.ts";
import type { ExecuteParams } from "./exec_params.ts";
import type { ExecSpec } from "../types.ts";
import type { Estimate } from "../timing/estimate.ts";
import { describeLimit } from "../timing/explain.ts";

/** Gives a time limit for a command that came without one (lib/timing/time_limits.ts). */
export interface Estimator {
  /** `command` is the request's `command` string, or its `args` argv. */
  estimate(command: string | readonly string[]): Promise<Estimate>;
}

/** The settings resolution depends on. */
export type ExecRequestConfig = Pick<
  Config,
  | "shell"
  | "childEnv"
  | "maxTimeout"
  | "allowedCommands"
  | "workspaceRoots"
  | "maxCommandLength"
  | "maxEnvBytes"
  | "maxStdinBytes"
  | "memoryMax"
  | "pidsMax"
  | "cgroup"
  | "confinement"
>;

function fieldError(field: string, reason: string): InvalidParamsError {
  return new InvalidParamsError("Invalid params", { data: { field, reason } });
}

/**
 * Without workspace roots any directory will do: check it exists when the
 * service may read it, and otherwise let the spawn decide (a scoped
 * `--allow-read` need not cover every directory a command may run in).
 */
async function checkDirectory(path: string): Promise<string> {
  try {
    if (!(await Deno.stat(path)).isDirectory) throw fieldError("cwd", "not a directory");
  } catch (err) {
    if (err instanceof InvalidParamsError) throw err;
    if (!(err instanceof Deno.errors.NotCapable)) throw fieldError("cwd", "no such directory");
  }
  return path;
}

/**
 * A run's limit from the request and the server's (0: none): the request may
 * only lower it, and only where a controller enforces it. The server's own
 * limit without a controller was warned about at startup, and is not applied.
 */
function runLimit(
  field: "memory_max" | "pids_max",
  requested: number | null | undefined,
  serverMax: number,
  enforced: boolean,
): number | undefined {
  const setting = field.replace("_", "-");
  if (requested == null) return serverMax > 0 && enforced ? serverMax : undefined;
  if (serverMax > 0 && requested > serverMax) {
    throw fieldError(field, `at most ${serverMax} (the server's ${setting})`);
  }
  if (!enforced) {
    const controller = field === "memory_max" ? "memory" : "pids";
    throw fieldError(
      field,
      `not enforced here: no writable ${controller} cgroup controller (see /health containment)`,
    );
  }
  return requested;
}

function checkLength(field: string, text: string, max: number): void {
  if (exceedsUtf8(text, max)) {
    throw fieldError(field, `longer than ${max} bytes`);
  }
}

/**
 * Resolves an `execute` request.
 *
 * @throws {CommandRefusedError} for an empty command, or one the allowlist refuses.
 * @throws {InvalidParamsError} naming the field for anything else wrong.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveExecSpec } from "./exec_request.ts";
 * const config = { shell: "/bin/sh", childEnv: { PATH: "/usr/bin:/bin" },
 *   maxTimeout: 86400, allowedCommands: [], workspaceRoots: [],
 *   maxCommandLength: 65536, maxEnvBytes: 65536, maxStdinBytes: 1048576, memoryMax: 0,
 *   pidsMax: 0 };
 * import { createStore } from "../store/store.ts";
 * import { TimeLimits } from "../timing/time_limits.ts";
 * import { DEFAULT_TIMEOUTS_S } from "../timing/estimate.ts";
 * const store = await createStore({ ephemeral: true });
 * const estimator = new TimeLimits(store, { multiplier: () => 1 }, { ...DEFAULT_TIMEOUTS_S });
 * const spec = await resolveExecSpec({ command: "echo hi", timeout: 5 }, config, estimator);
 * assert.deepEqual(spec.argv, ["/bin/sh", "-c", "echo hi"]);
 * assert.equal(spec.timeout, 5);
 * assert.equal(spec.timeoutSource, "request");
 * const estimated = await resolveExecSpec({ command: "echo hi" }, config, estimator);
 * assert.equal(estimated.timeout, 60);
 * assert.equal(estimated.limitClass, "cmd:echo");
 * // 0: no automatic limit, only max-timeout
 * assert.equal((await resolveExecSpec({ command: "make", timeout: 0 }, config, estimator)).timeout,
 *   86400);
 * // Limits need a cgroup controller (config.cgroup, set by startServer): none here
 * await assert.rejects(resolveExecSpec({ command: "make", memory_max: 1e8 }, config, estimator),
 *   (e: any) => e.code === -32602 && e.data.field === "memory_max");
 * await store.close();
 * ```
 */
export async function resolveExecSpec(
  params: ExecuteParams,
  config: ExecRequestConfig,
  estimator: Estimator,
): Promise<ExecSpec> {
  let argv: readonly string[];
  let display: string;
  const policy = config.allowedCommands;
  if (params.args !== undefined) {
    if (params.command !== undefined) {
      throw fieldError("command", "give either command or args, not both");
    }
    display = params.args.join(" ");
    checkLength("args", display, config.maxCommandLength);
    argv = policy.length > 0 ? checkArgv(params.args, policy).argv : params.args;
  } else {
    if (params.command === undefined) throw fieldError("command", "required");
    if (params.command.trim() === "") throw new CommandRefusedError("Command cannot be empty");
    display = params.command;
    checkLength("command", display, config.maxCommandLength);
    // With an allowlist, no shell ever sees the command: it is split into
    // words here and anything only a shell would act on is refused.
    argv = policy.length > 0
      ? checkCommand(params.command, policy).argv
      : [config.shell, "-c", params.command];
  }

  let cwd: string | undefined;
  if (config.workspaceRoots.length > 0) {
    cwd = await resolveCwd(params.cwd ?? config.workspaceRoots[0]!, config.workspaceRoots);
  } else if (params.cwd !== undefined) {
    cwd = await checkDirectory(params.cwd);
  }

  const env = await buildChildEnv(config.childEnv, cwd, params.env ?? {}, config.maxEnvBytes);
  if (params.stdin !== undefined) checkLength("stdin", params.stdin, config.maxStdinBytes);

  for (const field of ["timeout", "idle_timeout"] as const) {
    const value = params[field];
    if (value != null && value > config.maxTimeout) {
      throw fieldError(field, `at most ${config.maxTimeout} seconds`);
    }
  }

  const memoryMax = runLimit(
    "memory_max",
    params.memory_max,
    config.memoryMax,
    config.cgroup?.memory !== undefined,
  );
  const pidsMax = runLimit(
    "pids_max",
    params.pids_max,
    config.pidsMax,
    config.cgroup?.pids !== undefined,
  );

  // No limit asked for: an automatic one, learned from how long this kind
  // of command took. 0 asks for none: only max-timeout holds.
  const line = params.args ?? params.command!;
  const estimate = params.timeout == null ? await estimator.estimate(line) : null;
  const requested = params.timeout === 0 ? config.maxTimeout : params.timeout!;
  return {
    argv,
    display,
    line,
    cwd,
    cwdChecked: config.workspaceRoots.length > 0,
    env,
    stdin: params.stdin,
    timeout: estimate === null ? requested : Math.min(estimate.timeout_s, config.maxTimeout),
    timeoutSource: estimate === null ? "request" : estimate.source,
    ...(estimate === null
      ? {}
      : { limitClass: estimate.reasoning.class, limitNote: describeLimit(estimate) }),
    idleTimeout: params.idle_timeout ?? null,
    framing: params.framing ?? "chunk",
    cgroup: config.cgroup,
    confinement: config.confinement,
    memoryMax,
    pidsMax,
  };
}
