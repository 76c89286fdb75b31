/**
 * Journals of dead instances (lib/core/group_journal.ts): found in the
 * journal directory and claimed, one at a time, by the crash recovery that
 * ends the groups they recorded (lib/core/crash_recovery.ts).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { sqliteReason as reasonOf } from "../store/sqlite.ts";
import {
  COLUMNS,
  fromRow,
  type GroupRecord,
  type InstanceInfo,
  openLocked,
  removeFiles,
} from "./group_record.ts";

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
 * import { journalFiles } from "./dead_journal.ts";
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
