/**
 * The store contract: timing history per command class and execution records,
 * kept in Redis or in an embedded SQLite database. Callers reach the store only
 * through {@linkcode Store}; {@linkcode createStore} picks the backend.
 *
 * @module
 */

import type { FinalStatus, RecordStatus, TimeoutSource } from "../types.ts";
import { EmbeddedStore } from "./embedded.ts";

export { MAX_COMMAND_CHARS, StoreUnavailableError } from "./_common.ts";

/** One finished run of a command class, as the timing history keeps it. */
export interface TimingRun {
  /** Wall-clock seconds from spawn to end. */
  duration_s: number;
  /** Exit code, or null when a signal ended the process. */
  exit_code: number | null;
  status: FinalStatus;
  /** True when the run was ended by its time limit. */
  timed_out: boolean;
  /** The time limit in force, seconds (absent in runs recorded before limits were kept). */
  limit_s?: number | null | undefined;
  /** True when that limit was automatic (learned or default), not the request's. */
  auto?: boolean | undefined;
  /** When the run finished, Unix epoch milliseconds. Runs older than the TTL are dropped. */
  at: number;
}

/** What is kept about one finished execution, for the `history` method. */
export interface ExecutionRecord {
  execution_id: string;
  command: string;
  /** Command class (see `lib/timing/classify.ts`). */
  class: string;
  /** Unix epoch milliseconds. Records older than the TTL are dropped. */
  started_at: number;
  duration_s: number;
  /** How it ended; `lost` when its server died first (see lib/core/crash_recovery.ts). */
  status: RecordStatus;
  exit_code: number | null;
  /** Signal name when a signal ended the process, else null. */
  signal: string | null;
  /** Time limit in force, seconds; null for none. */
  timeout_s: number | null;
  timeout_source: TimeoutSource;
  bytes_out: number;
  bytes_err: number;
  /** Who ran it (lib/security/principal.ts); records of older versions have none and are `local`'s. */
  principal?: string | undefined;
}

/** Query for {@linkcode Store.records}. */
export interface RecordQuery {
  /** At most this many records (default 100, capped at the store's bound). */
  limit?: number;
  /** Only records of this command class. */
  class?: string;
  /** Only records of this principal (a record without one is `local`'s); absent: everyone's. */
  principal?: string | undefined;
}

/** Store health, for `/health`. */
export interface StoreHealth {
  backend: "redis" | "embedded";
  /**
   * False while the backend cannot be reached or its last write failed (a
   * full or read-only disk); the service then runs degraded.
   */
  ok: boolean;
  /** Why it is not ok (the last connection or write error), when it is not. */
  reason?: string;
}

/**
 * Where timing history and execution records live. Every method rejects with
 * {@linkcode StoreUnavailableError} when the backend cannot be reached, at once
 * rather than after a queue drains, so callers can fall back and carry on.
 */
export interface Store {
  /** Which backend this is. */
  readonly backend: "redis" | "embedded";
  /** Appends a finished run to its class's history (bounded, expiring). */
  appendRun(cls: string, run: TimingRun): Promise<void>;
  /** The class's runs within the TTL, newest first, at most the bound. */
  history(cls: string): Promise<TimingRun[]>;
  /** Classes with at least one run within the TTL, in no particular order. */
  classes(): Promise<string[]>;
  /** Keeps a finished execution's record (bounded, expiring). */
  appendRecord(record: ExecutionRecord): Promise<void>;
  /** Records within the TTL, newest first. */
  records(query?: RecordQuery): Promise<ExecutionRecord[]>;
  /** Resolves when a round trip to the backend succeeds. */
  ping(): Promise<void>;
  /** The last known health, without a round trip (cheap enough for every `/health`). */
  health(): StoreHealth;
  /**
   * Calls that rejected since the store was opened (reads, writes and
   * probes): each {@linkcode StoreUnavailableError}, for `/metrics`.
   */
  readonly failures: number;
  /** Closes connections and stops reconnecting. Idempotent. */
  close(): Promise<void>;
}

/** Bounds shared by both backends. */
export interface StoreBounds {
  /** Runs kept per class (default 100). */
  maxRuns?: number;
  /** Execution records kept (default 10 000). */
  maxRecords?: number;
  /** Seconds a run or record is kept (default 7 days). */
  ttlS?: number;
}

/** Options for {@linkcode createStore}. */
export interface CreateStoreOptions extends StoreBounds {
  /** `redis://` URL; when set the Redis backend is used (suggested env: `REDIS_URL`). */
  redisUrl?: string | undefined;
  /** Redis key prefix (default `cc_executor:`). */
  prefix?: string;
  /** Redis per-command timeout in ms (default 2000). */
  commandTimeoutMs?: number;
  /** Longest wait between Redis reconnect attempts, ms (default 5000). */
  maxRetryDelayMs?: number;
  /** Embedded database file, e.g. `<data dir>/store.db`; `":memory:"` keeps nothing. */
  path?: string | undefined;
  /** Embedded store in memory only, for tests (same as `path: ":memory:"`). */
  ephemeral?: boolean;
  /** Embedded store: while writes fail, how often to try again, ms (default 5000). */
  retryMs?: number | undefined;
}

/**
 * Opens the Redis store when `redisUrl` is given, else the embedded store.
 * A Redis server that is down, or a database file that cannot be opened,
 * does not make this fail: the store starts degraded and recovers by itself.
 *
 * @throws {TypeError} when neither `redisUrl`, `path` nor `ephemeral` is given
 * @throws {RangeError} for invalid bounds
 *
 * @example An in-memory store
 * ```ts
 * import assert from "node:assert/strict";
 * import { createStore } from "./store.ts";
 * const store = await createStore({ ephemeral: true });
 * await store.appendRun("cmd:ls", {
 *   duration_s: 0.1, exit_code: 0, status: "completed", timed_out: false, at: Date.now(),
 * });
 * assert.equal((await store.history("cmd:ls")).length, 1);
 * assert.deepEqual(store.health(), { backend: "embedded", ok: true });
 * await store.close();
 * ```
 */
export async function createStore(options: CreateStoreOptions): Promise<Store> {
  const bounds = { maxRuns: options.maxRuns, maxRecords: options.maxRecords, ttlS: options.ttlS };
  if (options.redisUrl) {
    // Loaded only when used: the Redis client adds ~25 MB to the process.
    const { RedisStore } = await import("./redis.ts");
    return await RedisStore.open({
      ...bounds,
      url: options.redisUrl,
      prefix: options.prefix,
      commandTimeoutMs: options.commandTimeoutMs,
      maxRetryDelayMs: options.maxRetryDelayMs,
    });
  }
  const path = options.ephemeral ? ":memory:" : options.path;
  if (!path) throw new TypeError("Embedded store needs a path or ephemeral: true");
  return await EmbeddedStore.open({ ...bounds, path, retryMs: options.retryMs });
}
