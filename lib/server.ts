/**
 * Assembles the service: registry, sessions, metrics, the Hono app and
 * `Deno.serve`, plus graceful shutdown. `main.ts` calls this with the loaded
 * config; tests call it with `port: 0`.
 *
 * @module
 */
import { Hono } from "hono";
import type { Config } from "./config.ts";
import { ExecutionRegistry } from "./execution_registry.ts";
import { logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { SessionManager } from "./session_manager.ts";
import { healthRoutes } from "../routes/health.ts";
import { wsRoutes } from "../routes/ws.ts";

/** A running server. */
export interface ServerHandle {
  /** The port actually bound (useful with `port: 0`). */
  port: number;
  hostname: string;
  /** `ws://host:port/ws/mcp`. */
  wsUrl: string;
  /** `http://host:port`. */
  httpUrl: string;
  sessions: SessionManager;
  registry: ExecutionRegistry;
  metrics: Metrics;
  /**
   * Graceful shutdown: `/health` answers 503 "draining", new sessions are
   * refused, every process group is terminated (SIGTERM, then SIGKILL after
   * the kill grace), connections are closed with 1001, then the listener.
   */
  shutdown(): Promise<void>;
  /** Resolves when the listener has closed. */
  finished: Promise<void>;
}

const log = logger("server");

/**
 * Starts the service.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "./config.ts";
 * import { startServer } from "./server.ts";
 * const server = startServer(loadConfig({ args: ["--port", "0"], getEnv: () => undefined }));
 * const res = await fetch(`${server.httpUrl}/healthz`);
 * assert.deepEqual(await res.json(), { status: "ok" });
 * await server.shutdown();
 * ```
 */
export function startServer(config: Readonly<Config>): ServerHandle {
  const startedAt = performance.now();
  const metrics = new Metrics();
  const registry = new ExecutionRegistry({
    retentionSeconds: config.executionRetention,
    maxRetained: config.maxRetainedExecutions,
  });
  const sessions = new SessionManager(
    { registry, metrics, config },
    { maxSessions: config.maxSessions, sessionTimeoutMs: config.sessionTimeout * 1000 },
  );
  const sockets = new Set<WebSocket>();
  const queuedBytes = () => {
    let total = 0;
    for (const s of sockets) total += s.bufferedAmount;
    return total;
  };

  const app = new Hono();
  app.route("/", healthRoutes({ config, sessions, registry, metrics, startedAt, queuedBytes }));
  app.route(
    "/",
    wsRoutes({ sessions, metrics, config, pingTimeout: config.wsPingTimeout, sockets }),
  );
  app.notFound((c) => c.json({ error: "Not found" }, 404));
  app.onError((err, c) => {
    log.error("Unhandled error on {path}: {error}", { path: c.req.path, error: err });
    return c.json({ error: "Internal error" }, 500);
  });

  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: () => {},
  }, app.fetch);
  sessions.start();

  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  let shuttingDown: Promise<void> | null = null;

  const shutdown = () => {
    shuttingDown ??= (async () => {
      log.info("Draining: terminating {count} running executions", {
        count: registry.runningCount,
      });
      const deadline = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, config.shutdownTimeout * 1000);
        Deno.unrefTimer(t);
      });
      await Promise.race([
        Promise.all([sessions.drain(), registry.terminateAll()]),
        deadline,
      ]);
      // Past the deadline nothing may outlive us: SIGKILL whatever remains.
      for (const exec of registry.running()) exec.kill();
      for (const s of sockets) {
        try {
          s.close(1001, "Server shutting down");
        } catch {
          // already closed
        }
      }
      await server.shutdown();
    })();
    return shuttingDown;
  };

  return {
    port: addr.port,
    hostname: addr.hostname,
    wsUrl: `ws://${host}:${addr.port}/ws/mcp`,
    httpUrl: `http://${host}:${addr.port}`,
    sessions,
    registry,
    metrics,
    shutdown,
    finished: server.finished,
  };
}
