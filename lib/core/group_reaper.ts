/**
 * How crash recovery (lib/core/crash_recovery.ts) ends a group a dead server
 * recorded: a {@linkcode GroupReaper} kills it only if it can prove it is
 * still that group. {@linkcode ProcessGroupReaper} signals the process group;
 * {@linkcode withCgroups} wraps a reaper to end the run's cgroup as well.
 *
 * @module
 */
import type { GroupRecord } from "./group_journal.ts";
import { signalGroup } from "../process/group_signal.ts";
import { type ProcStat, readStats, StartClock } from "../process/proc_stat.ts";

/** What a reaper did with a recorded group. */
export type ReapOutcome =
  /** It was still the recorded group, and has been sent SIGKILL. */
  | { result: "killed" }
  /** Its leader is no longer running. */
  | { result: "gone" }
  /** Something else runs under that pid now (or it is another boot's): left alone. */
  | { result: "not_ours"; why: string };

/** Ends a group a dead server left running, if it can prove it is that group. */
export interface GroupReaper {
  /** Kills what `record` describes if it is still that; never anything else. */
  kill(record: GroupRecord): Promise<ReapOutcome>;
}

/** Makes the reaper for a dead instance's records (it may read them all at once first). */
export type ReaperFactory = (
  records: readonly GroupRecord[],
  bootId: string,
) => Promise<GroupReaper>;

/**
 * A reaper that also ends each record's cgroup, when it has one: a cgroup
 * is the run's own (named by its execution id), so whatever is in it,
 * escapees included, is killed without proving a pid. The process group
 * is reaped by `groups` as before.
 *
 * @param groups The reaper of process groups (e.g. {@linkcode ProcessGroupReaper.forRecords}).
 * @param killCgroup Ends everything in a cgroup and removes it (lib/process/cgroup_reap.ts).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withCgroups } from "./group_reaper.ts";
 * const killed: string[] = [];
 * const factory = withCgroups(
 *   () => Promise.resolve({ kill: () => Promise.resolve({ result: "gone" as const }) }),
 *   (path) => (killed.push(path), Promise.resolve(true)),
 * );
 * const id = "0b7e4a52-3f1d-4c1e-9f57-1a2b3c4d5e6f";
 * const cgroup = `/sys/fs/cgroup/x/4242-0a1b2c3d/${id}`;
 * const record = { cgroup, executionId: id } as Parameters<
 *   Awaited<ReturnType<typeof factory>>["kill"]
 * >[0];
 * const outcome = await (await factory([record], "boot")).kill(record);
 * assert.deepEqual([outcome.result, killed], ["killed", [cgroup]]);
 * // A path the service never makes is left alone.
 * const forged = { ...record, cgroup: "/sys/fs/cgroup/unified/victim" };
 * assert.equal((await (await factory([forged], "boot")).kill(forged)).result, "gone");
 * ```
 */
/** An execution id as the service makes them (`crypto.randomUUID()`). */
const EXECUTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** `<cgroup mount>/…/<instance: server pid-8 hex>/<execution id>`, nothing else. */
const RUN_CGROUP = /^\/sys\/fs\/cgroup\/(?:[^/]+\/)*\d+-[0-9a-f]{8}\/([^/]+)$/;

/**
 * Whether `path` is the cgroup the service made for execution `id`
 * (lib/process/run_cgroup.ts): under a cgroup mount, in an instance
 * directory, named by the id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRunCgroup } from "./group_reaper.ts";
 * const id = "0b7e4a52-3f1d-4c1e-9f57-1a2b3c4d5e6f";
 * assert.ok(isRunCgroup(`/sys/fs/cgroup/unified/cc-executor/4242-0a1b2c3d/${id}`, id));
 * assert.ok(!isRunCgroup("/sys/fs/cgroup/unified/victim", id));
 * assert.ok(!isRunCgroup(`/sys/fs/cgroup/x/4242-0a1b2c3d/../${id}`, id));
 * ```
 */
export function isRunCgroup(path: string, id: string): boolean {
  if (!EXECUTION_ID.test(id) || path.split("/").includes("..")) return false;
  return RUN_CGROUP.exec(path)?.[1] === id;
}

/**
 * The widest start-time window (clock ticks) a real spawn records: the
 * spawn's own duration, under any load. A forged record with a window of
 * any time at all would match whatever process has its pid.
 */
const MAX_START_WINDOW_TICKS = 500;

export function withCgroups(
  groups: ReaperFactory,
  killCgroup: (path: string) => Promise<boolean>,
): ReaperFactory {
  return async (records, bootId) => {
    const inner = await groups(records, bootId);
    return {
      async kill(record) {
        const outcome = await inner.kill(record);
        // Only a cgroup of the shape we make: a journal is data, and ending
        // whatever cgroup it names would let a forged one kill anything.
        if (record.cgroup === null || !isRunCgroup(record.cgroup, record.executionId)) {
          return outcome;
        }
        const ended = await killCgroup(record.cgroup).catch(() => false);
        return ended && outcome.result === "gone" ? { result: "killed" } : outcome;
      },
    };
  };
}

/**
 * Reaps process groups: a group is killed only when its leader, read from
 * /proc (or through `cat`), has the recorded boot and start time. A stopped
 * group needs no SIGCONT to die of SIGKILL; it gets one anyway, after.
 *
 * A group whose leader has exited is not touched even if members remain:
 * its pgid can no longer be tied to the run for certain (a per-execution
 * cgroup can).
 *
 * @example A record for a live process with a wrong start time is refused
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProcessGroupReaper } from "./group_reaper.ts";
 * const record = {
 *   executionId: "e", pgid: Deno.pid, pid: Deno.pid, startLo: 1, startHi: 2, bootId: "b",
 *   cgroup: null, startedAt: 0, command: "x", limitClass: null, line: null, timeoutS: null,
 *   timeoutSource: "default" as const, principal: "local",
 * };
 * const reaper = await ProcessGroupReaper.forRecords([record], "b");
 * assert.equal((await reaper.kill(record)).result, "not_ours");
 * ```
 */
export class ProcessGroupReaper implements GroupReaper {
  readonly #stats: Map<number, ProcStat>;
  readonly #bootId: string;

  private constructor(stats: Map<number, ProcStat>, boot: string) {
    this.#stats = stats;
    this.#bootId = boot;
  }

  /** Reads the leaders of `records` (one `cat` at most) for a reaper of them. */
  static async forRecords(
    records: readonly GroupRecord[],
    boot: string,
  ): Promise<ProcessGroupReaper> {
    const pids = [...new Set(records.filter((r) => r.bootId === boot).map((r) => r.pid))];
    return new ProcessGroupReaper(await readStats(pids), boot);
  }

  /** SIGKILL then SIGCONT to the group, if its leader is the recorded one. */
  async kill(record: GroupRecord): Promise<ReapOutcome> {
    if (record.bootId !== this.#bootId) {
      return { result: "not_ours", why: "recorded in another boot" };
    }
    const stat = this.#stats.get(record.pid);
    if (stat === undefined || stat.state === "Z" || stat.state === "X") return { result: "gone" };
    if (record.startHi - record.startLo > MAX_START_WINDOW_TICKS) {
      return {
        result: "not_ours",
        why: `start window of ${record.startHi - record.startLo} ticks`,
      };
    }
    if (!StartClock.matches({ lo: record.startLo, hi: record.startHi }, stat.startTicks)) {
      return {
        result: "not_ours",
        why: `pid ${record.pid} started at tick ${stat.startTicks}, ` +
          `not ${record.startLo}..${record.startHi}: reused`,
      };
    }
    if (stat.pgid !== record.pgid) {
      return { result: "not_ours", why: `pid ${record.pid} is in group ${stat.pgid}` };
    }
    const killed = await signalGroup(record.pgid, "SIGKILL");
    await signalGroup(record.pgid, "SIGCONT");
    return killed ? { result: "killed" } : { result: "gone" };
  }
}
