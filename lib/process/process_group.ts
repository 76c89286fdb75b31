/**
 * The only module that spawns processes or sends signals. Each command runs
 * as the leader of its own session and process group (pgid = pid), and every
 * signal goes to the whole group, so grandchildren of `sh -c` are paused,
 * resumed and killed with it.
 *
 * The new session comes from `setsid` (util-linux) spawned plainly, which
 * calls setsid() and then execs the command in the same process. Deno's
 * `detached: true` does the same but forks the whole server to do it, which
 * costs milliseconds once the server has grown; a plain spawn takes the
 * posix_spawn (vfork) path, whose cost does not grow with the server.
 *
 * The steps around a command (cgroup join, sandbox, run-as user, working
 * directory check) are laid out by lib/process/launch.ts.
 *
 * Given a cgroup (lib/process/cgroup.ts), the command joins it before it runs, and
 * the cgroup reaches what leaves the group: SIGSTOP and SIGCONT go to every
 * process in it, SIGKILL is also a `cgroup.kill`, and terminate() ends it
 * once the group is gone.
 *
 * @module
 */
import { isAbsolute, join, normalize } from "node:path";
import type { RunCgroup } from "./cgroup.ts";
import { type ChildConfinement, commandStatus, launchArgv, WRAPPER_SHELL } from "./launch.ts";
import { recheckCwdSync } from "../security/workspace.ts";
import { settlesWithin, sleep } from "../async.ts";

/** Signals the service sends. */
export type GroupSignal = "SIGSTOP" | "SIGCONT" | "SIGTERM" | "SIGKILL";

/** What to spawn. */
export interface SpawnOptions {
  /** argv; argv[0] is the program (looked up on the child's PATH). */
  argv: readonly string[];
  cwd?: string | undefined;
  /** The complete environment; nothing of the server's own is inherited. */
  env: Readonly<Record<string, string>>;
  /** Open a stdin pipe; otherwise stdin is /dev/null. */
  stdin: boolean;
  /** The run's own cgroup (lib/process/cgroup.ts), joined before the command runs and ended by terminate(). */
  cgroup?: RunCgroup | undefined;
  /**
   * The sandbox and run-as user every command runs under (lib/process/launch.ts);
   * with either, a command never starts without them.
   */
  confinement?: ChildConfinement | undefined;
  /**
   * `cwd` is a real path checked against the workspace roots: the command
   * must start in that very directory, not in whatever its path leads to by
   * the time the child is there (see {@linkcode ProcessGroup.spawn}).
   */
  cwdChecked?: boolean | undefined;
}

/** How often termination checks whether the group is gone. */
const PROBE_INTERVAL_MS = 20;
/** The same when every check runs the kill program (a scoped --allow-run). */
const KILL_COMMAND_PROBE_INTERVAL_MS = 100;

/** Where setsid may be; a fixed list, so no PATH entry can stand in for it. */
export const SETSID_PATHS: readonly string[] = ["/usr/bin/setsid", "/bin/setsid"];

/** setsid to start commands with, null to use `detached: true`; undefined until first spawn. */
let setsidPath: string | null | undefined;

/** Answers of {@linkcode granted}: the service never revokes or requests a permission. */
const grants = new Map<string, boolean>();

/** Asks without prompting: a prompt would block the server on its terminal. */
function granted(descriptor: Deno.PermissionDescriptor): boolean {
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

function wrapperShellRunnable(): boolean {
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
function resolveProgram(
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
function confinedProgram(
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

/** Set once Deno.kill was refused (scoped --allow-run): use the kill program from then on. */
let needKillCommand = false;

/** Sends a signal with Deno.kill; "refused" when the permission is scoped. */
function killDirect(pgid: number, signal: GroupSignal): boolean | "refused" {
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      needKillCommand = true;
      return "refused";
    }
    // ESRCH (NotFound): the group is empty. EPERM: not ours any more. Either way, gone.
    return false;
  }
}

async function killCommand(pgid: number, signal: GroupSignal): Promise<boolean> {
  const out = await new Deno.Command("kill", {
    args: [`-${signal.slice(3)}`, "--", `-${pgid}`],
    stdout: "null",
    stderr: "null",
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
  }).output();
  return out.success;
}

/**
 * Sends a signal to a process group. Uses `Deno.kill(-pgid)` (synchronous, so
 * the signal is sent before this returns), which needs an unscoped
 * `--allow-run`; under a scoped list it runs `kill -SIG -- -pgid` instead.
 *
 * @returns false when no process of the group exists any more.
 */
export function signalGroup(pgid: number, signal: GroupSignal): Promise<boolean> {
  if (!needKillCommand) {
    const direct = killDirect(pgid, signal);
    if (direct !== "refused") return Promise.resolve(direct);
  }
  return killCommand(pgid, signal);
}

/**
 * Lists the live (non-zombie) pids whose process group is `pgid`, from /proc.
 * Used by tests; termination takes one census for all groups instead.
 *
 * @throws {Deno.errors.NotCapable} without --allow-all: Deno guards /proc.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { groupPids } from "./process_group.ts";
 * assert.deepEqual(await groupPids(2 ** 22 + 1), []);
 * ```
 */
export async function groupPids(pgid: number): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
    } catch {
      continue; // exited while we looked
    }
    // The command name may contain spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const state = fields[0];
    const pgrp = Number(fields[2]);
    if (pgrp === pgid && state !== "Z" && state !== "X") pids.push(Number(entry.name));
  }
  return pids;
}

const isPowerOfTwo = (n: number) => (n & (n - 1)) === 0;

/**
 * Where a census of live processes comes from: /proc (Deno grants it only
 * with --allow-all), else `ps` (a process of its own, which Deno's rules do
 * not bind), else nowhere. Probed once: a refused /proc read throws, and
 * costs an error object, every time.
 */
let censusSource: "proc" | "ps" | "none" | undefined;

function probeCensusSource(): "proc" | "ps" | "none" {
  try {
    Deno.readTextFileSync("/proc/self/stat");
    return "proc";
  } catch {
    // NotCapable without --allow-all; no /proc at all off Linux.
  }
  return granted({ name: "run", command: "ps" }) ? "ps" : "none";
}

/** The newest census; reused by every group that asks soon after, so 12 cancels take one. */
let census: { at: number; live: Promise<Set<number> | null> } | null = null;

/**
 * The process groups that have a live (non-zombie) member, from a census
 * started at or after `since` (one taken earlier could predate a group's
 * members), or null when no census can be taken.
 */
function liveGroups(since: number): Promise<Set<number> | null> {
  const now = performance.now();
  if (census !== null && census.at >= since && now - census.at < PROBE_INTERVAL_MS) {
    return census.live;
  }
  census = { at: now, live: takeCensus() };
  return census.live;
}

async function takeCensus(): Promise<Set<number> | null> {
  censusSource ??= probeCensusSource();
  if (censusSource === "proc") return await procCensus();
  if (censusSource === "none") return null;
  const live = await psCensus();
  if (live === null) censusSource = "none"; // missing or refused: do not try again
  return live;
}

async function procCensus(): Promise<Set<number>> {
  const live = new Set<number>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      // After the last ')' (the name may hold one): state ppid pgrp ...
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ", 3);
      if (state !== "Z" && state !== "X") live.add(Number(pgrp));
    } catch {
      // exited while we looked
    }
  }
  return live;
}

async function psCensus(): Promise<Set<number> | null> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("ps", {
      args: ["-e", "-o", "pgid=,stat="],
      stdout: "piped",
      stderr: "null",
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
    }).output();
  } catch {
    return null;
  }
  if (!out.success) return null;
  const live = new Set<number>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const [pgid, state] = line.trim().split(/\s+/);
    if (pgid === undefined || state === undefined || !/^\d+$/.test(pgid)) continue;
    if (!state.startsWith("Z") && !state.startsWith("X")) live.add(Number(pgid));
  }
  // Not even the server itself listed: this is not a ps that can be read.
  return live.size > 0 ? live : null;
}

/**
 * A spawned command and its process group.
 *
 * @example Run a command and wait for it
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProcessGroup } from "./process_group.ts";
 * const group = ProcessGroup.spawn({ argv: ["true"], env: { PATH: "/usr/bin:/bin" }, stdin: false });
 * assert.equal(group.pgid, group.pid);
 * await group.stdout.cancel();
 * await group.stderr.cancel();
 * assert.equal((await group.status).code, 0);
 * ```
 */
export class ProcessGroup {
  /** Pid of the leader (the spawned command). */
  readonly pid: number;
  /** Process group id; equals {@linkcode pid}. */
  readonly pgid: number;
  /** Leader's stdout. */
  readonly stdout: ReadableStream<Uint8Array>;
  /** Leader's stderr. */
  readonly stderr: ReadableStream<Uint8Array>;
  /** Leader's stdin when requested, else null. */
  readonly stdin: WritableStream<Uint8Array> | null;
  /** Resolves when the leader exits. */
  readonly status: Promise<Deno.CommandStatus>;
  /**
   * What made the new session: the `setsid` program (fast), or Deno's
   * `detached: true` (a fork of the server) when setsid cannot be used.
   */
  readonly startedBy: "setsid" | "detached";
  #exited = false;
  #terminating: Promise<void> | null = null;
  #signals: Promise<unknown> = Promise.resolve();
  /** Started by setsid, whose setsid() call has not been seen to happen yet. */
  #sessionPending: boolean;
  /** The run's cgroup, when it has one. */
  readonly cgroup: RunCgroup | null;
  /** Whether the cgroup's processes were sent SIGSTOP, and no SIGCONT since. */
  #stopped = false;

  private constructor(
    child: Deno.ChildProcess,
    stdin: boolean,
    viaSetsid: boolean,
    cgroup: RunCgroup | null,
    sandboxed: boolean,
  ) {
    this.cgroup = cgroup;
    this.#sessionPending = viaSetsid;
    this.startedBy = viaSetsid ? "setsid" : "detached";
    this.pid = child.pid;
    this.pgid = child.pid;
    this.stdout = child.stdout;
    this.stderr = child.stderr;
    this.stdin = stdin ? child.stdin : null;
    this.status = child.status.then((s) => {
      this.#exited = true;
      // The leader is bwrap, which reports the command's death by a signal as an exit code.
      return sandboxed ? commandStatus(s) : s;
    });
  }

  /**
   * Spawns `argv` as the leader of a new process group, in `options.cgroup`
   * when given: joined before the command runs through the setsid path,
   * moved in right after the spawn otherwise (a fork in that instant would
   * stay outside the cgroup, though not outside the group). The cgroup is
   * ended if the spawn fails.
   *
   * With `options.cwdChecked`, the directory is checked once more just
   * before the spawn, and then by the child itself before it execs the
   * command (lib/process/launch.ts), which exits 126 if the path no longer leads to
   * that directory. Without a wrapper shell (a scoped `--allow-run`, where
   * Deno forks the server instead), only the first check is made.
   *
   * With `options.confinement` (a sandbox, a run-as user), the command is
   * always started through them, never without: the program is looked up
   * and checked against Deno's --allow-run here, since Deno sees only the
   * first of the wrappers.
   *
   * @throws {Deno.errors.NotFound} when the program or cwd does not exist.
   * @throws {Deno.errors.NotCapable} when a confined program is outside --allow-run.
   * @throws {WorkspaceError} (code -32602) when a checked cwd leads elsewhere now.
   */
  static spawn(options: SpawnOptions): ProcessGroup {
    const [program, ...args] = options.argv;
    if (program === undefined) throw new TypeError("argv must not be empty");
    const checked = options.cwdChecked === true ? options.cwd : undefined;
    const cgroup = options.cgroup ?? null;
    const confinement = options.confinement;
    const confined = confinement?.sandbox !== undefined || confinement?.runAs !== undefined;
    let target = program;
    try {
      // Catches most swaps with an error on the request's cwd; the child's
      // own check catches what happens after this.
      if (checked !== undefined) recheckCwdSync(checked);
      if (confined) target = confinedProgram(program, options.env, options.cwd);
    } catch (err) {
      void cgroup?.end(); // empty: only removes it
      throw err;
    }
    setsidPath ??= findSetsid();
    const setsid = setsidPath;
    let argv: string[];
    let viaSetsid: boolean;
    let joins: boolean;
    if (confined) {
      // Always through the wrappers: a command may never run unconfined.
      const sandbox = confinement!.sandbox;
      const shell = wrapperShellRunnable();
      joins = shell && cgroup !== null;
      argv = launchArgv({
        program: target,
        args,
        join: joins ? cgroup!.prelude() : undefined,
        verifyCwd: checked,
        pwd: options.env.PWD,
        cwd: options.cwd ?? options.env.PWD,
        sandbox,
        runAs: confinement!.runAs,
      });
      viaSetsid = setsid !== null;
    } else {
      const path = setsid === null ? null : resolveProgram(program, options.env, options.cwd);
      // A --deny-run entry would not see through the wrapper either.
      viaSetsid = setsid !== null && typeof path === "string" &&
        granted({ name: "run", command: path });
      const shell = viaSetsid && wrapperShellRunnable();
      // Through setsid, the command joins its cgroup before it runs (RunCgroup.prelude).
      joins = shell && cgroup !== null;
      argv = viaSetsid
        ? launchArgv({
          program: path as string,
          args,
          join: joins ? cgroup!.prelude() : undefined,
          verifyCwd: shell ? checked : undefined,
          pwd: options.env.PWD,
        })
        : [program, ...args];
    }
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(viaSetsid ? setsid! : argv[0]!, {
        // "--" ends setsid's own options. It execs the command in place (no
        // fork) because a child of the server is not a group leader.
        args: viaSetsid ? ["--", ...argv] : argv.slice(1),
        cwd: options.cwd,
        clearEnv: true,
        env: { ...options.env },
        stdin: options.stdin ? "piped" : "null",
        stdout: "piped",
        stderr: "piped",
        detached: !viaSetsid,
      }).spawn();
    } catch (err) {
      void cgroup?.end(); // empty: only removes it
      throw err;
    }
    if (cgroup !== null && !joins) void cgroup.adopt(child.pid);
    return new ProcessGroup(
      child,
      options.stdin,
      viaSetsid,
      cgroup,
      confinement?.sandbox !== undefined,
    );
  }

  /** Whether the leader has exited (its group may still have members). */
  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Sends `signal` to every process in the group; false if the group is gone.
   * Signals reach the group in call order, also through the kill program.
   */
  signal(signal: GroupSignal): Promise<boolean> {
    const previous = this.#signals;
    const sent = this.cgroup !== null
      ? previous.then(() => this.#withCgroup(this.cgroup!, signal))
      : needKillCommand
      ? previous.then(() => signalGroup(this.pgid, signal))
      : this.#sessionPending
      ? this.#signalEarly(signal)
      : signalGroup(this.pgid, signal);
    this.#signals = sent.catch(() => false);
    return sent;
  }

  /**
   * A signal with the cgroup's part, which reaches processes that left the
   * group: SIGSTOP goes to every process of the cgroup as well (so they show
   * as stopped, as the group does), and so does SIGCONT while any may be
   * stopped; SIGKILL is a `cgroup.kill` too. Chained, so always in call order.
   */
  async #withCgroup(cgroup: RunCgroup, signal: GroupSignal): Promise<boolean> {
    const alive = needKillCommand
      ? await signalGroup(this.pgid, signal)
      : this.#sessionPending
      ? await this.#signalEarly(signal)
      : await signalGroup(this.pgid, signal);
    // The group's SIGKILL goes first and at once; the cgroup's may have to
    // queue for the helper shell behind other runs' work (end() waits for
    // the cgroup to empty either way).
    if (signal === "SIGKILL") void cgroup.kill().catch(() => {});
    if (signal === "SIGSTOP" || (signal === "SIGCONT" && this.#stopped)) {
      this.#stopped = signal === "SIGSTOP";
      await cgroup.signal(signal);
    }
    return alive;
  }

  /**
   * Signals a group started by setsid, which may not have called setsid() yet
   * (spawn() returns once setsid is exec'd): kill(-pgid) then finds no group.
   * Once it has, it cannot leave its group (a session leader may not), so
   * "no group" while the leader is unreaped means "not yet". Until then the
   * leader is alone, not having exec'd the command: signal it directly, then
   * the group again in case setsid() ran in between.
   */
  #signalEarly(signal: GroupSignal): Promise<boolean> {
    const direct = killDirect(this.pgid, signal);
    if (direct === "refused") return signalGroup(this.pgid, signal);
    if (direct) {
      this.#sessionPending = false;
      return Promise.resolve(true);
    }
    if (this.#exited) return Promise.resolve(false);
    try {
      Deno.kill(this.pid, signal);
    } catch {
      return Promise.resolve(false); // exited, and reaped just now
    }
    killDirect(this.pgid, signal);
    return Promise.resolve(true);
  }

  /**
   * Ends the whole group: SIGCONT (a stopped process cannot act on SIGTERM),
   * SIGTERM, then SIGKILL if anything is still there after `graceMs`.
   * Resolves when the group is gone, or, for members that cannot be killed
   * (zombies awaiting a parent), shortly after SIGKILL. Safe to call twice.
   * Then the cgroup, if any, is ended: `cgroup.kill` for processes that left
   * the group, and its directories are removed once it is empty.
   */
  terminate(graceMs: number): Promise<void> {
    this.#terminating ??= this.#terminate(graceMs).then(() => this.cgroup?.end());
    return this.#terminating;
  }

  async #terminate(graceMs: number): Promise<void> {
    // Usually the group is gone already (the command exited): one failed
    // kill() says so, and each costs a thrown error.
    if (!await this.signal("SIGCONT")) return;
    if (!await this.signal("SIGTERM")) return;
    if (await this.#gone(graceMs)) return;
    await this.signal("SIGKILL");
    await this.#gone(2000);
  }

  /**
   * Whether nothing alive is left in the group, from one census of all
   * processes taken after `since`; false when no census can be taken.
   */
  async #onlyZombiesLeft(since: number): Promise<boolean> {
    const live = await liveGroups(since);
    return live !== null && !live.has(this.pgid);
  }

  /**
   * Waits up to `ms` for the group to empty. Every wait is a timer, so the
   * event loop runs meanwhile: a zombie can keep the group signalable for
   * seconds, and a loop that only awaited would starve every timer and
   * socket of the server for that long.
   */
  async #gone(ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    // The leader's zombie keeps the group alive until Deno reaps it; nothing to probe before.
    if (!this.#exited && !await settlesWithin(this.status, ms)) return false;
    const since = performance.now();
    const interval = needKillCommand ? KILL_COMMAND_PROBE_INTERVAL_MS : PROBE_INTERVAL_MS;
    for (let probe = 0;; probe++) {
      // SIGCONT is harmless to a live process, and fails once the group is empty.
      if (!await this.signal("SIGCONT")) return true;
      // kill() also reaches zombies that init has not reaped yet; they are
      // dead, so ask a census whether anything alive remains, at once (the
      // usual case: members that died with the leader) and then less and
      // less often (one that ignores SIGTERM will not die before SIGKILL).
      if (isPowerOfTwo(probe + 1) && await this.#onlyZombiesLeft(since)) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await sleep(Math.min(interval, left));
    }
  }
}
