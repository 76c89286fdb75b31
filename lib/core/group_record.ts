/**
 * The crash journal's records and files (lib/core/group_journal.ts): what a
 * record holds, its row in a journal's SQLite file, and how a file is opened
 * (locked) and removed.
 *
 * @module
 */
import { LOCAL } from "../security/principal.ts";
import type { DatabaseSync } from "node:sqlite";
import { openExclusive } from "../store/sqlite.ts";
import type { TimeoutSource } from "../types.ts";
// The store's bound, in UTF-16 code units; the store marks its own cut with "…".
import { MAX_COMMAND_CHARS } from "../store/store.ts";

/** One running process group, as the journal keeps it. */
export interface GroupRecord {
  /** The execution that started it (`execution_id` on the wire). */
  executionId: string;
  /** Process group id (the leader's pid: each command leads its own session and group). */
  pgid: number;
  /** Leader's pid. */
  pid: number;
  /** The leader's start time, clock ticks since boot: at least this... */
  startLo: number;
  /** ...and at most this (equal when read from /proc; see lib/process/proc_stat.ts). */
  startHi: number;
  /** The boot the ticks count from. */
  bootId: string;
  /**
   * The execution's own cgroup, when it has one (`/sys/fs/cgroup/...`); a
   * reaper for cgroups can then end everything in it, escaped or not.
   */
  cgroup: string | null;
  /** Wall-clock start, ms since the epoch. */
  startedAt: number;
  /** What was run (the command string, or argv joined), for the `lost` record. */
  command: string;
  /** The command class whose automatic limit applied, if any; else derived from `line`. */
  limitClass: string | null;
  /** What the client asked to run, as classified (JSON of a string or string array), if not `command`. */
  line: string | null;
  timeoutS: number | null;
  timeoutSource: TimeoutSource;
  /** Who started it (lib/security/principal.ts); journals of older versions have none: `local`. */
  principal: string;
}

/** What a journal file's instance was, for logs. */
export interface InstanceInfo {
  instance: string;
  pid: number | null;
  startedAt: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (
  execution_id TEXT PRIMARY KEY, pgid INTEGER NOT NULL, pid INTEGER NOT NULL,
  start_lo INTEGER NOT NULL, start_hi INTEGER NOT NULL, boot_id TEXT NOT NULL,
  cgroup TEXT, started_at INTEGER NOT NULL, command TEXT NOT NULL, limit_class TEXT,
  line TEXT, timeout_s REAL, timeout_source TEXT NOT NULL, principal TEXT) WITHOUT ROWID;
`;

/** Columns a journal left by an older version lacks. */
const ADDED = { groups: { principal: "TEXT" } };

export const COLUMNS =
  "execution_id, pgid, pid, start_lo, start_hi, boot_id, cgroup, started_at, " +
  "command, limit_class, line, timeout_s, timeout_source, principal";

export function row(r: GroupRecord): (string | number | null)[] {
  return [
    r.executionId,
    r.pgid,
    r.pid,
    r.startLo,
    r.startHi,
    r.bootId,
    r.cgroup,
    r.startedAt,
    r.command.length > MAX_COMMAND_CHARS ? r.command.slice(0, MAX_COMMAND_CHARS) : r.command,
    r.limitClass,
    r.line,
    r.timeoutS,
    r.timeoutSource,
    r.principal,
  ];
}

const SOURCES: readonly string[] = ["request", "history", "similar", "default"];

export function fromRow(v: Record<string, unknown>): GroupRecord | null {
  const int = (x: unknown) => typeof x === "number" && Number.isInteger(x);
  const str = (x: unknown) => typeof x === "string";
  const strOrNull = (x: unknown): x is string | null => x === null || typeof x === "string";
  if (
    !str(v.execution_id) || !int(v.pgid) || !int(v.pid) || !int(v.start_lo) ||
    !int(v.start_hi) || !str(v.boot_id) || !strOrNull(v.cgroup) || !int(v.started_at) ||
    !str(v.command) || !strOrNull(v.limit_class) || !strOrNull(v.line) ||
    !(v.timeout_s === null || typeof v.timeout_s === "number") ||
    !SOURCES.includes(String(v.timeout_source)) || !strOrNull(v.principal ?? null)
  ) return null;
  return {
    executionId: v.execution_id as string,
    pgid: v.pgid as number,
    pid: v.pid as number,
    startLo: v.start_lo as number,
    startHi: v.start_hi as number,
    bootId: v.boot_id as string,
    cgroup: v.cgroup,
    startedAt: v.started_at as number,
    command: v.command as string,
    limitClass: v.limit_class,
    line: v.line,
    timeoutS: v.timeout_s as number | null,
    timeoutSource: v.timeout_source as TimeoutSource,
    principal: (v.principal as string | null | undefined) ?? LOCAL.id,
  };
}

/**
 * Opens a journal file, locked once written to (lib/store/sqlite.ts); throws
 * "database is locked" when another live instance holds it.
 */
export function openLocked(path: string, synchronous: "OFF" | "NORMAL"): DatabaseSync {
  return openExclusive(path, { synchronous, schema: SCHEMA, added: ADDED });
}

/** Removes a journal file and what SQLite keeps beside it. */
export function removeFiles(path: string): void {
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      Deno.removeSync(p);
    } catch {
      // Not there, or the directory cannot be written: a later start retries.
    }
  }
}
