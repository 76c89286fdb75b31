/**
 * Per-client token buckets (connections per client, messages per second)
 * with a bounded number of clients, so a flood of distinct keys cannot grow
 * memory without limit. Pure: time is passed in, nothing runs on a timer.
 *
 * @module
 */

/** Settings of a {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /** Tokens added to a bucket per second (the sustained rate). */
  ratePerSec: number;
  /** Bucket size: how many takes may come at once after a quiet spell. */
  burst: number;
  /** The most buckets kept; beyond it idle, then least recently used ones go. */
  maxKeys: number;
  /** A bucket untouched this long (ms) may be dropped. */
  idleMs: number;
}

/** What {@linkcode RateLimiter.take} returns. */
export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * Slack for floating-point refill sums, so a retry made exactly
 * `retryAfterMs` later is never refused for a rounding error.
 */
const EPSILON = 1e-9;

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  updated: number;
}

/**
 * A token-bucket rate limiter keyed by client. Each key's bucket holds up to
 * `burst` tokens and refills at `ratePerSec`; a take spends one token.
 *
 * Dropping a bucket hands that client a full one next time, so bounding the
 * map trades a little leniency for bounded memory. Keep `maxKeys` well
 * above the number of clients expected at once.
 *
 * @example Two at once, then one every half second
 * ```ts
 * import assert from "node:assert/strict";
 * import { RateLimiter } from "./rate_limit.ts";
 * const limiter = new RateLimiter({ ratePerSec: 2, burst: 2, maxKeys: 100, idleMs: 60_000 });
 * assert.deepEqual(limiter.take("10.0.0.1", 0), { ok: true });
 * assert.deepEqual(limiter.take("10.0.0.1", 0), { ok: true });
 * assert.deepEqual(limiter.take("10.0.0.1", 0), { ok: false, retryAfterMs: 500 });
 * assert.deepEqual(limiter.take("10.0.0.1", 500), { ok: true });
 * assert.equal(limiter.refused, 1);
 * ```
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  readonly #idleMs: number;
  /** In least- to most-recently used order: a Map iterates in insertion order. */
  readonly #buckets = new Map<string, Bucket>();
  #refused = 0;

  /**
   * Creates a limiter.
   *
   * @throws {RangeError} unless `ratePerSec` > 0, `burst` >= 1, `maxKeys` is
   * a positive integer and `idleMs` >= 0.
   */
  constructor(options: RateLimiterOptions) {
    const { ratePerSec, burst, maxKeys, idleMs } = options;
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) {
      throw new RangeError(`ratePerSec must be a positive number, got ${ratePerSec}`);
    }
    if (!(burst >= 1) || !Number.isFinite(burst)) {
      throw new RangeError(`burst must be at least 1, got ${burst}`);
    }
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      throw new RangeError(`maxKeys must be a positive integer, got ${maxKeys}`);
    }
    if (!(idleMs >= 0)) throw new RangeError(`idleMs must be >= 0, got ${idleMs}`);
    this.#rate = ratePerSec;
    this.#burst = burst;
    this.#maxKeys = maxKeys;
    this.#idleMs = idleMs;
  }

  /** Takes refused since the limiter was made (for `/metrics`). */
  get refused(): number {
    return this.#refused;
  }

  /** How many buckets are kept. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Spends one token of `key`'s bucket, if it has one.
   *
   * @param key Who is asking (an API key's fingerprint, else the remote address).
   * @param now Current time in ms, from a monotonic clock.
   * @returns `{ok: true}`, or `{ok: false, retryAfterMs}`: when the next token is due.
   */
  take(key: string, now: number = performance.now()): TakeResult {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      this.#makeRoom(now);
      bucket = { tokens: this.#burst, updated: now };
    } else {
      bucket.tokens = this.#refilled(bucket, now);
      bucket.updated = Math.max(bucket.updated, now);
      this.#buckets.delete(key); // re-inserted below as the most recently used
    }
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1 - EPSILON) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    this.#refused++;
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) / this.#rate) * 1000) };
  }

  /**
   * Drops buckets that are full (as good as new, so nothing is lost) or
   * idle for `idleMs`. Call it now and then, e.g. from a periodic sweep.
   *
   * @param now Current time in ms, from the same clock as {@linkcode take}.
   * @returns How many buckets were dropped.
   */
  prune(now: number = performance.now()): number {
    let dropped = 0;
    for (const [key, bucket] of this.#buckets) {
      if (this.#isIdle(bucket, now) || this.#refilled(bucket, now) >= this.#burst) {
        this.#buckets.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  #refilled(bucket: Bucket, now: number): number {
    const elapsedSec = Math.max(0, now - bucket.updated) / 1000;
    return Math.min(this.#burst, bucket.tokens + elapsedSec * this.#rate);
  }

  #isIdle(bucket: Bucket, now: number): boolean {
    return now - bucket.updated >= this.#idleMs;
  }

  /**
   * Frees a slot for a new key when the map is full. Idle buckets are the
   * least recently used, so they sit at the front: drop all of them, then,
   * if none was idle, the least recently used one. Never scans active ones.
   */
  #makeRoom(now: number): void {
    if (this.#buckets.size < this.#maxKeys) return;
    for (const [key, bucket] of this.#buckets) {
      if (!this.#isIdle(bucket, now)) break;
      this.#buckets.delete(key);
    }
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size < this.#maxKeys) break;
      this.#buckets.delete(key);
    }
  }
}
