/**
 * Where every command a client or a hook asks for is spawned and signalled.
 * Each runs as the leader of its own session and process group (pgid = pid),
 * and every signal goes to the whole group, so grandchildren of `sh -c` are
 * paused, resumed and killed with it. The short-lived helpers the service
 * runs for itself (`nvidia-smi` in lib/ops/monitor.ts, `getent`, sandbox
 * and run-as probes, the cgroup helper shell, `kill`, `ps`, `cat`) are
 * spawned by the modules that need them.
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
 * Given a cgroup (lib/process/run_cgroup.ts), the command joins it before it runs, and
 * the cgroup reaches what leaves the group: SIGSTOP and SIGCONT go to every
 * process in it, SIGKILL is also a `cgroup.kill`, and terminate() ends it
 * once the group is gone.
 *
 * @module
 */
import type { RunCgroup } from "./run_cgroup.ts";
import { type ChildConfinement, commandStatus, launchArgv } from "./launch.ts";
import {
  confinedProgram,
  granted,
  resolveProgram,
  setsidProgram,
  wrapperShellRunnable,
} from "./program.ts";
import {
  type GroupSignal,
  killCommandNeeded,
  killDirect,
  liveGroups,
  PROBE_INTERVAL_MS,
  signalGroup,
} from "./group_signal.ts";
import { recheckCwdSync } from "../security/workspace.ts";
import { settlesWithin, sleep } from "../async.ts";

export { groupPids, type GroupSignal, signalGroup } from "./group_signal.ts";

/** What to spawn. */
export interface SpawnOptions {
  /** argv; argv[0] is the program (looked up on the child's PATH). */
  argv: readonly string[];
  cwd?: string | undefined;
  /** The complete environment; nothing of the server's own is inherited. */
  env: Readonly<Record<string, string>>;
  /** Open a stdin pipe; otherwise stdin is /dev/null. */
  stdin: boolean;
  /** The run's own cgroup (lib/process/run_cgroup.ts), joined before the command runs and ended by terminate(). */
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

/**
 * How often termination checks whether the group is gone when every check
 * runs the kill program (a scoped --allow-run); else {@linkcode PROBE_INTERVAL_MS}.
 */
const KILL_COMMAND_PROBE_INTERVAL_MS = 100;

const isPowerOfTwo = (n: number) => (n & (n - 1)) === 0;

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
    const setsid = setsidProgram();
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
        // None given: the sandbox picks the service's directory if it shows it, else /.
        cwd: options.cwd,
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
      : killCommandNeeded()
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
    const alive = killCommandNeeded()
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
    const interval = killCommandNeeded() ? KILL_COMMAND_PROBE_INTERVAL_MS : PROBE_INTERVAL_MS;
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
