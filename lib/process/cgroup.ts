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
 * This module holds the server's {@linkcode Containment}; the layout is read
 * by lib/process/cgroup_layout.ts, a run's cgroups are
 * lib/process/run_cgroup.ts, and killing and reaping are
 * lib/process/cgroup_reap.ts.
 *
 * For crash recovery: {@linkcode killCgroup} ends a recorded run cgroup (a
 * path of `Execution.cgroups`), and `reapStaleCgroups()` ends the
 * instances left by servers that are gone; the server reaps at startup.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { WRAPPER_SHELL } from "./launch.ts";
import type { CgroupFs } from "./cgroup_fs.ts";
import { message, reach } from "./_cgroup_util.ts";
import { CONTROLLERS, detectLayout } from "./cgroup_layout.ts";
import { killCgroup, reapStaleCgroups } from "./cgroup_reap.ts";
import { ConfigError } from "../config/config.ts";
import { logger } from "../log.ts";
import type { CgroupController, CgroupPlacement } from "../types.ts";

// What callers outside lib/process use, from the one module they know.
export { killCgroup } from "./cgroup_reap.ts";
export { RunCgroup } from "./run_cgroup.ts";

const log = logger("cgroup");

/** The shell that joins a run's cgroups before exec'ing its command (and the helper shell). */
export { WRAPPER_SHELL };

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
   * those whose server process is gone. See `reapStaleCgroups()`.
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
