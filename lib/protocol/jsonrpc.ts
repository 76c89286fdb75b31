/**
 * JSON-RPC 2.0 on the wire: parsing one incoming message into a request, a
 * notification or a protocol error, and encoding results, errors and
 * notifications. Batches are not supported (PROTOCOL.md).
 *
 * @module
 */
import { ErrorCode, ExecutorError } from "../errors.ts";

/** A request id: echoed unchanged. */
export type JsonRpcId = string | number | null;

/** What one incoming message is. */
export type Incoming =
  | { kind: "request"; id: JsonRpcId; method: string; params: unknown }
  | { kind: "notification"; method: string; params: unknown }
  | { kind: "invalid"; id: JsonRpcId; error: ExecutorError };

/** A JSON-RPC error object. */
export interface ErrorObject {
  code: number;
  message: string;
  data: unknown;
}

const isId = (v: unknown): v is JsonRpcId =>
  v === null || typeof v === "string" || (typeof v === "number" && Number.isFinite(v));

/** What {@linkcode parseJson} gives for text that is not JSON. */
export const NOT_JSON: unique symbol = Symbol("not JSON");

/**
 * Parses one text frame's JSON, once: the socket passes the value on to the
 * rate limiter, the protocol choice and the protocol.
 */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

/**
 * Parses one text frame.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMessage } from "./jsonrpc.ts";
 * assert.equal(parseMessage("{").kind, "invalid");
 * assert.deepEqual(parseMessage('{"jsonrpc":"2.0","method":"pong"}'),
 *   { kind: "notification", method: "pong", params: undefined });
 * ```
 */
export function parseMessage(text: string): Incoming {
  return classifyMessage(parseJson(text));
}

/** What one parsed frame ({@linkcode parseJson}) is. */
export function classifyMessage(msg: unknown): Incoming {
  if (msg === NOT_JSON) return invalid(null, ErrorCode.ParseError, "Parse error");
  if (Array.isArray(msg)) {
    return invalid(
      null,
      ErrorCode.InvalidRequest,
      "Invalid Request: batch requests are not supported",
    );
  }
  if (typeof msg !== "object" || msg === null) {
    return invalid(null, ErrorCode.InvalidRequest, "Invalid Request: expected a JSON object");
  }
  const m = msg as Record<string, unknown>;
  const hasId = "id" in m;
  if (hasId && !isId(m.id)) {
    return invalid(
      null,
      ErrorCode.InvalidRequest,
      "Invalid Request: id must be a string or number",
    );
  }
  const id = hasId ? m.id as JsonRpcId : null;
  // Existing clients sometimes omit "jsonrpc"; only a wrong value is refused.
  if ("jsonrpc" in m && m.jsonrpc !== "2.0") {
    return invalid(id, ErrorCode.InvalidRequest, 'Invalid Request: jsonrpc must be "2.0"');
  }
  if (typeof m.method !== "string" || m.method.length === 0) {
    return invalid(id, ErrorCode.InvalidRequest, "Invalid Request: method must be a string");
  }
  return hasId
    ? { kind: "request", id, method: m.method, params: m.params }
    : { kind: "notification", method: m.method, params: m.params };
}

function invalid(id: JsonRpcId, code: number, message: string): Incoming {
  return { kind: "invalid", id, error: new ExecutorError(code, message) };
}

/** The error object for anything thrown; unknown errors become -32603 without internals. */
export function toErrorObject(err: unknown): ErrorObject {
  if (err instanceof ExecutorError) {
    return { code: err.code, message: err.message, data: err.data };
  }
  return { code: ErrorCode.InternalError, message: "Internal error", data: null };
}

/** Encodes a result. */
export function encodeResult(id: JsonRpcId, result: unknown): string {
  return JSON.stringify({ jsonrpc: "2.0", result, id });
}

/** Encodes an error; `id` undefined omits the member (session-limit refusal). */
export function encodeError(id: JsonRpcId | undefined, error: ErrorObject): string {
  return JSON.stringify(
    id === undefined ? { jsonrpc: "2.0", error } : { jsonrpc: "2.0", error, id },
  );
}

/** Encodes a notification. */
export function encodeNotification(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: "2.0", method, params });
}
