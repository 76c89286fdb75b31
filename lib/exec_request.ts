/**
 * Turns validated `execute` params into an {@linkcode ExecSpec}: what argv
 * runs, in which directory and environment, under which time limit. The one
 * place those decisions are made, whatever protocol the request came in on.
 *
 * @module
 */
import type { Config } from "./config.ts";
import { isLoaderEnvName } from "./config.ts";
import { CommandRefusedError, InvalidParamsError } from "./errors.ts";
import type { ExecuteParams } from "./exec_params.ts";
import type { ExecSpec } from "./types.ts";

/** The settings resolution depends on. */
export type ExecRequestConfig = Pick<
  Config,
  "shell" | "childEnv" | "defaultTimeout" | "maxTimeout"
>;

function fieldError(field: string, reason: string): InvalidParamsError {
  return new InvalidParamsError("Invalid params", { data: { field, reason } });
}

/**
 * Resolves an `execute` request.
 *
 * @throws {CommandRefusedError} for an empty command.
 * @throws {InvalidParamsError} naming the field for anything else wrong.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveExecSpec } from "./exec_request.ts";
 * const config = { shell: "/bin/sh", childEnv: { PATH: "/usr/bin:/bin" },
 *   defaultTimeout: 600, maxTimeout: 86400 };
 * const spec = await resolveExecSpec({ command: "echo hi", timeout: 5 }, config);
 * assert.deepEqual(spec.argv, ["/bin/sh", "-c", "echo hi"]);
 * assert.equal(spec.timeout, 5);
 * assert.equal(spec.timeoutSource, "request");
 * ```
 */
export async function resolveExecSpec(
  params: ExecuteParams,
  config: ExecRequestConfig,
): Promise<ExecSpec> {
  let argv: readonly string[];
  let display: string;
  if (params.args !== undefined) {
    if (params.command !== undefined) {
      throw fieldError("command", "give either command or args, not both");
    }
    argv = params.args;
    display = params.args.join(" ");
  } else {
    if (params.command === undefined) throw fieldError("command", "required");
    if (params.command.trim() === "") throw new CommandRefusedError("Command cannot be empty");
    argv = [config.shell, "-c", params.command];
    display = params.command;
  }

  let cwd: string | undefined;
  if (params.cwd !== undefined) {
    try {
      cwd = await Deno.realPath(params.cwd);
      if (!(await Deno.stat(cwd)).isDirectory) throw fieldError("cwd", "not a directory");
    } catch (err) {
      if (err instanceof InvalidParamsError) throw err;
      throw fieldError("cwd", "no such directory");
    }
  }

  const env: Record<string, string> = { ...config.childEnv };
  for (const [name, value] of Object.entries(params.env ?? {})) {
    if (isLoaderEnvName(name)) {
      throw fieldError(`env.${name}`, "dynamic-loader variables (LD_*, DYLD_*) are refused");
    }
    env[name] = value;
  }

  for (const field of ["timeout", "idle_timeout"] as const) {
    const value = params[field];
    if (value != null && value > config.maxTimeout) {
      throw fieldError(field, `at most ${config.maxTimeout} seconds`);
    }
  }

  return {
    argv,
    display,
    cwd,
    env,
    stdin: params.stdin,
    timeout: params.timeout ?? config.defaultTimeout,
    timeoutSource: params.timeout != null ? "request" : "default",
    idleTimeout: params.idle_timeout ?? null,
    framing: params.framing ?? "chunk",
  };
}
