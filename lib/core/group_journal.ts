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
 * This module is the live journal; a record and its row are
 * lib/core/group_record.ts, and the journals of dead instances, claimed for
 * reaping, are lib/core/dead_journal.ts.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { sqliteReason as reasonOf } from "../store/sqlite.ts";
import { logger } from "../log.ts";
import { COLUMNS, type GroupRecord, openLocked, removeFiles, row } from "./group_record.ts";

export type { GroupRecord } from "./group_record.ts";

const log = logger("crash-journal");

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

/** Options for {@linkcode GroupJournal.open}. */
export interface GroupJournalOptions {
  /** Directory of the journals (created if missing), e.g. `<data dir>/running`. */
  dir: string;
  /** This server instance's id, new at every start. */
  instance: string;
  /** While writes fail, how often to try again, ms. */
  retryMs: number;
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
