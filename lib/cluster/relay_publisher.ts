/**
 * The owning node's side of a relayed run: a sink on the run's feed that
 * writes each event to the run's output stream, in order, in batches, only
 * while this node holds the run (the fencing epoch, checked by the PUBLISH
 * script). It is also the run's back-pressure: its `ready()` waits while
 * more than a bounded number of entries are written and not yet read by the
 * node that started the run, or while Redis is away and the entries not yet
 * written pass a bound; the run then stops reading its child's pipes, as it
 * does for a slow local client.
 *
 * @module
 */
import type { Sink } from "../core/sink.ts";
import type { ExecutionEvent } from "../types.ts";
import { logger } from "../log.ts";
import type { ClusterBus } from "./bus.ts";
import { encodeEvent, type Fields, FIN, flatten } from "./relay_entry.ts";
import { PUBLISH } from "./scripts.ts";
import { STREAM_MAX } from "./node_registry.ts";

const log = logger("cluster");

/** Entries written and not read by the origin past which the run waits. */
export const RELAY_LAG_ENTRIES = 128;

/** Bytes of entries not yet written (Redis away) past which the run waits. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/** Entries per PUBLISH call, and bytes. */
const BATCH_ENTRIES = 64;
const BATCH_BYTES = 1024 * 1024;

/** What a publisher writes for. */
export interface RelayPublisherOptions {
  bus: ClusterBus;
  executionId: string;
  /** This node's epoch when it took the run: the hash's, which every write must match. */
  epoch: number;
  /** This node's epoch now (null while unregistered): a different one means it was fenced. */
  currentEpoch: () => number | null;
  /** Seconds the stream and hash are kept after the run. */
  retentionMs: number;
  /** The run's hash as it should be, to write again if Redis lost it. */
  hash: () => Record<string, string>;
  /** Writes were refused: the run was declared lost elsewhere. */
  fenced: () => void;
}

function size(fields: Fields): number {
  let n = 0;
  for (const [, v] of fields) n += typeof v === "string" ? v.length : v.length;
  return n + 16;
}

/**
 * A run's events to its output stream.
 *
 * @example Events queue until written; a publisher without Redis never loses them
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClusterBus } from "./bus.ts";
 * import { RelayPublisher } from "./relay_publisher.ts";
 * const bus = await ClusterBus.open({ url: "redis://127.0.0.1:1", prefix: "t:" });
 * const p = new RelayPublisher({ bus, executionId: "e1", epoch: 1, currentEpoch: () => 1,
 *   retentionMs: 1000, hash: () => ({}), fenced: () => {} });
 * p.emit({ type: "started", executionId: "e1", pid: 1, pgid: 1 });
 * assert.equal(p.queued, 1);
 * p.close();
 * await bus.close();
 * ```
 */
export class RelayPublisher implements Sink {
  readonly #o: RelayPublisherOptions;
  readonly #queue: Fields[] = [];
  #queuedBytes = 0;
  /** Entries written to the stream so far, and read by the origin so far. */
  #written = 0;
  #acked = 0;
  /** Whether the origin paces the run (until it lets go, or its node is gone). */
  #pacing = true;
  #flushing: Promise<void> | null = null;
  #wake = Promise.withResolvers<void>();
  #closed = false;
  #refused = false;
  /** Resolves once `fin` is written (or the run was refused). */
  readonly #finished = Promise.withResolvers<void>();

  constructor(options: RelayPublisherOptions) {
    this.#o = options;
  }

  /** Entries not yet written. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Resolves once everything, `fin` included, is written, or writing is over. */
  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  emit(event: ExecutionEvent): void {
    const fields = encodeEvent(event);
    if (fields !== null) this.push(fields);
  }

  /** Queues an entry (`start`, `inp`, `fin`, ...) after those queued. */
  push(fields: Fields): void {
    if (this.#closed || this.#refused) return;
    this.#queue.push(fields);
    this.#queuedBytes += size(fields);
    this.#flushing ??= this.#flush().finally(() => this.#flushing = null);
  }

  /** Writes `fin` after everything queued; the publisher takes nothing more. */
  finish(): void {
    this.push(FIN);
    this.#closed = true;
    if (this.#refused) this.#finished.resolve();
  }

  ready(): Promise<void> {
    if (this.#blocked()) return this.#waitReady();
    return Promise.resolve();
  }

  /** Whether it is behind: a follower that reads the run's log should wait for it. */
  get backlogged(): boolean {
    return this.#blocked();
  }

  async #waitReady(): Promise<void> {
    while (this.#blocked()) await this.#wake.promise;
  }

  #blocked(): boolean {
    if (this.#refused) return false;
    return this.#queuedBytes > MAX_QUEUED_BYTES ||
      (this.#pacing && this.#written - this.#acked > RELAY_LAG_ENTRIES);
  }

  #wakeAll(): void {
    this.#wake.resolve();
    this.#wake = Promise.withResolvers<void>();
  }

  /** The origin has read `n` entries of the stream. */
  ack(n: number): void {
    if (n <= this.#acked) return;
    this.#acked = n;
    this.#wakeAll();
  }

  /** The origin no longer paces the run (it let go, or its node is gone). */
  release(): void {
    this.#pacing = false;
    this.#wakeAll();
  }

  /** Stops writing at once (shutdown, or the run was lost here). */
  close(): void {
    this.#closed = true;
    this.#refused = true;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#wakeAll();
    this.#finished.resolve();
  }

  async #flush(): Promise<void> {
    let delay = 100;
    while (this.#queue.length > 0 && !this.#refused) {
      let bytes = 0;
      let n = 0;
      while (n < this.#queue.length && n < BATCH_ENTRIES && bytes < BATCH_BYTES) {
        bytes += size(this.#queue[n]!);
        n++;
      }
      const batch = this.#queue.slice(0, n);
      let result: number;
      try {
        result = await this.#write(batch);
      } catch (err) {
        // Redis is away: keep the entries, in order, and try again.
        log.debug("Relay of {execution_id} waits for Redis: {error}", {
          execution_id: this.#o.executionId,
          error: String(err),
        });
        await this.#pause(delay);
        delay = Math.min(2000, delay * 2);
        continue;
      }
      delay = 100;
      if (result === -1) {
        // Redis lost the run's hash (a restart without persistence): write it again.
        const epoch = this.#o.currentEpoch();
        if (epoch === null) {
          await this.#pause(delay);
          continue;
        }
        if (epoch === this.#o.epoch) {
          const k = this.#o.bus.keys;
          await this.#o.bus.run((c) =>
            c.hSet(k.exec(this.#o.executionId), { ...this.#o.hash(), epoch: String(epoch) })
          ).catch(() => {});
          continue;
        }
      }
      if (result !== 1) {
        this.#refused = true;
        this.#queue.length = 0;
        this.#queuedBytes = 0;
        this.#wakeAll();
        this.#finished.resolve();
        this.#o.fenced();
        return;
      }
      this.#queue.splice(0, n);
      this.#queuedBytes -= bytes;
      this.#written += n;
      this.#wakeAll();
      if (batch.at(-1) === FIN) this.#finished.resolve();
    }
  }

  /** Waits `ms`, or less when the publisher is closed meanwhile. */
  async #pause(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((r) => timer = setTimeout(r, ms)),
      this.#finished.promise,
    ]);
    clearTimeout(timer);
  }

  async #write(batch: Fields[]): Promise<number> {
    const k = this.#o.bus.keys;
    const args: (string | Uint8Array)[] = [
      String(this.#o.epoch),
      String(STREAM_MAX),
      String(this.#o.retentionMs),
      String(batch.length),
    ];
    for (const fields of batch) args.push(String(fields.length), ...flatten(fields));
    const id = this.#o.executionId;
    return Number(await this.#o.bus.eval(PUBLISH, [k.exec(id), k.output(id)], args));
  }
}
