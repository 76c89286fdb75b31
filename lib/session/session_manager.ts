/**
 * All sessions: the limit on how many, idle expiry, and draining at shutdown.
 * Removal is one idempotent `Map.delete`, so expiry, disconnect and shutdown
 * may race freely (the original popped sessions outside its lock and could
 * raise on a concurrent removal).
 *
 * @module
 */
import { LOCAL, type Principal } from "../security/principal.ts";
import { SessionLimitError } from "../errors.ts";
import {
  type CloseConnection,
  Session,
  type SessionDeps,
  type SessionProtocol,
} from "./session.ts";

/** Idle time after which a reclaimable session may give its place to a new one of its principal. */
export const RECLAIM_IDLE_MS = 60_000;

/** Limits of the manager. */
export interface SessionManagerOptions {
  maxSessions: number;
  /** Sessions one principal may hold at once; 0 or absent: no limit but `maxSessions`. */
  maxSessionsPerPrincipal?: number;
  /** Idle time after which a session with nothing running is closed. */
  sessionTimeoutMs: number;
  /**
   * Idle time after which an MCP session expires, running runs or not (they
   * are the principal's); sessions say theirs in `Session.idleLimitMs`, this
   * only sets how often to look.
   */
  mcpSessionTimeoutMs?: number;
  /** Idle time after which a reclaimable session may give its place; default {@linkcode RECLAIM_IDLE_MS}. */
  reclaimIdleMs?: number;
}

/**
 * Owns the sessions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SessionManager } from "./session_manager.ts";
 * import { ExecutionRegistry } from "../core/execution_registry.ts";
 * import { Metrics } from "../ops/metrics.ts";
 * import { HookRunner } from "../ops/hooks.ts";
 * import { createStore } from "../store/store.ts";
 * import { TimeLimits } from "../timing/time_limits.ts";
 * import { DEFAULT_TIMEOUTS_S } from "../timing/estimate.ts";
 * import { loadConfig } from "../config/config.ts";
 * const store = await createStore({ ephemeral: true });
 * const timeLimits = new TimeLimits(store, { multiplier: () => 1 }, { ...DEFAULT_TIMEOUTS_S });
 * const manager = new SessionManager({
 *   registry: new ExecutionRegistry({ retentionSeconds: 60, maxRetained: 10 }),
 *   metrics: new Metrics(),
 *   timeLimits,
 *   hooks: HookRunner.none(),
 *   config: loadConfig({ getEnv: () => undefined }),
 * }, { maxSessions: 1, sessionTimeoutMs: 60_000 });
 * const session = manager.open(() => {});
 * assert.throws(() => manager.open(() => {}), { code: -32003 });
 * assert.deepEqual(manager.countByProtocol(), { legacy_ws: 1, mcp_ws: 0, mcp_http: 0 });
 * await manager.remove(session);
 * await manager.remove(session); // idempotent
 * assert.equal(manager.size, 0);
 * await store.close();
 * ```
 */
export class SessionManager {
  readonly #sessions = new Map<string, Session>();
  readonly #deps: SessionDeps;
  readonly #options: SessionManagerOptions;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #draining = false;

  /** Creates a manager with no sessions. */
  constructor(deps: SessionDeps, options: SessionManagerOptions) {
    this.#deps = deps;
    this.#options = options;
  }

  /** Open sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Open sessions by protocol (a walk over at most `max-sessions`, for `/metrics`). */
  countByProtocol(): Record<SessionProtocol, number> {
    const counts: Record<SessionProtocol, number> = { legacy_ws: 0, mcp_ws: 0, mcp_http: 0 };
    for (const session of this.#sessions.values()) counts[session.protocol]++;
    return counts;
  }

  /** Whether shutdown has begun (new sessions are refused). */
  get draining(): boolean {
    return this.#draining;
  }

  /** A session by id. */
  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  /**
   * Opens a session of `principal` (default `local`). At a limit, a session
   * that may `reclaim` (an MCP HTTP initialize) takes the place of the same
   * principal's longest-idle reclaimable session, idle at least
   * `reclaimIdleMs`: clients that never DELETE their sessions
   * then replace their own abandoned ones instead of being refused.
   *
   * @throws {SessionLimitError} at the limit, or while draining.
   */
  open(
    closeConnection: CloseConnection,
    principal: Principal = LOCAL,
    options: { reclaim?: boolean } = {},
  ): Session {
    if (this.#draining) {
      this.#deps.metrics.sessionsRefused++;
      throw new SessionLimitError();
    }
    if (this.#full(principal) && !(options.reclaim === true && this.#reclaim(principal))) {
      this.#deps.metrics.sessionsRefused++;
      throw new SessionLimitError();
    }
    const session = new Session(this.#deps, closeConnection, principal);
    this.#sessions.set(session.id, session);
    this.#deps.metrics.sessionsOpened++;
    return session;
  }

  /** Whether a session of `principal` would exceed a limit. */
  #full(principal: Principal): boolean {
    const perPrincipal = this.#options.maxSessionsPerPrincipal ?? 0;
    return this.#sessions.size >= this.#options.maxSessions ||
      (perPrincipal > 0 && this.#count(principal) >= perPrincipal);
  }

  /**
   * Ends a reclaimable session idle long enough to make room for one of
   * `principal`: its own longest-idle one, or else (when the server-wide
   * limit is what is full) the longest-idle one of the principal holding the
   * most sessions, if that is more than `principal` holds, so that no tenant
   * can keep the others out by never ending its sessions.
   */
  #reclaim(principal: Principal, now = performance.now()): boolean {
    const minIdle = this.#options.reclaimIdleMs ?? RECLAIM_IDLE_MS;
    const idle = [...this.#sessions.values()].filter((s) =>
      s.reclaimable && !s.inFlight && s.idleMs(now) >= minIdle
    );
    const longest = (of: Session[]) =>
      of.reduce<Session | undefined>(
        (a, s) => a === undefined || s.idleMs(now) > a.idleMs(now) ? s : a,
        undefined,
      );
    let victim = longest(idle.filter((s) => s.principal.id === principal.id));
    if (victim === undefined && this.#sessions.size >= this.#options.maxSessions) {
      const counts = new Map<string, number>();
      for (const s of this.#sessions.values()) {
        counts.set(s.principal.id, (counts.get(s.principal.id) ?? 0) + 1);
      }
      const mine = counts.get(principal.id) ?? 0;
      let hog: string | undefined;
      for (const s of idle) {
        const n = counts.get(s.principal.id)!;
        if (n > mine + 1 && (hog === undefined || n > counts.get(hog)!)) hog = s.principal.id;
      }
      if (hog !== undefined) victim = longest(idle.filter((s) => s.principal.id === hog));
    }
    if (victim === undefined) return false;
    this.#sessions.delete(victim.id);
    this.#deps.metrics.sessionsReclaimed++;
    victim.closeConnection(1000, "Session replaced by a newer one");
    void victim.end("disconnect");
    return !this.#full(principal);
  }

  /** Sessions of `principal` open now. */
  #count(principal: Principal): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (s.principal.id === principal.id) n++;
    return n;
  }

  /**
   * Removes a session and ends its executions (client gone). Idempotent and
   * safe to call concurrently with expiry and draining.
   */
  async remove(session: Session): Promise<void> {
    this.#sessions.delete(session.id);
    await session.end("disconnect");
  }

  /**
   * Ends every session `keep` refuses (its key was revoked): its runs are
   * canceled and its connection closed with 1008. Returns how many.
   */
  revoke(keep: (session: Session) => boolean): number {
    let revoked = 0;
    for (const session of [...this.#sessions.values()]) {
      if (keep(session)) continue;
      this.#sessions.delete(session.id);
      revoked++;
      void session.end("disconnect", { code: 1008, reason: "API key revoked" });
    }
    return revoked;
  }

  /**
   * Closes sessions idle past their timeout: a legacy session only while it
   * follows no run, an MCP one whatever runs (its runs go on). Returns how many.
   */
  sweep(now = performance.now()): number {
    let expired = 0;
    for (const session of [...this.#sessions.values()]) {
      if (!session.detachAll && session.following) continue;
      if (session.idleMs(now) < (session.idleLimitMs ?? this.#options.sessionTimeoutMs)) continue;
      if (!this.#sessions.delete(session.id)) continue;
      expired++;
      session.closeConnection(1000, "Session expired");
      void session.end("disconnect");
    }
    this.#deps.registry.prune();
    return expired;
  }

  /** Starts the periodic sweep. */
  start(): void {
    if (this.#sweeper !== undefined) return;
    const shortest = Math.min(
      this.#options.sessionTimeoutMs,
      this.#options.mcpSessionTimeoutMs ?? Infinity,
    );
    const every = Math.min(30_000, Math.max(50, shortest / 4));
    this.#sweeper = setInterval(() => this.sweep(), every);
  }

  /**
   * Shutdown: refuse new sessions, end every execution (clients get their
   * `process.completed`), then close each connection with 1001.
   */
  async drain(): Promise<void> {
    this.#draining = true;
    this.stop();
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(
      sessions.map((s) => s.end("shutdown", { code: 1001, reason: "Server shutting down" })),
    );
  }

  /** Stops the sweep timer. */
  stop(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}
