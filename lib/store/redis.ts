/**
 * The Redis store (npm `redis`). Runs and records are JSON in lists bounded
 * with LTRIM and expired with PEXPIRE; known classes are a sorted set scored
 * by last use. The client reconnects by itself with capped backoff, and while
 * it is disconnected every call fails at once instead of queueing.
 *
 * npm `redis` reads the `REDIS_DEBUG_MAINTENANCE` env var when loaded.
 *
 * @module
 */

import { LOCAL } from "../security/principal.ts";
import { newRedisClient, type RedisClient, type RedisClientOptions } from "./redis_client.ts";
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

/** Key prefix unless configured. */
export const DEFAULT_REDIS_PREFIX = "cc_executor:";

/** Options for {@linkcode RedisStore.open}. */
export interface RedisStoreOptions extends StoreBounds, RedisClientOptions {
  /** Prefix of every key (default `cc_executor:`). */
  prefix?: string | undefined;
}

const newClient = newRedisClient;
type Client = RedisClient;

/** Records fetched per LRANGE while filtering by class. */
const PAGE = 200;

/**
 * {@linkcode Store} on Redis. `open()` never waits for Redis to come up: when
 * it is down the store starts degraded (`health().ok === false`) and connects
 * as soon as it can. Every call has a deadline (`commandTimeoutMs`): npm
 * `redis` only times out commands not yet sent, so a Redis that accepts
 * commands and never answers would hold callers forever. On a missed deadline
 * the connection is dropped and a fresh one takes over.
 *
 * @example A Redis that is down: the store opens degraded and fails fast
 * ```ts
 * import assert from "node:assert/strict";
 * import { RedisStore } from "./redis.ts";
 * import { StoreUnavailableError } from "./store.ts";
 * const store = await RedisStore.open({ url: "redis://127.0.0.1:1" });
 * assert.equal(store.health().ok, false);
 * await assert.rejects(store.history("cmd:ls"), StoreUnavailableError);
 * assert.equal(store.failures, 1);
 * await store.close();
 * ```
 */
export class RedisStore implements Store {
  /** Always `"redis"`. */
  readonly backend = "redis" as const;
  readonly #options: RedisStoreOptions;
  readonly #prefix: string;
  readonly #bounds: ResolvedBounds;
  readonly #timeoutMs: number;
  #client: Client;
  /** Connect loops of every client made, settled once each is connected or destroyed. */
  readonly #connecting: Promise<void>[] = [];
  /** The last connection error, cleared when the connection is ready. */
  #connectionError: string | undefined = "connecting";
  #failures = 0;
  /** The last command failure, cleared by the next success. */
  #commandError: string | undefined;
  #closed = false;

  private constructor(options: RedisStoreOptions, bounds: ResolvedBounds) {
    this.#options = options;
    this.#prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    this.#bounds = bounds;
    this.#timeoutMs = options.commandTimeoutMs ?? 2000;
    this.#client = newClient(options);
  }

  /**
   * Creates the client and starts connecting; resolves after the first
   * attempt succeeds or fails, so a down Redis does not hold up startup.
   *
   * @throws {RangeError} for invalid bounds
   * @throws {TypeError} for an invalid URL
   */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(options, resolveBounds(options));
    await store.#connect(store.#client);
    return store;
  }

  /** Appends a run to its class's history; keeps the last `maxRuns`. */
  async appendRun(cls: string, run: TimingRun): Promise<void> {
    validClass(cls);
    const value = validRun(run);
    await this.#guard(async (c) => {
      const key = this.#key("runs:", cls);
      const classes = this.#key("classes");
      const now = Date.now();
      const ttl = this.#bounds.ttlMs;
      await c.multi()
        .lPush(key, JSON.stringify(value))
        .lTrim(key, 0, this.#bounds.maxRuns - 1)
        .pExpire(key, ttl)
        .zAdd(classes, { score: Math.max(value.at, now), value: cls })
        .zRemRangeByScore(classes, "-inf", `(${now - ttl}`)
        .pExpire(classes, ttl)
        .exec();
    });
  }

  /** The class's runs within the TTL, newest first. */
  async history(cls: string): Promise<TimingRun[]> {
    validClass(cls);
    return await this.#guard(async (c) => {
      const since = Date.now() - this.#bounds.ttlMs;
      const raw = await c.lRange(this.#key("runs:", cls), 0, this.#bounds.maxRuns - 1);
      return raw.map(parseRun).filter((r): r is TimingRun => r !== null && r.at >= since);
    });
  }

  /** Classes with a run within the TTL. */
  classes(): Promise<string[]> {
    return this.#guard((c) =>
      c.zRangeByScore(this.#key("classes"), Date.now() - this.#bounds.ttlMs, "+inf")
    );
  }

  /** Keeps a record (a lost run's once); keeps the last `maxRecords`. */
  async appendRecord(record: ExecutionRecord): Promise<void> {
    const value = validRecord(record);
    await this.#guard(async (c) => {
      // A lost run may be found by several: a node that declared its node dead, and that
      // node's crash recovery when it restarts. Its record is kept once.
      if (value.status === "lost") {
        const first = await c.set(this.#key("recorded:", value.execution_id), "1", {
          NX: true,
          PX: this.#bounds.ttlMs,
        });
        if (first === null) return;
      }
      const key = this.#key("records");
      await c.multi()
        .lPush(key, JSON.stringify(value))
        .lTrim(key, 0, this.#bounds.maxRecords - 1)
        .pExpire(key, this.#bounds.ttlMs)
        .exec();
    });
  }

  /** Records within the TTL, newest first, optionally of one class and of one principal. */
  records(query: RecordQuery = {}): Promise<ExecutionRecord[]> {
    const limit = resolveLimit(query.limit, this.#bounds.maxRecords);
    return this.#guard(async (c) => {
      const key = this.#key("records");
      const since = Date.now() - this.#bounds.ttlMs;
      const out: ExecutionRecord[] = [];
      // Pages, so a class filter does not fetch all 10 000 records when a few will do.
      for (let start = 0; start < this.#bounds.maxRecords && out.length < limit; start += PAGE) {
        const raw = await c.lRange(key, start, start + PAGE - 1);
        for (const item of raw) {
          const record = parseRecord(item);
          if (!record || record.started_at < since) continue;
          if (query.class !== undefined && record.class !== query.class) continue;
          if (
            query.principal !== undefined && (record.principal ?? LOCAL.id) !== query.principal
          ) continue;
          out.push(record);
          if (out.length >= limit) break;
        }
        if (raw.length < PAGE) break;
      }
      return out;
    });
  }

  /** Resolves when Redis answers PING. */
  ping(): Promise<void> {
    return this.#guard(async (c) => {
      await c.ping();
    });
  }

  /** Calls that rejected since open. */
  get failures(): number {
    return this.#failures;
  }

  /** Connected and the last command did not fail; else the reason. */
  health(): StoreHealth {
    if (this.#closed) return { backend: this.backend, ok: false, reason: "store is closed" };
    if (!this.#client.isReady) {
      return { backend: this.backend, ok: false, reason: this.#connectionError ?? "not connected" };
    }
    if (this.#commandError !== undefined) {
      return { backend: this.backend, ok: false, reason: this.#commandError };
    }
    return { backend: this.backend, ok: true };
  }

  /** Closes the connection (gracefully when Redis answers in time) and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const client = this.#client;
    if (client.isReady) {
      // QUIT lets writes in flight finish, but a hung Redis must not hold up shutdown.
      await this.#withDeadline(client.close()).catch(() => {});
    }
    if (client.isOpen) client.destroy();
    await Promise.all(this.#connecting);
  }

  /**
   * Starts `client`'s connect loop and resolves after its first attempt
   * succeeds or fails. Events of a client that has been replaced are ignored.
   */
  #connect(client: Client): Promise<void> {
    return new Promise<void>((resolve) => {
      const current = () => client === this.#client;
      client.on("error", (e: unknown) => {
        if (current()) this.#connectionError = errorMessage(e);
        resolve();
      });
      client.on("ready", () => {
        if (current()) {
          this.#connectionError = undefined;
          this.#commandError = undefined;
        }
        resolve();
      });
      client.on("end", () => resolve());
      this.#connecting.push(
        client.connect().then(
          () => {},
          (e: unknown) => {
            if (current()) this.#connectionError = errorMessage(e);
            resolve();
          },
        ),
      );
    });
  }

  /** Drops `stale` (if still in use) for a fresh client, which reconnects by itself. */
  #replace(stale: Client, reason: string): void {
    if (stale !== this.#client || this.#closed) return;
    this.#client = newClient(this.#options);
    this.#connectionError = `${reason}; reconnecting`;
    this.#commandError = undefined;
    void this.#connect(this.#client);
    stale.destroy();
  }

  #key(kind: string, suffix = ""): string {
    return `${this.#prefix}${kind}${suffix}`;
  }

  /** Rejects with {@linkcode DeadlineError} when `work` takes longer than the command timeout. */
  async #withDeadline<T>(work: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineError(this.#timeoutMs)), this.#timeoutMs);
    });
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs `fn` within the deadline, turning every failure into {@linkcode StoreUnavailableError}. */
  async #guard<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailableError("redis", "store is closed");
    const client = this.#client;
    const work = fn(client);
    try {
      const result = await this.#withDeadline(work);
      this.#commandError = undefined;
      return result;
    } catch (e) {
      this.#failures++;
      if (e instanceof DeadlineError) {
        // The late outcome has nobody to go to.
        work.catch(() => {});
        this.#replace(client, e.message);
        throw new StoreUnavailableError("redis", e.message, { cause: e });
      }
      // "The client is offline" says less than the connection error behind it.
      const reason = !client.isReady && this.#connectionError
        ? this.#connectionError
        : errorMessage(e);
      if (client.isReady) this.#commandError = reason;
      throw new StoreUnavailableError("redis", reason, { cause: e });
    }
  }
}

/** A call took longer than the command timeout. */
class DeadlineError extends Error {
  constructor(ms: number) {
    super(`no reply from Redis within ${ms} ms`);
    this.name = "DeadlineError";
  }
}
