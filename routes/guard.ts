/**
 * The access guard in front of every endpoint that runs commands (`/ws`,
 * `/ws/mcp`, `/mcp`): Origin check (cross-site WebSocket hijacking), API key
 * (constant-time, before any upgrade), and per-client rate limits: new
 * connections, and requests within an MCP HTTP session (WebSocket frames
 * are limited in the transport). A refused request never reaches the upgrade.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { type ApiKeyring, extractKey, redactUrl } from "../lib/security/auth.ts";
import { ErrorCode } from "../lib/errors.ts";
import { logger } from "../lib/log.ts";
import { isOriginAllowed } from "../lib/security/origin_check.ts";
import { LOCAL, type Principal } from "../lib/security/principal.ts";
import type { RateLimiter, TakeResult } from "../lib/security/rate_limit.ts";
import type { Metrics } from "../lib/ops/metrics.ts";

const log = logger("access");

/** Hono variables the guard sets for the routes behind it. */
export type GuardEnv = {
  Bindings: Deno.ServeHandlerInfo<Deno.NetAddr> | undefined;
  Variables: {
    /** Who the client is for rate limits: `principal:<id>`, or `addr:<ip>` without keys. */
    clientId: string;
    /** Who the request acts for: owns what it creates, sees only its own (admin: all). */
    principal: Principal;
  };
};

/** What the guard checks against. */
export interface GuardDeps {
  keyring: ApiKeyring;
  allowedOrigins: readonly string[];
  /**
   * The server's own origin as `req` reached it, or null when its Host does
   * not name the server (`HostCheck.ownOrigin`): a page of that origin passes
   * the Origin check too. Absent: only `allowedOrigins` pass.
   */
  ownOrigin?: (req: Request) => string | null;
  /** New connections: WebSocket upgrades, and every `/mcp` request outside a live session. */
  connections: RateLimiter;
  /**
   * The same limit shared by every node (lib/cluster/shared_rate_limit.ts),
   * with `redis-url`; its answer is null while Redis is away, and then the
   * node's own applies.
   */
  sharedConnections?: () => { take(key: string): Promise<TakeResult | null> } | null;
  /** Requests within a live MCP HTTP session (GET, POST or DELETE: one each). */
  messages: RateLimiter;
  /** Counts the 401s; absent: not counted. */
  metrics?: Pick<Metrics, "authFailures">;
  /** Whether `/mcp` holds a session with this `Mcp-Session-Id` now, of this principal. */
  hasMcpSession: (id: string, principal: Principal) => boolean;
}

/** The path of the MCP Streamable HTTP endpoint, whose errors are JSON-RPC. */
const MCP_PATH = "/mcp";

/**
 * Whether an authorized request continues a live MCP HTTP session rather
 * than opening a connection. Only a session id the endpoint holds for this
 * principal counts: an unknown one, or another principal's, gets a 404
 * anyway, and letting any header value pass as "within a session" would let
 * a client skip the connection limit.
 */
function continuesMcpSession(
  c: Context<GuardEnv>,
  deps: GuardDeps,
  principal: Principal,
): boolean {
  if (c.req.path !== MCP_PATH || c.req.header("upgrade") !== undefined) return false;
  const id = c.req.header("mcp-session-id");
  return id !== undefined && deps.hasMcpSession(id, principal);
}

/**
 * The 429 answer, with `Retry-After` in whole seconds (at least 1). On
 * `/mcp` it is a JSON-RPC error like every other error there, with the same
 * code and `data` as the WebSocket's -32029, so an MCP client can parse it;
 * a WebSocket upgrade gets the guard's plain `{error}` body, as its 401 and
 * 403 do, plus `retry_after_ms`.
 */
function rateLimited(c: Context<GuardEnv>, retryAfterMs: number): Response {
  const headers = { "Retry-After": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) };
  const retry_after_ms = Math.ceil(retryAfterMs);
  if (c.req.path === MCP_PATH) {
    return c.json(
      {
        jsonrpc: "2.0",
        error: {
          code: ErrorCode.RateLimited,
          message: "Rate limit exceeded",
          data: { retry_after_ms },
        },
        // The body is not read before refusing, so the request's id is unknown.
        id: null,
      },
      429,
      headers,
    );
  }
  // Off `/mcp` every request opens a connection: there are no sessions to continue.
  return c.json({ error: "Too many connections", retry_after_ms }, 429, headers);
}

/**
 * A refusal (401, 403): on `/mcp` a JSON-RPC error, as every other answer
 * there is, so an MCP client can parse it; elsewhere the guard's `{error}`.
 */
function refused(
  c: Context<GuardEnv>,
  status: 401 | 403,
  message: string,
  headers: Record<string, string> = {},
): Response {
  if (c.req.path === MCP_PATH) {
    return c.json(
      { jsonrpc: "2.0", error: { code: -32000, message }, id: null },
      status,
      headers,
    );
  }
  return c.json({ error: message }, status, headers);
}

/** The remote address of a request, or "unknown" (e.g. in-process `app.request`). */
export function remoteAddress(c: Context<GuardEnv>): string {
  return c.env?.remoteAddr?.hostname ?? "unknown";
}

/**
 * The guard middleware. Mount it so that it runs once per request: Hono's
 * `/ws/*` also matches `/ws`, and a second pass would spend a second token.
 */
export function accessGuard(deps: GuardDeps): MiddlewareHandler<GuardEnv> {
  return async (c, next) => {
    // Only redacted URLs are logged: a key may travel as ?token=.
    const where = { url: redactUrl(c.req.url), address: remoteAddress(c) };
    const origin = c.req.header("origin") ?? null;
    const own = origin === null ? null : deps.ownOrigin?.(c.req.raw) ?? null;
    if (!isOriginAllowed(origin, deps.allowedOrigins, own)) {
      log.warning("Refused origin {origin} for {url} from {address}", {
        ...where,
        origin: c.req.header("origin"),
      });
      return refused(c, 403, "Origin not allowed");
    }
    const presented = extractKey(c.req.raw).key;
    const principal = deps.keyring.hasKeys ? await deps.keyring.verify(presented) : LOCAL;
    // A principal's requests share its buckets whichever key it used; without
    // keys (all `local`) and for unverified requests, the address does, so
    // guessing keys is rate limited too.
    const clientId = principal !== null && deps.keyring.hasKeys
      ? `principal:${principal.id}`
      : `addr:${remoteAddress(c)}`;
    // An unverified request is always a connection attempt: a guess at a key
    // must not get the more generous message budget by naming a session.
    const opening = principal === null || !continuesMcpSession(c, deps, principal);
    let taken = (opening ? deps.connections : deps.messages).take(clientId);
    // Across nodes too: connections spread over them share one budget.
    if (taken.ok && opening) taken = await deps.sharedConnections?.()?.take(clientId) ?? taken;
    if (!taken.ok) {
      log.warning("Rate limited {client} on {url}", { ...where, client: clientId });
      return rateLimited(c, taken.retryAfterMs);
    }
    if (principal === null) {
      log.warning("Unauthorized request for {url} from {address}", where);
      if (deps.metrics) deps.metrics.authFailures++;
      return refused(c, 401, "Unauthorized", {
        "WWW-Authenticate": 'Bearer realm="cc-executor"',
      });
    }
    c.set("clientId", clientId);
    c.set("principal", principal);
    log.debug("Accepted {principal} for {url}", { ...where, principal: principal.id });
    await next();
  };
}
