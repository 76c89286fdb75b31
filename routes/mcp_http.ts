/**
 * `/mcp`: the Model Context Protocol over Streamable HTTP. Thin on purpose:
 * sessions and the transport live in `lib/protocol/mcp/mcp_http.ts`.
 *
 * @module
 */
import { Hono } from "hono";
import type { McpHttpHandler } from "../lib/protocol/mcp/lazy.ts";
import type { SessionManager } from "../lib/session/session_manager.ts";
import type { GuardEnv } from "./guard.ts";

/** What the endpoint needs. */
export interface McpHttpDeps {
  sessions: SessionManager;
  /** The sessions behind `/mcp`; made by the server, which the access guard asks too. */
  endpoint: McpHttpHandler;
}

/** The MCP HTTP route. */
export function mcpHttpRoutes(deps: McpHttpDeps): Hono<GuardEnv> {
  const app = new Hono<GuardEnv>();
  const { endpoint } = deps;
  app.on(["GET", "POST", "DELETE"], "/mcp", (c) => {
    if (deps.sessions.draining) {
      return c.json({
        jsonrpc: "2.0",
        error: { code: -32000, message: "Server shutting down" },
        id: null,
      }, 503);
    }
    return endpoint.handle(c.req.raw, c.get("principal"));
  });
  app.all(
    "/mcp",
    (c) =>
      c.json(
        { jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed" }, id: null },
        405,
        {
          Allow: "GET, POST, DELETE",
        },
      ),
  );
  return app;
}
