/**
 * Assembles the service: store, resource monitor, hooks, registry,
 * sessions, metrics, the Hono app and `Deno.serve`, plus graceful shutdown. `main.ts` calls this with the loaded
 * config; tests call it with `port: 0`.
 *
 * @module
 */
import { Hono } from "hono";
import type { Config } from "../lib/config/config.ts";
import { EventLoopLag } from "../lib/ops/event_loop_lag.ts";
import { ExecutionRegistry } from "../lib/core/execution_registry.ts";
import { logger } from "../lib/log.ts";
import { Metrics } from "../lib/ops/metrics.ts";
import { SessionManager } from "../lib/session/session_manager.ts";
import { ApiKeyring, redactText } from "../lib/security/auth.ts";
import { ErrorCode } from "../lib/errors.ts";
import { LOCAL } from "../lib/security/principal.ts";
import { RateLimiter } from "../lib/security/rate_limit.ts";
import { accessGuard, type GuardEnv } from "./guard.ts";
import { hostGuard } from "./host_guard.ts";
import { HostCheck, parseAllowedHosts } from "../lib/security/host_check.ts";
import { healthRoutes } from "./health.ts";
import { wsRoutes } from "./ws.ts";
import { mcpHttpRoutes } from "./mcp_http.ts";
import { McpHttpEndpoint } from "../lib/protocol/mcp/mcp_http.ts";
import { HookRunner } from "../lib/ops/hooks.ts";
import { ResourceMonitor } from "../lib/ops/monitor.ts";
import { createStore, type Store } from "../lib/store/store.ts";
import { CrashRecovery, ProcessGroupReaper, withCgroups } from "../lib/core/crash_recovery.ts";
import { complexityDefaults, TimeLimits } from "../lib/timing/time_limits.ts";
import { Containment, killCgroup } from "../lib/process/cgroup.ts";
import { Sandbox } from "../lib/security/sandbox.ts";
import { RunAs } from "../lib/security/run_as.ts";

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
  /** The API keys in force (replace them to reload, then call {@linkcode revokeSessions}). */
  keyring: ApiKeyring;
  /**
   * After the keys changed: ends the sessions whose key is gone or whose
   * principal's role changed. An MCP HTTP session presents a key with every
   * request, so it survives while any key of its principal (same role) is
   * left: rotation does not cut it off. Returns how many were ended.
   */
  revokeSessions(): number;
  /** Timing history and execution records. */
  store: Store;
  /** CPU/GPU/memory sampling behind the busy multiplier. */
  monitor: ResourceMonitor;
  /** The crash journal and what recovery reaped at start; null with `--ephemeral`. */
  recovery: CrashRecovery | null;
  /** How runs are contained: their cgroups, or process groups only. */
  containment: Containment;
  /** The sandbox every command runs in; null when off. */
  sandbox: Sandbox | null;
  /** The user every command runs as; null: the service's own. */
  runAs: RunAs | null;
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
 * @throws {RangeError} for an `allowed-hosts` entry that is neither `*`,
 *   `host` nor `host:port`, before anything starts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "../lib/config/config.ts";
 * import { startServer } from "./server.ts";
 * const config = loadConfig({ args: ["--port", "0", "--ephemeral"], getEnv: () => undefined });
 * const server = await startServer(config);
 * const res = await fetch(`${server.httpUrl}/healthz`);
 * assert.deepEqual(await res.json(), { status: "ok" });
 * await server.shutdown();
 * ```
 */
export async function startServer(
  config: Readonly<Config>,
  options: { keyring?: ApiKeyring; hooks?: HookRunner } = {},
): Promise<ServerHandle> {
  const startedAt = performance.now();
  // Before anything starts: an entry that can never match is refused (main
  // checks it too, with checkExposure; this covers callers that do not).
  const allowedHosts = parseAllowedHosts(config.allowedHosts);
  // First, before anything is made: a sandbox that was asked for and cannot
  // work here stops the start. The data directory must exist to be hidden.
  if (config.sandbox !== "none" && !config.ephemeral) {
    await Deno.mkdir(config.dataDir, { recursive: true });
  }
  const runAs = await RunAs.start(config.runAs, {
    workspaceRoots: config.workspaceRoots,
    keysFile: config.apiKeysFile || undefined,
    private: [config.dataDir, config.hooksConfig].filter((p) => p !== ""),
    hiddenBySandbox: config.sandbox !== "none",
  });
  if (runAs !== null) {
    const { user, uid, gid } = runAs.status();
    log.info("Commands run as {user} (uid {uid}, gid {gid})", { user, uid, gid });
  }
  const sandbox = await Sandbox.start({
    mode: config.sandbox,
    network: config.sandboxNetwork,
    workspaceRoots: config.workspaceRoots,
    hide: [config.apiKeysFile, config.dataDir, config.hooksConfig].filter((p) => p !== ""),
    runAs,
  });
  if (sandbox !== null) {
    const s = sandbox.status();
    log.info("Sandbox: bwrap, network {network}, writable {writable}, hidden {hidden}", {
      network: config.sandboxNetwork,
      writable: s.mode === "bwrap" ? s.writable.join(", ") || "nothing" : "",
      hidden: s.mode === "bwrap" ? s.hidden.join(", ") || "nothing" : "",
    });
  }
  // Then a cgroup-root that was set but cannot be used stops the start.
  const containment = await Containment.start(config.cgroupRoot, config);
  config = Object.freeze({
    ...config,
    cgroup: containment.placement ?? undefined,
    confinement: sandbox === null && runAs === null
      ? undefined
      : { sandbox: sandbox ?? undefined, runAs: runAs?.argv },
    // The user's own home, not the service's.
    childEnv: runAs === null ? config.childEnv : { ...config.childEnv, HOME: runAs.home },
  });
  const contained = containment.status();
  log.info("Containment: {mode} {where}", {
    mode: contained.mode,
    where: contained.mode === "cgroup"
      ? `in ${contained.root}/${contained.instance} (controllers: ${
        contained.controllers.join(", ") || "none"
      })`
      : `(${contained.reason})`,
  });
  // Redis when configured, else the embedded store; a Redis that is down at
  // startup is not fatal: the store reconnects by itself and /health says so.
  const store = await createStore({
    redisUrl: config.redisUrl === "" ? undefined : config.redisUrl,
    prefix: config.redisPrefix,
    path: config.ephemeral ? undefined : `${config.dataDir}/store.db`,
    ephemeral: config.ephemeral,
    retryMs: config.storeRetry * 1000,
    maxRuns: config.historyRuns,
    maxRecords: config.recordsMax,
    ttlS: config.historyTtl,
  });
  // Before anything runs: groups a dead server left behind are reaped, and
  // from now on every group is journaled. --ephemeral writes nothing, so
  // nothing is recovered either.
  const recovery = config.ephemeral ? null : await CrashRecovery.start({
    dir: `${config.dataDir}/running`,
    store,
    retryMs: config.storeRetry * 1000,
    // A run's own cgroup ends its escapees too.
    reaper: withCgroups(ProcessGroupReaper.forRecords, killCgroup),
  });
  // Then whatever cgroups dead instances left that no journal named.
  await containment.reapStale();
  const hooks = options.hooks ?? await HookRunner.load(config.hooksConfig, config);
  const monitor = new ResourceMonitor({
    intervalMs: config.monitorInterval * 1000,
    thresholdPercent: config.busyThreshold,
    multiplier: config.busyMultiplier,
  });
  monitor.start();
  // Anything that holds up the loop holds up every client: /health shows it.
  const eventLoopLag = new EventLoopLag();
  eventLoopLag.start();
  const timeLimits = new TimeLimits(store, monitor, complexityDefaults(config), {
    floorS: config.minAutoTimeout,
    maxS: config.maxTimeout,
  });
  const keyring = options.keyring ?? new ApiKeyring(config.apiKeys);
  const limiter = (ratePerSec: number, burst: number) =>
    new RateLimiter({ ratePerSec, burst, maxKeys: config.maxClients, idleMs: 10 * 60_000 });
  const connections = limiter(config.connRate, config.connBurst);
  const messages = limiter(config.msgRate, config.msgBurst);
  const metrics = new Metrics({ outputMemoryBudget: config.outputMemoryBudget });
  const registry = new ExecutionRegistry({
    retentionSeconds: config.executionRetention,
    maxRetained: config.maxRetainedExecutions,
    maxRetainedOutput: config.retainedOutputTotal,
    stdinBuffer: config.stdinBuffer,
    onFinished: (exec) => {
      // post_execute hooks are run by the session that started the run.
      void timeLimits.record(exec);
    },
    groups: recovery ?? undefined,
  });
  const sessions = new SessionManager(
    { registry, metrics, config, timeLimits, hooks },
    {
      maxSessions: config.maxSessions,
      maxSessionsPerPrincipal: config.maxSessionsPerPrincipal,
      sessionTimeoutMs: config.sessionTimeout * 1000,
    },
  );
  const sockets = new Set<WebSocket>();
  const queuedBytes = () => {
    let total = 0;
    for (const s of sockets) total += s.bufferedAmount;
    return total;
  };

  const mcpHttp = new McpHttpEndpoint(sessions, config, { timeLimits, hooks });

  const app = new Hono<GuardEnv>();
  // First of all, on every route but the liveness probe: does the request
  // name this server (DNS rebinding)? The check needs the port, so it is
  // made once the listener is bound, before any request is handled.
  const hosts: { check?: HostCheck } = {};
  app.use("*", hostGuard(() => hosts.check!, { exempt: ["/healthz"] }));
  // Everything that can run a command sits behind the guard, checked before any upgrade.
  const guard = accessGuard({
    keyring,
    allowedOrigins: config.allowedOrigins,
    ownOrigin: (req) => hosts.check!.ownOrigin(req),
    connections,
    messages,
    hasMcpSession: (id, principal) => mcpHttp.has(id, principal),
  });
  // Once per request: `/ws/*` matches `/ws` too (and `/mcp/*` `/mcp`), and
  // the guard mounted on both would spend two tokens per request.
  for (const path of ["/ws/*", "/mcp/*"]) app.use(path, guard);
  app.route(
    "/",
    healthRoutes({
      config,
      sessions,
      registry,
      metrics,
      startedAt,
      queuedBytes,
      keyring,
      connections,
      store,
      monitor,
      hooks,
      recovery,
      containment,
      sandbox,
      runAs,
      eventLoopLag,
    }),
  );
  app.route(
    "/",
    wsRoutes({
      sessions,
      services: { timeLimits, hooks },
      metrics,
      config,
      pingTimeout: config.wsPingTimeout,
      sockets,
      messages,
    }),
  );
  app.route("/", mcpHttpRoutes({ sessions, endpoint: mcpHttp }));
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

  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: () => {},
  }, (req, info) => app.fetch(req, info));
  const addr = server.addr as Deno.NetAddr;
  hosts.check = new HostCheck({
    listen: config.host,
    bound: addr.hostname,
    port: addr.port,
    allowed: allowedHosts,
  });
  log.info("Host check: {hosts}", { hosts: hosts.check.describe() });
  sessions.start();
  const pruner = setInterval(() => {
    connections.prune();
    messages.prune();
  }, 60_000);

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
      await containment.close();
      for (const s of sockets) {
        try {
          s.close(1001, "Server shutting down");
        } catch {
          // already closed
        }
      }
      clearInterval(pruner);
      eventLoopLag.stop();
      await server.shutdown();
      await monitor.stop();
      // Groups still recorded now were SIGKILLed above: the next start records them as lost.
      recovery?.close();
      await store.close();
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
    keyring,
    store,
    monitor,
    recovery,
    containment,
    revokeSessions: () =>
      sessions.revoke((s) =>
        !keyring.hasKeys
          ? s.principal === LOCAL
          : mcpHttp.has(s.id, s.principal)
          ? keyring.hasPrincipal(s.principal)
          : keyring.holds(s.principal)
      ),
    sandbox,
    runAs,
    shutdown,
    finished: server.finished,
  };
}
