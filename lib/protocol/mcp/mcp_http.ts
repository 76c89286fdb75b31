/**
 * MCP over Streamable HTTP (spec 2025-11-25): POST for messages, GET for the
 * server's own stream, DELETE to end a session, SSE streaming, and the
 * `Mcp-Session-Id` header. The SDK's web-standard transport does the HTTP
 * part (Request in, Response out); this module keeps one per session, keyed
 * by the session id it hands out, each driving an {@linkcode McpProtocol}.
 *
 * Sessions opened here are ordinary {@linkcode Session}s of the
 * {@linkcode SessionManager}: they count against `max-sessions`, expire after
 * `mcp-session-timeout` idle, and end at shutdown like WebSocket ones. DELETE
 * ends one at once, not its runs: they belong to the principal, and any of
 * its sessions may list, read and control them.
 *
 * The SDK's runtime modules are imported by their `.js` path with the types
 * of the extensionless one: the package maps `./*` to `*.d.ts` for types, so
 * a `.js` subpath would be typed `any` under Deno.
 *
 * @module
 */
// @ts-types="@modelcontextprotocol/sdk/server/webStandardStreamableHttp"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
// @ts-types="@modelcontextprotocol/sdk/server/requestBody"
import { readRequestBody } from "@modelcontextprotocol/sdk/server/requestBody.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { Config } from "../../config/config.ts";
import { ErrorCode, SessionLimitError } from "../../errors.ts";
import { LOCAL, type Principal } from "../../security/principal.ts";
import type { Session, SessionServices } from "../../session/session.ts";
import type { SessionManager } from "../../session/session_manager.ts";
import { type McpConfig, McpProtocol } from "./mcp.ts";

/** Settings of the HTTP endpoint. */
export type McpHttpConfig = McpConfig & Pick<Config, "maxMessageSize">;

/** A JSON-RPC error as an HTTP response (the shape the SDK transport answers with). */
function errorResponse(
  status: number,
  code: number,
  message: string,
  id: string | number | null = null,
): Response {
  return Response.json({ jsonrpc: "2.0", error: { code, message }, id }, { status });
}

/** The id of the `initialize` request in a POST body, for an error that answers it. */
function initializeId(messages: unknown[]): string | number | null {
  const id = (messages.find(isInitializeRequest) as { id?: unknown } | undefined)?.id;
  return typeof id === "string" || typeof id === "number" ? id : null;
}

/**
 * The `/mcp` endpoint's sessions.
 *
 * @example A request without a session must be an initialize
 * ```ts
 * import assert from "node:assert/strict";
 * import { McpHttpEndpoint } from "./mcp_http.ts";
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
 * const endpoint = new McpHttpEndpoint(sessions, config, services);
 * const res = await endpoint.handle(new Request("http://x/mcp", { method: "GET" }));
 * assert.equal(res.status, 400);
 * assert.equal(sessions.size, 0);
 * assert.equal(endpoint.has("no-such-session"), false);
 * await store.close();
 * ```
 */
export class McpHttpEndpoint {
  readonly #sessions: SessionManager;
  readonly #config: McpHttpConfig;
  readonly #services: SessionServices;
  /** Open sessions by id, with the transport that drives each. */
  readonly #live = new Map<
    string,
    { transport: WebStandardStreamableHTTPServerTransport; principal: string }
  >();

  /** Creates an endpoint with no sessions. */
  constructor(sessions: SessionManager, config: McpHttpConfig, services: SessionServices) {
    this.#sessions = sessions;
    this.#config = config;
    this.#services = services;
  }

  /** Sessions open over HTTP. */
  get size(): number {
    return this.#live.size;
  }

  /**
   * Whether `id` names a session of `principal` open here now. The access
   * guard asks, so that only requests within a live session are spared the
   * connection limit (an unknown id, or another principal's, gets 404 and is
   * counted as a new connection).
   */
  has(id: string, principal: Principal = LOCAL): boolean {
    return this.#live.get(id)?.principal === principal.id;
  }

  /**
   * Answers one request to `/mcp` (GET, POST or DELETE) of `principal`
   * (default `local`). A session belongs to the principal that initialized
   * it: to any other, even an admin, its id is unknown (404), so a leaked
   * `Mcp-Session-Id` is of no use without its key.
   */
  async handle(req: Request, principal: Principal = LOCAL): Promise<Response> {
    const id = req.headers.get("mcp-session-id");
    if (id !== null) {
      const live = this.#live.get(id);
      // 404 tells the client to start a new session (spec: session management).
      // The same answer, from the same lookup, whether the id is unknown or another's.
      if (live === undefined || live.principal !== principal.id) {
        return errorResponse(404, -32001, "Session not found");
      }
      return await live.transport.handleRequest(req);
    }
    if (req.method !== "POST") {
      return errorResponse(400, -32000, "Bad Request: Mcp-Session-Id header is required");
    }
    return await this.#initialize(req, principal);
  }

  /** A POST without a session: it must initialize one. */
  async #initialize(req: Request, principal: Principal): Promise<Response> {
    const read = await readRequestBody(req, this.#config.maxMessageSize);
    if (read.tooLarge) return errorResponse(413, -32000, "Request body too large");
    let body: unknown;
    try {
      body = JSON.parse(read.text);
    } catch {
      return errorResponse(400, ErrorCode.ParseError, "Parse error: Invalid JSON");
    }
    const messages = Array.isArray(body) ? body : [body];
    if (!messages.some(isInitializeRequest)) {
      return errorResponse(
        400,
        -32000,
        "Bad Request: no Mcp-Session-Id header; a session starts with initialize",
      );
    }
    let session: Session;
    try {
      // Expiry and shutdown close the session through its transport.
      session = this.#sessions.open(() => void transport.close(), principal, { reclaim: true });
      session.reclaimable = true;
      session.protocol = "mcp_http";
    } catch (err) {
      if (!(err instanceof SessionLimitError)) throw err;
      return errorResponse(503, err.code, err.message, initializeId(messages));
    }
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => session.id,
      // DELETE: the session ends; its runs go on (they are the principal's).
      onsessionclosed: () => this.#end(session),
      maxRequestBodySize: this.#config.maxMessageSize,
    });
    transport.onclose = () => void this.#end(session);
    await new McpProtocol(session, transport, this.#config, this.#services, {
      // No response will come: end the stream the client's POST is waiting on.
      cancelled: (id) => transport.closeSSEStream(id),
    }).start();
    this.#live.set(session.id, { transport, principal: principal.id });
    const response = await transport.handleRequest(req, { parsedBody: body });
    // Refused before initializing (wrong Accept header...): no session came of it.
    if (transport.sessionId === undefined) await transport.close();
    return response;
  }

  /** Forgets a session and ends its executions. Idempotent. */
  async #end(session: Session): Promise<void> {
    this.#live.delete(session.id);
    await this.#sessions.remove(session);
  }
}
