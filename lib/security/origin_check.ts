/**
 * The `Origin` check on everything that runs commands (WebSocket upgrades
 * and `/mcp`). Browsers let any page open a WebSocket to any host, including
 * a localhost executor, and send the page's origin with it; refusing unknown
 * origins stops cross-site WebSocket hijacking (and cross-site requests to
 * `/mcp`). Non-browser clients send no `Origin` and pass, and so does the
 * server's own origin: the Host check (lib/security/host_check.ts) has made sure the
 * host in it is really this server's, not a name rebound to it.
 *
 * @module
 */

/**
 * Canonical form of an origin: lowercase `scheme://host[:port]` with the
 * scheme's default port dropped, or null when `origin` is not a bare origin
 * (unparsable, `null`, no host, or carrying credentials, a path, a query or
 * a fragment; a lone trailing `/` is tolerated for config entries).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalizeOrigin } from "./origin_check.ts";
 * assert.equal(normalizeOrigin("HTTPS://Example.COM:443"), "https://example.com");
 * assert.equal(normalizeOrigin("http://localhost:3000/"), "http://localhost:3000");
 * assert.equal(normalizeOrigin("null"), null);
 * assert.equal(normalizeOrigin("https://example.com/app"), null);
 * ```
 */
export function normalizeOrigin(origin: string): string | null {
  let url: URL;
  try {
    url = new URL(origin.trim());
  } catch {
    return null;
  }
  // WHATWG URL parsing lowercases the scheme, and for http(s) and ws(s) also
  // the host, and drops their default ports; other schemes keep the host's case.
  if (url.host === "" || url.username !== "" || url.password !== "") return null;
  if (url.search !== "" || url.hash !== "" || (url.pathname !== "/" && url.pathname !== "")) {
    return null;
  }
  // A query or fragment delimiter with nothing after it parses as empty too.
  if (/[?#]/.test(origin)) return null;
  return `${url.protocol}//${url.host.toLowerCase()}`;
}

/**
 * Whether a request with this `Origin` header may proceed.
 * - No `Origin` (null): allowed, as non-browser clients send none.
 * - `allowed` contains `*`: allowed, whatever it is (the check is off).
 * - Otherwise: allowed when it equals `own` or an entry of `allowed` after
 *   both are normalised ({@linkcode normalizeOrigin}); a malformed
 *   `Origin`, or `null` (the opaque origin of sandboxed frames and files),
 *   is refused. An empty list therefore refuses every browser page but the
 *   server's own.
 *
 * @param origin The request's `Origin` header, or null when absent.
 * @param allowed The configured origins (`CC_EXECUTOR_ALLOWED_ORIGINS`).
 * @param own The server's own origin as this request reached it
 *   (`http://127.0.0.1:8003`), or null when its Host does not name the
 *   server (`HostCheck.ownOrigin`, lib/security/host_check.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isOriginAllowed } from "./origin_check.ts";
 * const allowed = ["https://app.example.com"];
 * assert.equal(isOriginAllowed(null, allowed), true);
 * assert.equal(isOriginAllowed("https://APP.example.com:443", allowed), true);
 * assert.equal(isOriginAllowed("https://evil.example", allowed), false);
 * const own = "http://127.0.0.1:8003";
 * assert.equal(isOriginAllowed("http://127.0.0.1:8003", [], own), true);
 * assert.equal(isOriginAllowed("http://localhost:8003", [], own), false);
 * ```
 */
export function isOriginAllowed(
  origin: string | null,
  allowed: readonly string[],
  own: string | null = null,
): boolean {
  if (origin === null) return true;
  if (allowed.includes("*")) return true;
  const normal = normalizeOrigin(origin);
  if (normal === null) return false;
  if (own !== null && normalizeOrigin(own) === normal) return true;
  return allowed.some((entry) => normalizeOrigin(entry) === normal);
}
