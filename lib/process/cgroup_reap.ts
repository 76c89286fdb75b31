/**
 * Killing what is in a cgroup and removing it: for a run's end
 * (lib/process/run_cgroup.ts), a server's close, and crash recovery, which
 * ends recorded run cgroups and the instances of servers that are gone.
 *
 * @module
 */
import { sleep } from "../async.ts";
import { join } from "node:path";
import type { CgroupFs } from "./cgroup_fs.ts";
import { keyed, reach } from "./_cgroup_util.ts";
import { logger } from "../log.ts";

const log = logger("cgroup");

/** An instance directory's name: `<server pid>-<8 hex digits>`. */
const INSTANCE_NAME = /^(\d+)-[0-9a-f]{8}$/;

/** How long ending a cgroup waits for its processes to exit. */
export const EMPTY_WAIT_MS = 5000;

/** Every cgroup directory at and below `path`, deepest first. */
async function subtree(fs: CgroupFs, path: string): Promise<string[]> {
  const below: string[] = [];
  for (const name of await fs.dirs(path) ?? []) below.push(...await subtree(fs, join(path, name)));
  return [...below, path];
}

/** Pids in the cgroup.procs files of `dirs`. */
export async function procsOf(fs: CgroupFs, dirs: readonly string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const dir of dirs) {
    for (const line of (await fs.read(`${dir}/cgroup.procs`) ?? "").split("\n")) {
      if (line !== "") pids.push(Number(line));
    }
  }
  return pids;
}

/** Sends `signal` to each of `pids` (those that exited meanwhile are skipped). */
export async function signalPids(
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
export async function emptied(
  fs: CgroupFs,
  path: string,
  v2: boolean,
  ms: number,
): Promise<boolean> {
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
 * import { killCgroup } from "./cgroup_reap.ts";
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
 * import { reapStaleCgroups } from "./cgroup_reap.ts";
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
