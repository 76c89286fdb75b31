/**
 * The embedded store's database (lib/store/embedded.ts): its schema, how a
 * file is opened, and the prepared statements the store runs.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { openExclusive } from "./sqlite.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY, class TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_class ON runs (class, seq);
CREATE INDEX IF NOT EXISTS runs_by_age ON runs (at);
CREATE TABLE IF NOT EXISTS classes (class TEXT PRIMARY KEY, used_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY, class TEXT NOT NULL, started_at INTEGER NOT NULL, body TEXT NOT NULL,
  principal TEXT NOT NULL DEFAULT 'local');
CREATE INDEX IF NOT EXISTS records_by_class ON records (class, seq);
CREATE INDEX IF NOT EXISTS records_by_age ON records (started_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
`;

/** Columns a database written by an older version lacks (its records are `local`'s). */
const ADDED = { records: { principal: "TEXT NOT NULL DEFAULT 'local'" } };

/** Indexes on added columns: created once the columns exist. */
const INDEXES = "CREATE INDEX IF NOT EXISTS records_by_principal ON records (principal, seq);";

/**
 * Opens `path`: no shared memory and no mmap (lib/store/sqlite.ts), WAL for cheap
 * commits (synchronous=NORMAL: a commit does not wait for fsync; a power cut
 * may lose the last ones, never the file). Writing `opened_at` takes the
 * exclusive lock, so a database another process holds fails here.
 */
export function openDatabase(path: string): DatabaseSync {
  const db = openExclusive(path, { synchronous: "NORMAL", schema: SCHEMA, added: ADDED });
  try {
    db.exec(INDEXES);
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_at', ?)").run(Date.now());
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** The prepared statements of an open database. */
export function statements(db: DatabaseSync) {
  // Prepared, not exec()'d: only a statement's error carries SQLite's result code.
  return {
    begin: db.prepare("BEGIN"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),
    insertRun: db.prepare("INSERT INTO runs (class, at, body) VALUES (?, ?, ?)"),
    touchClass: db.prepare(
      "INSERT INTO classes (class, used_at) VALUES (?, ?) " +
        "ON CONFLICT (class) DO UPDATE SET used_at = max(used_at, excluded.used_at)",
    ),
    trimRuns: db.prepare(
      "DELETE FROM runs WHERE class = ?1 AND seq <= " +
        "(SELECT seq FROM runs WHERE class = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
    ),
    history: db.prepare(
      "SELECT body FROM runs WHERE class = ? AND at >= ? ORDER BY seq DESC LIMIT ?",
    ),
    classes: db.prepare("SELECT class FROM classes WHERE used_at >= ?"),
    insertRecord: db.prepare(
      "INSERT INTO records (class, started_at, body, principal) VALUES (?, ?, ?, ?)",
    ),
    trimRecords: db.prepare("DELETE FROM records WHERE seq <= ?"),
    records: db.prepare(
      "SELECT body FROM records WHERE started_at >= ? ORDER BY seq DESC LIMIT ?",
    ),
    recordsOfClass: db.prepare(
      "SELECT body FROM records WHERE class = ? AND started_at >= ? ORDER BY seq DESC LIMIT ?",
    ),
    recordsOfPrincipal: db.prepare(
      "SELECT body FROM records WHERE principal = ? AND started_at >= ? " +
        "ORDER BY seq DESC LIMIT ?",
    ),
    recordsOfPrincipalClass: db.prepare(
      "SELECT body FROM records WHERE principal = ? AND class = ? AND started_at >= ? " +
        "ORDER BY seq DESC LIMIT ?",
    ),
    expireRuns: db.prepare("DELETE FROM runs WHERE at < ?"),
    expireClasses: db.prepare("DELETE FROM classes WHERE used_at < ?"),
    expireRecords: db.prepare("DELETE FROM records WHERE started_at < ?"),
    probe: db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('probed_at', ?)"),
    read: db.prepare("SELECT value FROM meta WHERE key = 'opened_at'"),
  };
}

type Statements = ReturnType<typeof statements>;

/** An open database and its statements. */
export interface Open {
  db: DatabaseSync;
  sql: Statements;
}
