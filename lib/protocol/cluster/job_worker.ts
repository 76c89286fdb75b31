/**
 * Runs what other nodes place on this one. It reads this node's job and
 * control streams (consumer group, `XREADGROUP BLOCK` on a connection of
 * its own) and drives a {@linkcode Session} per job, as the protocols do for
 * a client: the request is validated again here and resolved with this
 * node's config (policy, workspace, limits, hooks), and the run's events go
 * to its output stream through a {@linkcode RelayPublisher}. A job is taken
 * at most once (the ACCEPT script): a run is never started twice, not even
 * when its node dies and comes back.
 *
 * @module
 */
import { z } from "zod";
import { ErrorCode, ExecutorError } from "../../errors.ts";
import { logger } from "../../log.ts";
import { Attachment } from "../../core/attachment.ts";
import type { Run } from "../../core/run.ts";
import type { ClusterBus, StreamEntry, StreamReader } from "../../cluster/bus.ts";
import { text } from "../../cluster/bus.ts";
import type { Cluster } from "../../cluster/cluster.ts";
import { GROUP } from "../../cluster/keys.ts";
import {
  type ControlMessage,
  decodeControl,
  inputEntry,
  Job,
  refusalEntry,
  type RunMeta,
  runMeta,
  startEntry,
} from "../../cluster/relay_entry.ts";
import { RelayPublisher } from "../../cluster/relay_publisher.ts";
import { ACCEPT } from "../../cluster/scripts.ts";
import { LegacyExecuteParams } from "../../session/exec_params.ts";
import { Session, type SessionDeps } from "../../session/session.ts";
import { toErrorObject } from "../jsonrpc.ts";

const log = logger("cluster");

/** The request of a job, as the client's node passed it on. */
const JobRequest = LegacyExecuteParams.omit({
  encoding: true,
  window: true,
  hold: true,
  node: true,
  labels: true,
}).extend({ paced: z.boolean().optional() });

/** A run of this node whose output goes to its stream. */
interface Published {
  exec: Run;
  publisher: RelayPublisher;
}

/** A run this node owns for another node. */
interface Owned extends Published {
  origin: string;
  /** The origin's epoch when it placed the run: a restarted origin has no relay of it. */
  originEpoch: number | undefined;
  /** Since when its origin has not been seen alive (null: it was, at the last look). */
  missingSince: number | null;
  /** Its origin is gone: the run's own detach clock runs here. */
  orphaned?: boolean;
}

/** How long a group read blocks. */
const BLOCK_MS = 1000;

/**
 * This node's worker.
 *
 * @example It needs a cluster; without one there is nothing to take
 * ```ts
 * import assert from "node:assert/strict";
 * import { JobWorker } from "./job_worker.ts";
 * assert.equal(typeof JobWorker, "function");
 * ```
 */
export class JobWorker {
  readonly #cluster: Cluster;
  readonly #deps: SessionDeps;
  readonly #runs = new Map<string, Owned>();
  /** Runs started here that another node follows (`publish`). */
  readonly #published = new Map<string, Published>();
  #reader: StreamReader | null = null;
  #loop: Promise<void> | null = null;
  #watch: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  readonly #retentionMs: number;

  /** A worker taking jobs placed on `cluster`'s node, run with `deps` (this node's own). */
  constructor(cluster: Cluster, deps: SessionDeps, retentionMs: number) {
    this.#cluster = cluster;
    this.#deps = deps;
    this.#retentionMs = retentionMs;
  }

  /** Starts reading jobs and control messages. */
  async start(): Promise<void> {
    this.#reader = await this.#cluster.bus.reader();
    this.#loop = this.#read();
    this.#watch = setInterval(() => this.#watchOrigins(), this.#cluster.nodes.liveness.heartbeatMs);
    Deno.unrefTimer(this.#watch);
  }

  get #bus(): ClusterBus {
    return this.#cluster.bus;
  }

  async #groups(): Promise<void> {
    const k = this.#bus.keys;
    const id = this.#cluster.id;
    for (const key of [k.jobs(id), k.control(id)]) {
      // From the start of a stream made meanwhile (Redis lost its data): a message sent
      // before the group existed is still read; stale jobs are refused by their deadline.
      await this.#bus.client.xGroupCreate(key, GROUP, "0", { MKSTREAM: true }).catch(
        (err: unknown) => {
          // BUSYGROUP: it exists already, which is what we want.
          if (!String(err).includes("BUSYGROUP")) throw err;
        },
      );
    }
  }

  async #read(): Promise<void> {
    const k = this.#bus.keys;
    const id = this.#cluster.id;
    let grouped = false;
    let delay = 100;
    while (!this.#stopped) {
      try {
        if (!grouped) {
          await this.#groups();
          grouped = true;
        }
        const got = await this.#reader!.readGroup(
          GROUP,
          id,
          [k.jobs(id), k.control(id)],
          BLOCK_MS,
        );
        delay = 100;
        for (const { key, entry } of got) {
          // Acked at once: a job is taken at most once (never re-delivered to a new life).
          // Deleted too: an input's bytes must not stay in Redis once read.
          void this.#bus.run((c) => c.multi().xAck(key, GROUP, entry.id).xDel(key, entry.id).exec())
            .catch(() => {});
          if (key === k.jobs(id)) void this.#job(entry);
          else this.#control(entry);
        }
      } catch (err) {
        if (this.#stopped) return;
        // Redis away, or restarted without its data (the groups are gone): make them again.
        grouped = false;
        log.debug("Job stream read failed: {error}", { error: String(err) });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(2000, delay * 2);
      }
    }
  }

  async #job(entry: StreamEntry): Promise<void> {
    let job: Job;
    try {
      job = Job.parse(JSON.parse(text(entry, "j")));
    } catch {
      log.warning("Malformed job {entry} skipped", { entry: entry.id });
      return;
    }
    const epoch = this.#cluster.nodes.epoch;
    if (epoch === null) return;
    const k = this.#bus.keys;
    const taken = await this.#bus.eval(ACCEPT, [k.exec(job.id)], [this.#cluster.id, String(epoch)])
      .catch(() => 0);
    if (taken !== 1) return;
    let meta: RunMeta | null = null;
    let exec: Run | null = null;
    const hash = (): Record<string, string> => ({
      state: "running",
      principal: job.principal.id,
      origin: job.origin,
      node: this.#cluster.id,
      ...(meta !== null ? { meta: JSON.stringify(meta), started_at: String(meta.startedAt) } : {}),
    });
    const publisher = new RelayPublisher({
      bus: this.#bus,
      executionId: job.id,
      epoch,
      currentEpoch: () => this.#cluster.nodes.epoch,
      retentionMs: this.#retentionMs,
      hash,
      // Declared lost elsewhere meanwhile: nothing of it may go on here.
      fenced: () => void exec?.cancel("lost"),
    });
    const session = new Session(this.#deps, () => {}, job.principal);
    session.maxExecutions = 1;
    session.runsPlacedJobs = true;
    let spawned;
    try {
      const request = JobRequest.parse(job.request);
      spawned = await session.execute({ ...request, execution_id: job.id }, publisher);
    } catch (err) {
      const e = err instanceof z.ZodError
        ? { code: ErrorCode.InvalidParams, message: "Invalid params", data: err.issues }
        : toErrorObject(err);
      if (!(err instanceof ExecutorError) && !(err instanceof z.ZodError)) {
        log.error("Job {execution_id} failed: {error}", { execution_id: job.id, error: err });
      }
      publisher.push(refusalEntry(e.code, e.message, e.data));
      publisher.finish();
      await publisher.finished;
      await this.#bus.run((c) =>
        c.multi().hSet(k.exec(job.id), "state", "refused").pExpire(
          k.exec(job.id),
          this.#retentionMs,
        ).exec()
      ).catch(() => {});
      return;
    }
    exec = spawned.exec;
    const run = exec;
    meta = runMeta(run, this.#cluster.id);
    this.#runs.set(run.id, {
      exec: run,
      publisher,
      origin: job.origin,
      originEpoch: job.originEpoch,
      missingSince: null,
    });
    publisher.push(startEntry(meta));
    await this.#bus.run((c) =>
      c.multi().hSet(k.exec(run.id), hash()).sAdd(k.running(this.#cluster.id), run.id).exec()
    ).catch(() => {});
    // Held to its client's pace: the client's relay acks, and the run waits on them.
    if (job.request.paced === true) {
      run.feed.unsubscribe(publisher);
      run.feed.subscribe(publisher, { holds: true });
    }
    spawned.run();
    await run.done;
    // After its post_execute hooks, whose outcomes follow the end.
    await run.feed.cleared;
    publisher.finish();
    await publisher.finished;
    this.#runs.delete(run.id);
    await this.#bus.run((c) => c.sRem(k.running(this.#cluster.id), run.id)).catch(() => {});
  }

  #control(entry: StreamEntry): void {
    const message = decodeControl(entry);
    if (message === null) return;
    if (message.t === "publish") {
      void this.#publish(message.id);
      return;
    }
    const owned = this.#runs.get(message.id) ?? this.#published.get(message.id) ??
      this.#local(message.id);
    if (owned === undefined) return;
    try {
      this.#apply(owned, message);
    } catch (err) {
      // Too late (the run ended meanwhile): the client learns it from the stream.
      if (!(err instanceof ExecutorError)) reportError(err);
    }
  }

  /** A run started here, not yet followed elsewhere (control comes before a publish ends). */
  #local(id: string): { exec: Run; publisher: null } | undefined {
    const exec = this.#deps.registry.get(id);
    return exec === undefined || exec.relayed ? undefined : { exec, publisher: null };
  }

  /**
   * Another node follows run `id` of this node: its output, from the oldest
   * retained byte, then live, goes to its stream, read from the run's log
   * (so the run itself never waits for it), until its end.
   */
  async #publish(id: string): Promise<void> {
    const exec = this.#deps.registry.get(id);
    if (exec === undefined || exec.relayed || this.#runs.has(id) || this.#published.has(id)) {
      return;
    }
    const epoch = this.#cluster.nodes.epoch;
    if (epoch === null) return;
    const k = this.#bus.keys;
    const meta = runMeta(exec, this.#cluster.id);
    const hash = (): Record<string, string> => ({
      principal: exec.principal,
      node: this.#cluster.id,
      meta: JSON.stringify(meta),
      started_at: String(exec.startedAt),
      relay: "1",
    });
    const publisher = new RelayPublisher({
      bus: this.#bus,
      executionId: id,
      epoch,
      currentEpoch: () => this.#cluster.nodes.epoch,
      retentionMs: this.#retentionMs,
      hash,
      fenced: () => {},
    });
    this.#published.set(id, { exec, publisher });
    try {
      await this.#bus.run((c) => c.hSet(k.exec(id), { ...hash(), epoch: String(epoch) }));
    } catch {
      this.#published.delete(id);
      publisher.close();
      return;
    }
    // Nobody acks: it keeps up, or reads on from the log at its own pace.
    publisher.release();
    publisher.push(startEntry({ ...meta, nextSeq: exec.output.next }));
    const follower = new Attachment(exec, {
      emit: (event) => publisher.emit(event),
      ready: () => publisher.ready(),
      busy: () => publisher.backlogged,
    }, exec.output.first);
    await follower.start();
    await follower.ended;
    publisher.finish();
    await publisher.finished;
    this.#published.delete(id);
  }

  #apply(
    { exec, publisher }: { exec: Run; publisher: RelayPublisher | null },
    message: ControlMessage,
  ): void {
    switch (message.t) {
      case "pause":
        if (exec.pause()) exec.announce("paused");
        return;
      case "resume":
        if (exec.resume()) exec.announce("resumed");
        return;
      case "cancel": {
        const first = exec.state !== "terminating";
        void exec.cancel(message.reason);
        if (first && message.reason === "canceled") exec.announce("canceled");
        return;
      }
      case "signal":
        exec.signal(message.signal);
        return;
      case "input": {
        const reply = (err?: unknown) =>
          publisher?.push(
            inputEntry(
              message.op,
              exec.stdinAccepted,
              exec.stdinOpen,
              err === undefined ? undefined : toErrorObject(err),
            ),
          );
        try {
          const write = exec.queueInput(Uint8Array.fromBase64(message.data), message.close);
          write.done.then(() => reply(), (err) => reply(err));
        } catch (err) {
          reply(err);
        }
        return;
      }
      case "ack":
        publisher?.ack(message.n);
        return;
      case "release":
        publisher?.release();
        return;
      case "publish":
        return;
    }
  }

  /** A run whose client's node is gone: nobody paces it, and one that needed its client ends. */
  #watchOrigins(): void {
    const now = Date.now();
    // A heartbeat and a half: nodes register again that soon after Redis restarted empty.
    const grace = 1.5 * this.#cluster.nodes.liveness.heartbeatMs;
    for (const owned of this.#runs.values()) {
      const nodes = this.#cluster.nodes;
      const restarted = nodes.seemsAlive(owned.origin) &&
        !nodes.seemsAlive(owned.origin, owned.originEpoch);
      if (!restarted && nodes.seemsAlive(owned.origin)) {
        owned.missingSince = null;
        continue;
      }
      owned.missingSince ??= now;
      // A restarted origin is a new life with no relay of the run: no grace for it.
      if (!restarted && now - owned.missingSince < grace) continue;
      owned.publisher.release();
      if (!owned.exec.active) continue;
      if (!owned.exec.detached) {
        void owned.exec.cancel("disconnect");
      } else if (!owned.orphaned) {
        // Its detach clock ran on its origin: it runs here now, from no one attached.
        owned.orphaned = true;
        owned.exec.feed.unsubscribe(owned.publisher);
        owned.exec.feed.subscribe(owned.publisher, { attaches: false });
      }
    }
  }

  /** Resolves once every run taken has written its end (shutdown, after the runs ended). */
  async drain(): Promise<void> {
    const all = [...this.#runs.values(), ...this.#published.values()];
    await Promise.all(all.map((o) => o.publisher.finished));
  }

  /** This node was fenced: its runs for other nodes are lost, and their streams are not ours. */
  fenced(): void {
    for (const { publisher } of [...this.#runs.values(), ...this.#published.values()]) {
      publisher.close();
    }
  }

  /** Stops taking jobs. Runs already taken end with the server (shutdown). Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#watch);
    if (this.#reader !== null) this.#bus.release(this.#reader);
    await this.#loop;
  }
}
