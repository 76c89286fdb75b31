/**
 * Connects one upgraded WebSocket to a session: refuses it at the session
 * limit, checks frame size and type, sends keep-alive pings, hands text to
 * the protocol, and on close ends everything the session started.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { ErrorCode, SessionLimitError } from "../errors.ts";
import { logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Session } from "../session.ts";
import type { SessionManager } from "../session_manager.ts";
import { SocketWriter } from "../socket_writer.ts";
import { encodeError, toErrorObject } from "./jsonrpc.ts";
import { LegacyProtocol } from "./legacy.ts";

/** What a connection needs from the server. */
export interface TransportDeps {
  sessions: SessionManager;
  metrics: Metrics;
  config: Pick<
    Config,
    | "highWaterMark"
    | "maxMessageSize"
    | "wsPingInterval"
    | "shell"
    | "childEnv"
    | "defaultTimeout"
    | "maxTimeout"
  >;
}

const log = logger("ws");

/** UTF-8 size of a string, computed only when its length leaves doubt. */
function exceeds(text: string, max: number): boolean {
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return new TextEncoder().encode(text).length > max;
}

/**
 * Wires `socket` (already upgraded, not yet open) to a new session.
 */
export function attachSocket(socket: WebSocket, deps: TransportDeps): void {
  let session: Session | undefined;
  let protocol: LegacyProtocol | undefined;
  let writer: SocketWriter | undefined;
  let pinger: ReturnType<typeof setInterval> | undefined;
  const close = (code: number, reason: string) => {
    try {
      socket.close(code, reason);
    } catch {
      // already closing
    }
  };

  socket.onopen = () => {
    try {
      session = deps.sessions.open(close);
    } catch (err) {
      if (!(err instanceof SessionLimitError)) throw err;
      socket.send(encodeError(undefined, toErrorObject(err)));
      close(1008, "Session limit exceeded");
      return;
    }
    writer = new SocketWriter(socket, deps.config.highWaterMark, deps.metrics);
    protocol = new LegacyProtocol(session, writer, deps.config);
    writer.send(protocol.connectedMessage());
    const every = deps.config.wsPingInterval * 1000;
    if (every > 0) pinger = setInterval(() => writer?.send(protocol!.pingMessage()), every);
    log.debug("Session {session} opened", { session: session.id });
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
    if (exceeds(data, deps.config.maxMessageSize)) return close(1009, "Message too big");
    protocol.handle(data);
  };

  socket.onclose = () => {
    if (pinger !== undefined) clearInterval(pinger);
    writer?.close();
    if (session !== undefined) {
      log.debug("Session {session} closed", { session: session.id });
      void deps.sessions.remove(session);
    }
  };

  socket.onerror = () => {
    // A close event always follows; cleanup happens there.
  };
}
