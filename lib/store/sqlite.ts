/**
 * SQLite (`node:sqlite`) opened so that a failing disk cannot kill the
 * process: shared by the embedded store and the crash journal.
 *
 * In WAL mode SQLite normally keeps its WAL index in a memory-mapped `-shm`
 * file; when that file's disk fills up or turns read-only, touching the
 * mapping raises SIGBUS, which kills the process on the spot (as it did with
 * Deno KV). `locking_mode=EXCLUSIVE` keeps the index in heap memory instead,
 * and `mmap_size=0` maps nothing else, so every failure comes back as an
 * error. The price: the file is locked for as long as it is open.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/**
 * Opens `path` (`":memory:"` too) with exclusive locking, no mmap, WAL, and
 * the given `synchronous` level, then runs `schema`, then adds the `added`
 * columns a file written by an older version lacks (table -> column ->
 * definition; a new file has them from `schema`). The exclusive lock comes
 * with the first write, so a file another connection holds fails here with
 * "database is locked" (no waiting: busy timeout 0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openExclusive } from "./sqlite.ts";
 * const dir = await Deno.makeTempDir();
 * const db = openExclusive(`${dir}/a.db`, { synchronous: "NORMAL", schema: "CREATE TABLE t (x)" });
 * db.prepare("INSERT INTO t VALUES (1)").run();
 * assert.equal(db.prepare("PRAGMA mmap_size").get()?.mmap_size, 0);
 * assert.throws(() => openExclusive(`${dir}/a.db`, { synchronous: "NORMAL", schema: "" }), {
 *   message: /database is locked/,
 * });
 * db.close();
 * // Reopened by a newer version that added a column:
 * const newer = openExclusive(`${dir}/a.db`, {
 *   synchronous: "NORMAL", schema: "CREATE TABLE IF NOT EXISTS t (x, y)", added: { t: { y: "TEXT" } },
 * });
 * assert.deepEqual({ ...newer.prepare("SELECT * FROM t").get() }, { x: 1, y: null });
 * newer.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openExclusive(
  path: string,
  options: {
    synchronous: "OFF" | "NORMAL";
    schema: string;
    added?: Record<string, Record<string, string>>;
  },
): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("PRAGMA mmap_size = 0");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${options.synchronous}`);
    // A WAL grown by a big transaction is cut back after the next checkpoint.
    db.exec("PRAGMA journal_size_limit = 4194304");
    db.exec(options.schema);
    for (const [table, columns] of Object.entries(options.added ?? {})) {
      const have = new Set(
        db.prepare(`PRAGMA table_info(${table})`).all().map((c) => String(c.name)),
      );
      for (const [column, definition] of Object.entries(columns)) {
        if (!have.has(column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
      }
    }
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Names of the result codes a failing disk or a second server produce. */
const CODES: Record<number, string> = {
  5: "SQLITE_BUSY",
  8: "SQLITE_READONLY",
  10: "SQLITE_IOERR",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
};

const IOERR_DETAIL: Record<number, string> = { 1: "READ", 3: "WRITE", 4: "FSYNC", 6: "TRUNCATE" };

/**
 * SQLite's message with the name of its result code, e.g. `disk I/O error
 * (SQLITE_IOERR_WRITE)`. Only errors of prepared statements carry the code
 * (`exec()` errors do not): run what may fail through `prepare()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sqliteReason } from "./sqlite.ts";
 * const e = Object.assign(new Error("disk I/O error"), { errcode: 778 });
 * assert.equal(sqliteReason(e), "disk I/O error (SQLITE_IOERR_WRITE)");
 * ```
 */
export function sqliteReason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { errcode?: unknown })?.errcode;
  if (typeof code !== "number") return message;
  // The low byte is the primary code; SQLITE_IOERR says which operation in the rest.
  const name = CODES[code & 0xff];
  if (name === undefined) return message;
  const detail = name === "SQLITE_IOERR" ? IOERR_DETAIL[code >> 8] : undefined;
  return `${message} (${name}${detail === undefined ? "" : `_${detail}`})`;
}
