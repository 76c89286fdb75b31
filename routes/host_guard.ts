/**
 * The Host check in front of every route (DNS-rebinding protection, rules
 * in lib/security/host_check.ts): a request that does not name this server gets 403
 * before the access guard, a rate limit or a route sees it. `/mcp` answers
 * with a JSON-RPC error like its other errors; everything else with the
 * guard's plain `{error}` body.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { redactUrl } from "../lib/security/auth.ts";
import type { HostCheck } from "../lib/security/host_check.ts";
import { logger } from "../lib/log.ts";
import { type GuardEnv, remoteAddress } from "./guard.ts";

const log = logger("access");

/** What the 403 tells the client to do. */
const HINT = "Connect by an address the server listens on, or add this host to " +
  "CC_EXECUTOR_ALLOWED_HOSTS (--allowed-hosts)";

/** Longest Host value echoed back or logged. */
const MAX_ECHO = 256;

/** Options of {@linkcode hostGuard}. */
export interface HostGuardOptions {
  /** Paths that skip the check (exact match), e.g. a liveness probe. */
  exempt?: readonly string[];
}

/**
 * The Host check middleware. `check` is read per request: the server makes
 * its {@linkcode HostCheck} once it knows the port it listens on, before it
 * handles any request.
 */
export function hostGuard(
  check: () => HostCheck,
  options: HostGuardOptions = {},
): MiddlewareHandler<GuardEnv> {
  const exempt = new Set(options.exempt ?? []);
  return async (c, next) => {
    if (exempt.has(c.req.path)) return await next();
    const refused = check().refused(c.req.raw);
    if (refused === null) return await next();
    const host = refused.slice(0, MAX_ECHO);
    log.warning("Refused Host {host} for {url} from {address}", {
      host,
      url: redactUrl(c.req.url),
      address: remoteAddress(c),
    });
    if (c.req.path === "/mcp") {
      return c.json({
        jsonrpc: "2.0",
        error: { code: -32000, message: `Forbidden: Host not allowed`, data: { host, hint: HINT } },
        id: null,
      }, 403);
    }
    return c.json({ error: "Host not allowed", host, hint: HINT }, 403);
  };
}
