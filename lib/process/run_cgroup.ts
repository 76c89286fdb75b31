/**
 * One run's own cgroups: made with its limits, joined by the command's
 * shell before it runs (or adopted after the spawn), signalled along with
 * its process group, and ended once the group is gone.
 *
 * @module
 */
import { join } from "node:path";
import { shellQuote } from "./launch.ts";
import type { CgroupFs } from "./cgroup_fs.ts";
import { keyed, message, reach } from "./_cgroup_util.ts";
import { emptied, EMPTY_WAIT_MS, procsOf, signalPids } from "./cgroup_reap.ts";
import { logger } from "../log.ts";
import type { CgroupPlacement } from "../types.ts";

const log = logger("cgroup");

/** What {@linkcode RunCgroup.create} makes. */
export interface RunCgroupSpec {
  placement: CgroupPlacement;
  /** The run's directory name: its execution id. */
  name: string;
  /** Bytes of memory (swap included); absent: no limit. */
  memoryMax?: number | undefined;
  /** Processes and threads at once; absent: no limit. */
  pidsMax?: number | undefined;
}

/** One file write that sets up a run's limits. */
interface LimitWrite {
  path: string;
  value: string;
  /** Written only if the file exists (swap limits need swap accounting). */
  optional: boolean;
}

function limitWrites(
  memory: { dir: string; v2: boolean } | null,
  pids: string | null,
  spec: RunCgroupSpec,
): LimitWrite[] {
  const writes: LimitWrite[] = [];
  if (spec.memoryMax !== undefined) {
    if (memory === null) throw new Error("no memory controller");
    const bytes = String(spec.memoryMax);
    // Swap may not get around the limit.
    writes.push(
      ...(memory.v2
        ? [
          { path: `${memory.dir}/memory.max`, value: bytes, optional: false },
          { path: `${memory.dir}/memory.swap.max`, value: "0", optional: true },
        ]
        : [
          { path: `${memory.dir}/memory.limit_in_bytes`, value: bytes, optional: false },
          { path: `${memory.dir}/memory.memsw.limit_in_bytes`, value: bytes, optional: true },
        ]),
    );
  }
  if (spec.pidsMax !== undefined) {
    if (pids === null) throw new Error("no pids controller");
    writes.push({ path: `${pids}/pids.max`, value: String(spec.pidsMax), optional: false });
  }
  return writes;
}

/**
 * One run's cgroups: a cgroup v2 directory, and cgroup v1 directories for
 * controllers that live there. The process group (lib/process/process_group.ts)
 * drives it: the shell that starts its command runs prelude(), signal() and
 * kill() go along with the group's signals, and end() once the group is gone.
 */
export class RunCgroup {
  /** The run's cgroup v2 directory. */
  readonly path: string;
  /** Every directory of the run, v2 first. */
  readonly paths: readonly string[];
  /** The memory limit in bytes, null for none. */
  readonly memoryMax: number | null;
  /** The pids limit, null for none. */
  readonly pidsMax: number | null;
  readonly #fs: CgroupFs;
  readonly #memory: { dir: string; v2: boolean } | null;
  readonly #limits: readonly LimitWrite[];
  /**
   * Whether the directories are made, or their making is in hand: by the
   * server when it reaches cgroups directly, else by the wrapper or adopt().
   */
  #made: boolean;
  #adopting: Promise<void> = Promise.resolve();
  #ended: Promise<void> | null = null;
  #oomKills = 0;

  private constructor(
    spec: RunCgroupSpec,
    fs: CgroupFs,
    paths: string[],
    memory: { dir: string; v2: boolean } | null,
    limits: LimitWrite[],
  ) {
    this.path = paths[0]!;
    this.paths = paths;
    this.memoryMax = spec.memoryMax ?? null;
    this.pidsMax = spec.pidsMax ?? null;
    this.#fs = fs;
    this.#memory = memory;
    this.#limits = limits;
    this.#made = false;
  }

  /**
   * A run's cgroups. Reaching cgroups directly, makes the directories and
   * sets the limits now; through the helper, leaves that to {@linkcode prelude}
   * (the command's own shell) or {@linkcode adopt}.
   *
   * @throws {Error} when a directory cannot be made or a limit cannot be set
   * (nothing is left behind then), or cgroups cannot be reached.
   */
  static create(spec: RunCgroupSpec): RunCgroup {
    const fs = reach();
    if (fs === null) throw new Error("Cannot reach cgroups from this process");
    const { placement, name } = spec;
    const unified = join(placement.unified, name);
    const memory = placement.memory === undefined ? null : join(placement.memory, name);
    const pids = placement.pids === undefined ? null : join(placement.pids, name);
    const paths = [...new Set([unified, memory, pids].filter((d) => d !== null))];
    const account = memory === null ? null : { dir: memory, v2: memory === unified };
    const run = new RunCgroup(spec, fs, paths, account, limitWrites(account, pids, spec));
    if (fs.direct) run.#makeNow();
    return run;
  }

  /** Makes the directories and sets the limits, synchronously (direct access only). */
  #makeNow(): void {
    const made: string[] = [];
    try {
      for (const dir of this.paths) {
        Deno.mkdirSync(dir);
        made.push(dir);
      }
      for (const { path, value, optional } of this.#limits) {
        try {
          Deno.writeTextFileSync(path, value, { create: false });
        } catch (err) {
          if (!optional || !(err instanceof Deno.errors.NotFound)) throw err;
        }
      }
    } catch (err) {
      for (const dir of made.reverse()) {
        try {
          Deno.removeSync(dir);
        } catch {
          // left for the instance's removal
        }
      }
      throw new Error(`Cannot make the run's cgroup ${this.path}: ${message(err)}`, { cause: err });
    }
    this.#made = true;
  }

  /** The files a process joins the run's cgroups by writing its pid to. */
  get procsFiles(): string[] {
    return this.paths.map((dir) => `${dir}/cgroup.procs`);
  }

  /**
   * Shell text that (makes the cgroups and sets their limits if the server
   * could not, then) writes the shell's pid to {@linkcode procsFiles}, so
   * the command it then execs is in before it runs or forks; it exits 125
   * when joining fails. Ends in `; `. lib/process/launch.ts places it first in the
   * shell that starts the command.
   */
  prelude(): string {
    const steps: string[] = [];
    if (!this.#made) {
      steps.push(`command -p mkdir -- ${this.paths.map(shellQuote).join(" ")}`);
      for (const { path, value, optional } of this.#limits) {
        const write = `printf %s ${value} >${shellQuote(path)}`;
        steps.push(optional ? `{ ! [ -e ${shellQuote(path)} ] || ${write}; }` : write);
      }
      this.#made = true;
    }
    steps.push(...this.procsFiles.map((f) => `echo $$ >${shellQuote(f)}`));
    return `${steps.join(" && ")} || ` +
      `{ echo 'cc-executor: cannot join the cgroup of the run' >&2; exit 125; }; `;
  }

  /**
   * Moves `pid` into the cgroups, for a process spawned without the
   * wrapper; through the helper it makes them first. {@linkcode end} waits for it.
   */
  adopt(pid: number): Promise<void> {
    const fs = this.#fs;
    const made = this.#made;
    this.#made = true;
    this.#adopting = (async () => {
      if (!made) {
        for (const dir of this.paths) await fs.mkdir(dir);
        for (const { path, value, optional } of this.#limits) {
          if (!optional || await fs.exists(path)) await fs.write(path, value);
        }
      }
      for (const file of this.procsFiles) await fs.write(file, String(pid));
    })().catch(() => {
      // exited already, or the cgroup could not be made: the group still holds it
    });
    return this.#adopting;
  }

  /**
   * Sends `signal` to every process of the run, those that left its process
   * group too. Not atomic: a child forked meanwhile is caught by the next
   * call (a PAUSE stops the group again shortly after).
   */
  async signal(signal: "SIGSTOP" | "SIGCONT"): Promise<void> {
    await signalPids(await procsOf(this.#fs, [this.path]), signal);
  }

  /** SIGKILLs every process of the run at once (`cgroup.kill`), escapees of its group too. */
  async kill(): Promise<void> {
    await this.#write("cgroup.kill", "1");
  }

  /**
   * Kills what is left, waits for it to exit, counts the out-of-memory
   * kills, and removes the directories. Call once the process group is
   * gone. Idempotent.
   */
  end(): Promise<void> {
    this.#ended ??= this.#end();
    return this.#ended;
  }

  /** Processes the out-of-memory killer ended in the run; counted when {@linkcode end} resolves. */
  get oomKills(): number {
    return this.#oomKills;
  }

  async #end(): Promise<void> {
    const fs = this.#fs;
    await this.#adopting;
    await this.kill();
    const empty = await emptied(fs, this.path, true, EMPTY_WAIT_MS);
    this.#oomKills = await this.#countOomKills();
    // Removing the (now empty) directories is bookkeeping, not part of the
    // run's end: it is left to run after, so it never holds up a
    // `process.completed` behind other runs' work in the helper shell.
    this.#removed = fs.rmdir([...this.paths].reverse()).then((removed) => {
      if (!empty || !removed) {
        // Left for Containment.close() and the next start's reaping.
        log.warning("Run cgroup {dir} could not be emptied and removed", { dir: this.path });
      }
      return removed;
    }, () => false);
  }

  #removed: Promise<boolean> = Promise.resolve(false);

  /** Resolves once {@linkcode end} has removed the directories (true) or could not (false). */
  get removed(): Promise<boolean> {
    return this.#ended === null ? Promise.resolve(false) : this.#ended.then(() => this.#removed);
  }

  async #countOomKills(): Promise<number> {
    const memory = this.#memory;
    if (memory === null) return 0;
    const fs = this.#fs;
    if (memory.v2) return keyed(await fs.read(`${memory.dir}/memory.events`), "oom_kill") ?? 0;
    const count = keyed(await fs.read(`${memory.dir}/memory.oom_control`), "oom_kill");
    if (count !== null) return count;
    // Kernels before 4.13 do not count kills: hitting the limit is the best sign.
    return Number(await fs.read(`${memory.dir}/memory.failcnt`) ?? 0) > 0 ? 1 : 0;
  }

  async #write(file: string, value: string): Promise<boolean> {
    try {
      await this.#fs.write(`${this.path}/${file}`, value);
      return true;
    } catch {
      return false; // removed already, not made yet, or a kernel without the file
    }
  }
}
