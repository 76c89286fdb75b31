/**
 * The Redis keys of a multi-node deployment. Keys that one script touches
 * together share a hash tag (`{...}`), so they live in one slot of a Redis
 * Cluster: a node's liveness, epoch, running set and streams (`{node id}`),
 * and a run's hash and output stream (`{execution id}`).
 *
 * @module
 */

/**
 * Key names under one prefix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClusterKeys } from "./keys.ts";
 * const keys = new ClusterKeys("cc_executor:");
 * assert.equal(keys.node("a"), "cc_executor:node:{a}");
 * assert.equal(keys.output("e1"), "cc_executor:exec:{e1}:out");
 * ```
 */
export class ClusterKeys {
  readonly #p: string;

  /** Keys under `prefix` (the store's `redis-prefix`). */
  constructor(prefix: string) {
    this.#p = prefix;
  }

  /** Set of every node id registered and not yet found dead. */
  get nodes(): string {
    return `${this.#p}nodes`;
  }

  /** A node's liveness: its description, expiring unless refreshed. */
  node(id: string): string {
    return `${this.#p}node:{${id}}`;
  }

  /** A node's fencing epoch: raised when it registers and when it is declared dead. */
  epoch(id: string): string {
    return `${this.#p}node:{${id}}:epoch`;
  }

  /** Ids of the runs a node owns and has not ended. */
  running(id: string): string {
    return `${this.#p}node:{${id}}:running`;
  }

  /** The node's job stream: runs placed on it (consumer group {@linkcode GROUP}). */
  jobs(id: string): string {
    return `${this.#p}node:{${id}}:jobs`;
  }

  /** The node's control stream: PAUSE, CANCEL, input, acks for the runs it owns. */
  control(id: string): string {
    return `${this.#p}node:{${id}}:ctl`;
  }

  /** A run's hash: where it runs, whose it is, its state and end. */
  exec(id: string): string {
    return `${this.#p}exec:{${id}}`;
  }

  /** A client's token bucket of rate limit `name`, shared by every node. */
  rate(name: string, client: string): string {
    return `${this.#p}rate:${name}:{${client}}`;
  }

  /** A run's output stream: its events, in order, ending with `end` and `fin`. */
  output(id: string): string {
    return `${this.#p}exec:{${id}}:out`;
  }
}

/** The consumer group every node reads its own job and control streams with. */
export const GROUP = "node";
