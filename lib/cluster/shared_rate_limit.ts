/**
 * The connection rate limit of a client, shared by every node: one token
 * bucket per client in Redis (a script on Redis's own clock), so a client
 * cannot multiply its budget by spreading its connections over the nodes.
 * While Redis cannot be reached, each node's own bucket
 * (lib/security/rate_limit.ts) is what applies.
 *
 * @module
 */
import type { TakeResult } from "../security/rate_limit.ts";
import type { ClusterBus } from "./bus.ts";

/** Spends one token of KEYS[1]; ARGV: rate per second, burst. Returns {ok, retry after ms}. */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local ok = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
else
  wait = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {ok, wait}`;

/**
 * A bucket per client, in Redis.
 *
 * @example Without Redis it has no answer, and the node's own limit applies
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClusterBus } from "./bus.ts";
 * import { SharedRateLimit } from "./shared_rate_limit.ts";
 * const bus = await ClusterBus.open({ url: "redis://127.0.0.1:1", prefix: "t:" });
 * const limit = new SharedRateLimit(bus, "conn", { ratePerSec: 1, burst: 1 });
 * assert.equal(await limit.take("addr:10.0.0.1"), null);
 * await bus.close();
 * ```
 */
export class SharedRateLimit {
  readonly #bus: ClusterBus;
  readonly #name: string;
  readonly #rate: number;
  readonly #burst: number;

  /** Buckets named `name` (one limit's), refilled at `ratePerSec` up to `burst`. */
  constructor(bus: ClusterBus, name: string, options: { ratePerSec: number; burst: number }) {
    this.#bus = bus;
    this.#name = name;
    this.#rate = options.ratePerSec;
    this.#burst = options.burst;
  }

  /** Spends one of `key`'s tokens; null when Redis cannot answer (use the node's own limit). */
  async take(key: string): Promise<TakeResult | null> {
    if (!this.#bus.ready) return null;
    try {
      const reply = await this.#bus.eval(TAKE, [this.#bus.keys.rate(this.#name, key)], [
        String(this.#rate),
        String(this.#burst),
      ]);
      const [ok, wait] = reply as [number, number];
      return ok === 1 ? { ok: true } : { ok: false, retryAfterMs: Number(wait) };
    } catch {
      return null;
    }
  }
}
