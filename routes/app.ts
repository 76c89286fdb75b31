/**
 * The Hono app: the Host check, the access guard, the health, metrics,
 * WebSocket and MCP HTTP routes, and the JSON answers for unknown paths and unhandled
 * errors. `main.ts` builds the services and hands them in.
 *
 * @module
 */
import { Hono } from "hono";
import { ErrorCode } from "../lib/errors.ts";
import { logger } from "../lib/log.ts";
import { redactText } from "../lib/security/auth.ts";
import type { HostCheck } from "../lib/security/host_check.ts";
import { accessGuard, type GuardDeps, type GuardEnv } from "./guard.ts";
import { type HealthDeps, healthRoutes } from "./health.ts";
import { hostGuard } from "./host_guard.ts";
import { type MetricsRouteDeps, metricsRoutes } from "./metrics.ts";
import { type McpHttpDeps, mcpHttpRoutes } from "./mcp_http.ts";
import { type WsDeps, wsRoutes } from "./ws.ts";

/** What the app serves, and what guards it. */
export interface AppDeps {
  /**
   * The Host check. It needs the bound port, so it is made once the
   * listener is up, and read per request; no request is handled before.
   */
  hostCheck: () => HostCheck;
  /** Keys, origins and rate limits of the access guard. */
  guard: Pick<
    GuardDeps,
    "keyring" | "allowedOrigins" | "connections" | "messages" | "metrics" | "sharedConnections"
  >;
  health: HealthDeps;
  metrics: MetricsRouteDeps;
  ws: WsDeps;
  mcpHttp: McpHttpDeps;
}

const log = logger("server");

/**
 * Assembles the app from its routes and guards.
 *
 * @returns the app whose `fetch` `Deno.serve` calls (`startServer` in main.ts).
 */
export function createApp(deps: AppDeps): Hono<GuardEnv> {
  const app = new Hono<GuardEnv>();
  // First of all, on every route but the liveness probe: does the request
  // name this server (DNS rebinding)?
  app.use("*", hostGuard(deps.hostCheck, { exempt: ["/healthz"] }));
  // Everything that can run a command sits behind the guard, checked before any upgrade.
  const guard = accessGuard({
    ...deps.guard,
    ownOrigin: (req) => deps.hostCheck().ownOrigin(req),
    hasMcpSession: (id, principal) => deps.mcpHttp.endpoint.has(id, principal),
  });
  // Once per request: `/ws/*` matches `/ws` too (and `/mcp/*` `/mcp`), and
  // the guard mounted on both would spend two tokens per request.
  for (const path of ["/ws/*", "/mcp/*"]) app.use(path, guard);
  app.route("/", healthRoutes(deps.health));
  app.route("/", metricsRoutes(deps.metrics));
  app.route("/", wsRoutes(deps.ws));
  app.route("/", mcpHttpRoutes(deps.mcpHttp));
  app.notFound((c) => c.json({ error: "Not found" }, 404));
  app.onError((err, c) => {
    // Redacted: an error may quote the request URL, and a key may be in it.
    const error = redactText(err instanceof Error ? `${err.stack ?? err}` : String(err));
    log.error("Unhandled error on {path}: {error}", { path: c.req.path, error });
    if (c.req.path === "/mcp") {
      return c.json(
        {
          jsonrpc: "2.0",
          error: { code: ErrorCode.InternalError, message: "Internal error" },
          id: null,
        },
        500,
      );
    }
    return c.json({ error: "Internal error" }, 500);
  });
  return app;
}
