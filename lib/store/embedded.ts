/**
 * The embedded store: Deno KV in a file under the service's data directory
 * (persistent across restarts), or in memory for tests. Needs Deno KV, which
 * Deno 2.9 still gates behind `--unstable-kv` (`"unstable": ["kv"]` in deno.json).
 *
 * @module
 */

import { dirname } from "node:path";
import {
  errorMessage,
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

/** Options for {@linkcode EmbeddedStore.open}. */
export interface EmbeddedStoreOptions extends StoreBounds {
  /** Database file (its directory is created), or `":memory:"` to keep nothing. */
  path: string;
}

// Keys. Runs and records are numbered per sequence so the bound is a range
// delete of everything below `seq - max`, not a scan of the whole list.
const RUN_SEQ = "run_seq";
const RUNS = "runs";
const CLASSES = "classes";
const RECORD_SEQ = "record_seq";
const RECORDS = "records";

/**
 * {@linkcode Store} on Deno KV. Each entry also gets KV's `expireIn`, so
 * expired data leaves the file; reads filter by age as well, because KV
 * deletes expired keys lazily.
 *
 * @example Persist across a reopen
 * ```ts
 * import assert from "node:assert/strict";
 * import { EmbeddedStore } from "./embedded.ts";
 * const dir = await Deno.makeTempDir();
 * let store = await EmbeddedStore.open({ path: `${dir}/store.kv` });
 * await store.appendRun("cmd:make", {
 *   duration_s: 12, exit_code: 0, status: "completed", timed_out: false, at: Date.now(),
 * });
 * await store.close();
 * store = await EmbeddedStore.open({ path: `${dir}/store.kv` });
 * assert.equal((await store.history("cmd:make"))[0]?.duration_s, 12);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class EmbeddedStore implements Store {
  /** Always `"embedded"`. */
  readonly backend = "embedded" as const;
  readonly #kv: Deno.Kv;
  readonly #bounds: ResolvedBounds;
  #closed = false;

  private constructor(kv: Deno.Kv, bounds: ResolvedBounds) {
    this.#kv = kv;
    this.#bounds = bounds;
  }

  /**
   * Opens (creating if needed) the database at `options.path`.
   *
   * @throws {RangeError} for invalid bounds
   * @throws {StoreUnavailableError} when the file cannot be opened
   */
  static async open(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    const bounds = resolveBounds(options);
    try {
      if (options.path !== ":memory:") {
        await Deno.mkdir(dirname(options.path), { recursive: true });
      }
      return new EmbeddedStore(await Deno.openKv(options.path), bounds);
    } catch (e) {
      throw new StoreUnavailableError("embedded", errorMessage(e), { cause: e });
    }
  }

  /** Appends a run to its class's history; keeps the last `maxRuns`. */
  async appendRun(cls: string, run: TimingRun): Promise<void> {
    validClass(cls);
    const value = validRun(run);
    await this.#guard(async () => {
      const expireIn = this.#bounds.ttlMs;
      const seq = await this.#commitNext([RUN_SEQ, cls], (op, n) =>
        op
          .set([RUNS, cls, n], value, { expireIn })
          .set([CLASSES, cls], Math.max(value.at, Date.now()), { expireIn }));
      await this.#deleteBelow([RUNS, cls], seq - this.#bounds.maxRuns + 1);
    });
  }

  /** The class's runs within the TTL, newest first. */
  async history(cls: string): Promise<TimingRun[]> {
    validClass(cls);
    return await this.#guard(async (kv) => {
      const since = Date.now() - this.#bounds.ttlMs;
      const runs: TimingRun[] = [];
      const list = kv.list({ prefix: [RUNS, cls] }, { reverse: true, limit: this.#bounds.maxRuns });
      for await (const entry of list) {
        const run = parseRun(entry.value);
        if (run && run.at >= since) runs.push(run);
      }
      return runs;
    });
  }

  /** Classes with a run within the TTL. */
  classes(): Promise<string[]> {
    return this.#guard(async (kv) => {
      const since = Date.now() - this.#bounds.ttlMs;
      const out: string[] = [];
      for await (const entry of kv.list<unknown>({ prefix: [CLASSES] })) {
        const cls = entry.key[1];
        if (typeof cls === "string" && typeof entry.value === "number" && entry.value >= since) {
          out.push(cls);
        }
      }
      return out;
    });
  }

  /** Keeps a record; keeps the last `maxRecords`. */
  async appendRecord(record: ExecutionRecord): Promise<void> {
    const value = validRecord(record);
    await this.#guard(async () => {
      const expireIn = this.#bounds.ttlMs;
      const seq = await this.#commitNext(
        [RECORD_SEQ],
        (op, n) => op.set([RECORDS, n], value, { expireIn }),
      );
      await this.#deleteBelow([RECORDS], seq - this.#bounds.maxRecords + 1);
    });
  }

  /** Records within the TTL, newest first, optionally of one class. */
  records(query: RecordQuery = {}): Promise<ExecutionRecord[]> {
    const limit = resolveLimit(query.limit, this.#bounds.maxRecords);
    return this.#guard(async (kv) => {
      const since = Date.now() - this.#bounds.ttlMs;
      const out: ExecutionRecord[] = [];
      const list = kv.list({ prefix: [RECORDS] }, { reverse: true });
      for await (const entry of list) {
        const record = parseRecord(entry.value);
        if (!record || record.started_at < since) continue;
        if (query.class !== undefined && record.class !== query.class) continue;
        out.push(record);
        if (out.length >= limit) break;
      }
      return out;
    });
  }

  /** Resolves when the database answers a read. */
  ping(): Promise<void> {
    return this.#guard(async (kv) => {
      await kv.get(["ping"]);
    });
  }

  /** Ok until closed. */
  health(): StoreHealth {
    return this.#closed
      ? { backend: this.backend, ok: false, reason: "store is closed" }
      : { backend: this.backend, ok: true };
  }

  /** Closes the database. Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#kv.close();
    }
    return Promise.resolve();
  }

  /**
   * Takes the next number of the counter at `seqKey` and commits it together
   * with the writes `add` makes, retrying when another writer got there first.
   */
  async #commitNext(
    seqKey: Deno.KvKey,
    add: (op: Deno.AtomicOperation, n: number) => Deno.AtomicOperation,
  ): Promise<number> {
    const expireIn = this.#bounds.ttlMs;
    for (;;) {
      const current = await this.#kv.get<number>(seqKey);
      const n = (typeof current.value === "number" ? current.value : 0) + 1;
      const op = this.#kv.atomic().check(current).set(seqKey, n, { expireIn });
      const result = await add(op, n).commit();
      if (result.ok) return n;
    }
  }

  /** Deletes the entries under `prefix` whose last key part is below `seq`. */
  async #deleteBelow(prefix: Deno.KvKey, seq: number): Promise<void> {
    if (seq <= 1) return;
    for await (const entry of this.#kv.list({ prefix, end: [...prefix, seq] })) {
      await this.#kv.delete(entry.key);
    }
  }

  /** Runs `fn`, turning any storage failure into {@linkcode StoreUnavailableError}. */
  async #guard<T>(fn: (kv: Deno.Kv) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailableError("embedded", "store is closed");
    try {
      return await fn(this.#kv);
    } catch (e) {
      if (e instanceof StoreUnavailableError) throw e;
      throw new StoreUnavailableError("embedded", errorMessage(e), { cause: e });
    }
  }
}
