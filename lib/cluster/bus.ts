/**
 * The connections a node keeps to Redis for the cluster: one for commands,
 * and one dedicated connection per blocking reader (a blocked `XREAD` holds
 * its connection, so it never shares one; node-redis `duplicate()`). Every
 * failure to reach Redis becomes a {@linkcode ClusterDownError}.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { RESP_TYPES } from "redis";
import { ClusterDownError } from "../errors.ts";
import { newRedisClient, type RedisClient } from "../store/redis_client.ts";
import { ClusterKeys } from "./keys.ts";

/** One stream entry as read: its id and its fields' raw bytes. */
export interface StreamEntry {
  id: string;
  fields: Record<string, Uint8Array>;
}

/** Options for {@linkcode ClusterBus.open}. */
export interface ClusterBusOptions {
  /** `redis://` URL (the store's `redis-url`). */
  url: string;
  /** Prefix of every key (`redis-prefix`). */
  prefix: string;
}

const decoder = new TextDecoder();

/** Longest a command may take before its caller is told Redis is unavailable. */
const COMMAND_DEADLINE_MS = 2000;

/** Longest wait for a new reader's connection before its first read is tried anyway. */
const CONNECT_WAIT_MS = 2000;

/** A field as text ("" when absent). */
export function text(entry: StreamEntry, field: string): string {
  const v = entry.fields[field];
  return v === undefined ? "" : decoder.decode(v);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

type Raw = { id: unknown; message: Record<string, unknown> };

function toEntries(reply: unknown): StreamEntry[] {
  const out: StreamEntry[] = [];
  if (!Array.isArray(reply)) return out;
  for (const stream of reply as { messages?: Raw[] }[]) {
    for (const m of stream.messages ?? []) {
      const fields: Record<string, Uint8Array> = {};
      for (const [k, v] of Object.entries(m.message)) {
        if (v instanceof Uint8Array) fields[k] = v;
      }
      out.push({ id: String(m.id), fields });
    }
  }
  return out;
}

/**
 * A dedicated connection for blocking reads of streams.
 */
export class StreamReader {
  readonly #client: RedisClient;

  /** Wraps a connection of its own (see {@linkcode ClusterBus.reader}). */
  constructor(client: RedisClient) {
    this.#client = client;
  }

  /**
   * Entries after `id` of `key`, waiting up to `blockMs` for one; [] when none came.
   *
   * @throws {ClusterDownError} when Redis cannot be reached.
   */
  async read(key: string, id: string, blockMs: number, count = 128): Promise<StreamEntry[]> {
    try {
      const reply = await this.#client
        .withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
        .xRead({ key, id }, { BLOCK: blockMs, COUNT: count });
      return toEntries(reply);
    } catch (e) {
      throw new ClusterDownError(message(e), { cause: e });
    }
  }

  /**
   * New entries of `keys` for `consumer` of `group`, waiting up to `blockMs`.
   *
   * @throws {ClusterDownError} when Redis cannot be reached (or a group is missing).
   */
  async readGroup(
    group: string,
    consumer: string,
    keys: string[],
    blockMs: number,
  ): Promise<{ key: string; entry: StreamEntry }[]> {
    try {
      const reply = await this.#client
        .withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
        .xReadGroup(group, consumer, keys.map((key) => ({ key, id: ">" })), {
          BLOCK: blockMs,
          COUNT: 64,
        });
      const out: { key: string; entry: StreamEntry }[] = [];
      if (!Array.isArray(reply)) return out;
      for (const stream of reply as { name: unknown }[]) {
        const key = String(stream.name);
        for (const entry of toEntries([stream])) out.push({ key, entry });
      }
      return out;
    } catch (e) {
      throw new ClusterDownError(message(e), { cause: e });
    }
  }

  /** Closes the connection (a read blocked on it ends). Idempotent. */
  close(): void {
    if (this.#client.isOpen) this.#client.destroy();
  }
}

/**
 * A node's connection to the cluster.
 *
 * @example A Redis that is down: the bus opens, and says why it is not ready
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClusterBus } from "./bus.ts";
 * const bus = await ClusterBus.open({ url: "redis://127.0.0.1:1", prefix: "t:" });
 * assert.equal(bus.ready, false);
 * await assert.rejects(bus.client.ping());
 * await bus.close();
 * ```
 */
export class ClusterBus {
  /** Key names. */
  readonly keys: ClusterKeys;
  /** The command connection (fails at once while disconnected). */
  readonly client: RedisClient;
  #error: string | undefined = "connecting";
  readonly #readers = new Set<StreamReader>();
  readonly #connecting: Promise<unknown>;
  #closed = false;

  private constructor(options: ClusterBusOptions) {
    this.keys = new ClusterKeys(options.prefix);
    this.client = newRedisClient({ url: options.url });
    this.client.on("error", (e: unknown) => this.#error = message(e));
    this.client.on("ready", () => this.#error = undefined);
    this.#connecting = this.client.connect().catch((e: unknown) => this.#error = message(e));
  }

  /** Connects, waiting at most for the first attempt: a Redis that is down is not fatal. */
  static async open(options: ClusterBusOptions): Promise<ClusterBus> {
    const bus = new ClusterBus(options);
    await new Promise<void>((resolve) => {
      bus.client.once("ready", resolve);
      bus.client.once("error", () => resolve());
      void bus.#connecting.then(() => resolve());
    });
    return bus;
  }

  /** Whether Redis answers now. */
  get ready(): boolean {
    return !this.#closed && this.client.isReady;
  }

  /** Why it is not ready (the last connection error). */
  get reason(): string {
    if (this.#closed) return "the node is shutting down";
    return this.#error ?? (this.client.isReady ? "" : "not connected to Redis");
  }

  /** @throws {ClusterDownError} unless Redis answers now. */
  check(): void {
    if (!this.ready) throw new ClusterDownError(this.reason);
  }

  /**
   * Runs a script (lib/cluster/scripts.ts).
   *
   * @throws {ClusterDownError} when Redis cannot be reached.
   */
  async eval(
    script: string,
    keys: string[],
    args: (string | Uint8Array)[],
  ): Promise<unknown> {
    return await this.run((c) =>
      c.eval(script, {
        keys,
        arguments: args.map((a) =>
          typeof a === "string" ? a : Buffer.from(a.buffer, a.byteOffset, a.length)
        ),
      })
    );
  }

  /**
   * Runs `fn` on the command connection, turning any failure into a {@linkcode ClusterDownError}.
   */
  async run<T>(fn: (client: RedisClient) => Promise<T>): Promise<T> {
    // npm `redis` times out only commands not yet sent: a Redis that took
    // them and went silent (frozen) would hold every caller until it woke.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const work = fn(this.client);
    try {
      return await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no reply from Redis within ${COMMAND_DEADLINE_MS} ms`)),
            COMMAND_DEADLINE_MS,
          );
        }),
      ]);
    } catch (e) {
      // A reply that comes after the deadline has nobody to go to.
      work.catch(() => {});
      throw new ClusterDownError(message(e), { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A connection of its own for blocking reads; it reconnects by itself.
   * Closed with {@linkcode close} at the latest.
   */
  async reader(): Promise<StreamReader> {
    const client = this.client.duplicate();
    client.on("error", () => {});
    const reader = new StreamReader(client);
    this.#readers.add(reader);
    // Not waited for when Redis is away (it would wait until Redis is back):
    // reads fail meanwhile and are retried until it is there.
    const connecting = client.connect().catch(() => {});
    if (this.ready) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([connecting, new Promise((r) => timer = setTimeout(r, CONNECT_WAIT_MS))]);
      clearTimeout(timer);
    }
    return reader;
  }

  /** Forgets a reader closed by its user. */
  release(reader: StreamReader): void {
    reader.close();
    this.#readers.delete(reader);
  }

  /** Closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#readers) r.close();
    this.#readers.clear();
    if (this.client.isReady) await this.client.close().catch(() => {});
    if (this.client.isOpen) this.client.destroy();
    await this.#connecting;
  }
}
