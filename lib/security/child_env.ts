/**
 * The environment one command starts with: the server's clean child
 * environment (`Config.childEnv`: PATH, HOME, LANG, TERM, the agent-safe
 * defaults and the allowlisted names), then `PWD`, then the request's `env`,
 * which may override any of them. Nothing else of the server's own
 * environment is inherited.
 *
 * @module
 */
import { isLoaderEnvName } from "../config/child_env.ts";
import { InvalidParamsError } from "../errors.ts";
import { utf8Length } from "../utf8.ts";

function envError(field: string, reason: string): InvalidParamsError {
  return new InvalidParamsError("Invalid params", { data: { field, reason } });
}

let serverCwd: string | undefined;

/**
 * The real path of the directory a child starts in: `cwd` with symlinks and
 * `..` resolved, or the server's own working directory when `cwd` is
 * undefined (the kernel's, so already free of symlinks). A relative `cwd` is
 * taken from the server's working directory, as the spawn takes it. Null
 * when the service may not read `cwd` (a scoped `--allow-read`): then no
 * `PWD` is set, and a shell sets it from the kernel's (real) path, instead of
 * being handed a symlinked path it would keep.
 *
 * @param cwd The directory the child is spawned in, if one was given.
 * @returns An absolute real path, or null.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workingDirectory } from "./child_env.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.symlink(dir, `${dir}-link`);
 * assert.equal(await workingDirectory(`${dir}-link`), await Deno.realPath(dir));
 * assert.equal(await workingDirectory(undefined), Deno.cwd());
 * await Deno.remove(`${dir}-link`);
 * await Deno.remove(dir);
 * ```
 */
export async function workingDirectory(cwd: string | undefined): Promise<string | null> {
  // The server never changes directory: ask the kernel once.
  if (cwd === undefined) return serverCwd ??= Deno.cwd();
  try {
    return await Deno.realPath(cwd);
  } catch {
    // Not readable by the service, or gone since it was checked: the spawn
    // decides, and the child's shell finds its own directory.
    return null;
  }
}

/**
 * Builds a command's environment. `PWD` is the resolved working directory
 * (a shell keeps an inherited `PWD` that names its directory, so `pwd` and
 * `$PWD` agree with it); the request's `env` is added last and wins.
 *
 * @param base The server's clean child environment (`Config.childEnv`).
 * @param cwd The directory the child is spawned in, if one was given.
 * @param requested The request's `env`.
 * @param maxBytes Limit on the size of `requested` (names and values, UTF-8).
 * @returns The complete environment to spawn with.
 * @throws {InvalidParamsError} (code -32602) naming `env.<NAME>` for a
 * dynamic-loader variable (`LD_*`, `DYLD_*`), or `env` when over `maxBytes`.
 * @example The request overrides a default
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildChildEnv } from "./child_env.ts";
 * const base = { PATH: "/usr/bin:/bin", PYTHONUNBUFFERED: "1", PAGER: "cat" };
 * const env = await buildChildEnv(base, "/", { PAGER: "less" }, 65536);
 * assert.deepEqual(env, { PATH: "/usr/bin:/bin", PYTHONUNBUFFERED: "1", PAGER: "less", PWD: "/" });
 * await assert.rejects(buildChildEnv(base, "/", { LD_PRELOAD: "x.so" }, 65536), { code: -32602 });
 * ```
 */
export async function buildChildEnv(
  base: Readonly<Record<string, string>>,
  cwd: string | undefined,
  requested: Readonly<Record<string, string>>,
  maxBytes: number,
): Promise<Record<string, string>> {
  let bytes = 0;
  for (const [name, value] of Object.entries(requested)) {
    if (isLoaderEnvName(name)) {
      throw envError(`env.${name}`, "dynamic-loader variables (LD_*, DYLD_*) are refused");
    }
    bytes += utf8Length(name) + utf8Length(value) + 2;
  }
  if (bytes > maxBytes) throw envError("env", `larger than ${maxBytes} bytes`);
  const pwd = await workingDirectory(cwd);
  return { ...base, ...(pwd === null ? {} : { PWD: pwd }), ...requested };
}
