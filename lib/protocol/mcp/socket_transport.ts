/**
 * The MCP SDK's `Transport` over one of our WebSockets, so MCP uses the same
 * socket path as the legacy protocol: frames go out through the
 * {@linkcode SocketWriter} (the one place bytes reach a socket, with its
 * back-pressure), and text frames come in through {@linkcode handle}.
 *
 * @module
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
import type { JSONRPCMessage, MessageExtraInfo } from "@modelcontextprotocol/sdk/types";
// @ts-types="@modelcontextprotocol/sdk/types"
import { JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";
import { ErrorCode } from "../../errors.ts";
import type { SocketWriter } from "../../core/socket_writer.ts";
import { exceedsUtf8, utf8Length } from "../../utf8.ts";
import { NOT_JSON, parseJson } from "../jsonrpc.ts";

/** No message we send is larger (common WebSocket clients refuse bigger frames). */
export const MCP_MAX_MESSAGE_BYTES = 1024 * 1024;

/** A frame that is no JSON-RPC message, as the error to answer it with. */
interface Refusal {
  id?: string | number;
  code: number;
  message: string;
}

/** One parsed frame ({@linkcode parseJson}) as a message, or the error that answers it. */
function asMessage(m: unknown): JSONRPCMessage | Refusal {
  if (m === NOT_JSON) return { code: ErrorCode.ParseError, message: "Parse error" };
  if (Array.isArray(m)) {
    return {
      code: ErrorCode.InvalidRequest,
      message: "Invalid Request: batch requests are not supported",
    };
  }
  if (typeof m !== "object" || m === null) {
    return { code: ErrorCode.InvalidRequest, message: "Invalid Request: expected a JSON object" };
  }
  // Clients that omit "jsonrpc" were accepted before the SDK's schema: only a wrong value is refused.
  const parsed = JSONRPCMessageSchema.safeParse({ jsonrpc: "2.0", ...m });
  if (parsed.success) return parsed.data;
  const id = (m as { id?: unknown }).id;
  const issue = parsed.error.issues[0];
  const reason = id === null ? "id must not be null" : issue?.message ?? "not a JSON-RPC message";
  // MCP ids are never null: an error about an unidentifiable message has none.
  return {
    ...(typeof id === "string" || typeof id === "number" ? { id } : {}),
    code: ErrorCode.InvalidRequest,
    message: `Invalid Request: ${reason}`,
  };
}

/**
 * A WebSocket as an MCP transport.
 *
 * @example A request in, its reply out
 * ```ts
 * import assert from "node:assert/strict";
 * import { McpSocketTransport } from "./socket_transport.ts";
 * import { SocketWriter } from "../../core/socket_writer.ts";
 * import { Metrics } from "../../ops/metrics.ts";
 * const sent: string[] = [];
 * const socket = { readyState: 1, bufferedAmount: 0, send: (d: string) => void sent.push(d) };
 * const transport = new McpSocketTransport(new SocketWriter(socket, 1 << 20, new Metrics()),
 *   () => {});
 * transport.onmessage = (m) => {
 *   if ("id" in m && m.id !== undefined) void transport.send({ jsonrpc: "2.0", id: m.id, result: {} });
 * };
 * transport.handle('{"jsonrpc":"2.0","id":7,"method":"ping"}');
 * transport.handle("{");
 * assert.deepEqual(sent.map((t) => JSON.parse(t)), [
 *   { jsonrpc: "2.0", id: 7, result: {} },
 *   { jsonrpc: "2.0", error: { code: -32700, message: "Parse error" } },
 * ]);
 * ```
 */
export class McpSocketTransport implements Transport {
  /** Set by the protocol: each incoming message. */
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  /** Set by the protocol: the socket has closed. */
  onclose?: () => void;
  /** Set by the protocol: a message could not be sent. */
  onerror?: (error: Error) => void;
  readonly #writer: SocketWriter;
  readonly #closeSocket: (code: number, reason: string) => void;
  #closed = false;

  /** Wraps an open socket's writer; `closeSocket` closes the socket. */
  constructor(writer: SocketWriter, closeSocket: (code: number, reason: string) => void) {
    this.#writer = writer;
    this.#closeSocket = closeSocket;
  }

  /** The socket is already open: nothing to do. */
  start(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Sends one message as a text frame; a message over 1 MiB is refused
   * (rejects) rather than sent, since common clients drop the connection on
   * one. A message for a closed socket is dropped.
   */
  send(message: JSONRPCMessage): Promise<void> {
    const text = JSON.stringify(message);
    if (exceedsUtf8(text, MCP_MAX_MESSAGE_BYTES)) {
      return Promise.reject(
        new RangeError(`Message of ${utf8Length(text)} bytes exceeds the 1 MiB cap`),
      );
    }
    this.#writer.send(text);
    return Promise.resolve();
  }

  /** Closes the socket (the close event then calls {@linkcode closed}). */
  close(): Promise<void> {
    this.#closeSocket(1000, "Closed");
    return Promise.resolve();
  }

  /** Resolves when the socket's queue is below its high-water mark. */
  ready(): Promise<void> {
    return this.#writer.ready();
  }

  /** Handles one incoming text frame; malformed ones are answered with an error. */
  handle(text: string): void {
    this.receive(parseJson(text));
  }

  /** Handles one frame already parsed by {@linkcode parseJson}. */
  receive(value: unknown): void {
    const message = asMessage(value);
    if ("jsonrpc" in message) return this.onmessage?.(message);
    const { id, code, msg } = { id: message.id, code: message.code, msg: message.message };
    const error = { code, message: msg };
    this.#writer.send(JSON.stringify(
      id === undefined ? { jsonrpc: "2.0", error } : { jsonrpc: "2.0", id, error },
    ));
  }

  /** Sends an error that answers no request (a refused binary frame). */
  sendError(code: number, message: string): void {
    this.#writer.send(JSON.stringify({ jsonrpc: "2.0", error: { code, message } }));
  }

  /** The socket has closed: tells the protocol once. */
  closed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onclose?.();
  }
}
