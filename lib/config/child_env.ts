/**
 * The child-env policy: the part of the server's environment every command
 * starts from, read once at startup. Never the whole env, so the server's
 * secrets cannot reach a child; each command then adds its `PWD` and the
 * request's `env` (lib/security/child_env.ts).
 *
 * @module
 */
import { ConfigError } from "./config_error.ts";

/** Server env vars every child gets, with the value used when the server has none. */
export const CHILD_ENV_DEFAULTS: Readonly<Record<string, string>> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/",
  LANG: "C.UTF-8",
  TERM: "dumb",
};

/**
 * Values every child gets whatever the server's environment holds: commands
 * run without a terminal, so nothing may wait on a pager or a prompt, and
 * Python must write through to its pipe rather than block-buffer (output
 * would not be live). A request's `env` overrides each; a name in
 * `env-allowlist` passes the server's value instead.
 */
export const CHILD_ENV_FIXED: Readonly<Record<string, string>> = {
  PYTHONUNBUFFERED: "1",
  PAGER: "cat",
  GIT_PAGER: "cat",
  GIT_TERMINAL_PROMPT: "0",
  DEBIAN_FRONTEND: "noninteractive",
};

/**
 * Names a child env may never hold: they make the dynamic loader run foreign code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoaderEnvName } from "./child_env.ts";
 * assert.ok(isLoaderEnvName("LD_PRELOAD"));
 * assert.ok(!isLoaderEnvName("PATH"));
 * ```
 */
export function isLoaderEnvName(name: string): boolean {
  return name.startsWith("LD_") || name.startsWith("DYLD_");
}

/**
 * The environment every child starts from: {@linkcode CHILD_ENV_FIXED}, then
 * PATH, HOME, LANG, TERM and the allowlisted names from the server's env
 * (the defaults where it has none), frozen.
 *
 * @param getEnv Reads one of the server's env vars.
 * @param allowlist The `env-allowlist` setting.
 * @throws {ConfigError} when the allowlist names a loader variable.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { baseChildEnv } from "./child_env.ts";
 * const env = baseChildEnv((n) => ({ HOME: "/root", SECRET: "x" })[n], []);
 * assert.equal(env.HOME, "/root");
 * assert.equal(env.SECRET, undefined);
 * assert.equal(env.PAGER, "cat");
 * ```
 */
export function baseChildEnv(
  getEnv: (name: string) => string | undefined,
  allowlist: readonly string[],
): Readonly<Record<string, string>> {
  const childEnv: Record<string, string> = { ...CHILD_ENV_FIXED };
  for (const name of [...Object.keys(CHILD_ENV_DEFAULTS), ...allowlist]) {
    if (isLoaderEnvName(name)) {
      throw new ConfigError(`Invalid CC_EXECUTOR_ENV_ALLOWLIST: ${name} may not be passed on`);
    }
    const value = getEnv(name) ?? CHILD_ENV_DEFAULTS[name];
    if (value !== undefined) childEnv[name] = value;
  }
  return Object.freeze(childEnv);
}
