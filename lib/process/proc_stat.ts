/**
 * When a process started, as the kernel counts it: field 22 of
 * `/proc/<pid>/stat`, clock ticks (1/100 s) since boot. Together with the
 * boot id, a pid and its start time name one process for good, which is what
 * crash recovery needs before it kills a group a dead server recorded: a pid
 * alone may have been reused since (pid_max is often 32768).
 *
 * Deno lets only `--allow-all` read /proc. Without it these functions run
 * `cat` (one process for any number of pids) instead, and the start time of
 * a process the server spawns is derived from the clock: the spawn's
 * `performance.now()` window, shifted by an offset measured once at startup
 * by spawning `cat /proc/self/stat` the same way. That costs no process and
 * no file read per spawn, and gives a window of two or three ticks.
 *
 * @module
 */

/** Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux). */
export const TICKS_PER_SECOND = 100;
const MS_PER_TICK = 1000 / TICKS_PER_SECOND;

/** The parts of `/proc/<pid>/stat` that crash recovery reads. */
export interface ProcStat {
  pid: number;
  /** One letter: R, S, D, T (stopped), Z (zombie), ... */
  state: string;
  pgid: number;
  sid: number;
  /** Start time, clock ticks since boot. */
  startTicks: number;
}

/** A start time a process must have: ticks from `lo` to `hi`, both included. */
export interface StartWindow {
  lo: number;
  hi: number;
}

/**
 * Parses the fields after the command name (`state ppid pgrp session ...`),
 * which never contain `)`.
 */
function parseFields(pid: number, rest: string): ProcStat | null {
  const f = rest.trim().split(" ");
  const stat = {
    pid,
    state: f[0] ?? "",
    pgid: Number(f[2]),
    sid: Number(f[3]),
    startTicks: Number(f[19]),
  };
  return Number.isInteger(stat.pgid) && Number.isInteger(stat.startTicks) && stat.state !== ""
    ? stat
    : null;
}

/**
 * Parses one `/proc/<pid>/stat`. The command name may hold spaces, `)` and
 * newlines: the fields start after its last `)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStat } from "./proc_stat.ts";
 * const text = "42 (a) b) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1234 0 0";
 * assert.deepEqual(parseStat(text), { pid: 42, state: "S", pgid: 42, sid: 42, startTicks: 1234 });
 * ```
 */
export function parseStat(text: string): ProcStat | null {
  const open = text.indexOf(" (");
  const close = text.lastIndexOf(")");
  const pid = Number(text.slice(0, open));
  if (open < 1 || close < open || !Number.isInteger(pid)) return null;
  return parseFields(pid, text.slice(close + 1));
}

/**
 * Parses what `cat /proc/<p1>/stat /proc/<p2>/stat ...` printed, given the
 * pids in the order asked for (cat skips the files that are gone). A command
 * name is at most 15 bytes, so its closing `)` is the last one within a few
 * dozen characters of its start; the numeric fields that follow are longer
 * than that and hold no `)`, so no name can pass itself off as another entry.
 */
export function parseStats(text: string, pids: readonly number[]): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  let at = 0;
  for (const pid of pids) {
    const head = `${pid} (`;
    if (!text.startsWith(head, at)) continue;
    const close = text.lastIndexOf(")", at + head.length + 64);
    const end = text.indexOf("\n", close);
    if (close < at + head.length || end === -1) break;
    const stat = parseFields(pid, text.slice(close + 1, end));
    if (stat !== null) out.set(pid, stat);
    at = end + 1;
  }
  return out;
}

const statBuffer = new Uint8Array(1024);

/** One `/proc/<pid>/stat`, read into a reused buffer (~15 µs, against ~40 for readTextFileSync). */
function readStatSync(pid: number): ProcStat | null {
  try {
    const file = Deno.openSync(`/proc/${pid}/stat`);
    try {
      // A stat line is about 300 bytes (the name is at most 15).
      const n = file.readSync(statBuffer) ?? 0;
      return parseStat(new TextDecoder().decode(statBuffer.subarray(0, n)));
    } finally {
      file.close();
    }
  } catch {
    return null;
  }
}

/** Whether this process may read /proc itself (Deno grants it only with --allow-all). */
export function procReadable(): boolean {
  try {
    Deno.readTextFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

/** Runs `cat` on `paths` (by name, from the fixed PATH, as `--allow-run` lists it). */
async function cat(paths: readonly string[]): Promise<string> {
  const out = await new Deno.Command("cat", {
    args: ["--", ...paths],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
  }).output();
  // A missing file makes cat fail but print the others.
  return new TextDecoder().decode(out.stdout);
}

/**
 * The stat of each of `pids` that exists, from /proc or through `cat`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readStats } from "./proc_stat.ts";
 * const stats = await readStats([Deno.pid, 2 ** 22 + 1]);
 * assert.equal(stats.get(Deno.pid)?.pid, Deno.pid);
 * assert.equal(stats.has(2 ** 22 + 1), false);
 * ```
 */
export async function readStats(pids: readonly number[]): Promise<Map<number, ProcStat>> {
  if (pids.length === 0) return new Map();
  if (procReadable()) {
    const out = new Map<number, ProcStat>();
    for (const pid of pids) {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`).then(parseStat, () => null);
      if (stat !== null) out.set(pid, stat);
    }
    return out;
  }
  return parseStats(await cat(pids.map((p) => `/proc/${p}/stat`)), pids);
}

/** The id of this boot (`/proc/sys/kernel/random/boot_id`): ticks and pids start over at a boot. */
export async function bootId(): Promise<string> {
  const path = "/proc/sys/kernel/random/boot_id";
  const text = procReadable() ? await Deno.readTextFile(path) : await cat([path]);
  const id = text.trim();
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error(`Cannot read the boot id (got '${id}')`);
  return id;
}

/**
 * Tells the start time of processes the server spawns, without a process or
 * (under scoped permissions) a file read per spawn.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readStats, StartClock } from "./proc_stat.ts";
 * const clock = await StartClock.calibrate();
 * const before = performance.now();
 * const child = new Deno.Command("sleep", { args: ["5"] }).spawn();
 * const window = clock.window(before, performance.now(), child.pid);
 * const start = (await readStats([child.pid])).get(child.pid)!.startTicks;
 * assert.ok(StartClock.matches(window, start));
 * child.kill();
 * await child.status;
 * ```
 */
export class StartClock {
  /** Boot clock minus `performance.now()`, ms: at least this... */
  #offsetLo: number;
  /** ...and less than this. */
  #offsetHi: number;
  /** `Date.now() - performance.now()` at calibration: it jumps when the machine was suspended. */
  #wallOffset: number;
  readonly #direct: boolean;
  #recalibrating: Promise<void> | null = null;

  private constructor(lo: number, hi: number, direct: boolean) {
    this.#offsetLo = lo;
    this.#offsetHi = hi;
    this.#wallOffset = Date.now() - performance.now();
    this.#direct = direct;
  }

  /**
   * Measures the offset between `performance.now()` and the kernel's boot
   * clock by spawning `cat /proc/self/stat`: the same kind of window as a
   * command's spawn, so the spawn's own cost cancels out. `readProc: false`
   * derives every start time from the clock even where /proc is readable.
   */
  static async calibrate(options: { readProc?: boolean } = {}): Promise<StartClock> {
    const [lo, hi] = await measureOffset();
    return new StartClock(lo, hi, options.readProc ?? procReadable());
  }

  /** Whether `startTicks` falls in `window`, with a tick of slack each side for rounding. */
  static matches(window: StartWindow, startTicks: number): boolean {
    return startTicks >= window.lo - 1 && startTicks <= window.hi + 1;
  }

  /**
   * The start time of the process `pid`, spawned between `before` and
   * `after` (`performance.now()`): exact from /proc when it can be read,
   * else derived from the clock.
   */
  window(before: number, after: number, pid: number): StartWindow {
    if (this.#direct) {
      const stat = readStatSync(pid);
      if (stat !== null) return { lo: stat.startTicks, hi: stat.startTicks };
      // Gone already, or not readable after all: the clock tells it too.
    }
    // The offset moves when the machine sleeps (performance.now() stops, the
    // boot clock does not): measure it again, and use the old one meanwhile.
    if (Math.abs(Date.now() - performance.now() - this.#wallOffset) > 1000) this.#recalibrate();
    return {
      lo: Math.floor((before + this.#offsetLo) / MS_PER_TICK),
      hi: Math.floor((after + this.#offsetHi) / MS_PER_TICK),
    };
  }

  #recalibrate(): void {
    this.#recalibrating ??= measureOffset().then(([lo, hi]) => {
      this.#offsetLo = lo;
      this.#offsetHi = hi;
      this.#wallOffset = Date.now() - performance.now();
    }).catch(() => {}).finally(() => this.#recalibrating = null);
  }
}

/**
 * The boot clock minus `performance.now()`, in ms, as a range: a process
 * forked at `t` (between `before` and `after`) has start tick S when
 * S * 10 <= t + offset < (S + 1) * 10.
 */
async function measureOffset(): Promise<[number, number]> {
  const before = performance.now();
  const child = new Deno.Command("cat", {
    args: ["/proc/self/stat"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
  }).spawn();
  const after = performance.now();
  const out = await child.output();
  const stat = parseStat(new TextDecoder().decode(out.stdout));
  if (stat === null) throw new Error("Cannot read the start time of a spawned process");
  return [
    stat.startTicks * MS_PER_TICK - after,
    (stat.startTicks + 1) * MS_PER_TICK - before,
  ];
}
