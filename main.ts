/**
 * cc-executor: run commands for remote clients over WebSocket, safely.
 *
 * The wiring: config, then confinement (run-as, sandbox, cgroups), the
 * store and crash recovery, the services (hooks, monitor, time limits,
 * registry, sessions), the app (routes/app.ts) and `Deno.serve`, and
 * graceful shutdown. `startServer` is what tests call with `port: 0`; run as
 * a program, it loads the config (flags, env, defaults), starts the server
 * and drains on SIGINT/SIGTERM: every process group it started is gone
 * before the process exits.
 *
 * @module
 */
import { ConfigError, loadConfig, settingsTable } from "./lib/config/config.ts";
import type { Config } from "./lib/config/config.ts";
import { CrashRecovery, ProcessGroupReaper, withCgroups } from "./lib/core/crash_recovery.ts";
import { ExecutionRegistry } from "./lib/core/execution_registry.ts";
import { logger, setLogNode, setupLogging } from "./lib/log.ts";
import { EventLoopLag } from "./lib/ops/event_loop_lag.ts";
import { HookRunner } from "./lib/ops/hooks.ts";
import { Metrics } from "./lib/ops/metrics.ts";
import { PrometheusExporter } from "./lib/ops/prometheus.ts";
import { SpillStore } from "./lib/output/spill.ts";
import { ResourceMonitor } from "./lib/ops/monitor.ts";
import { Containment, killCgroup } from "./lib/process/cgroup.ts";
import { LazyMcpHttpEndpoint } from "./lib/protocol/mcp/lazy.ts";
import { checkExposure, loadKeyring, reloadKeyring } from "./lib/security/access.ts";
import { ApiKeyring } from "./lib/security/auth.ts";
import { HostCheck, parseAllowedHosts } from "./lib/security/host_check.ts";
import { LOCAL } from "./lib/security/principal.ts";
import { RateLimiter } from "./lib/security/rate_limit.ts";
import { RunAs } from "./lib/security/run_as.ts";
import { Sandbox } from "./lib/security/sandbox.ts";
import { SessionManager } from "./lib/session/session_manager.ts";
import type { SessionDeps } from "./lib/session/session.ts";
import { Cluster } from "./lib/cluster/cluster.ts";
import { lostRecord } from "./lib/cluster/lost_record.ts";
import { SharedRateLimit } from "./lib/cluster/shared_rate_limit.ts";
import { JobWorker } from "./lib/protocol/cluster/job_worker.ts";
import { createStore, type Store } from "./lib/store/store.ts";
import { complexityDefaults } from "./lib/timing/complexity.ts";
import { TimeLimits } from "./lib/timing/time_limits.ts";
import { createApp } from "./routes/app.ts";

const log = logger("server");

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

/**
 * Starts the service.
 *
 * @throws {RangeError} for an `allowed-hosts` entry that is neither `*`,
 *   `host` nor `host:port`, before anything starts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "./lib/config/config.ts";
 * import { startServer } from "./main.ts";
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
    try {
      await Deno.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new ConfigError(
        `CC_EXECUTOR_SANDBOX=bwrap: cannot create the data directory ${config.dataDir}, ` +
          `which the sandbox must hide (${err instanceof Error ? err.message : String(err)})`,
      );
    }
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
    // With --ephemeral the data directory is neither used nor granted.
    hide: [config.apiKeysFile, config.ephemeral ? "" : config.dataDir, config.hooksConfig]
      .filter((p) => p !== ""),
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
  // What output memory gives up goes to disk, so runs replay from offset 0.
  if (config.outputSpill && !config.ephemeral) {
    const [perRun, total] = [config.outputSpillPerRun, config.outputSpillTotal];
    metrics.outputMemory.spill = SpillStore.open({ dir: `${config.dataDir}/spill`, perRun, total });
  }
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
  // The cluster, with Redis, joins once the port is bound (it is in the default node id).
  const sessionDeps: SessionDeps = { registry, metrics, config, timeLimits, hooks };
  const sessions = new SessionManager(
    sessionDeps,
    {
      maxSessions: config.maxSessions,
      maxSessionsPerPrincipal: config.maxSessionsPerPrincipal,
      sessionTimeoutMs: config.sessionTimeout * 1000,
      mcpSessionTimeoutMs: config.mcpSessionTimeout * 1000,
    },
  );
  const sockets = new Set<WebSocket>();
  const queuedBytes = () => {
    let total = 0;
    for (const s of sockets) total += s.bufferedAmount;
    return total;
  };

  // Before any run: its histograms are fed from the first one on.
  const exporter = new PrometheusExporter({
    metrics,
    runningExecutions: () => registry.runningCount,
    sessions: () => sessions.countByProtocol(),
    store,
    rateLimits: { connections, messages },
    eventLoopLag,
    recovery,
  });
  const mcpHttp = new LazyMcpHttpEndpoint(sessions, config, { timeLimits, hooks });
  const cluster: { node?: Cluster; worker?: JobWorker; connections?: SharedRateLimit } = {};

  // The Host check needs the bound port: it is made once the listener is
  // bound, before any request is handled.
  const hosts: { check?: HostCheck } = {};
  const app = createApp({
    hostCheck: () => hosts.check!,
    guard: {
      keyring,
      allowedOrigins: config.allowedOrigins,
      connections,
      messages,
      metrics,
      sharedConnections: () => cluster.connections ?? null,
    },
    health: {
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
      cluster: () => cluster.node ?? null,
    },
    metrics: { keyring, connections, exporter, metrics },
    ws: {
      sessions,
      services: { timeLimits, hooks },
      metrics,
      config,
      pingTimeout: config.wsPingTimeout,
      sockets,
      messages,
    },
    mcpHttp: { sessions, endpoint: mcpHttp },
  });

  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: () => {},
  }, (req, info) => app.fetch(req, info));
  const addr = server.addr as Deno.NetAddr;
  // The node json log lines name: the configured host (as the user wrote
  // it) with the bound port, which differs only for port 0.
  setLogNode(hostPort(config.host, addr.port));
  hosts.check = new HostCheck({
    listen: config.host,
    bound: addr.hostname,
    port: addr.port,
    allowed: allowedHosts,
  });
  log.info("Host check: {hosts}", { hosts: hosts.check.describe() });
  const nodeId = config.nodeId || `${hostName() ?? config.host}:${addr.port}`;
  sessionDeps.node = { id: nodeId, labels: config.nodeLabels };
  if (config.redisUrl !== "") {
    Object.assign(cluster, await joinCluster(config, nodeId, sessionDeps, store));
    setLogNode(nodeId);
  }
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
      // No more runs from other nodes; those taken end with the rest.
      await cluster.worker?.stop();
      const deadline = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, config.shutdownTimeout * 1000);
        Deno.unrefTimer(t);
      });
      // Relays stop following: their runs go on on their own nodes.
      for (const run of registry.running()) if (run.relayed) void run.cancel("shutdown");
      await Promise.race([
        Promise.all([sessions.drain(), registry.terminateAll()]).then(() =>
          cluster.worker?.drain()
        ),
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
      await cluster.node?.close();
      await store.close();
      metrics.outputMemory.spill?.close();
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
    revokeSessions: () => {
      const revoked = sessions.revoke((s) =>
        !keyring.hasKeys
          ? s.principal === LOCAL
          : mcpHttp.has(s.id, s.principal)
          ? keyring.hasPrincipal(s.principal)
          : keyring.holds(s.principal)
      );
      // Detached runs outlive sessions, not their principal: no key of it is left.
      for (const exec of registry.running()) {
        const id = exec.principal;
        const kept = !keyring.hasKeys
          ? id === LOCAL.id
          : keyring.hasPrincipal({ id, admin: false }) || keyring.hasPrincipal({ id, admin: true });
        if (!kept) void exec.cancel("canceled");
      }
      return revoked;
    },
    sandbox,
    runAs,
    shutdown,
    finished: server.finished,
  };
}

/**
 * Joins the nodes sharing `redis-url`: registers this node and starts
 * taking the runs other nodes place on it (lib/cluster/).
 */
async function joinCluster(
  config: Readonly<Config>,
  id: string,
  deps: SessionDeps,
  store: Store,
): Promise<{ node: Cluster; worker: JobWorker; connections: SharedRateLimit }> {
  const registry = deps.registry;
  const retentionMs = config.executionRetention * 1000;
  // Made once the node is: its heartbeats list what the worker owns.
  const ref: { worker?: JobWorker } = {};
  const node = await Cluster.start({
    url: config.redisUrl,
    prefix: config.redisPrefix,
    id,
    labels: config.nodeLabels,
    metrics: deps.metrics,
    outputRetention: config.outputRetention,
    detachTimeoutMs: config.detachTimeout * 1000,
    retentionMs,
    running: () => registry.runningCount,
    runs: () => registry.running().filter((r) => !r.relayed),
    fenced: () => {
      ref.worker?.fenced();
      for (const run of registry.running()) if (!run.relayed) void run.cancel("lost");
    },
    lost: (runId, hash) => {
      const record = lostRecord(runId, hash);
      if (record !== null) void store.appendRecord(record).catch(() => {});
    },
  });
  deps.cluster = node;
  const worker = ref.worker = new JobWorker(node, deps, retentionMs);
  await worker.start();
  log.info("Node {node} (labels {labels}) on {redis}", {
    node: id,
    labels: config.nodeLabels.join(",") || "none",
    redis: node.bus.ready ? "Redis" : `Redis, not reachable yet (${node.bus.reason})`,
  });
  // A client's connections share one budget across the nodes.
  const connections = new SharedRateLimit(node.bus, "conn", {
    ratePerSec: config.connRate,
    burst: config.connBurst,
  });
  return { node, worker, connections };
}

/** `host:port`, an IPv6 address in brackets: the node name on log lines. */
function hostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * The machine's hostname, if the service may read it (`deno task start`
 * grants it with `redis-url`, where it names the node): never a prompt.
 */
function hostName(): string | undefined {
  if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") {
    return undefined;
  }
  return Deno.hostname();
}

/** An env var, or undefined when it is unset or not granted. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  // The compiled binary is the client too (`cc-executor run -- ls`); the
  // server takes only flags, so any other first word is a subcommand.
  const first = Deno.args[0];
  if (first !== undefined && first !== "serve" && !first.startsWith("-")) {
    const { cli } = await import("./cli/main.ts");
    Deno.exit(await cli(Deno.args));
  }
  const args = first === "serve" ? Deno.args.slice(1) : Deno.args;
  if (args.includes("--help") || args.includes("-h")) {
    console.log("cc-executor: run commands over WebSocket.\n\nSettings:\n" + settingsTable());
    Deno.exit(0);
  }
  let config, keyring, warning;
  try {
    config = loadConfig({ args });
    keyring = await loadKeyring(config);
    warning = checkExposure(config, keyring);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`cc-executor: ${err.message}`);
    Deno.exit(2);
  }
  // One node for now: json lines name it by the address it listens on, the
  // asked-for one until the listener is bound (see Logs in README.md).
  await setupLogging(config.logLevel, {
    format: config.logFormat,
    node: hostPort(config.host, config.port),
  });
  const mainLog = logger("main");
  if (warning !== null) mainLog.warning(warning);
  // Signal handlers go in before the listener opens, so a SIGTERM that
  // arrives at any moment after startup still drains instead of killing us.
  // Set once the server listens; the handlers below may fire before that.
  const running: { server?: ServerHandle } = {};
  let stopping = false;
  const onSignal = (name: string) => {
    // deno task and terminals often deliver one Ctrl-C twice: repeats are
    // ignored, and shutdown is bounded by CC_EXECUTOR_SHUTDOWN_TIMEOUT anyway.
    if (stopping) return;
    stopping = true;
    mainLog.info("{signal}: shutting down", { signal: name });
    if (running.server === undefined) Deno.exit(0);
    void running.server.shutdown().then(() => {
      mainLog.info("Shutdown complete");
      Deno.exit(0);
    });
  };
  Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
  // Under `deno task start` the launcher forwards signals; if it dies without
  // one (SIGKILL), this process is reparented and drains as for SIGTERM.
  const launcher = Number(readEnv("CC_EXECUTOR_LAUNCHER_PID") ?? NaN);
  if (Number.isInteger(launcher) && launcher > 0) {
    const watch = setInterval(() => {
      if (Deno.ppid === launcher) return;
      clearInterval(watch);
      onSignal("launcher gone");
    }, 1000);
    Deno.unrefTimer(watch);
  }
  // SIGHUP re-reads the API keys; on any error the old keys stay in force.
  const keysConfig = config;
  Deno.addSignalListener("SIGHUP", () => {
    if (running.server === undefined) return;
    const server = running.server;
    reloadKeyring(server.keyring, keysConfig).then(
      (count) => {
        const revoked = server.revokeSessions();
        mainLog.info("SIGHUP: {count} API keys loaded; {revoked} sessions of revoked keys ended", {
          count,
          revoked,
        });
      },
      (err) => mainLog.error("SIGHUP: keys not reloaded: {error}", { error: String(err) }),
    );
  });

  let server: ServerHandle;
  try {
    server = await startServer(config, { keyring });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    mainLog.fatal(err.message);
    Deno.exit(2);
  }
  running.server = server;
  mainLog.info("cc-executor listening on {url}", { url: server.wsUrl });
  // A bug in a handler must never take the server (and its children's supervision) down.
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    mainLog.error("Unhandled rejection: {reason}", { reason: e.reason });
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    mainLog.error("Uncaught error: {error}", { error: e.error });
  });
}
