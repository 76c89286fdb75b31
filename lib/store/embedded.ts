/**
 * The embedded store: SQLite (`node:sqlite`) in a file under the service's
 * data directory (persistent across restarts), or in memory for tests.
 *
 * A storage failure never takes the process down. The database runs with
 * `locking_mode=EXCLUSIVE`, so SQLite keeps the WAL index in heap memory
 * instead of a memory-mapped `-shm` file, and `mmap_size=0`: with nothing
 * mapped, a disk that fills up or turns read-only makes calls fail with an
 * error instead of killing the process with SIGBUS (as Deno KV did). Such a
 * failure makes {@linkcode EmbeddedStore.health} say why until a later write
 * succeeds; while it fails, a probe write is retried every `retryMs`.
 *
 * The exclusive lock is held for as long as the store is open, so one data
 * directory serves one server: a second one finds the database locked, runs
 * degraded (saying so) and takes the database over once the first has gone.
 *
 * @module
 */

import { LOCAL } from "../security/principal.ts";
import { dirname } from "node:path";
import { sqliteReason as reasonOf } from "./sqlite.ts";
import { type Open, openDatabase, statements } from "./_embedded_sql.ts";
import {
  parseRecord,
  parseRun,
  resolveBounds,
  type ResolvedBounds,
  resolveLimit,
  StoreUnavailableError,
  validClass,
  validRecord,
  validRun,
} from "./_common.ts";
import type {
  ExecutionRecord,
  RecordQuery,
  Store,
  StoreBounds,
  StoreHealth,
  TimingRun,
} from "./store.ts";
import { logger } from "../log.ts";

const log = logger("store");

/** Options for {@linkcode EmbeddedStore.open}. */
export interface EmbeddedStoreOptions extends StoreBounds {
  /** Database file (its directory is created), or `":memory:"` to keep nothing. */
  path: string;
  /** While writes fail, a probe write (or a reopen) is tried this often, ms (default 5000). */
  retryMs?: number | undefined;
}

/** Default of {@linkcode EmbeddedStoreOptions.retryMs}. */
export const DEFAULT_RETRY_MS = 5000;

/** Expired rows are deleted at most this often (reads filter by age anyway). */
const EXPIRE_EVERY_MS = 60_000;

/**
 * {@linkcode Store} on SQLite. Runs and records are JSON rows numbered in
 * insertion order; a bound is one range delete after each insert, and
 * expired rows are deleted now and then (reads filter by age as well).
 *
 * `open()` never fails for storage reasons: a database that cannot be opened
 * (unwritable directory, full disk, locked by another server) gives a store
 * that is degraded from the start and keeps trying to open it.
 *
 * @example Persist across a reopen
 * ```ts
 * import assert from "node:assert/strict";
 * import { EmbeddedStore } from "./embedded.ts";
 * const dir = await Deno.makeTempDir();
 * let store = await EmbeddedStore.open({ path: `${dir}/store.db` });
 * await store.appendRun("cmd:make", {
 *   duration_s: 12, exit_code: 0, status: "completed", timed_out: false, at: Date.now(),
 * });
 * await store.close();
 * store = await EmbeddedStore.open({ path: `${dir}/store.db` });
 * assert.equal((await store.history("cmd:make"))[0]?.duration_s, 12);
 * assert.deepEqual(store.health(), { backend: "embedded", ok: true });
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @example A database that cannot be opened: degraded, failing fast
 * ```ts
 * import assert from "node:assert/strict";
 * import { EmbeddedStore } from "./embedded.ts";
 * import { StoreUnavailableError } from "./store.ts";
 * const store = await EmbeddedStore.open({ path: "/proc/no/such/dir/store.db" });
 * assert.equal(store.health().ok, false);
 * await assert.rejects(store.history("cmd:ls"), StoreUnavailableError);
 * assert.equal(store.failures, 1);
 * await store.close();
 * ```
 */
export class EmbeddedStore implements Store {
  /** Always `"embedded"`. */
  readonly backend = "embedded" as const;
  readonly #path: string;
  readonly #bounds: ResolvedBounds;
  readonly #retryMs: number;
  #open: Open | null = null;
  #failures = 0;
  /** Why the last write (or open) failed; cleared by the next success. */
  #failure: string | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #expiredAt = 0;
  #closed = false;

  private constructor(path: string, bounds: ResolvedBounds, retryMs: number) {
    this.#path = path;
    this.#bounds = bounds;
    this.#retryMs = retryMs;
  }

  /**
   * Opens (creating if needed) the database at `options.path`. When that
   * fails the store starts degraded and retries every `retryMs`.
   *
   * @throws {RangeError} for invalid bounds or retry interval
   */
  static async open(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    const bounds = resolveBounds(options);
    const retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
    if (!(retryMs > 0)) throw new RangeError(`retryMs must be positive, got ${retryMs}`);
    const store = new EmbeddedStore(options.path, bounds, retryMs);
    if (options.path !== ":memory:") {
      await Deno.mkdir(dirname(options.path), { recursive: true, mode: 0o700 }).catch(() => {});
    }
    store.#reopen();
    return store;
  }

  /** Appends a run to its class's history; keeps the last `maxRuns`. */
  async appendRun(cls: string, run: TimingRun): Promise<void> {
    validClass(cls);
    const value = validRun(run);
    await this.#write(({ sql }) => {
      sql.insertRun.run(cls, value.at, JSON.stringify(value));
      sql.touchClass.run(cls, Math.max(value.at, Date.now()));
      sql.trimRuns.run(cls, this.#bounds.maxRuns);
    });
  }

  /** The class's runs within the TTL, newest first. */
  async history(cls: string): Promise<TimingRun[]> {
    validClass(cls);
    return await this.#read(({ sql }) => {
      const rows = sql.history.all(cls, this.#since(), this.#bounds.maxRuns);
      return rows.map((r) => parseRun(r.body)).filter((r): r is TimingRun => r !== null);
    });
  }

  /** Classes with a run appended within the TTL. */
  classes(): Promise<string[]> {
    return this.#read(({ sql }) => sql.classes.all(this.#since()).map((r) => String(r.class)));
  }

  /** Keeps a record; keeps the last `maxRecords`. */
  async appendRecord(record: ExecutionRecord): Promise<void> {
    const value = validRecord(record);
    await this.#write(({ sql }) => {
      const { lastInsertRowid } = sql.insertRecord.run(
        value.class,
        value.started_at,
        JSON.stringify(value),
        value.principal ?? LOCAL.id,
      );
      sql.trimRecords.run(Number(lastInsertRowid) - this.#bounds.maxRecords);
    });
  }

  /** Records within the TTL, newest first, optionally of one class and of one principal. */
  records(query: RecordQuery = {}): Promise<ExecutionRecord[]> {
    const limit = resolveLimit(query.limit, this.#bounds.maxRecords);
    return this.#read(({ sql }) => {
      const since = this.#since();
      const { class: cls, principal } = query;
      const rows = principal === undefined
        ? cls === undefined
          ? sql.records.all(since, limit)
          : sql.recordsOfClass.all(cls, since, limit)
        : cls === undefined
        ? sql.recordsOfPrincipal.all(principal, since, limit)
        : sql.recordsOfPrincipalClass.all(principal, cls, since, limit);
      return rows.map((r) => parseRecord(r.body)).filter((r): r is ExecutionRecord => r !== null);
    });
  }

  /**
   * Resolves when the database answers a read, or, while writes are
   * failing, when a probe write succeeds (which ends the degraded state).
   */
  ping(): Promise<void> {
    if (this.#failure !== undefined) {
      return this.#write(({ sql }) => void sql.probe.run(Date.now()));
    }
    return this.#read(({ sql }) => void sql.read.get());
  }

  /** Calls that rejected since open. */
  get failures(): number {
    return this.#failures;
  }

  /** Ok unless closed or the last write failed (then the reason). */
  health(): StoreHealth {
    if (this.#closed) return { backend: this.backend, ok: false, reason: "store is closed" };
    if (this.#failure !== undefined) {
      return { backend: this.backend, ok: false, reason: this.#failure };
    }
    return { backend: this.backend, ok: true };
  }

  /** Closes the database (which checkpoints the WAL into it). Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      clearTimeout(this.#retryTimer);
      try {
        this.#open?.db.close();
      } catch {
        // A checkpoint that cannot be written leaves the WAL for the next open.
      }
      this.#open = null;
    }
    return Promise.resolve();
  }

  #since(): number {
    return Date.now() - this.#bounds.ttlMs;
  }

  /** Opens the database if it is not open; records the failure otherwise. */
  #reopen(): Open | null {
    if (this.#open !== null || this.#closed) return this.#open;
    try {
      const db = openDatabase(this.#path);
      this.#open = { db, sql: statements(db) };
      // Opening wrote to the database: it is usable again.
      if (this.#failure !== undefined) this.#recovered();
    } catch (e) {
      this.#fail(`cannot open ${this.#path}: ${reasonOf(e)}`);
    }
    return this.#open;
  }

  /** The open database, or the error to reject with. */
  #db(): Open {
    if (this.#closed) throw new StoreUnavailableError("embedded", "store is closed");
    const open = this.#reopen();
    if (open === null) throw new StoreUnavailableError("embedded", this.#failure ?? "not open");
    return open;
  }

  /** Runs `fn` in a transaction; a failure degrades the store, a success ends that. */
  #write(fn: (open: Open) => void): Promise<void> {
    try {
      const open = this.#db();
      try {
        open.sql.begin.run();
        fn(open);
        this.#expire(open);
        open.sql.commit.run();
      } catch (e) {
        // SQLite may have rolled back already (a full disk does that).
        if (open.db.isTransaction) {
          try {
            open.sql.rollback.run();
          } catch {
            // Nothing more to undo.
          }
        }
        throw e;
      }
      if (this.#failure !== undefined) this.#recovered();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(this.#unavailable(e));
    }
  }

  #read<T>(fn: (open: Open) => T): Promise<T> {
    try {
      return Promise.resolve(fn(this.#db()));
    } catch (e) {
      return Promise.reject(this.#unavailable(e));
    }
  }

  /** Deletes expired rows, at most once per {@linkcode EXPIRE_EVERY_MS}, inside a write. */
  #expire({ sql }: Open): void {
    const now = Date.now();
    if (now - this.#expiredAt < EXPIRE_EVERY_MS) return;
    this.#expiredAt = now;
    const since = now - this.#bounds.ttlMs;
    sql.expireRuns.run(since);
    sql.expireClasses.run(since);
    sql.expireRecords.run(since);
  }

  #unavailable(e: unknown): StoreUnavailableError {
    // Every rejection of #write and #read comes through here.
    this.#failures++;
    if (e instanceof StoreUnavailableError) return e;
    const reason = reasonOf(e);
    this.#fail(reason);
    return new StoreUnavailableError("embedded", reason, { cause: e });
  }

  /** Records a failure and keeps a probe going until a write succeeds again. */
  #fail(reason: string): void {
    if (this.#failure === undefined && !this.#closed) {
      log.error("Embedded store failing, running degraded: {reason}", { reason });
    }
    this.#failure = reason;
    if (this.#retryTimer !== undefined || this.#closed) return;
    const retry = () => {
      this.#retryTimer = undefined;
      if (this.#closed || this.#failure === undefined) return;
      // A reopen, or a probe write; either re-arms this timer when it fails.
      this.ping().catch(() => {});
      if (this.#failure !== undefined && this.#retryTimer === undefined) this.#arm(retry);
    };
    this.#arm(retry);
  }

  #arm(fn: () => void): void {
    this.#retryTimer = setTimeout(fn, this.#retryMs);
    // The probe alone must not keep the process alive.
    Deno.unrefTimer(this.#retryTimer);
  }

  #recovered(): void {
    log.info("Embedded store writable again");
    this.#failure = undefined;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }
}
