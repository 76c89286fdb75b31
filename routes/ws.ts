/**
 * `GET /ws/mcp` and its alias `/ws`: the WebSocket upgrade. Thin on purpose:
 * everything after the upgrade happens in `lib/protocol/ws_transport.ts`.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { attachSocket, type TransportDeps } from "../lib/protocol/ws_transport.ts";
import type { RateLimiter } from "../lib/security/rate_limit.ts";
import type { GuardEnv } from "./guard.ts";

/** What the upgrade needs. */
export interface WsDeps extends TransportDeps {
  /** Seconds before an unresponsive connection is dropped (0: never). */
  pingTimeout: number;
  /** Sockets open now, for `/health` queue figures and shutdown. */
  sockets: Set<WebSocket>;
  /** Messages per client, shared by all of a client's connections. */
  messages: RateLimiter;
}

/** The WebSocket routes. */
export function wsRoutes(deps: WsDeps): Hono<GuardEnv> {
  const app = new Hono<GuardEnv>();
  const upgrade = (c: Context<GuardEnv>) => {
    // Deno matches the Upgrade header case-insensitively (Hono's helper does not).
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return c.text("Expected a WebSocket upgrade", 426, { Upgrade: "websocket" });
    }
    if (deps.sessions.draining) return c.json({ status: "draining" }, 503);
    // A client offering the `mcp` subprotocol gets it echoed and speaks MCP.
    const offered = c.req.header("sec-websocket-protocol")?.split(",").map((p) => p.trim());
    const mcp = offered?.includes("mcp") ?? false;
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, {
      idleTimeout: deps.pingTimeout,
      ...(mcp ? { protocol: "mcp" } : {}),
    });
    deps.sockets.add(socket);
    socket.addEventListener("close", () => deps.sockets.delete(socket));
    // The guard named the client (its key, else its address).
    const clientId = c.get("clientId") ?? "unknown";
    attachSocket(socket, deps, {
      mcp,
      limiter: { messages: deps.messages, clientId },
      principal: c.get("principal"),
    });
    return response;
  };
  app.get("/ws/mcp", upgrade);
  app.get("/ws", upgrade);
  return app;
}
