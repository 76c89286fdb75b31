/**
 * Which nodes are alive. Each node keeps a liveness key, refreshed every
 * heartbeat and expiring after the TTL, and a fencing epoch raised each time
 * it registers. Every node also sweeps: a node whose key has expired is
 * declared dead (once, atomically, by whichever node gets there first), its
 * epoch raised so it can no longer write, and its running executions ended
 * as `lost`, never re-run. A node that finds its own epoch raised was cut
 * off and declared dead meanwhile: it ends what it still runs.
 *
 * @module
 */
import { z } from "zod";
import { logger } from "../log.ts";
import type { ClusterBus } from "./bus.ts";
import { DECLARE_DEAD, HEARTBEAT, MARK_LOST } from "./scripts.ts";
import { lostExit } from "./relay_entry.ts";

const log = logger("cluster");

/** A live node, as `/health` and placement see it. */
export interface NodeInfo {
  id: string;
  labels: string[];
  /** Executions it runs now. */
  running: number;
  /** When it registered, ms since the epoch. */
  started_at: number;
  /** Its fencing epoch: a new one means a new life of the node (a restart, or after a fence). */
  epoch?: number | undefined;
  /** The process behind it (random per start): two processes never share an id. */
  instance?: string | undefined;
  /** When it last refreshed its key, ms since the epoch: a key that no longer changes is a dead life's. */
  beat_at?: number | undefined;
}

const NodeInfoSchema = z.object({
  id: z.string(),
  labels: z.array(z.string()),
  running: z.number(),
  started_at: z.number(),
  epoch: z.number().optional(),
  instance: z.string().optional(),
  beat_at: z.number().optional(),
});

/** Timing of liveness. */
export interface Liveness {
  /** How often a node refreshes its key and sweeps, ms (default 3000). */
  heartbeatMs: number;
  /** How long a key lives unless refreshed, ms (default 10 000). */
  ttlMs: number;
}

/** Default {@linkcode Liveness}. */
export const DEFAULT_LIVENESS: Liveness = { heartbeatMs: 3000, ttlMs: 10_000 };

/** Length of a run's stream, in entries, about which it is trimmed. */
export const STREAM_MAX = 1024;

/** Options for {@linkcode NodeRegistry}. */
export interface NodeRegistryOptions {
  bus: ClusterBus;
  id: string;
  labels: readonly string[];
  /** Executions this node runs now (its load). */
  running: () => number;
  /** Ids of the runs this node owns and has not ended (kept in its running set). */
  owned: () => string[];
  /** This node was declared dead while cut off: end what it runs, as lost. */
  fenced: () => void;
  /** After each heartbeat: what else the node keeps up to date in Redis. */
  beat?: () => Promise<void>;
  /** A run was declared lost here (its record is to be kept); `hash` is what Redis held of it. */
  lost: (id: string, hash: Record<string, string>, error: string) => void;
  /** Seconds a finished run's keys are kept. */
  retentionMs: number;
  liveness?: Liveness;
}

/**
 * This node's registration and the cluster's liveness.
 *
 * @example Without Redis the node is simply not registered
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClusterBus } from "./bus.ts";
 * import { NodeRegistry } from "./node_registry.ts";
 * const bus = await ClusterBus.open({ url: "redis://127.0.0.1:1", prefix: "t:" });
 * const nodes = new NodeRegistry({ bus, id: "a", labels: [], running: () => 0, owned: () => [],
 *   fenced: () => {}, lost: () => {}, retentionMs: 60_000 });
 * assert.equal(nodes.epoch, null);
 * await bus.close();
 * ```
 */
export class NodeRegistry {
  readonly #o: NodeRegistryOptions;
  readonly #live: Liveness;
  readonly #startedAt = Date.now();
  #epoch: number | null = null;
  readonly #instance = crypto.randomUUID();
  /** Another process's key under this node's id, as last seen, while this one waits for it. */
  #rival: string | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #beating: Promise<void> | null = null;
  #stopped = false;
  /** Nodes alive at the last sweep, with what they said of themselves. */
  #known = new Map<string, NodeInfo>();

  constructor(options: NodeRegistryOptions) {
    this.#o = options;
    this.#live = options.liveness ?? DEFAULT_LIVENESS;
  }

  /** This node's fencing epoch, once registered; null before, and after being fenced. */
  get epoch(): number | null {
    return this.#epoch;
  }

  /** The liveness timing in force. */
  get liveness(): Liveness {
    return this.#live;
  }

  /** Registers (when Redis answers) and starts the heartbeat. */
  async start(): Promise<void> {
    await this.beat();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.beat().finally(() => this.#schedule());
    }, this.#live.heartbeatMs);
    Deno.unrefTimer(this.#timer);
  }

  /** One heartbeat and sweep now (the timer calls it; tests may too). */
  beat(): Promise<void> {
    this.#beating ??= this.#beat().finally(() => this.#beating = null);
    return this.#beating;
  }

  async #beat(): Promise<void> {
    if (this.#stopped || !this.#o.bus.ready) return;
    try {
      await this.#heartbeat();
      await this.#o.beat?.();
      await this.#sweep();
    } catch (err) {
      // Redis went away mid-beat: the next one tries again.
      log.debug("Heartbeat failed: {error}", { error: String(err) });
    }
  }

  /** The description other nodes read. */
  #self(): NodeInfo {
    return {
      id: this.#o.id,
      labels: [...this.#o.labels],
      running: this.#o.running(),
      started_at: this.#startedAt,
      ...(this.#epoch !== null ? { epoch: this.#epoch } : {}),
      instance: this.#instance,
      beat_at: Date.now(),
    };
  }

  async #heartbeat(): Promise<void> {
    const { bus, id } = this.#o;
    const k = bus.keys;
    if (this.#epoch === null && !await this.#register()) return;
    const ok = await bus.eval(HEARTBEAT, [k.node(id), k.epoch(id)], [
      String(this.#epoch),
      JSON.stringify(this.#self()),
      String(this.#live.ttlMs),
    ]);
    if (ok !== 1) {
      log.error("Node {node} was declared dead while cut off from Redis: ending its runs as lost", {
        node: id,
      });
      this.#epoch = null;
      // Its followers elsewhere are told, whoever else may have declared them lost.
      const error = `Lost: node ${id} was declared dead (its fencing epoch was raised) ` +
        "while it ran; it was not run again";
      for (const run of this.#o.owned()) await this.markLost(run, error).catch(() => 0);
      this.#o.fenced();
      if (await this.#register()) await this.#heartbeat();
      return;
    }
    const owned = this.#o.owned();
    // Also heals a Redis that lost its data: what runs here is listed again.
    await bus.run(async (c) => {
      await c.sAdd(k.nodes, id);
      if (owned.length > 0) await c.sAdd(k.running(id), owned);
    });
  }

  /**
   * Takes a new epoch; runs a previous life of this node left listed are
   * lost. False, and nothing taken, while another live process holds this
   * id (its key keeps changing): two nodes with one id would fence each
   * other for ever. A key that did not change since the last look is a dead
   * life's, and is taken over.
   */
  async #register(): Promise<boolean> {
    const { bus, id } = this.#o;
    const k = bus.keys;
    const current = await bus.run((c) => c.get(k.node(id)));
    const holder = parseInfo(current);
    if (holder?.instance !== undefined && holder.instance !== this.#instance) {
      if (this.#rival !== current) {
        if (this.#rival === null) {
          log.error(
            "Another process is running as node {node}: this one waits until that one stops " +
              "(give each node its own node-id); runs here stay local meanwhile",
            { node: id },
          );
        }
        this.#rival = current;
        return false;
      }
    }
    this.#rival = null;
    const epoch = await bus.run((c) => c.incr(k.epoch(id)));
    const listed = await bus.run((c) => c.sMembers(k.running(id)));
    const owned = new Set(this.#o.owned());
    for (const run of listed) {
      if (owned.has(run)) continue;
      // Its group was reaped by crash recovery: it ended with the previous process.
      await this.markLost(run, `Lost: node ${id} restarted while it ran; it was not run again`);
      await bus.run((c) => c.sRem(k.running(id), run));
    }
    this.#epoch = epoch;
    log.info("Node {node} registered (epoch {epoch}, labels {labels})", {
      node: id,
      epoch,
      labels: this.#o.labels.join(",") || "none",
    });
    return true;
  }

  /** Declares nodes whose liveness expired dead; notes who is alive. */
  async #sweep(): Promise<void> {
    const { bus } = this.#o;
    const k = bus.keys;
    const ids = await bus.run((c) => c.sMembers(k.nodes));
    const known = new Map<string, NodeInfo>();
    const raw = ids.length === 0
      ? []
      : await bus.run((c) => Promise.all(ids.map((n) => c.get(k.node(n)))));
    for (const [i, n] of ids.entries()) {
      const info = parseInfo(raw[i] ?? null);
      if (info !== null) {
        known.set(n, info);
        continue;
      }
      if (n === this.#o.id) continue;
      const dead = await bus.eval(DECLARE_DEAD, [
        k.node(n),
        k.epoch(n),
        k.running(n),
        k.jobs(n),
        k.control(n),
      ], []);
      if (!Array.isArray(dead)) continue;
      await bus.run((c) => c.sRem(k.nodes, n));
      const runs = dead.slice(1).map(String);
      log.warning("Node {dead} stopped answering: declared dead, {count} runs lost", {
        dead: n,
        count: runs.length,
      });
      for (const run of runs) {
        await this.markLost(
          run,
          `Lost: node ${n} stopped answering (no heartbeat for ${
            this.#live.ttlMs / 1000
          } s) while it ran; it was not run again`,
        );
      }
    }
    this.#known = known;
  }

  /**
   * Ends run `id` as lost unless it has ended; the node that does it keeps
   * its record. Returns 1 when it did, 0 when the run had ended, -1 when
   * Redis does not know it.
   */
  async markLost(id: string, error: string): Promise<number> {
    const { bus } = this.#o;
    const k = bus.keys;
    const hash = await bus.run((c) => c.hGetAll(k.exec(id)));
    const started = Number(hash.started_at ?? Date.now());
    const exit = lostExit(error, Math.max(0, Math.round(Date.now() - started) / 1000));
    const done = Number(
      await bus.eval(MARK_LOST, [k.exec(id), k.output(id)], [
        JSON.stringify(exit),
        String(STREAM_MAX),
        String(this.#o.retentionMs),
      ]),
    );
    if (done === 1) this.#o.lost(id, hash, error);
    return done;
  }

  /** Nodes alive now (this one included when registered), read from Redis. */
  async live(): Promise<NodeInfo[]> {
    const { bus } = this.#o;
    const k = bus.keys;
    const ids = await bus.run((c) => c.sMembers(k.nodes));
    if (!ids.includes(this.#o.id) && this.#epoch !== null) ids.push(this.#o.id);
    const raw = ids.length === 0
      ? []
      : await bus.run((c) => Promise.all(ids.map((n) => c.get(k.node(n)))));
    const out: NodeInfo[] = [];
    for (const [i, n] of ids.entries()) {
      // This node is as alive as its own last heartbeat says, with its load now.
      if (n === this.#o.id && this.#epoch !== null) {
        out.push(this.#self());
        continue;
      }
      const info = parseInfo(raw[i] ?? null);
      if (info !== null) out.push(info);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * Whether node `id` was alive at the last sweep (cheap: no round trip),
   * in the life of `epoch` when given: a node that restarted since is not
   * the one that was.
   */
  seemsAlive(id: string, epoch?: number): boolean {
    if (id === this.#o.id) return epoch === undefined || epoch === this.#epoch;
    const info = this.#known.get(id);
    if (info === undefined) return false;
    return epoch === undefined || info.epoch === undefined || info.epoch === epoch;
  }

  /** Whether node `id`'s liveness key exists now. */
  async alive(id: string): Promise<boolean> {
    const k = this.#o.bus.keys;
    return await this.#o.bus.run((c) => c.exists(k.node(id))) === 1;
  }

  /** Nodes alive at the last sweep, for `/health`. */
  get known(): NodeInfo[] {
    return [...this.#known.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Stops the heartbeat and leaves the cluster (its key goes at once). Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#beating?.catch(() => {});
    const { bus, id } = this.#o;
    const k = bus.keys;
    if (!bus.ready || this.#epoch === null) return;
    // Nothing of it runs any more: none of its keys is needed (a next start begins anew).
    await bus.run((c) =>
      c.multi()
        .del([k.node(id), k.epoch(id), k.running(id), k.jobs(id), k.control(id)])
        .sRem(k.nodes, id)
        .exec()
    ).catch(() => {});
  }
}

function parseInfo(raw: string | null): NodeInfo | null {
  if (raw === null) return null;
  try {
    return NodeInfoSchema.parse(JSON.parse(raw));
  } catch {
    return null;
  }
}
