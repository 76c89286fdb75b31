/**
 * Confines a requested working directory to the workspace roots
 * (`CC_EXECUTOR_WORKSPACE_ROOTS`). Paths are compared after resolving
 * symlinks and `..`, so neither can lead out of a root.
 *
 * @module
 */
import { resolve } from "node:path";
import { type ExecutorErrorOptions, InvalidParamsError } from "./errors.ts";

/**
 * A `cwd` that cannot be used (JSON-RPC code -32602). `data` is
 * `{field: "cwd", reason}`, the shape of other invalid-params errors.
 */
export class WorkspaceError extends InvalidParamsError {
  /** Creates a cwd error. */
  constructor(message: string, options: ExecutorErrorOptions = {}) {
    super(message, options);
    this.name = "WorkspaceError";
  }
}

function cwdError(reason: string, cause?: unknown): WorkspaceError {
  return new WorkspaceError(`Invalid cwd: ${reason}`, { data: { field: "cwd", reason }, cause });
}

const SEPARATOR = Deno.build.os === "windows" ? /[\\/]/ : /\//;

const segments = (path: string): string[] => path.split(SEPARATOR).filter((s) => s !== "");

/** Whether `path` is `root` or below it, segment by segment (`/srv/ab` is not in `/srv/a`). */
function isWithin(path: string, root: string): boolean {
  const p = segments(path);
  const r = segments(root);
  return r.length <= p.length && r.every((segment, i) => segment === p[i]);
}

/** Real paths of the roots that exist (a missing root contains nothing). */
async function realRoots(roots: readonly string[]): Promise<string[]> {
  const real = await Promise.all(roots.map((root) => Deno.realPath(root).catch(() => null)));
  return real.filter((root) => root !== null);
}

function failure(err: unknown): WorkspaceError {
  if (err instanceof Deno.errors.NotFound) return cwdError("does not exist", err);
  // Permission denied, by the OS or by Deno's --allow-read.
  return cwdError("is not accessible", err);
}

/**
 * Resolves `cwd` to its real path (symlinks followed, `..` removed) and
 * checks that it is equal to, or inside, the real path of one of `roots`,
 * and is an existing directory. Roots that do not exist are skipped. A
 * relative `cwd` is taken from the server's own working directory. With
 * roots set, a path outside them is reported as outside whether or not it
 * exists, so the error reveals nothing about the rest of the machine.
 *
 * Spawn the child in the returned path, not in `cwd`, so a symlink
 * swapped in after the check is not followed. A client that can write
 * inside a root can still race a directory rename; roots should be trees
 * such clients do not own above the level they work in.
 *
 * @param cwd The directory a client asked for.
 * @param roots Allowed roots; empty allows any existing directory.
 * @returns The real path of `cwd`.
 * @throws {WorkspaceError} (code -32602) when `cwd` does not exist, is not
 * accessible, is not a directory, or is outside the workspace roots.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveCwd } from "./workspace.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/project`);
 * const real = await Deno.realPath(root);
 * assert.equal(await resolveCwd(`${root}/project/../project`, [root]), `${real}/project`);
 * await assert.rejects(resolveCwd(`${root}/..`, [root]), {
 *   code: -32602,
 *   message: "Invalid cwd: outside the workspace roots",
 * });
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function resolveCwd(cwd: string, roots: readonly string[]): Promise<string> {
  const allowed = roots.length === 0 ? null : await realRoots(roots);
  const inside = (path: string) => allowed === null || allowed.some((r) => isWithin(path, r));
  let real: string;
  try {
    real = await Deno.realPath(cwd);
  } catch (err) {
    // Say "outside" for a missing path outside the roots too, so clients
    // cannot probe which paths exist elsewhere on the machine.
    const lexical = resolve(cwd);
    const lexicallyInside = allowed === null ||
      roots.some((r) => isWithin(lexical, resolve(r))) || inside(lexical);
    throw lexicallyInside ? failure(err) : cwdError("outside the workspace roots");
  }
  if (!inside(real)) throw cwdError("outside the workspace roots");
  let isDirectory: boolean;
  try {
    isDirectory = (await Deno.stat(real)).isDirectory;
  } catch (err) {
    throw failure(err);
  }
  if (!isDirectory) throw cwdError("not a directory");
  return real;
}
