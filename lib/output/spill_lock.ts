/**
 * The lock file that says a server instance is alive, so servers sharing a
 * data directory remove only the spill of instances that are gone.
 *
 * @module
 */
import * as fs from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { errorText } from "./spill_segment.ts";

/**
 * Takes the lock that says an instance is alive: an SQLite file in
 * exclusive locking mode, held while the connection is open (as the crash
 * journals are, lib/core/group_record.ts). Throws "database is locked"
 * when another connection holds it; no waiting.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { held, lock, removeLock } from "./spill_lock.ts";
 * const dir = Deno.makeTempDirSync();
 * const path = `${dir}/instance.lock`;
 * const db = lock(path);
 * assert.throws(() => lock(path), /locked/);
 * assert.equal(held(path), true);
 * db.close();
 * assert.equal(held(path), false);
 * removeLock(path);
 * assert.equal(held(path), false);
 * Deno.removeSync(dir);
 * ```
 */
export function lock(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("PRAGMA journal_mode = MEMORY"); // no file beside it
    // The exclusive lock comes with the first write, and stays.
    db.exec("CREATE TABLE IF NOT EXISTS held (at INTEGER); INSERT INTO held VALUES (1)");
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * Whether a live instance holds the lock at `path`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { held } from "./spill_lock.ts";
 * assert.equal(held(`${Deno.makeTempDirSync()}/none.lock`), false);
 * ```
 */
export function held(path: string): boolean {
  if (!fs.existsSync(path)) return false;
  try {
    lock(path).close();
    return false;
  } catch (e) {
    return /locked|busy/i.test(errorText(e));
  }
}

/**
 * Removes `path` and the files SQLite keeps beside it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { existsSync } from "node:fs";
 * import { lock, removeLock } from "./spill_lock.ts";
 * const dir = Deno.makeTempDirSync();
 * lock(`${dir}/a.lock`).close();
 * removeLock(`${dir}/a.lock`);
 * assert.equal(existsSync(`${dir}/a.lock`), false);
 * Deno.removeSync(dir);
 * ```
 */
export function removeLock(path: string): void {
  for (const p of [path, `${path}-journal`, `${path}-wal`, `${path}-shm`]) {
    fs.rmSync(p, { force: true });
  }
}
