/**
 * The crash journal: every process group a server has running, kept on disk
 * so that, should the server die without ending them (SIGKILL, OOM kill, a
 * crash), the next server to start on the data directory can find and end
 * them (lib/core/crash_recovery.ts).
 *
 * Each server instance has its own SQLite file, `<dir>/<instance id>.db`,
 * and holds an exclusive lock on it for as long as it runs. The lock is how
 * liveness is judged: the kernel drops it when the process dies, however it
 * dies, so a journal that can be locked belongs to a dead instance, and one
 * that cannot belongs to a live one, whatever its pid. Several servers can
 * share a data directory this way without touching each other's groups.
 *
 * A record is written before the run's `process.started` is sent (one
 * prepared insert, ~15 µs: synchronous=OFF, since the journal only has to
 * outlive the process, not the machine, whose groups die with it) and is
 * deleted once the group is gone. When a write fails (a full or read-only
 * disk), the run goes on: the journal keeps its records in memory, says so in
 * {@linkcode GroupJournal.health}, and writes them all again as soon as it
 * can (on the next change, or every `retryMs`).
 *
 * @module
 */
import { LOCAL } from "../security/principal.ts";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openExclusive, sqliteReason as reasonOf } from "../store/sqlite.ts";
import { logger } from "../log.ts";
import type { TimeoutSource } from "../types.ts";

const log = logger("crash-journal");

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

/** Journal health, for `/health`. */
export interface JournalHealth {
  /** False while records cannot be written (they are kept in memory meanwhile). */
  ok: boolean;
  reason?: string;
  /** The journal file. */
  path: string;
  /** Groups recorded now. */
  tracked: number;
}

/** What a journal file's instance was, for logs. */
export interface InstanceInfo {
  instance: string;
  pid: number | null;
  startedAt: number | null;
}

/** Options for {@linkcode GroupJournal.open}. */
export interface GroupJournalOptions {
  /** Directory of the journals (created if missing), e.g. `<data dir>/running`. */
  dir: string;
  /** This server instance's id, new at every start. */
  instance: string;
  /** While writes fail, how often to try again, ms. */
  retryMs: number;
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

const COLUMNS = "execution_id, pgid, pid, start_lo, start_hi, boot_id, cgroup, started_at, " +
  "command, limit_class, line, timeout_s, timeout_source, principal";

/** Longest command kept (as the store keeps it). */
const MAX_COMMAND_CHARS = 8192;

function row(r: GroupRecord): (string | number | null)[] {
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

function fromRow(v: Record<string, unknown>): GroupRecord | null {
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
function openLocked(path: string, synchronous: "OFF" | "NORMAL"): DatabaseSync {
  return openExclusive(path, { synchronous, schema: SCHEMA, added: ADDED });
}

/** Removes a journal file and what SQLite keeps beside it. */
function removeFiles(path: string): void {
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      Deno.removeSync(p);
    } catch {
      // Not there, or the directory cannot be written: a later start retries.
    }
  }
}

interface Statements {
  insert: StatementSync;
  remove: StatementSync;
  clear: StatementSync;
  begin: StatementSync;
  commit: StatementSync;
  rollback: StatementSync;
}

/**
 * This instance's journal.
 *
 * @example Records survive in the file until removed
 * ```ts
 * import assert from "node:assert/strict";
 * import { GroupJournal, type GroupRecord } from "./group_journal.ts";
 * const dir = await Deno.makeTempDir();
 * const journal = GroupJournal.open({ dir, instance: "a", retryMs: 1000 });
 * const record: GroupRecord = {
 *   executionId: "e1", pgid: 4242, pid: 4242, startLo: 100, startHi: 102, bootId: "b",
 *   cgroup: null, startedAt: Date.now(), command: "sleep 60", limitClass: null, line: null,
 *   timeoutS: 60, timeoutSource: "request", principal: "alice",
 * };
 * journal.add(record);
 * assert.equal(journal.health().tracked, 1);
 * journal.remove("e1");
 * assert.deepEqual(journal.health(), { ok: true, path: `${dir}/a.db`, tracked: 0 });
 * journal.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class GroupJournal {
  /** The journal file. */
  readonly path: string;
  readonly #instance: string;
  readonly #retryMs: number;
  /** What is running: the truth, which the file follows. */
  readonly #records = new Map<string, GroupRecord>();
  #db: DatabaseSync | null = null;
  #sql: Statements | null = null;
  /** The file lags behind #records (a write failed): write it all again. */
  #stale = true;
  #failure: string | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  private constructor(options: GroupJournalOptions) {
    this.path = `${options.dir}/${options.instance}.db`;
    this.#instance = options.instance;
    this.#retryMs = options.retryMs;
  }

  /**
   * Creates and locks this instance's journal file. A file that cannot be
   * written does not fail this: the journal starts degraded and retries.
   */
  static open(options: GroupJournalOptions): GroupJournal {
    const journal = new GroupJournal(options);
    try {
      Deno.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    } catch {
      // Reported by the open below.
    }
    journal.#sync();
    return journal;
  }

  /** Records a running group (synchronously: call it before `process.started`). */
  add(record: GroupRecord): void {
    if (this.#closed) return;
    this.#records.set(record.executionId, record);
    if (this.#stale) return this.#sync();
    this.#attempt((sql) => sql.insert.run(...row(record)));
  }

  /** Forgets a group once nothing of it is left running. */
  remove(executionId: string): void {
    if (this.#closed || !this.#records.delete(executionId)) return;
    if (this.#stale) return this.#sync();
    this.#attempt((sql) => sql.remove.run(executionId));
  }

  /** Groups recorded now. */
  get size(): number {
    return this.#records.size;
  }

  /** Ok while the file is up to date; else why not. */
  health(): JournalHealth {
    const base = { path: this.path, tracked: this.#records.size };
    return this.#failure === undefined
      ? { ok: true, ...base }
      : { ok: false, reason: this.#failure, ...base };
  }

  /**
   * Closes the journal. With nothing left running the file is removed;
   * otherwise it stays, unlocked, for the next server to reap.
   */
  close(): void {
    if (this.#closed) return;
    // A last chance for a file that lags behind: a run it still lists as
    // running would be recorded as lost by the next start.
    if (this.#stale && this.#records.size > 0) this.#sync();
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    try {
      this.#db?.close();
    } catch {
      // Left for the next start.
    }
    this.#db = null;
    // With nothing running the file goes, even one that lags (removing may
    // work where writing does not, as on a full disk).
    if (this.#records.size === 0) removeFiles(this.path);
  }

  #attempt(write: (sql: Statements) => void): void {
    try {
      write(this.#sql!);
    } catch (e) {
      this.#stale = true;
      this.#fail(reasonOf(e));
    }
  }

  /** (Re)opens the file if needed and writes every record anew, in one transaction. */
  #sync(): void {
    if (this.#closed) return;
    try {
      if (this.#db === null) this.#openFile();
      const sql = this.#sql!;
      sql.begin.run();
      try {
        sql.clear.run();
        for (const r of this.#records.values()) sql.insert.run(...row(r));
        sql.commit.run();
      } catch (e) {
        if (this.#db?.isTransaction) {
          try {
            sql.rollback.run();
          } catch {
            // Nothing more to undo.
          }
        }
        throw e;
      }
      this.#stale = false;
      if (this.#failure !== undefined) {
        log.info("Crash journal writable again ({count} groups recorded)", {
          count: this.#records.size,
        });
      }
      this.#failure = undefined;
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    } catch (e) {
      this.#stale = true;
      this.#fail(reasonOf(e));
    }
  }

  #openFile(): void {
    const db = openLocked(this.path, "OFF");
    try {
      const meta = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
      meta.run("instance", this.#instance);
      meta.run("pid", Deno.pid);
      meta.run("started_at", Date.now());
      this.#sql = {
        insert: db.prepare(
          `INSERT OR REPLACE INTO groups (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        remove: db.prepare("DELETE FROM groups WHERE execution_id = ?"),
        clear: db.prepare("DELETE FROM groups"),
        begin: db.prepare("BEGIN"),
        commit: db.prepare("COMMIT"),
        rollback: db.prepare("ROLLBACK"),
      };
    } catch (e) {
      db.close();
      throw e;
    }
    this.#db = db;
  }

  #fail(reason: string): void {
    if (this.#failure === undefined) {
      log.error(
        "Crash journal {path} cannot be written ({count} groups kept in memory): {reason}",
        {
          path: this.path,
          count: this.#records.size,
          reason,
        },
      );
    }
    this.#failure = reason;
    if (this.#retryTimer !== undefined || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#sync();
    }, this.#retryMs);
    Deno.unrefTimer(this.#retryTimer);
  }
}

/** A journal of a dead instance, locked by us while we reap it. */
export class DeadJournal {
  /** The journal file. */
  readonly path: string;
  /** Who wrote it. */
  readonly info: InstanceInfo;
  /** The groups it recorded (malformed rows are skipped). */
  readonly records: GroupRecord[];
  readonly #db: DatabaseSync;

  private constructor(path: string, db: DatabaseSync, info: InstanceInfo, records: GroupRecord[]) {
    this.path = path;
    this.#db = db;
    this.info = info;
    this.records = records;
  }

  /**
   * Locks and reads the journal at `path`; null when its instance is alive
   * (the file is locked).
   *
   * @throws when the file cannot be read (not a database, unreadable).
   */
  static claim(path: string): DeadJournal | null {
    let db: DatabaseSync;
    try {
      db = openLocked(path, "NORMAL");
      // The exclusive lock comes with the first write.
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('claimed_at', ?)").run(
        Date.now(),
      );
    } catch (e) {
      if (/database is locked/.test(reasonOf(e))) return null;
      throw e;
    }
    try {
      const meta = new Map(
        db.prepare("SELECT key, value FROM meta").all().map((r) => [r.key, r.value]),
      );
      const info: InstanceInfo = {
        instance: String(meta.get("instance") ?? path),
        pid: typeof meta.get("pid") === "number" ? meta.get("pid") as number : null,
        startedAt: typeof meta.get("started_at") === "number"
          ? meta.get("started_at") as number
          : null,
      };
      const records = db.prepare(`SELECT ${COLUMNS} FROM groups`).all()
        .map((r) => fromRow(r as Record<string, unknown>))
        .filter((r): r is GroupRecord => r !== null);
      return new DeadJournal(path, db, info, records);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Deletes the file: its groups have been dealt with. */
  finish(): void {
    try {
      this.#db.exec("DELETE FROM groups");
    } finally {
      this.#db.close();
    }
    removeFiles(this.path);
  }

  /** Lets go of the file, keeping it for a later attempt. */
  release(): void {
    this.#db.close();
  }
}

/**
 * The journal files in `dir` other than `own`'s, oldest first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { journalFiles } from "./group_journal.ts";
 * assert.deepEqual(journalFiles("/nonexistent/dir", "x"), []);
 * ```
 */
export function journalFiles(dir: string, own: string): string[] {
  const files: { path: string; mtime: number }[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (!e.isFile || !e.name.endsWith(".db") || e.name === `${own}.db`) continue;
      const path = `${dir}/${e.name}`;
      let mtime = 0;
      try {
        mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
      } catch {
        continue;
      }
      files.push({ path, mtime });
    }
  } catch {
    return [];
  }
  return files.sort((a, b) => a.mtime - b.mtime).map((f) => f.path);
}
