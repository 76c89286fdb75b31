/**
 * Who may read the service's figures (`/health`'s full report, `/metrics`):
 * anyone when no key is configured, else only a valid key. One rule for both
 * routes, so neither tells more than the other.
 *
 * @module
 */
import type { Context } from "hono";
import { type ApiKeyring, extractKey } from "../lib/security/auth.ts";
import type { RateLimiter } from "../lib/security/rate_limit.ts";
import { type GuardEnv, remoteAddress } from "./guard.ts";

/** What the check reads. */
export interface FiguresAccessDeps {
  /** When it holds keys, figures need one. */
  keyring: ApiKeyring;
  /**
   * New connections per address: a request that presents a key spends a
   * token, so keys cannot be guessed here faster than at `/ws`.
   */
  connections?: RateLimiter | undefined;
}

/**
 * The outcome: `granted`, `denied` (no key or a wrong one; the route says
 * what that gets), or `limited` with the 429 to answer.
 */
export type FiguresAccess =
  | { kind: "granted" }
  | { kind: "denied" }
  | { kind: "limited"; response: Response };

/**
 * Decides whether the request may read the figures.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Hono } from "hono";
 * import { ApiKeyring } from "../lib/security/auth.ts";
 * import { figuresAccess } from "./figures_access.ts";
 * import type { GuardEnv } from "./guard.ts";
 * const app = new Hono<GuardEnv>();
 * app.get("/f", async (c) => {
 *   const access = await figuresAccess(c, { keyring: new ApiKeyring(["secret"]) });
 *   return access.kind === "limited" ? access.response : c.text(access.kind);
 * });
 * assert.equal(await (await app.request("/f")).text(), "denied");
 * const keyed = await app.request("/f", { headers: { "X-API-Key": "secret" } });
 * assert.equal(await keyed.text(), "granted");
 * ```
 */
export async function figuresAccess(
  c: Context<GuardEnv>,
  deps: FiguresAccessDeps,
): Promise<FiguresAccess> {
  if (!deps.keyring.hasKeys) return { kind: "granted" };
  const presented = extractKey(c.req.raw).key;
  // Charged before the check, right key or wrong, so the answer to a guess
  // past the limit says nothing about the key. No key, no guess: no charge
  // (probes without a key are not held back).
  const taken = presented === null
    ? { ok: true as const }
    : deps.connections?.take(`addr:${remoteAddress(c)}`) ?? { ok: true as const };
  if (!taken.ok) {
    const response = c.json(
      { error: "Too many requests", retry_after_ms: taken.retryAfterMs },
      429,
      { "Retry-After": String(Math.max(1, Math.ceil(taken.retryAfterMs / 1000))) },
    );
    return { kind: "limited", response };
  }
  return await deps.keyring.verify(presented) === null ? { kind: "denied" } : { kind: "granted" };
}
