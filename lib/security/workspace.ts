/**
 * Confines a requested working directory to the workspace roots
 * (`CC_EXECUTOR_WORKSPACE_ROOTS`). Paths are compared after resolving
 * symlinks and `..`, so neither can lead out of a root.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { type ExecutorErrorOptions, InvalidParamsError } from "../errors.ts";

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

/**
 * Each root's real path, as first resolved. Kept: a command that may write
 * where a root lies (its own directory in /tmp, its home) could otherwise
 * swap the root itself for a symlink to / and move the workspace.
 */
const resolvedRoots = new Map<string, string>();

/** Real paths of the roots that exist (a missing root contains nothing). */
async function realRoots(roots: readonly string[]): Promise<string[]> {
  const real = await Promise.all(roots.map(async (root) => {
    const known = resolvedRoots.get(root);
    if (known !== undefined) return known;
    const path = await Deno.realPath(root).catch(() => null);
    if (path !== null) resolvedRoots.set(root, path);
    return path;
  }));
  return real.filter((root) => root !== null);
}

/** The real path of the nearest ancestor of `path` that exists, or null. */
async function realAncestor(path: string): Promise<string | null> {
  for (let dir = dirname(path);; dir = dirname(dir)) {
    const real = await Deno.realPath(dir).catch(() => null);
    if (real !== null) return real;
    if (dir === dirname(dir)) return null;
  }
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
 * Spawn the child in the returned path, not in `cwd`, and have it check
 * that it is there (lib/process/launch.ts): a client that can write inside a root
 * may swap a directory on the path for a symlink between this check and
 * the child's start ({@linkcode recheckCwdSync} and the child's own check
 * catch that).
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
    // cannot probe which paths exist elsewhere on the machine: judged by
    // where its nearest existing ancestor really is, so a symlink inside a
    // root that leads out is no way round.
    if (allowed === null) throw failure(err);
    const ancestor = await realAncestor(resolve(cwd));
    throw ancestor !== null && inside(ancestor)
      ? failure(err)
      : cwdError("outside the workspace roots");
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

/**
 * Checks, just before a spawn, that `real` (a path {@linkcode resolveCwd}
 * returned) still resolves to itself: no symlink has been swapped in on the
 * way since it was checked. Synchronous, so nothing runs between this and a
 * spawn that follows it; the child checks again itself (lib/process/launch.ts),
 * which closes the window this leaves. Quietly passes when the service may
 * not read the path.
 *
 * @throws {WorkspaceError} (code -32602, reason `changed during start` or
 * `does not exist`) when the path now leads elsewhere or nowhere.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recheckCwdSync } from "./workspace.ts";
 * const dir = await Deno.realPath(await Deno.makeTempDir());
 * recheckCwdSync(dir);
 * await Deno.remove(dir);
 * await Deno.symlink("/", dir);
 * assert.throws(() => recheckCwdSync(dir), { code: -32602, message: "Invalid cwd: changed during start" });
 * await Deno.remove(dir);
 * ```
 */
export function recheckCwdSync(real: string): void {
  let now: string;
  try {
    now = Deno.realPathSync(real);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) return;
    throw failure(err);
  }
  if (now !== real) throw cwdError("changed during start");
}
