/**
 * The MCP side of the server, loaded when the first MCP session opens.
 *
 * The MCP SDK builds zod schemas for the whole protocol when it is imported:
 * with the tools of this folder that is about 8 MB of the idle server's
 * resident memory (4 MB of it heap) that a server serving only legacy
 * clients never uses.
 * The server therefore imports nothing of MCP at startup: a WebSocket that
 * turns out to speak MCP, or the first request to `/mcp`, loads it here
 * (once; concurrent first uses share the one load).
 *
 * @module
 */
import type { Principal } from "../../security/principal.ts";
import type { SessionServices } from "../../session/session.ts";
import type { SessionManager } from "../../session/session_manager.ts";
import type { McpHttpConfig, McpHttpEndpoint } from "./mcp_http.ts";

/** The MCP modules the server uses. */
export interface McpModules {
  McpProtocol: typeof import("./mcp.ts").McpProtocol;
  McpSocketTransport: typeof import("./socket_transport.ts").McpSocketTransport;
  McpHttpEndpoint: typeof import("./mcp_http.ts").McpHttpEndpoint;
}

let loading: Promise<McpModules> | undefined;

/**
 * The MCP modules, imported on the first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadMcp } from "./lazy.ts";
 * const mcp = await loadMcp();
 * assert.equal(typeof mcp.McpProtocol, "function");
 * assert.equal(await loadMcp(), mcp);
 * ```
 */
export function loadMcp(): Promise<McpModules> {
  loading ??= Promise.all([
    import("./mcp.ts"),
    import("./socket_transport.ts"),
    import("./mcp_http.ts"),
  ]).then(([mcp, socket, http]) => ({
    McpProtocol: mcp.McpProtocol,
    McpSocketTransport: socket.McpSocketTransport,
    McpHttpEndpoint: http.McpHttpEndpoint,
  }));
  // A failed load is not remembered: the next session tries again.
  loading.catch(() => loading = undefined);
  return loading;
}

/** What the `/mcp` route and the access guard use of the endpoint. */
export type McpHttpHandler = Pick<McpHttpEndpoint, "handle" | "has" | "size">;

/**
 * The `/mcp` endpoint ({@linkcode McpHttpEndpoint}), made on its first request.
 *
 * @example Until a request comes, nothing is loaded and no session is open
 * ```ts
 * import assert from "node:assert/strict";
 * import { LazyMcpHttpEndpoint } from "./lazy.ts";
 * import { SessionManager } from "../../session/session_manager.ts";
 * import { ExecutionRegistry } from "../../core/execution_registry.ts";
 * import { Metrics } from "../../ops/metrics.ts";
 * import { loadConfig } from "../../config/config.ts";
 * import { HookRunner } from "../../ops/hooks.ts";
 * import { createStore } from "../../store/store.ts";
 * import { TimeLimits } from "../../timing/time_limits.ts";
 * import { DEFAULT_TIMEOUTS_S } from "../../timing/estimate.ts";
 * const config = loadConfig({ getEnv: () => undefined });
 * const store = await createStore({ ephemeral: true });
 * const services = { hooks: HookRunner.none(),
 *   timeLimits: new TimeLimits(store, { multiplier: () => 1 }, { ...DEFAULT_TIMEOUTS_S }) };
 * const sessions = new SessionManager({
 *   registry: new ExecutionRegistry({ retentionSeconds: 60, maxRetained: 10 }),
 *   metrics: new Metrics(), config, ...services }, { maxSessions: 1, sessionTimeoutMs: 60_000 });
 * const endpoint = new LazyMcpHttpEndpoint(sessions, config, services);
 * assert.equal(endpoint.has("no-such-session"), false);
 * assert.equal(endpoint.size, 0);
 * const res = await endpoint.handle(new Request("http://x/mcp", { method: "GET" }));
 * assert.equal(res.status, 400);
 * await store.close();
 * ```
 */
export class LazyMcpHttpEndpoint implements McpHttpHandler {
  readonly #make: (mcp: McpModules) => McpHttpEndpoint;
  #endpoint: McpHttpEndpoint | undefined;

  /** An endpoint that loads MCP on its first request. */
  constructor(sessions: SessionManager, config: McpHttpConfig, services: SessionServices) {
    this.#make = (mcp) => new mcp.McpHttpEndpoint(sessions, config, services);
  }

  /** Sessions open over HTTP. */
  get size(): number {
    return this.#endpoint?.size ?? 0;
  }

  /** Whether `id` names a session of `principal` open here now ({@linkcode McpHttpEndpoint.has}). */
  has(id: string, principal?: Principal): boolean {
    return this.#endpoint?.has(id, principal) ?? false;
  }

  /** Answers one request to `/mcp` ({@linkcode McpHttpEndpoint.handle}). */
  async handle(req: Request, principal?: Principal): Promise<Response> {
    if (this.#endpoint === undefined) {
      const mcp = await loadMcp();
      this.#endpoint ??= this.#make(mcp);
    }
    return await this.#endpoint.handle(req, principal);
  }
}
