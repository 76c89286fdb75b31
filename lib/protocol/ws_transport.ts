/**
 * Connects one upgraded WebSocket to a session: refuses it at the session
 * limit, checks frame size and type, sends keep-alive pings, hands text to
 * the protocol, and on close ends everything the session started.
 *
 * The protocol is MCP when the client negotiated the `mcp` subprotocol, or
 * when its first request is `initialize` (that client has already been sent
 * `connected`, a notification MCP clients ignore); otherwise it is legacy.
 *
 * @module
 */
import type { Principal } from "../security/principal.ts";
import type { Config } from "../config/config.ts";
import { ErrorCode, SessionLimitError } from "../errors.ts";
import { logger, sessionFields } from "../log.ts";
import type { Metrics } from "../ops/metrics.ts";
import type { Session, SessionServices } from "../session/session.ts";
import type { SessionManager } from "../session/session_manager.ts";
import { SocketWriter } from "../core/socket_writer.ts";
import type { RateLimiter } from "../security/rate_limit.ts";
import { classifyMessage, encodeError, parseJson, toErrorObject } from "./jsonrpc.ts";
import { type LegacyConfig, LegacyProtocol } from "./legacy/legacy.ts";
import { loadMcp } from "./mcp/lazy.ts";
import type { McpConfig } from "./mcp/mcp.ts";
import type { McpSocketTransport } from "./mcp/socket_transport.ts";
import { exceedsUtf8 } from "../utf8.ts";

/** What a connection needs from the server. */
export interface TransportDeps {
  sessions: SessionManager;
  /** What the protocols use beside the session (estimates, history, hook status). */
  services: SessionServices;
  metrics: Metrics;
  config:
    & Pick<Config, "highWaterMark" | "maxMessageSize" | "wsPingInterval">
    & LegacyConfig
    & McpConfig;
}

/** What takes a socket's frames: the legacy protocol, or the MCP transport. */
interface SocketProtocol {
  /** One frame, parsed once here ({@linkcode parseJson}). */
  receive(value: unknown): void;
  sendError(code: number, message: string): void;
}

/** The method of a parsed frame when it is a request (it has an id), else undefined. */
function requestMethod(m: unknown): string | undefined {
  if (typeof m === "object" && m !== null && "id" in m && "method" in m) {
    return typeof m.method === "string" ? m.method : undefined;
  }
  return undefined;
}

const log = logger("ws");

/**
 * Wires `socket` (already upgraded, not yet open) to a new session; `mcp`
 * when the upgrade negotiated the `mcp` subprotocol (Deno's server-side
 * socket does not report it in `socket.protocol`).
 */
export function attachSocket(
  socket: WebSocket,
  deps: TransportDeps,
  options: {
    mcp?: boolean;
    /** Per-client message limit: an excess message gets -32029 and is dropped. */
    limiter?: { messages: RateLimiter; clientId: string };
    /** Who the connection acts for (default `local`). */
    principal?: Principal;
  } = {},
): void {
  let session: Session | undefined;
  let protocol: SocketProtocol | undefined;
  let mcp: McpSocketTransport | undefined;
  let writer: SocketWriter | undefined;
  let pinger: ReturnType<typeof setInterval> | undefined;
  /** Whether the protocol is settled; until the first request, legacy may turn into MCP. */
  let decided = false;
  let closed = false;
  const close = (code: number, reason: string) => {
    try {
      socket.close(code, reason);
    } catch {
      // already closing
    }
  };

  socket.onopen = () => {
    try {
      session = deps.sessions.open(close, options.principal);
    } catch (err) {
      if (!(err instanceof SessionLimitError)) throw err;
      socket.send(encodeError(undefined, toErrorObject(err)));
      close(1008, "Session limit exceeded");
      return;
    }
    writer = new SocketWriter(socket, deps.config.highWaterMark, deps.metrics);
    log.debug("Session {session} opened for {principal}", sessionFields(session));
    // An MCP client is sent nothing before it initializes.
    if (options.mcp) return startMcp(session, writer);
    const legacy = new LegacyProtocol(session, writer, deps.services);
    protocol = legacy;
    writer.send(legacy.connectedMessage());
    const every = deps.config.wsPingInterval * 1000;
    if (every > 0) pinger = setInterval(() => writer?.send(legacy.pingMessage()), every);
  };

  const startMcp = (session: Session, writer: SocketWriter) => {
    decided = true;
    session.protocol = "mcp_ws";
    // MCP has no `ping` notification (its ping is a request): keep-alive is left
    // to WebSocket ping frames (`ws-ping-timeout`).
    if (pinger !== undefined) clearInterval(pinger);
    pinger = undefined;
    // MCP is loaded on the first MCP session (mcp/lazy.ts): what arrives
    // meanwhile waits, in order, for the transport.
    const waiting: Array<(p: SocketProtocol) => void> = [];
    protocol = {
      receive: (value) => waiting.push((p) => p.receive(value)),
      sendError: (code, message) => waiting.push((p) => p.sendError(code, message)),
    };
    loadMcp().then((m) => {
      if (closed) return;
      mcp = new m.McpSocketTransport(writer, close);
      protocol = mcp;
      void new m.McpProtocol(session, mcp, deps.config, deps.services, {
        ready: () => writer.ready(),
      }).start();
      for (const deliver of waiting) deliver(mcp);
    }, (err) => {
      log.error("MCP could not be loaded: {error}", {
        ...sessionFields(session),
        error: String(err),
      });
      close(1011, "MCP unavailable");
    });
  };

  socket.onmessage = (event: MessageEvent) => {
    if (protocol === undefined) return;
    const data = event.data;
    if (typeof data !== "string") {
      const size = data instanceof ArrayBuffer ? data.byteLength : (data as Blob).size ?? 0;
      if (size > deps.config.maxMessageSize) return close(1009, "Message too big");
      protocol.sendError(ErrorCode.InvalidRequest, "Binary frames are not supported");
      return;
    }
    if (exceedsUtf8(data, deps.config.maxMessageSize)) return close(1009, "Message too big");
    // The one parse of the frame: the limiter, the protocol choice and the protocol share it.
    const value = parseJson(data);
    const limiter = options.limiter;
    if (limiter !== undefined) {
      const taken = limiter.messages.take(limiter.clientId);
      if (!taken.ok) {
        // Classified only here, to echo the id of the message being dropped.
        const msg = classifyMessage(value);
        const id = msg.kind === "request" ? msg.id : msg.kind === "invalid" ? msg.id : undefined;
        if (msg.kind !== "notification") {
          writer?.send(encodeError(id ?? null, {
            code: ErrorCode.RateLimited,
            message: "Rate limit exceeded",
            data: { retry_after_ms: Math.ceil(taken.retryAfterMs) },
          }));
        }
        return;
      }
    }
    if (!decided) {
      const method = requestMethod(value);
      if (method !== undefined) {
        decided = true;
        if (method === "initialize") startMcp(session!, writer!);
      }
    }
    protocol.receive(value);
  };

  socket.onclose = () => {
    closed = true;
    if (pinger !== undefined) clearInterval(pinger);
    writer?.close();
    mcp?.closed();
    if (session !== undefined) {
      log.debug("Session {session} closed", sessionFields(session));
      void deps.sessions.remove(session);
    }
  };

  socket.onerror = () => {
    // A close event always follows; cleanup happens there.
  };
}
