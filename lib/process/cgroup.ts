/**
 * Containment with cgroups. Where a cgroup v2 hierarchy is writable, every
 * run gets a cgroup of its own, joined before the command runs, so that
 * everything it starts, also what leaves its process group (`setsid`, a
 * double-forking daemon), is killed with `cgroup.kill`, stopped and continued
 * with the group, and held to `memory-max` and `pids-max`.
 *
 * Layout: `<root>/<instance>/<execution id>`. `<root>` is `cgroup-root`; the
 * default (`auto`) is `cc-executor` in the server's own cgroup, which is the
 * hierarchy's root unless a service manager put the server elsewhere.
 * `<instance>` is `<server pid>-<8 hex digits>`, one per server start.
 * Controllers the v2 hierarchy does not offer (a hybrid layout keeps memory
 * and pids on v1 hierarchies) come from cgroup v1 hierarchies, laid out the
 * same way in the server's own v1 cgroups.
 *
 * The files are reached directly under `--allow-all`, and through a helper
 * shell under scoped permissions (lib/process/cgroup_fs.ts).
 *
 * For crash recovery: {@linkcode killCgroup} ends a recorded run cgroup (a
 * path of `Execution.cgroups`), and {@linkcode reapStaleCgroups} ends the
 * instances left by servers that are gone; the server reaps at startup.
 *
 * @module
 */
import { dirname, join, normalize } from "node:path";
import { shellQuote, WRAPPER_SHELL } from "./launch.ts";
import { type CgroupFs, cgroupFs } from "./cgroup_fs.ts";
import { ConfigError } from "../config/config.ts";
import { sleep } from "../async.ts";
import { logger } from "../log.ts";
import type { CgroupController, CgroupPlacement } from "../types.ts";

const log = logger("cgroup");

/** The controllers runs can be limited with. */
export const CONTROLLERS: readonly CgroupController[] = ["memory", "pids"];

/** The shell that joins a run's cgroups before exec'ing its command (and the helper shell). */
export { WRAPPER_SHELL };

/** The directory `cgroup-root: auto` makes in the server's own cgroup. */
const AUTO_DIR = "cc-executor";

/** An instance directory's name: `<server pid>-<8 hex digits>`. */
const INSTANCE_NAME = /^(\d+)-[0-9a-f]{8}$/;

/** How long ending a cgroup waits for its processes to exit. */
const EMPTY_WAIT_MS = 5000;

/** The number after `key` in a flat-keyed file (`populated 1`, `oom_kill 0`); null if absent. */
function keyed(text: string | null, key: string): number | null {
  const m = text?.match(new RegExp(`^${key} (\\d+)$`, "m"));
  return m ? Number(m[1]) : null;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How this process reaches cgroup hierarchies (lib/process/cgroup_fs.ts); null: it cannot. */
const reach = (): CgroupFs | null => cgroupFs(WRAPPER_SHELL);

/** A mounted hierarchy: its mount point and the cgroup shown there ("/" unless bind-mounted). */
interface Mount {
  point: string;
  root: string;
}

interface Mounts {
  v2: Mount | null;
  v1: Partial<Record<CgroupController, Mount>>;
}

/** A process's cgroup paths, from /proc/<pid>/cgroup. */
interface OwnPaths {
  v2: string | null;
  v1: Partial<Record<CgroupController, string>>;
}

function parseMountinfo(text: string): Mounts {
  const mounts: Mounts = { v2: null, v1: {} };
  for (const line of text.split("\n")) {
    const [left, right] = line.split(" - ");
    if (right === undefined) continue;
    const fields = left!.split(" ");
    // Octal escapes (\040 for a space) are left alone: cgroup mount points have none.
    const mount = { root: fields[3] ?? "/", point: fields[4] ?? "" };
    const [type, , options = ""] = right.split(" ");
    if (type === "cgroup2") mounts.v2 ??= mount;
    if (type !== "cgroup") continue;
    const names = options.split(",");
    for (const c of CONTROLLERS) if (names.includes(c)) mounts.v1[c] ??= mount;
  }
  return mounts;
}

function parseOwn(text: string): OwnPaths {
  const own: OwnPaths = { v2: null, v1: {} };
  for (const line of text.split("\n")) {
    const [id, names, ...rest] = line.split(":");
    const path = rest.join(":");
    if (id === "0" && names === "") own.v2 = path;
    for (const c of (names ?? "").split(",")) {
      if ((CONTROLLERS as readonly string[]).includes(c)) own.v1[c as CgroupController] = path;
    }
  }
  return own;
}

/** The directory of cgroup `path` on `mount`; null when the mount does not show it. */
function dirOn(mount: Mount, path: string | null | undefined): string | null {
  if (path === null || path === undefined) return null;
  const root = mount.root === "/" ? "" : mount.root;
  if (root !== "" && path !== root && !path.startsWith(`${root}/`)) return null;
  return normalize(mount.point + (path.slice(root.length) || "/"));
}

/** Where this server's instance directories go, by hierarchy. */
export interface CgroupLayout {
  /** The cgroup v2 directory instances are made in (`cgroup-root`). */
  root: string;
  /** Whether `root` was found rather than set (then it is removed again when empty). */
  auto: boolean;
  /** The same on cgroup v1 hierarchies, for controllers the v2 one may lack. */
  v1: Partial<Record<CgroupController, string>>;
}

/**
 * Where runs' cgroups would go for the `cgroup-root` setting `setting`, from
 * this process's /proc/self/mountinfo and /proc/self/cgroup. Creates
 * nothing, and does not check that anything is writable.
 *
 * @returns the layout, or why there is none.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectLayout } from "./cgroup.ts";
 * assert.deepEqual(await detectLayout("off"), { reason: "cgroup-root is off" });
 * ```
 */
export async function detectLayout(setting: string): Promise<CgroupLayout | { reason: string }> {
  if (setting === "off") return { reason: "cgroup-root is off" };
  const fs = reach();
  if (fs === null) {
    return {
      reason: "Deno reaches /sys only with --allow-all, and may not run the helper " +
        `${WRAPPER_SHELL} (a scoped --allow-run list)`,
    };
  }
  const [info, self] = [await fs.read("/proc/self/mountinfo"), await fs.read("/proc/self/cgroup")];
  if (info === null || self === null) return { reason: "/proc/self cannot be read" };
  const mounts = parseMountinfo(info);
  const own = parseOwn(self);
  const v1: CgroupLayout["v1"] = {};
  for (const c of CONTROLLERS) {
    const mount = mounts.v1[c];
    const dir = mount === undefined ? null : dirOn(mount, own.v1[c]);
    if (dir !== null) v1[c] = join(dir, AUTO_DIR);
  }
  if (setting !== "auto") {
    return { root: normalize(setting).replace(/(.)\/$/, "$1"), auto: false, v1 };
  }
  if (mounts.v2 === null) return { reason: "no cgroup v2 hierarchy is mounted" };
  const dir = dirOn(mounts.v2, own.v2);
  if (dir === null) return { reason: "the server's own cgroup v2 is not on its mount" };
  return { root: join(dir, AUTO_DIR), auto: true, v1 };
}

/** `/health`'s `containment`. */
export interface ContainmentStatus {
  /** `cgroup`: each run in a cgroup of its own; `process-group`: signals to its group only. */
  mode: "cgroup" | "process-group";
  /** `cgroup-root` in force; null for process groups. */
  root: string | null;
  /** This server's directory in `root`. */
  instance: string | null;
  /** The controllers runs can be limited with. */
  controllers: CgroupController[];
  /** Where each controller is enforced: `v2`, or the instance directory on a cgroup v1 hierarchy. */
  hierarchies: Partial<Record<CgroupController, string>>;
  /** `direct` under `--allow-all`; `helper`: through a helper shell (scoped permissions). */
  access: "direct" | "helper" | null;
  /** The server-wide limits (0: none); a request may only lower them. */
  memory_max: number;
  pids_max: number;
  /** Why runs are not in cgroups, when they are not. */
  reason?: string;
}

/** Writes `+controller` from `top` down to `bottom` (inclusive), so `bottom`'s children get it. */
async function enableV2(
  fs: CgroupFs,
  top: string,
  bottom: string,
  controller: CgroupController,
): Promise<boolean> {
  const offered = (await fs.read(`${top}/cgroup.controllers`))?.split(/\s+/) ?? [];
  if (!offered.includes(controller)) return false;
  const chain = [bottom];
  while (chain[0] !== top && chain[0] !== dirname(chain[0]!)) chain.unshift(dirname(chain[0]!));
  try {
    for (const dir of chain) {
      const on = (await fs.read(`${dir}/cgroup.subtree_control`))?.split(/\s+/) ?? [];
      if (!on.includes(controller)) {
        await fs.write(`${dir}/cgroup.subtree_control`, `+${controller}`);
      }
    }
    return true;
  } catch {
    // EBUSY: a cgroup on the way holds processes (the server's own, under a service manager).
    return false;
  }
}

/**
 * The cgroup containment of one server: found and set up by
 * {@linkcode Containment.start}, removed again by {@linkcode Containment.close}.
 *
 * @example Without cgroups
 * ```ts
 * import assert from "node:assert/strict";
 * import { Containment } from "./cgroup.ts";
 * const none = await Containment.start("off");
 * assert.equal(none.placement, null);
 * assert.equal(none.status().mode, "process-group");
 * await none.close();
 * ```
 */
export class Containment {
  /** Where runs' cgroups go; null when runs are contained by their process group only. */
  readonly placement: CgroupPlacement | null;
  /** This server's instance id (its directory name in each root); null without cgroups. */
  readonly instanceId: string | null;
  readonly #status: ContainmentStatus;
  /** The roots instances are made in, v2 first. */
  readonly #roots: readonly string[];
  /** Roots this server may remove when they are empty (found, not set). */
  readonly #ownRoots: readonly string[];
  #closed: Promise<void> | null = null;

  private constructor(
    status: ContainmentStatus,
    placement: CgroupPlacement | null,
    roots: readonly string[],
    ownRoots: readonly string[],
  ) {
    this.#status = status;
    this.placement = placement;
    this.instanceId = status.instance;
    this.#roots = roots;
    this.#ownRoots = ownRoots;
  }

  /**
   * Finds the cgroup root for `setting` (`auto`, `off` or a directory) and
   * makes this server's instance directories there. With `auto`, anything
   * unusable means process groups, and the status says why.
   *
   * @throws {ConfigError} when a directory was set and cannot be used.
   */
  static async start(
    setting: string,
    limits: { memoryMax?: number; pidsMax?: number } = {},
  ): Promise<Containment> {
    const memory_max = limits.memoryMax ?? 0;
    const pids_max = limits.pidsMax ?? 0;
    const explicit = setting !== "auto" && setting !== "off";
    const none = (reason: string) => {
      if (explicit) throw new ConfigError(`Invalid CC_EXECUTOR_CGROUP_ROOT=${setting}: ${reason}`);
      return new Containment(
        {
          mode: "process-group",
          root: null,
          instance: null,
          controllers: [],
          hierarchies: {},
          access: null,
          memory_max,
          pids_max,
          reason,
        },
        null,
        [],
        [],
      );
    };
    const layout = await detectLayout(setting);
    const fs = reach();
    if ("reason" in layout || fs === null) return none("reason" in layout ? layout.reason : "");
    const random = crypto.getRandomValues(new Uint32Array(1))[0]!;
    const id = `${Deno.pid}-${random.toString(16).padStart(8, "0")}`;
    const placement: CgroupPlacement = { unified: join(layout.root, id) };
    const hierarchies: ContainmentStatus["hierarchies"] = {};
    const made: string[] = [];
    const v1Roots: string[] = [];
    try {
      const parent = dirname(layout.root);
      if (!await fs.exists(`${parent}/cgroup.controllers`)) {
        throw new Error(`${parent} is not a cgroup v2 directory`);
      }
      // Twice: a server that shuts down may remove an empty root just after it is made.
      await fs.mkdir(layout.root, true);
      await fs.mkdir(placement.unified).catch(async () => {
        await fs.mkdir(layout.root, true);
        await fs.mkdir(placement.unified);
      });
      made.push(placement.unified);
      if (!await fs.exists(`${placement.unified}/cgroup.kill`)) {
        throw new Error("the kernel has no cgroup.kill (Linux 5.14 or later)");
      }
      for (const c of CONTROLLERS) {
        if (await enableV2(fs, parent, placement.unified, c)) {
          placement[c] = placement.unified;
          hierarchies[c] = "v2";
          continue;
        }
        const v1 = layout.v1[c];
        if (v1 === undefined) continue;
        const dir = join(v1, id);
        try {
          if (!made.includes(dir)) {
            await fs.mkdir(v1, true);
            await fs.mkdir(dir);
            made.push(dir);
            v1Roots.push(v1);
          }
          placement[c] = dir;
          hierarchies[c] = dir;
        } catch (err) {
          log.warning("No {controller} limits: cannot make {dir}: {error}", {
            controller: c,
            dir,
            error: message(err),
          });
        }
      }
    } catch (err) {
      // With the roots it may have made (they stay when something else is in them).
      await fs.rmdir([...made.reverse(), ...(layout.auto ? [layout.root] : []), ...v1Roots]);
      return none(`${layout.root}: ${message(err)}`);
    }
    const controllers = CONTROLLERS.filter((c) => placement[c] !== undefined);
    for (const [name, max] of [["memory", memory_max], ["pids", pids_max]] as const) {
      if (max > 0 && !controllers.includes(name)) {
        log.warning("{name}-max is not enforced: no {name} cgroup controller", { name });
      }
    }
    const status: ContainmentStatus = {
      mode: "cgroup",
      root: layout.root,
      instance: id,
      controllers,
      hierarchies,
      access: fs.direct ? "direct" : "helper",
      memory_max,
      pids_max,
    };
    const roots = [layout.root, ...v1Roots];
    return new Containment(status, placement, roots, layout.auto ? roots : v1Roots);
  }

  /** What `/health` reports. */
  status(): ContainmentStatus {
    return structuredClone(this.#status);
  }

  /**
   * Ends the instances of other servers in this server's roots (every
   * hierarchy): those not in `liveInstanceIds`, or when it is not given,
   * those whose server process is gone. See {@linkcode reapStaleCgroups}.
   *
   * @returns the instance ids reaped (once per hierarchy they were found in).
   */
  async reapStale(liveInstanceIds?: Iterable<string>): Promise<string[]> {
    if (this.instanceId === null) return [];
    const live = liveInstanceIds === undefined
      ? undefined
      : new Set([this.instanceId, ...liveInstanceIds]);
    const reaped: string[] = [];
    for (const root of this.#roots) reaped.push(...await reapStaleCgroups(root, live));
    return reaped;
  }

  /**
   * Kills whatever is left in this server's cgroups and removes them, and
   * the roots it found (not set) when nothing else is in them. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const fs = reach();
      if (this.instanceId === null || fs === null) return;
      for (const root of this.#roots) await killCgroup(join(root, this.instanceId));
      // Another server may still use a root: then it stays (EBUSY).
      await fs.rmdir(this.#ownRoots);
    })();
    return this.#closed;
  }
}

/** Every cgroup directory at and below `path`, deepest first. */
async function subtree(fs: CgroupFs, path: string): Promise<string[]> {
  const below: string[] = [];
  for (const name of await fs.dirs(path) ?? []) below.push(...await subtree(fs, join(path, name)));
  return [...below, path];
}

/** Pids in the cgroup.procs files of `dirs`. */
async function procsOf(fs: CgroupFs, dirs: readonly string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const dir of dirs) {
    for (const line of (await fs.read(`${dir}/cgroup.procs`) ?? "").split("\n")) {
      if (line !== "") pids.push(Number(line));
    }
  }
  return pids;
}

/** Sends `signal` to each of `pids` (those that exited meanwhile are skipped). */
async function signalPids(
  pids: readonly number[],
  signal: "SIGKILL" | "SIGSTOP" | "SIGCONT",
): Promise<void> {
  const refused: number[] = [];
  for (const pid of pids) {
    try {
      Deno.kill(pid, signal);
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) refused.push(pid);
    }
  }
  if (refused.length === 0) return;
  // A scoped --allow-run refuses Deno.kill: the kill program is allowed.
  await new Deno.Command("kill", {
    args: [`-${signal.slice(3)}`, "--", ...refused.map(String)],
    stdout: "null",
    stderr: "null",
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
  }).output().catch(() => {});
}

/**
 * Waits up to `ms` for nothing alive to be left in the cgroup at `path`
 * (v2: `populated 0`, which zombies do not hold up); on v1, SIGKILLs what is
 * listed meanwhile.
 */
async function emptied(fs: CgroupFs, path: string, v2: boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (let delay = 1;; delay = Math.min(delay * 2, 50)) {
    let busy: boolean;
    if (v2) {
      busy = keyed(await fs.read(`${path}/cgroup.events`), "populated") === 1;
    } else {
      const pids = await procsOf(fs, await subtree(fs, path));
      await signalPids(pids, "SIGKILL");
      busy = pids.length > 0;
    }
    if (!busy) return true;
    if (performance.now() >= deadline) return false;
    await sleep(delay);
  }
}

/**
 * Kills every process in the cgroup at `path` and below (cgroup v2:
 * `cgroup.kill`; v1: SIGKILL to each listed process), waits for them to
 * exit, and removes the directories. For crash recovery: pass a path
 * recorded from `Execution.cgroups`, or an instance directory.
 *
 * @returns true when the cgroup is gone (or never existed); false when
 * something outlived `timeoutMs`, or cgroups cannot be reached at all.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { killCgroup } from "./cgroup.ts";
 * assert.equal(await killCgroup("/sys/fs/cgroup/no-such-cgroup-cc"), true);
 * ```
 */
export async function killCgroup(path: string, timeoutMs = EMPTY_WAIT_MS): Promise<boolean> {
  const fs = reach();
  if (fs === null) return false;
  if (!await fs.exists(path)) return true;
  const v2 = await fs.exists(`${path}/cgroup.kill`);
  if (v2) await fs.write(`${path}/cgroup.kill`, "1").catch(() => {});
  if (!await emptied(fs, path, v2, timeoutMs)) return false;
  return await fs.rmdir(await subtree(fs, path));
}

/**
 * Ends the cgroups of server instances in `root` that are not live: kills
 * their processes and removes their directories ({@linkcode killCgroup}).
 * The server calls it at startup for each of its roots; crash recovery may
 * call it with the ids it knows to be live.
 *
 * @param root a directory instances are made in (`cgroup-root`, or its
 * counterpart on a cgroup v1 hierarchy).
 * @param liveInstanceIds instances to keep. When given, every other instance
 * in `root` is reaped, also one of a server still running: pass every id in
 * use. When absent, an instance is stale when its server process (the pid
 * its name starts with) does not exist.
 * @returns the ids of the instances reaped.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reapStaleCgroups } from "./cgroup.ts";
 * assert.deepEqual(await reapStaleCgroups("/sys/fs/cgroup/no-such-root-cc"), []);
 * ```
 */
export async function reapStaleCgroups(
  root: string,
  liveInstanceIds?: Iterable<string>,
): Promise<string[]> {
  const fs = reach();
  const live = liveInstanceIds === undefined ? null : new Set(liveInstanceIds);
  const reaped: string[] = [];
  for (const name of (await fs?.dirs(root)) ?? []) {
    const m = INSTANCE_NAME.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (live !== null ? live.has(name) : pid === Deno.pid || await fs!.exists(`/proc/${pid}`)) {
      continue;
    }
    const dir = join(root, name);
    if (await killCgroup(dir)) {
      reaped.push(name);
      log.info("Reaped the cgroup of a stale instance: {dir}", { dir });
    } else {
      log.warning("Could not empty the cgroup of a stale instance: {dir}", { dir });
    }
  }
  return reaped;
}

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
