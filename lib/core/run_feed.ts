/**
 * Where one execution's events go: every consumer subscribed to the run now
 * (the connection that started it, connections attached to it later, MCP
 * calls waiting on it), so a run can outlive the connection that started
 * it. The feed is the run's {@linkcode Sink}: it fans events out, paces the
 * child by its pacing consumers (a run that is not detached: the classic
 * back-pressure from the client's socket to the child's pipe; a detached
 * run is paced only by consumers that asked to hold it, its other
 * followers read its log when they lag), and
 * keeps the detach clock of a detached run (ended after `detach-timeout`
 * with no one attached or reading it).
 *
 * @module
 */
import type { Sink } from "./sink.ts";
import { longTimeout } from "../async.ts";
import type { ExecutionEvent } from "../types.ts";

/** How a consumer takes part in a run. */
export interface SubscribeOptions {
  /** Its `ready()` paces the child (back-pressure); default true. */
  paces?: boolean;
  /** It counts as attached (stops the detach clock); default true. */
  attaches?: boolean;
  /**
   * It paces even a detached run: a client that asked to hold the run to
   * its own pace (the CLI's `run`, as a local pipe would); default false.
   * One consumer holds a run at a time: the latest to ask (a client back
   * from a lost connection takes over from its stale self).
   */
  holds?: boolean;
}

/** What a feed is made with. */
export interface RunFeedOptions {
  /**
   * The run survives its consumers: output is read and retained while no
   * one is there, until `detachTimeoutMs` passes with no one attached.
   */
  detached: boolean;
  /** Milliseconds a detached run may go on with no one attached or reading. */
  detachTimeoutMs: number;
  /** Called when that time has passed. */
  abandoned: () => void;
}

const RESOLVED = Promise.resolve();

/**
 * The consumers of one run.
 *
 * @example A detached run's events reach whoever is subscribed now
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunFeed } from "./run_feed.ts";
 * import type { ExecutionEvent } from "../types.ts";
 * let abandoned = false;
 * const feed = new RunFeed({ detached: true, detachTimeoutMs: 60_000,
 *   abandoned: () => abandoned = true });
 * const seen: ExecutionEvent[] = [];
 * const sink = { emit: (e: ExecutionEvent) => void seen.push(e), ready: () => Promise.resolve() };
 * const leave = feed.subscribe(sink);
 * feed.emit({ type: "paused", executionId: "e1", pid: 7, pgid: 7 });
 * leave();
 * feed.emit({ type: "resumed", executionId: "e1", pid: 7, pgid: 7 });
 * assert.deepEqual(seen.map((e) => e.type), ["paused"]);
 * assert.equal(feed.gone(), false, "a detached run is read with no one there");
 * feed.close();
 * assert.equal(abandoned, false);
 * ```
 */
export class RunFeed implements Sink {
  readonly #subs = new Map<Sink, Required<SubscribeOptions>>();
  readonly #options: RunFeedOptions;
  #attached = 0;
  /**
   * Set while the run's holder is away (its connection dropped): the run
   * waits for it to come back, as it waited for it to read, until another
   * consumer holds it, the run is being ended, or the detach clock runs out.
   */
  #vacancy: PromiseWithResolvers<void> | null = null;
  /** Once the run is being ended, nothing holds it any more. */
  #holdsReleased = false;
  /**
   * Resolved (and replaced) whenever who holds the run changes: a read
   * waiting on the old holder's readiness goes on, and asks again.
   */
  #holdChanged = Promise.withResolvers<void>();
  /** Cancels the running detach clock; undefined while none runs. */
  #timer: (() => void) | undefined;
  #closed = false;

  /** A feed with no consumers; a detached one starts its clock at the first {@linkcode release}. */
  constructor(options: RunFeedOptions) {
    this.#options = options;
  }

  readonly #cleared = Promise.withResolvers<void>();

  /** Resolves once {@linkcode clear} is called: the run's last events, hooks included, are out. */
  get cleared(): Promise<void> {
    return this.#cleared.promise;
  }

  /** Whether the run survives its consumers. */
  get detached(): boolean {
    return this.#options.detached;
  }

  /** Consumers attached now. */
  get attached(): number {
    return this.#attached;
  }

  /** Whether `sink` is subscribed. */
  has(sink: Sink): boolean {
    return this.#subs.has(sink);
  }

  /** Subscribes `sink` to every further event; returns the unsubscribe (idempotent). */
  subscribe(sink: Sink, options: SubscribeOptions = {}): () => void {
    if (this.#subs.has(sink)) return () => this.unsubscribe(sink);
    const o = {
      paces: options.paces ?? true,
      attaches: options.attaches ?? true,
      holds: (options.holds ?? false) && !this.#holdsReleased,
    };
    if (o.holds) {
      for (const other of this.#subs.values()) other.holds = false;
      this.#fillVacancy();
      this.#holdersChanged();
    }
    this.#subs.set(sink, o);
    if (o.attaches) {
      this.#attached++;
      this.#stopClock();
    }
    return () => this.unsubscribe(sink);
  }

  /** Removes `sink`; the last attached consumer leaving starts a detached run's clock. */
  unsubscribe(sink: Sink): void {
    const o = this.#subs.get(sink);
    if (o === undefined) return;
    this.#subs.delete(sink);
    if (!o.attaches) return;
    this.#attached--;
    if (this.#attached === 0) this.#startClock();
  }

  /**
   * Removes `sink` as {@linkcode unsubscribe} does; if it holds the run now
   * (it may have been taken over since), its hold stays vacant: its
   * connection dropped, and the run waits for it to come back.
   */
  leave(sink: Sink): void {
    const holding = this.#subs.get(sink)?.holds === true;
    this.unsubscribe(sink);
    if (holding && !this.#holdsReleased && !this.#closed) {
      this.#vacancy ??= Promise.withResolvers<void>();
    }
    if (holding) this.#holdersChanged();
  }

  /** The run is being ended: no one holds it any more, so its last output is read at once. */
  releaseHolds(): void {
    if (this.#holdsReleased) return;
    this.#holdsReleased = true;
    for (const o of this.#subs.values()) o.holds = false;
    this.#fillVacancy();
    this.#holdersChanged();
  }

  #holdersChanged(): void {
    this.#holdChanged.resolve();
    this.#holdChanged = Promise.withResolvers<void>();
  }

  #fillVacancy(): void {
    this.#vacancy?.resolve();
    this.#vacancy = null;
  }

  /** Someone read or controlled the run: a detached run's clock starts again. */
  touch(): void {
    if (this.#timer !== undefined) this.#startClock();
  }

  /**
   * Forgets every consumer (the run has ended and its last events, hook
   * outcomes included, have been sent): a retained run must not keep its
   * clients' connections reachable.
   */
  clear(): void {
    this.#cleared.resolve();
    this.releaseHolds();
    this.#subs.clear();
    this.#attached = 0;
    this.#stopClock();
  }

  /** The run has ended: no more events, no clock. */
  close(): void {
    this.releaseHolds();
    this.#closed = true;
    this.#stopClock();
  }

  emit(event: ExecutionEvent): void {
    // Per output chunk, so no copy: a Map's iteration skips entries removed meanwhile (an
    // attachment ends on `completed`), and one added meanwhile gets the event it then sees.
    for (const sink of this.#subs.keys()) {
      try {
        sink.emit(event);
      } catch (err) {
        // One consumer's failure costs the others nothing, nor the run.
        reportError(err);
      }
    }
  }

  ready(): Promise<void> {
    // A detached run is held back by no one but those who asked to hold it:
    // other followers that lag read its log.
    const detached = this.#options.detached;
    let one: Promise<void> | null = this.#vacancy?.promise ?? null;
    let all: Promise<void>[] | null = null;
    let held = one !== null;
    for (const [sink, o] of this.#subs) {
      if (!o.paces || (detached && !o.holds) || sink.gone?.()) continue;
      held ||= o.holds;
      const ready = sink.ready();
      if (one === null) one = ready;
      else (all ??= [one]).push(ready);
    }
    const waiting = all !== null ? Promise.all(all).then(() => {}) : one ?? RESOLVED;
    // A holder taken over or let go no longer holds back a read already waiting on it.
    return held && waiting !== RESOLVED
      ? Promise.race([waiting, this.#holdChanged.promise])
      : waiting;
  }

  gone(): boolean {
    if (this.#options.detached) return false;
    for (const [sink, o] of this.#subs) if (o.paces && !sink.gone?.()) return false;
    return true;
  }

  #startClock(): void {
    this.#stopClock();
    if (!this.#options.detached || this.#closed || this.#attached > 0) return;
    this.#timer = longTimeout(
      () => {
        this.#timer = undefined;
        // Its holder did not come back in time: let its last output be read as it ends.
        this.releaseHolds();
        this.#options.abandoned();
      },
      this.#options.detachTimeoutMs,
      true,
    );
  }

  #stopClock(): void {
    this.#timer?.();
    this.#timer = undefined;
  }
}
