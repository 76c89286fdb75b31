/**
 * Which file a command's program is, and whether the service may run it:
 * the lookups and permission checks the spawn path makes before it hands a
 * command to `setsid` and the wrappers (lib/process/launch.ts), which Deno's
 * own --allow-run check does not see through.
 *
 * @module
 */
import { isAbsolute, join, normalize } from "node:path";
import { WRAPPER_SHELL } from "./launch.ts";

/** Where setsid may be; a fixed list, so no PATH entry can stand in for it. */
export const SETSID_PATHS: readonly string[] = ["/usr/bin/setsid", "/bin/setsid"];

/** setsid to start commands with, null to use `detached: true`; undefined until first spawn. */
let setsidPath: string | null | undefined;

/** The setsid program to start commands with, or null to use `detached: true`. */
export function setsidProgram(): string | null {
  setsidPath ??= findSetsid();
  return setsidPath;
}

/** Answers of {@linkcode granted}: the service never revokes or requests a permission. */
const grants = new Map<string, boolean>();

/** Asks without prompting: a prompt would block the server on its terminal. */
export function granted(descriptor: Deno.PermissionDescriptor): boolean {
  const key = JSON.stringify(descriptor);
  let answer = grants.get(key);
  if (answer === undefined) {
    answer = Deno.permissions.querySync(descriptor).state === "granted";
    if (grants.size >= CACHE_MAX) grants.clear();
    grants.set(key, answer);
  }
  return answer;
}

/** Entries the spawn path's caches hold at most (then they start over). */
const CACHE_MAX = 256;

/**
 * How long a program's resolution is trusted, ms. A program removed within
 * it would be handed to setsid, which then fails to exec it (exit 127)
 * rather than Deno refusing the spawn (NotFound): a window kept short.
 */
const RESOLVE_TTL_MS = 1000;

/** Recent answers of {@linkcode resolveProgram}, by what they depend on. */
const resolutions = new Map<string, { path: string | null | false; at: number }>();

/**
 * Whether `path` can be run: true for a regular file everyone may execute,
 * false for nothing to run there (missing, not a file, no execute bit: a
 * PATH lookup skips it), null when only trying would tell (partial execute
 * bits, or no read permission to look).
 */
function runnable(path: string): boolean | null {
  if (!granted({ name: "read", path })) return null;
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return false;
    }
    return null; // NotCapable, or EACCES on a directory on the way
  }
  if (!info.isFile) return false;
  const exec = (info.mode ?? 0) & 0o111;
  return exec === 0o111 ? true : exec === 0 ? false : null;
}

function findSetsid(): string | null {
  // Under a scoped --allow-run list Deno checks only `setsid` against it,
  // whatever setsid then runs, so spawn() checks the program itself first;
  // the list holds setsid only when workspace roots need the child's cwd
  // check (lib/security/permissions.ts).
  return SETSID_PATHS.find((path) =>
    runnable(path) === true && granted({ name: "run", command: path })
  ) ?? null;
}

/** Whether the shell that joins a cgroup and checks the cwd can run; undefined until first needed. */
let wrapperShell: boolean | undefined;

/** Whether the shell that joins a cgroup and checks the cwd (lib/process/launch.ts) can run. */
export function wrapperShellRunnable(): boolean {
  wrapperShell ??= runnable(WRAPPER_SHELL) === true &&
    granted({ name: "run", command: WRAPPER_SHELL });
  return wrapperShell;
}

/**
 * The absolute path Deno would run for `program`; false when surely nothing
 * runnable is there (missing, or not executable, wherever looked); null
 * whenever that is not certain without trying (relative PATH entries, no
 * PATH, nothing readable). Unless it is a path, the spawn goes to Deno with
 * `detached: true`, which throws exactly as it always did (NotFound for a
 * missing program), and the wrapper never runs what Deno would refuse.
 */
export function resolveProgram(
  program: string,
  env: Readonly<Record<string, string>>,
  cwd: string | undefined,
): string | null | false {
  // A path does not depend on PATH, an absolute one not on the cwd either.
  const key = !program.includes("/")
    ? `p\0${env.PATH ?? ""}\0${program}`
    : isAbsolute(program)
    ? `a\0${program}`
    : `r\0${cwd ?? ""}\0${program}`;
  const now = performance.now();
  const hit = resolutions.get(key);
  if (hit !== undefined && now - hit.at < RESOLVE_TTL_MS) return hit.path;
  const path = lookUpProgram(program, env, cwd);
  if (resolutions.size >= CACHE_MAX) resolutions.clear();
  resolutions.set(key, { path, at: now });
  return path;
}

/** {@linkcode resolveProgram} without the cache: stats the candidates. */
function lookUpProgram(
  program: string,
  env: Readonly<Record<string, string>>,
  cwd: string | undefined,
): string | null | false {
  if (program.includes("/")) {
    // Deno resolves a relative path against the requested cwd and normalizes it.
    const path = isAbsolute(program)
      ? normalize(program)
      : cwd !== undefined && isAbsolute(cwd)
      ? join(cwd, program)
      : null;
    if (path === null) return null;
    const found = runnable(path);
    return found === true ? path : found;
  }
  // Without PATH in the child env, Deno searches the server's own PATH.
  const search = env.PATH;
  if (search === undefined) return null;
  for (const dir of search.split(":")) {
    // Deno resolves relative entries (and "") against the server's cwd, not
    // the child's; rare enough to leave to Deno.
    if (!isAbsolute(dir)) return null;
    const path = join(dir, program);
    const found = runnable(path);
    if (found === true) return path;
    if (found === null) return null;
  }
  return false;
}

/**
 * The program a confined spawn execs inside its wrappers, which Deno never
 * sees: what Deno would have checked against its --allow-run is checked
 * here, so a scoped list still holds.
 *
 * @throws {Deno.errors.NotFound} when nothing runnable is there.
 * @throws {Deno.errors.NotCapable} when Deno would not have run it, or
 * under a scoped --allow-run cannot tell which file it is.
 */
export function confinedProgram(
  program: string,
  env: Readonly<Record<string, string>>,
  cwd: string | undefined,
): string {
  const path = resolveProgram(program, env, cwd);
  if (path === false) throw new Deno.errors.NotFound(`No such program: ${program}`);
  if (path === null) {
    // Left to the wrappers' own PATH search, as a shell would do it.
    if (granted({ name: "run" })) return program;
    throw new Deno.errors.NotCapable(`Requires run access to "${program}"`);
  }
  if (!granted({ name: "run", command: path })) {
    throw new Deno.errors.NotCapable(`Requires run access to "${path}"`);
  }
  return path;
}

/**
 * The first of `paths` that is a file some user may execute, or null: how
 * the service finds its own helpers (bwrap, env, setpriv) at fixed paths,
 * so that no PATH entry can stand in for them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { firstRunnable } from "./program.ts";
 * assert.equal(firstRunnable(["/nonexistent/sh", "/bin/sh"]), "/bin/sh");
 * assert.equal(firstRunnable(["/nonexistent/sh"]), null);
 * ```
 */
export function firstRunnable(paths: readonly string[]): string | null {
  for (const path of paths) {
    try {
      const info = Deno.statSync(path);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return path;
    } catch {
      // not there, or not ours to look at
    }
  }
  return null;
}
