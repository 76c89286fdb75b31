/**
 * This node's part in a multi-node deployment on Redis: where a run goes
 * (placement by node id or labels, the least loaded among live matches),
 * placing it on another node through that node's job stream, and following
 * a run of any node from here (its relay, lib/cluster/relayed_run.ts). The
 * other half, running what other nodes place here, is the job worker
 * (lib/protocol/cluster/job_worker.ts), which drives sessions as the
 * protocols do.
 *
 * @module
 */
import { ClusterDownError, ExecutorError, InvalidParamsError, NoLiveNodeError } from "../errors.ts";
import type { Sink } from "../core/sink.ts";
import type { Metrics } from "../ops/metrics.ts";
import type { Principal } from "../security/principal.ts";
import type { HookOutcome } from "../types.ts";
import { logger } from "../log.ts";
import { ClusterBus, type StreamReader } from "./bus.ts";
import type { ClusterKeys } from "./keys.ts";
import { type NodeInfo, NodeRegistry, type NodeRegistryOptions } from "./node_registry.ts";
import { decodeOutputEntry, type Job, RunMeta, runMeta } from "./relay_entry.ts";
import { sendControl } from "./control.ts";
import type { Run } from "../core/run.ts";
import { RelayedRun } from "./relayed_run.ts";
import { ABANDON, CLAIM, PLACE } from "./scripts.ts";

export type { Job, NodeInfo };

const log = logger("cluster");

/** How long a placed run may wait for its node to take it before it is given up. */
const ACCEPT_MS = 5000;

/** Job stream length about which it is trimmed. */
const JOBS_MAX = 1000;

/** Where a run goes: here, or another live node. */
export type Placement = { here: true } | { here: false; node: NodeInfo };

/** A run of another node, as `list` shows it. */
export interface RemoteRunSummary {
  meta: RunMeta;
  state: string;
}

/** What a cluster is made with. */
export interface ClusterOptions {
  url: string;
  prefix: string;
  id: string;
  labels: readonly string[];
  metrics: Metrics;
  /** Retention of a relayed run's output here, and its detach clock. */
  outputRetention: number;
  detachTimeoutMs: number;
  /** Seconds a finished run's keys are kept in Redis. */
  retentionMs: number;
  running: NodeRegistryOptions["running"];
  /** This node's runs not ended (relays of other nodes' runs excluded). */
  runs: () => Run[];
  fenced: NodeRegistryOptions["fenced"];
  lost: NodeRegistryOptions["lost"];
}

/**
 * This node in the cluster.
 *
 * @example Placement on one node without Redis: it is the only node there is
 * ```ts
 * import assert from "node:assert/strict";
 * import { placeAmong } from "./cluster.ts";
 * const a = { id: "a", labels: ["gpu"], running: 0, started_at: 0 };
 * assert.equal(placeAmong([a], "a", { labels: ["gpu"] })?.id, "a");
 * assert.equal(placeAmong([a], "a", { labels: ["tpu"] }), null);
 * ```
 */
export class Cluster {
  readonly id: string;
  readonly labels: readonly string[];
  readonly bus: ClusterBus;
  readonly nodes: NodeRegistry;
  readonly #o: ClusterOptions;

  private constructor(options: ClusterOptions, bus: ClusterBus) {
    this.#o = options;
    this.id = options.id;
    this.labels = options.labels;
    this.bus = bus;
    this.nodes = new NodeRegistry({
      bus,
      id: options.id,
      labels: options.labels,
      running: options.running,
      owned: () => options.runs().map((r) => r.id),
      beat: () => this.#heal(),
      fenced: options.fenced,
      lost: options.lost,
      retentionMs: options.retentionMs,
    });
  }

  /** Connects (a Redis that is down is not fatal) and registers this node. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const bus = await ClusterBus.open({ url: options.url, prefix: options.prefix });
    const cluster = new Cluster(options, bus);
    await cluster.nodes.start();
    return cluster;
  }

  /** Key names. */
  get keys(): ClusterKeys {
    return this.bus.keys;
  }

  /**
   * Where a run asking for `node` and/or `labels` goes.
   *
   * @throws {NoLiveNodeError} (-32005) when no live node matches.
   * @throws {ClusterDownError} (-32006) when Redis cannot be reached and the run is not for this node.
   */
  async place(
    want: { node?: string | undefined; labels?: string[] | undefined },
  ): Promise<Placement> {
    if (!this.bus.ready) {
      // Local-only while Redis is away: a request this node satisfies still runs.
      if (placeAmong([this.#self()], this.id, want) !== null) return { here: true };
      throw new ClusterDownError(
        `${this.bus.reason}: runs on other nodes cannot be placed until Redis is back`,
      );
    }
    const live = this.#withRecent(await this.nodes.live());
    const chosen = placeAmong(live, this.id, want);
    if (chosen === null) {
      throw new NoLiveNodeError({
        ...(want.node !== undefined ? { node: want.node } : {}),
        ...(want.labels !== undefined ? { labels: want.labels } : {}),
        live: live.map((n) => ({ id: n.id, labels: n.labels })),
      });
    }
    return chosen.id === this.id ? { here: true } : { here: false, node: chosen };
  }

  /** Runs placed from here lately, by node, with when: heartbeats do not count them yet. */
  readonly #recent = new Map<string, number[]>();

  #placed(node: string): void {
    const times = this.#recent.get(node) ?? [];
    times.push(Date.now());
    this.#recent.set(node, times);
  }

  /** `live` with the runs placed from here since their nodes' last heartbeats. */
  #withRecent(live: NodeInfo[]): NodeInfo[] {
    const since = Date.now() - this.nodes.liveness.heartbeatMs - 500;
    return live.map((n) => {
      const times = (this.#recent.get(n.id) ?? []).filter((t) => t > since);
      if (times.length === 0) this.#recent.delete(n.id);
      else this.#recent.set(n.id, times);
      return n.id === this.id ? n : { ...n, running: n.running + times.length };
    });
  }

  /**
   * Claims `id` (a client's own `execution_id`) for a run of this node,
   * unless a run of any node uses it. True while Redis is away: a run here
   * needs only this node's registry.
   */
  async claim(id: string): Promise<boolean> {
    if (!this.bus.ready) return true;
    try {
      return await this.bus.eval(CLAIM, [this.keys.exec(id)], [String(this.#o.retentionMs)]) === 1;
    } catch {
      return true;
    }
  }

  #self(): NodeInfo {
    return { id: this.id, labels: [...this.labels], running: 0, started_at: 0 };
  }

  /**
   * Places a run on `node` and waits until it has started there (or was
   * refused there, with the owner's error). Pre-execute hook outcomes go to
   * `sink` as they come, as they do for a local run.
   *
   * @throws {ExecutorError} with the owner's code when it refused the run.
   * @throws {ClusterDownError} when Redis is away or the node did not take it in time.
   * @throws {InvalidParamsError} when the client's `execution_id` is in use.
   */
  async startRemote(
    node: NodeInfo,
    job: Omit<Job, "origin">,
    sink: Sink,
    follow: { sessionId: string; detachTimeoutMs: number },
  ): Promise<RelayedRun> {
    const k = this.keys;
    const id = job.id;
    const fresh = await this.bus.eval(PLACE, [k.exec(id)], [
      job.principal.id,
      this.id,
      node.id,
      String(ACCEPT_MS),
      String(this.#o.retentionMs),
    ]);
    if (fresh !== 1) {
      throw new InvalidParamsError("Invalid params", {
        data: { field: "execution_id", reason: "in use: choose another" },
      });
    }
    this.#placed(node.id);
    const epoch = this.nodes.epoch;
    const message: Job = {
      ...job,
      origin: this.id,
      ...(epoch !== null ? { originEpoch: epoch } : {}),
    };
    await this.bus.run((c) =>
      c.xAdd(k.jobs(node.id), "*", { j: JSON.stringify(message) }, {
        TRIM: { strategy: "MAXLEN", strategyModifier: "~", threshold: JOBS_MAX },
      })
    );
    const reader = await this.bus.reader();
    try {
      return await this.#awaitStart(id, node.id, reader, sink, follow);
    } catch (err) {
      this.bus.release(reader);
      throw err;
    }
  }

  async #awaitStart(
    id: string,
    node: string,
    reader: StreamReader,
    sink: Sink,
    follow: { sessionId: string; detachTimeoutMs: number },
  ): Promise<RelayedRun> {
    const k = this.keys;
    const hooks: HookOutcome[] = [];
    let after = "0";
    let consumed = 0;
    const placedAt = Date.now();
    let taken = false;
    for (;;) {
      const entries = await reader.read(k.output(id), after, 500);
      for (const entry of entries) {
        after = entry.id;
        consumed++;
        const decoded = decodeOutputEntry(entry);
        if (decoded === null) continue;
        if (decoded.t === "hook") {
          hooks.push(decoded.outcome);
          sink.emit({ type: "hook", executionId: id, outcome: decoded.outcome });
        } else if (decoded.t === "err") {
          throw new ExecutorError(decoded.code, decoded.message, {
            data: decoded.data ?? undefined,
          });
        } else if (decoded.t === "start") {
          return new RelayedRun({
            meta: decoded.meta,
            bus: this.bus,
            nodes: this.nodes,
            reader,
            after,
            consumed,
            origin: true,
            sessionId: follow.sessionId,
            hooks,
            detachTimeoutMs: follow.detachTimeoutMs,
            outputRetention: this.#o.outputRetention,
            metrics: this.#o.metrics,
          });
        }
      }
      if (entries.length > 0 || Date.now() - placedAt < ACCEPT_MS) continue;
      if (!taken) {
        // Nobody took it in time: make sure nobody ever will.
        if (await this.bus.eval(ABANDON, [k.exec(id)], []) === 1) {
          throw new ClusterDownError(
            `node ${node} did not take the run within ${ACCEPT_MS / 1000} s; it was not started`,
          );
        }
        taken = true;
      }
      // Taken, and still starting (its pre_execute hooks may take a while): is its node there?
      if (!await this.nodes.alive(node)) {
        throw new ClusterDownError(`node ${node} stopped answering before the run started`);
      }
    }
  }

  /**
   * Makes run `exec` of this node known to the others, so `list`, `attach`
   * and control reach it from any node: its hash (whose, where, what) and
   * this node's running set, until it ends. Its output goes to a stream only
   * once another node follows it (`publish`). Failures are not fatal: the
   * run goes on here, and the next heartbeat lists it again.
   */
  register(exec: Run): void {
    const k = this.keys;
    void this.#describe(exec).catch(() => {});
    // Its state as others see it: a relay made while it is paused knows.
    exec.feed.subscribe({
      emit: (event) => {
        if (event.type !== "paused" && event.type !== "resumed") return;
        const state = event.type === "paused" ? "paused" : "running";
        void this.bus.run((c) => c.hSet(k.exec(exec.id), "state", state)).catch(() => {});
      },
      ready: () => Promise.resolve(),
    }, { paces: false, attaches: false });
    void exec.done.then((exit) =>
      this.bus.run((c) =>
        c.multi()
          .hSet(k.exec(exec.id), { state: "ended", exit: JSON.stringify(exit) })
          .sRem(k.running(this.id), exec.id)
          .pExpire(k.exec(exec.id), this.#o.retentionMs)
          .exec()
      ).catch(() => {})
    );
  }

  /** Writes what other nodes read of `exec`, a run of this node, and lists it as running here. */
  async #describe(exec: Run): Promise<void> {
    const k = this.keys;
    const epoch = this.nodes.epoch;
    if (!this.bus.ready || epoch === null) return;
    await this.bus.run((c) =>
      c.multi()
        .hSet(k.exec(exec.id), {
          state: exec.state === "paused" ? "paused" : "running",
          principal: exec.principal,
          node: this.id,
          epoch: String(epoch),
          meta: JSON.stringify(runMeta(exec, this.id)),
          started_at: String(exec.startedAt),
        })
        .hSetNX(k.exec(exec.id), "origin", this.id)
        .sAdd(k.running(this.id), exec.id)
        .exec()
    );
  }

  /**
   * Describes again any run of this node whose hash Redis no longer has (it
   * restarted without its data), so other nodes find it again.
   */
  async #heal(): Promise<void> {
    const runs = this.#o.runs();
    if (runs.length === 0) return;
    const k = this.keys;
    const present = await this.bus.run((c) => Promise.all(runs.map((r) => c.exists(k.exec(r.id)))));
    for (const [i, run] of runs.entries()) {
      if (present[i] === 0 && run.active) await this.#describe(run);
    }
  }

  /**
   * A relay of run `id` of another node, when `principal` may see it (its
   * own, or any for an admin); undefined for an unknown id, one not started
   * yet, or another principal's.
   */
  async follow(id: string, principal: Principal): Promise<RelayedRun | undefined> {
    if (!this.bus.ready) return undefined;
    const k = this.keys;
    const hash = await this.bus.run((c) => c.hGetAll(k.exec(id))).catch(() => undefined);
    if (hash === undefined || hash.meta === undefined) return undefined;
    if (hash.principal !== principal.id && !principal.admin) return undefined;
    let meta: RunMeta;
    try {
      meta = RunMeta.parse(JSON.parse(hash.meta));
    } catch {
      return undefined;
    }
    if (meta.node === this.id) return undefined;
    if (hash.relay !== "1") {
      // Its node writes its output to a stream only once someone elsewhere follows it.
      await sendControl(this.bus, meta.node, { t: "publish", id }).catch(() => {});
    }
    const reader = await this.bus.reader();
    return new RelayedRun({
      meta,
      bus: this.bus,
      nodes: this.nodes,
      reader,
      after: "0",
      consumed: 0,
      origin: false,
      paused: hash.state === "paused",
      sessionId: null,
      detachTimeoutMs: this.#o.detachTimeoutMs,
      outputRetention: this.#o.outputRetention,
      metrics: this.#o.metrics,
    });
  }

  /** Runs of other live nodes not ended, that `principal` may see. */
  async remoteRunning(principal: Principal): Promise<RemoteRunSummary[]> {
    if (!this.bus.ready) return [];
    const k = this.keys;
    const out: RemoteRunSummary[] = [];
    try {
      for (const node of await this.nodes.live()) {
        if (node.id === this.id) continue;
        const ids = await this.bus.run((c) => c.sMembers(k.running(node.id)));
        const hashes = await this.bus.run((c) => Promise.all(ids.map((i) => c.hGetAll(k.exec(i)))));
        for (const hash of hashes) {
          if (hash.meta === undefined || hash.ended !== undefined) continue;
          if (hash.principal !== principal.id && !principal.admin) continue;
          try {
            out.push({
              meta: RunMeta.parse(JSON.parse(hash.meta)),
              state: hash.state ?? "running",
            });
          } catch {
            // A hash that does not parse is not listed.
          }
        }
      }
    } catch (err) {
      log.debug("Runs of other nodes not listed: {error}", { error: String(err) });
    }
    return out;
  }

  /** For `/health`: this node, and the nodes alive at the last sweep. */
  health(): Record<string, unknown> {
    return {
      id: this.id,
      labels: [...this.labels],
      redis: this.bus.ready ? "connected" : this.bus.reason,
      epoch: this.nodes.epoch,
      nodes: this.nodes.known.map(({ id, labels, running, started_at, epoch }) => ({
        id,
        labels,
        running,
        started_at,
        epoch,
      })),
    };
  }

  /** Leaves the cluster and closes every connection. Idempotent. */
  async close(): Promise<void> {
    await this.nodes.stop();
    await this.bus.close();
  }
}

/**
 * The node a run asking for `want` goes to among `live`: the one named (if
 * it has the labels asked for), or the least loaded of those with every
 * label, this node first among equals; null when none matches.
 */
export function placeAmong(
  live: readonly NodeInfo[],
  here: string,
  want: { node?: string | undefined; labels?: readonly string[] | undefined },
): NodeInfo | null {
  const labels = want.labels ?? [];
  const matches = live.filter((n) =>
    (want.node === undefined || n.id === want.node) && labels.every((l) => n.labels.includes(l))
  );
  if (matches.length === 0) return null;
  let best: NodeInfo | null = null;
  for (const n of matches) {
    if (
      best === null || n.running < best.running ||
      (n.running === best.running && n.id === here)
    ) best = n;
  }
  return best;
}
