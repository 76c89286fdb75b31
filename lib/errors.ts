/**
 * Typed errors that cross module boundaries. Each carries the JSON-RPC code the
 * protocol layer answers with, so no layer above has to guess a mapping.
 *
 * @module
 */

/** JSON-RPC error codes used on the wire (see PROTOCOL.md, "Errors"). */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  CommandRefused: -32001,
  NoProcess: -32002,
  SessionLimit: -32003,
  StoreUnavailable: -32004,
  NoLiveNode: -32005,
  ClusterUnavailable: -32006,
  RateLimited: -32029,
} as const;

/** Options for {@linkcode ExecutorError}. */
export interface ExecutorErrorOptions {
  /** Structured detail sent as the JSON-RPC `data` member. */
  data?: unknown;
  /** The underlying error, kept for logs. */
  cause?: unknown;
}

/**
 * Base class of every error a client may see. `code` is the JSON-RPC code.
 *
 * @example Map an error to its wire code
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExecutorError, NoProcessError } from "./errors.ts";
 * const e = new NoProcessError();
 * assert.ok(e instanceof ExecutorError);
 * assert.equal(e.code, -32002);
 * assert.equal(e.message, "No process is running");
 * ```
 */
export class ExecutorError extends Error {
  /** JSON-RPC error code. */
  readonly code: number;
  /** JSON-RPC error `data` (null when there is none). */
  readonly data: unknown;

  /** Creates an error with a JSON-RPC code. */
  constructor(code: number, message: string, options: ExecutorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ExecutorError";
    this.code = code;
    this.data = options.data ?? null;
  }
}

/** Params failed validation; `data` names the field and why. */
export class InvalidParamsError extends ExecutorError {
  /** Creates an invalid-params error. */
  constructor(message: string, options: ExecutorErrorOptions = {}) {
    super(ErrorCode.InvalidParams, message, options);
    this.name = "InvalidParamsError";
  }
}

/** The command was empty or refused by policy. */
export class CommandRefusedError extends ExecutorError {
  /** Creates a command-refused error. */
  constructor(message: string, options: ExecutorErrorOptions = {}) {
    super(ErrorCode.CommandRefused, message, options);
    this.name = "CommandRefusedError";
  }
}

/** A control request found no running process to act on. */
export class NoProcessError extends ExecutorError {
  /** Creates a no-process error. */
  constructor(message = "No process is running", options: ExecutorErrorOptions = {}) {
    super(ErrorCode.NoProcess, message, options);
    this.name = "NoProcessError";
  }
}

/** The session already runs as many executions as it may. */
export class BusyError extends ExecutorError {
  /** Creates a busy error (wire code -32602, as the original answered). */
  constructor(message = "A process is already running", options: ExecutorErrorOptions = {}) {
    super(ErrorCode.InvalidParams, message, options);
    this.name = "BusyError";
  }
}

/** The server is at its session limit. */
export class SessionLimitError extends ExecutorError {
  /** Creates a session-limit error. */
  constructor() {
    super(ErrorCode.SessionLimit, "Session limit exceeded");
    this.name = "SessionLimitError";
  }
}

/**
 * The store behind history and learned limits cannot be reached (Redis down,
 * the embedded file failing). Message `Store unavailable`; `data` is
 * `{backend, reason}` with the backend's own words. A request that only reads
 * the store gets this; running commands never depends on the store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StoreDownError } from "./errors.ts";
 * const e = new StoreDownError("redis", "The client is closed");
 * assert.equal(e.code, -32004);
 * assert.equal(e.message, "Store unavailable");
 * assert.deepEqual(e.data, { backend: "redis", reason: "The client is closed" });
 * ```
 */
export class StoreDownError extends ExecutorError {
  /** Creates a store-unavailable error. */
  constructor(backend: string, reason: string, options: Omit<ExecutorErrorOptions, "data"> = {}) {
    super(ErrorCode.StoreUnavailable, "Store unavailable", {
      ...options,
      data: { backend, reason },
    });
    this.name = "StoreDownError";
  }
}

/**
 * No live node matches a request's `node`/`labels` (lib/cluster/): message
 * `No live node matches`; `data` is `{node?, labels?, live: [{id, labels}]}`.
 * Nothing was started.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NoLiveNodeError } from "./errors.ts";
 * const e = new NoLiveNodeError({ labels: ["gpu"], live: [{ id: "a", labels: [] }] });
 * assert.equal(e.code, -32005);
 * ```
 */
export class NoLiveNodeError extends ExecutorError {
  /** Creates the error; `data` says what was asked for and what is live. */
  constructor(data: Record<string, unknown>, message = "No live node matches") {
    super(ErrorCode.NoLiveNode, message, { data });
    this.name = "NoLiveNodeError";
  }
}

/**
 * A request needs another node and Redis, through which nodes reach each
 * other, cannot be reached (or the node it names did not answer): message
 * `Cluster unavailable`; `data` is `{reason}`. Runs on this node go on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClusterDownError } from "./errors.ts";
 * assert.equal(new ClusterDownError("Redis is not connected").code, -32006);
 * ```
 */
export class ClusterDownError extends ExecutorError {
  /** Creates the error with the reason. */
  constructor(reason: string, options: Omit<ExecutorErrorOptions, "data"> = {}) {
    super(ErrorCode.ClusterUnavailable, "Cluster unavailable", { ...options, data: { reason } });
    this.name = "ClusterDownError";
  }
}

/** Something failed on our side; the message is safe to show. */
export class InternalError extends ExecutorError {
  /** Creates an internal error. */
  constructor(message: string, options: ExecutorErrorOptions = {}) {
    super(ErrorCode.InternalError, message, options);
    this.name = "InternalError";
  }
}
