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
import { type ApiKeyring, extractKey, keyFingerprint, redactUrl } from "../lib/auth.ts";
import { logger } from "../lib/log.ts";
import { isOriginAllowed } from "../lib/origin_check.ts";
import type { RateLimiter } from "../lib/rate_limit.ts";

const log = logger("access");

/** Hono variables the guard sets for the routes behind it. */
export type GuardEnv = {
  Bindings: Deno.ServeHandlerInfo<Deno.NetAddr> | undefined;
  Variables: {
    /** Who the client is for rate limits: `key:<fingerprint>` or `addr:<ip>`. */
    clientId: string;
  };
};

/** What the guard checks against. */
export interface GuardDeps {
  keyring: ApiKeyring;
  allowedOrigins: readonly string[];
  /** New connections: WebSocket upgrades, and MCP HTTP requests that open a session. */
  connections: RateLimiter;
  /** Requests within an MCP HTTP session (each MCP message is one). */
  messages: RateLimiter;
}

/** Whether a request opens a connection (rather than continuing an MCP HTTP session). */
function opensConnection(c: Context<GuardEnv>): boolean {
  return c.req.header("upgrade") !== undefined || c.req.header("mcp-session-id") === undefined;
}

/** The remote address of a request, or "unknown" (e.g. in-process `app.request`). */
export function remoteAddress(c: Context<GuardEnv>): string {
  return c.env?.remoteAddr?.hostname ?? "unknown";
}

/** The guard middleware. */
export function accessGuard(deps: GuardDeps): MiddlewareHandler<GuardEnv> {
  return async (c, next) => {
    // Only redacted URLs are logged: a key may travel as ?token=.
    const where = { url: redactUrl(c.req.url), address: remoteAddress(c) };
    if (!isOriginAllowed(c.req.header("origin") ?? null, deps.allowedOrigins)) {
      log.warning("Refused origin {origin} for {url} from {address}", {
        ...where,
        origin: c.req.header("origin"),
      });
      return c.json({ error: "Origin not allowed" }, 403);
    }
    const presented = extractKey(c.req.raw).key;
    const authorized = deps.keyring.hasKeys ? await deps.keyring.verify(presented) : true;
    // Only a verified key names the client; otherwise its address does, so
    // guessing keys is rate limited too.
    const clientId = authorized && presented !== null
      ? `key:${await keyFingerprint(presented)}`
      : `addr:${remoteAddress(c)}`;
    const opening = opensConnection(c);
    const taken = (opening ? deps.connections : deps.messages).take(clientId);
    if (!taken.ok) {
      log.warning("Rate limited {client} on {url}", { ...where, client: clientId });
      return c.json({ error: opening ? "Too many connections" : "Too many requests" }, 429, {
        "Retry-After": String(Math.max(1, Math.ceil(taken.retryAfterMs / 1000))),
      });
    }
    if (!authorized) {
      log.warning("Unauthorized request for {url} from {address}", where);
      return c.json({ error: "Unauthorized" }, 401, {
        "WWW-Authenticate": 'Bearer realm="cc-executor"',
      });
    }
    c.set("clientId", clientId);
    log.debug("Accepted {client} for {url}", { ...where, client: clientId });
    await next();
  };
}
