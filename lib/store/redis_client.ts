/**
 * How every Redis connection of the service is made (npm `redis`): commands
 * fail at once while disconnected instead of queueing, each has a deadline,
 * and reconnecting never gives up, with jittered backoff.
 *
 * @module
 */
import { createClient } from "redis";

/** Connection settings shared by the store and the cluster (lib/cluster/). */
export interface RedisClientOptions {
  /** `redis://[[user]:pass@]host[:port][/db]` */
  url: string;
  /** A command that gets no reply within this many ms fails (default 2000). */
  commandTimeoutMs?: number | undefined;
  /** A connection attempt gives up after this many ms (default 2000). */
  connectTimeoutMs?: number | undefined;
  /** Reconnect backoff doubles from 100 ms up to this (default 5000). */
  maxRetryDelayMs?: number | undefined;
}

/**
 * A client, not connected yet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newRedisClient } from "./redis_client.ts";
 * const client = newRedisClient({ url: "redis://127.0.0.1:1" });
 * assert.equal(client.isOpen, false);
 * ```
 */
export function newRedisClient(options: RedisClientOptions) {
  const maxDelay = options.maxRetryDelayMs ?? 5000;
  return createClient({
    url: options.url,
    // Fail at once while disconnected; queued commands would hang callers.
    disableOfflineQueue: true,
    commandOptions: { timeout: options.commandTimeoutMs ?? 2000 },
    socket: {
      connectTimeout: options.connectTimeoutMs ?? 2000,
      // Never give up; jitter keeps several instances from reconnecting in step.
      reconnectStrategy: (retries: number) =>
        Math.round(Math.min(maxDelay, 100 * 2 ** retries) * (0.8 + Math.random() * 0.4)),
    },
  });
}

/** A client of {@linkcode newRedisClient}. */
export type RedisClient = ReturnType<typeof newRedisClient>;
