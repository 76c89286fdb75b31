/**
 * Signals to a whole process group, and censuses of which groups still have
 * a live member: what termination needs to know a group is gone.
 *
 * @module
 */
import { granted } from "./program.ts";
import { procReadable } from "./proc_stat.ts";

/** Signals the service sends: its own, and those a client may ask for (`control` `SIGNAL`). */
export type GroupSignal =
  | "SIGSTOP"
  | "SIGCONT"
  | "SIGTERM"
  | "SIGKILL"
  | "SIGINT"
  | "SIGHUP"
  | "SIGQUIT"
  | "SIGUSR1"
  | "SIGUSR2";

/** How often termination checks whether the group is gone. */
export const PROBE_INTERVAL_MS = 20;

/** Set once Deno.kill was refused (scoped --allow-run): use the kill program from then on. */
let needKillCommand = false;

/** Whether signals go through the kill program, since Deno.kill was refused. */
export function killCommandNeeded(): boolean {
  return needKillCommand;
}

/** Sends a signal with Deno.kill; "refused" when the permission is scoped. */
export function killDirect(pgid: number, signal: GroupSignal): boolean | "refused" {
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
 * import { groupPids } from "./group_signal.ts";
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
 * Where a census of live processes comes from: /proc (Deno grants it only
 * with --allow-all), else `ps` (a process of its own, which Deno's rules do
 * not bind), else nowhere. Probed once: a refused /proc read throws, and
 * costs an error object, every time.
 */
let censusSource: "proc" | "ps" | "none" | undefined;

function probeCensusSource(): "proc" | "ps" | "none" {
  // Unreadable: NotCapable without --allow-all; no /proc at all off Linux.
  if (procReadable()) return "proc";
  return granted({ name: "run", command: "ps" }) ? "ps" : "none";
}

/** The newest census; reused by every group that asks soon after, so 12 cancels take one. */
let census: { at: number; live: Promise<Set<number> | null> } | null = null;

/**
 * The process groups that have a live (non-zombie) member, from a census
 * started at or after `since` (one taken earlier could predate a group's
 * members), or null when no census can be taken.
 */
export function liveGroups(since: number): Promise<Set<number> | null> {
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
