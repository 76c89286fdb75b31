/**
 * The CLI's JSON-RPC connection to the service's WebSocket endpoint
 * (PROTOCOL.md parts 1 to 3): requests matched to their replies by id,
 * notifications handed on in arrival order, and failures typed so the
 * caller can tell "try again" from "give up".
 *
 * @module
 */

import { ErrorCode } from "../lib/errors.ts";

/** A JSON-RPC error the server sent in reply to a request (or with no id). */
export class RpcError extends Error {
  /** Its wire code, e.g. -32002 for an unknown execution. */
  readonly code: number;
  readonly data: unknown;

  /** The error as the server sent it. */
  constructor(code: number, message: string, data: unknown = null) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }
}

/**
 * Sends with `send`, and while the server answers that it is over its
 * message rate, waits (as long as it says, or backing off from 50 ms to
 * 1 s) and sends again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RpcError, whileRateLimited } from "./client.ts";
 * let tries = 0;
 * const r = await whileRateLimited(() =>
 *   ++tries < 3
 *     ? Promise.reject(new RpcError(-32029, "Rate limit exceeded", { retry_after_ms: 1 }))
 *     : Promise.resolve("sent")
 * );
 * assert.deepEqual([r, tries], ["sent", 3]);
 * ```
 */
export async function whileRateLimited<T>(send: () => Promise<T>): Promise<T> {
  for (let wait = 50;; wait = Math.min(1000, wait * 2)) {
    try {
      return await send();
    } catch (err) {
      if (!(err instanceof RpcError) || err.code !== ErrorCode.RateLimited) throw err;
      const after = (err.data as { retry_after_ms?: unknown } | null)?.retry_after_ms;
      await new Promise((resolve) => setTimeout(resolve, typeof after === "number" ? after : wait));
    }
  }
}

/**
 * The connection could not be made or was lost. `retry` says whether
 * connecting again may help (a dropped network) or not (a refused key).
 */
export class ConnectionError extends Error {
  readonly retry: boolean;

  /** A failure to connect or a lost connection; `retry`: whether trying again may help. */
  constructor(message: string, options: { retry: boolean }) {
    super(message);
    this.name = "ConnectionError";
    this.retry = options.retry;
  }
}

/** A notification from the server: `process.output`, `process.completed`, ... */
export interface Notification {
  method: string;
  params: Record<string, unknown>;
}

/** Options of {@linkcode RpcClient.connect}. */
export interface ConnectOptions {
  /** `ws://` or `wss://` URL of the endpoint. */
  url: string;
  /** The API key, sent as `Authorization: Bearer` (never in the URL). */
  key?: string | undefined;
  /** Every notification, in arrival order. */
  onNotification: (n: Notification) => void;
  /** Called once when the connection ends after it was open, whoever closed it. */
  onClose?: (reason: string) => void;
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Ping the server this often, and take a connection that leaves a ping
   * unanswered this long for dead (default 15 s; 0: never). A network that
   * drops packets without a reset would otherwise leave the CLI waiting
   * for ever.
   */
  keepaliveMs?: number;
}

/** How often a connection is pinged, and how long a ping may go unanswered. */
const KEEPALIVE_MS = 15_000;

/** How long a connection attempt may take before it counts as failed. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Why a connection attempt failed, as a user should read it. */
function connectFailure(url: string, message: string): ConnectionError {
  const status = /status code:? (\d{3})/i.exec(message)?.[1];
  if (status === "401") {
    return new ConnectionError(
      `${url} refused the API key (HTTP 401): set CC_EXECUTOR_API_KEY or --key-file ` +
        "to a key the server holds",
      { retry: false },
    );
  }
  if (status === "403") {
    return new ConnectionError(
      `${url} refused the connection (HTTP 403): the server does not accept this host name ` +
        "(its allowed-hosts) or origin",
      { retry: false },
    );
  }
  if (status === "404") {
    return new ConnectionError(`${url}: no WebSocket endpoint at this path (HTTP 404)`, {
      retry: false,
    });
  }
  return new ConnectionError(`cannot connect to ${url}: ${message}`, { retry: true });
}

/**
 * One WebSocket connection speaking the legacy JSON-RPC protocol.
 *
 * @example Against a running server
 * ```ts ignore
 * const client = await RpcClient.connect({ url: "ws://127.0.0.1:8003/ws/mcp",
 *   onNotification: (n) => console.log(n.method) });
 * console.log(await client.request("list", { state: "running" }));
 * client.close();
 * ```
 */
export class RpcClient {
  /** The session id from the server's `connected` message. */
  readonly sessionId: string;
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, PromiseWithResolvers<unknown>>();
  #nextId = 1;
  #closed: ConnectionError | null = null;
  /** Closed by this side: the close is nobody's news. */
  #closing = false;
  #pinger: ReturnType<typeof setInterval> | undefined;
  /** When a message last arrived: any traffic shows the link is alive. */
  #lastHeard = performance.now();

  private constructor(ws: WebSocket, sessionId: string) {
    this.#ws = ws;
    this.sessionId = sessionId;
  }

  /**
   * Opens a connection and waits for the server's `connected` message.
   *
   * @throws {ConnectionError} when it cannot be made (`retry: false` for a
   *   refused key, a wrong path or a full server's refusal).
   */
  static connect(options: ConnectOptions): Promise<RpcClient> {
    const { url } = options;
    const headers: Record<string, string> = {};
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    const { promise, resolve, reject } = Promise.withResolvers<RpcClient>();
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, { headers });
    } catch (err) {
      return Promise.reject(
        new ConnectionError(`${url}: ${err instanceof Error ? err.message : err}`, {
          retry: false,
        }),
      );
    }
    let client: RpcClient | null = null;
    let refusal: RpcError | null = null;
    const timer = setTimeout(() => {
      reject(new ConnectionError(`cannot connect to ${url}: no answer`, { retry: true }));
      ws.close();
    }, options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (client === null) {
        if (msg.method === "connected") {
          const params = (msg.params ?? {}) as Record<string, unknown>;
          clearTimeout(timer);
          client = new RpcClient(ws, String(params.session_id ?? ""));
          client.#keepalive(options.keepaliveMs ?? KEEPALIVE_MS, options.onClose);
          resolve(client);
        } else if (msg.error !== undefined) {
          const e = msg.error as { code: number; message: string; data?: unknown };
          refusal = new RpcError(e.code, e.message, e.data);
        }
        return;
      }
      client.#lastHeard = performance.now();
      client.#receive(msg, options.onNotification);
    };
    ws.onerror = (event) => {
      if (client !== null) return;
      clearTimeout(timer);
      const message = (event as ErrorEvent).message ?? "connection failed";
      reject(connectFailure(url, message));
    };
    ws.onclose = (event) => {
      clearTimeout(timer);
      if (client === null) {
        // The server refused the session (e.g. -32003 "Session limit exceeded", then 1008).
        const why = refusal?.message ?? (event.reason || `closed with ${event.code}`);
        reject(
          new ConnectionError(`${url} refused the session: ${why}`, { retry: refusal !== null }),
        );
        return;
      }
      const reason = event.code === 1000 || event.code === 1005
        ? "the server closed the connection"
        : event.code === 0 || event.code === 1006
        ? "the connection was lost"
        : `the connection closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`;
      client.#fail(new ConnectionError(reason, { retry: true }));
      if (!client.#closing) options.onClose?.(reason);
    };
    return promise;
  }

  /** Whether the connection is still open. */
  get open(): boolean {
    return this.#closed === null;
  }

  /**
   * Sends a request and resolves with its result.
   *
   * @throws {RpcError} for an error reply.
   * @throws {ConnectionError} when the connection is lost before the reply.
   */
  request(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    const waiter = Promise.withResolvers<unknown>();
    this.#pending.set(id, waiter);
    try {
      this.#ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    } catch {
      // Closing already: the close event fails the request.
    }
    return waiter.promise;
  }

  /** Sends a notification (no reply); dropped if the connection is gone. */
  notify(method: string, params: Record<string, unknown>): void {
    if (this.#closed !== null) return;
    try {
      this.#ws.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
    } catch {
      // Closing already.
    }
  }

  /** Closes the connection (pending requests fail with a {@linkcode ConnectionError}). */
  close(code = 1000, reason = ""): void {
    this.#closing = true;
    this.#fail(new ConnectionError("closed by the client", { retry: false }));
    try {
      this.#ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  #receive(msg: Record<string, unknown>, onNotification: ConnectOptions["onNotification"]): void {
    if (typeof msg.method === "string") {
      if (msg.id !== undefined) return; // the server sends no requests
      onNotification({
        method: msg.method,
        params: (msg.params ?? {}) as Record<string, unknown>,
      });
      return;
    }
    const waiter = typeof msg.id === "number" ? this.#pending.get(msg.id) : undefined;
    if (waiter === undefined) return;
    this.#pending.delete(msg.id as number);
    if (msg.error !== undefined) {
      const e = msg.error as { code: number; message: string; data?: unknown };
      waiter.reject(new RpcError(e.code, e.message, e.data ?? null));
    } else {
      waiter.resolve(msg.result);
    }
  }

  #keepalive(ms: number, onClose: ConnectOptions["onClose"]): void {
    if (ms <= 0) return;
    this.#pinger = setInterval(() => {
      const sent = performance.now();
      const deadline = setTimeout(() => {
        // Output arriving counts as an answer: on a slow link the reply waits behind it.
        if (this.#lastHeard > sent) return;
        // A dead link's close handshake never completes: drop it here and now.
        const reason = `nothing heard for ${ms / 1000}s, not even the answer to a ping`;
        if (this.#closed !== null) return;
        this.#closing = true;
        this.#fail(new ConnectionError(reason, { retry: true }));
        try {
          this.#ws.close(4000, "no answer to a ping");
        } catch {
          // already closing
        }
        onClose?.(reason);
      }, ms);
      this.request("ping").catch(() => {}).finally(() => clearTimeout(deadline));
    }, ms);
  }

  #fail(error: ConnectionError): void {
    if (this.#closed !== null) return;
    clearInterval(this.#pinger);
    this.#closed = error;
    for (const waiter of this.#pending.values()) waiter.reject(error);
    this.#pending.clear();
  }
}
