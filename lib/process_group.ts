/**
 * The only module that spawns processes or sends signals. Each command runs
 * as the leader of its own process group (`detached: true` starts a new
 * session, so pgid = pid), and every signal goes to the whole group, so
 * grandchildren of `sh -c` are paused, resumed and killed with it.
 *
 * @module
 */

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
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How often termination checks whether the group is gone. */
const PROBE_INTERVAL_MS = 20;

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
 * Used by tests and by shutdown checks to prove nothing is left running.
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
  #exited = false;
  #terminating: Promise<void> | null = null;
  #signals: Promise<unknown> = Promise.resolve();

  private constructor(child: Deno.ChildProcess, stdin: boolean) {
    this.pid = child.pid;
    this.pgid = child.pid;
    this.stdout = child.stdout;
    this.stderr = child.stderr;
    this.stdin = stdin ? child.stdin : null;
    this.status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  /**
   * Spawns `argv` as the leader of a new process group.
   *
   * @throws {Deno.errors.NotFound} when the program or cwd does not exist.
   */
  static spawn(options: SpawnOptions): ProcessGroup {
    const [program, ...args] = options.argv;
    if (program === undefined) throw new TypeError("argv must not be empty");
    const child = new Deno.Command(program, {
      args,
      cwd: options.cwd,
      clearEnv: true,
      env: { ...options.env },
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    return new ProcessGroup(child, options.stdin);
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
    const sent = needKillCommand
      ? previous.then(() => signalGroup(this.pgid, signal))
      : signalGroup(this.pgid, signal);
    this.#signals = sent.catch(() => false);
    return sent;
  }

  /**
   * Ends the whole group: SIGCONT (a stopped process cannot act on SIGTERM),
   * SIGTERM, then SIGKILL if anything is still there after `graceMs`.
   * Resolves when the group is gone, or, for members that cannot be killed
   * (zombies awaiting a parent), shortly after SIGKILL. Safe to call twice.
   */
  terminate(graceMs: number): Promise<void> {
    this.#terminating ??= this.#terminate(graceMs);
    return this.#terminating;
  }

  async #terminate(graceMs: number): Promise<void> {
    await this.signal("SIGCONT");
    if (!await this.signal("SIGTERM")) return;
    if (await this.#gone(graceMs)) return;
    await this.signal("SIGKILL");
    await this.#gone(2000);
  }

  /** Waits up to `ms` for the group to empty, probing with SIGCONT (harmless to a live process). */
  async #gone(ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    for (let probe = 0;; probe++) {
      // The leader must be reaped first, or its zombie keeps the group alive.
      if (this.#exited) {
        if (!await this.signal("SIGCONT")) return true;
        // kill() also reaches zombies that init has not reaped yet; they are
        // dead, so now and then ask /proc whether anything alive remains.
        if (probe % 5 === 4 && (await groupPids(this.pgid)).length === 0) return true;
      }
      if (performance.now() >= deadline) return false;
      await Promise.race([this.status, sleep(PROBE_INTERVAL_MS)]);
    }
  }
}
