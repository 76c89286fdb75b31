/**
 * `GET /health` (status and figures; 503 "draining" during shutdown) and
 * `GET /healthz` (liveness).
 *
 * @module
 */
import type { GuardEnv } from "./guard.ts";
import { Hono } from "hono";
import { figuresAccess, type FiguresAccessDeps } from "./figures_access.ts";
import type { EventLoopLag } from "../lib/ops/event_loop_lag.ts";
import type { HookRunner } from "../lib/ops/hooks.ts";
import type { ResourceMonitor } from "../lib/ops/monitor.ts";
import { heldPermissions, type PermissionConfig } from "../lib/security/permissions.ts";
import type { Store } from "../lib/store/store.ts";
import type { Config } from "../lib/config/config.ts";
import type { ExecutionRegistry } from "../lib/core/execution_registry.ts";
import type { Metrics } from "../lib/ops/metrics.ts";
import { PROTOCOL_VERSION } from "../lib/protocol/legacy/legacy.ts";
import type { SessionManager } from "../lib/session/session_manager.ts";
import type { CrashRecovery } from "../lib/core/crash_recovery.ts";
import type { Containment } from "../lib/process/cgroup.ts";
import type { Sandbox } from "../lib/security/sandbox.ts";
import type { RunAs } from "../lib/security/run_as.ts";

/** What the health routes read. */
export interface HealthDeps extends FiguresAccessDeps {
  config: Pick<Config, "maxSessions" | "highWaterMark"> & PermissionConfig;
  sessions: SessionManager;
  registry: ExecutionRegistry;
  metrics: Metrics;
  startedAt: number;
  /** Bytes queued on all sockets now. */
  queuedBytes: () => number;
  store: Store;
  monitor: ResourceMonitor;
  hooks: HookRunner;
  /** Null when nothing is journaled (`--ephemeral`). */
  recovery?: CrashRecovery | null;
  containment: Containment;
  /** Null (or absent) when commands are not sandboxed. */
  sandbox?: Pick<Sandbox, "status"> | null;
  /** Null (or absent) when commands run as the service's user. */
  runAs?: Pick<RunAs, "status"> | null;
  eventLoopLag: Pick<EventLoopLag, "snapshot">;
  /** This node in a multi-node deployment (`redis-url`); null: the only node. */
  cluster?: () =>
    | { health(): Record<string, unknown>; bus: { ready: boolean; reason: string } }
    | null;
}

/** The crash journal's state and what recovery did, for `/health`. */
function crashRecovery(recovery: CrashRecovery | null | undefined) {
  if (!recovery) return { journal: null, reaped: 0, lost: 0 };
  const h = recovery.health();
  const journal = h.failure !== undefined || h.journal === null
    ? { ok: false, reason: h.failure ?? "not open", path: null, tracked: 0 }
    : h.journal;
  return { journal, reaped: h.reapedGroups, lost: h.lostExecutions };
}

function lagFields(lag: HealthDeps["eventLoopLag"]) {
  const { current_ms, max_ms } = lag.snapshot();
  return { event_loop_lag_ms: current_ms, event_loop_lag_max_ms: max_ms };
}

/** What `/health` reports of the output budget (`output_memory`) and of output messages. */
function outputFigures(metrics: Metrics) {
  const m = metrics.outputMemory;
  const spill = m.spill;
  return {
    output_memory: {
      budget: m.budget,
      retained: m.retained,
      retained_finished: m.retainedFinished,
      queued: m.queued,
      pooled: m.pooled,
      dropped_bytes: m.droppedBytes,
      trimmed_bytes: m.trimmedBytes,
      queue_waits: m.queueWaits,
    },
    // Output on disk (`output-spill`): null when nothing spills.
    output_spill: spill === null ? null : {
      open: spill.open,
      bytes: spill.bytes,
      runs: spill.runs,
      dropped_bytes: spill.droppedBytes,
      failed_runs: spill.failedRuns,
    },
    stdin_pending_bytes: metrics.stdinPendingBytes,
    messages_sent: metrics.messagesSent,
    messages_dropped: metrics.messagesDropped,
    output_decoded_bytes: metrics.outputDecodedBytes,
  };
}

/** The service's own memory, in bytes: resident, and the JS heap and what lives outside it. */
function processMemory(): Record<string, number> {
  const m = Deno.memoryUsage();
  return { rss: m.rss, heap_used: m.heapUsed, heap_total: m.heapTotal, external: m.external };
}

/** The health routes. */
export function healthRoutes(deps: HealthDeps): Hono<GuardEnv> {
  const app = new Hono<GuardEnv>();
  // Permissions are fixed for the life of the process: query them once.
  const permissions = heldPermissions(deps.config);
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/health", async (c) => {
    const m = deps.metrics;
    const draining = deps.sessions.draining;
    // A store that has gone away degrades estimates, not execution; a
    // journal that cannot be written, recovery after a crash.
    const store = deps.store.health();
    const recovery = crashRecovery(deps.recovery);
    const journal = recovery.journal;
    const cluster = deps.cluster?.() ?? null;
    const reasons = [
      ...(store.ok ? [] : [`store: ${store.reason}`]),
      ...(cluster === null || cluster.bus.ready ? [] : [`cluster: ${cluster.bus.reason}`]),
      ...(journal === null || journal.ok ? [] : [`crash journal: ${journal.reason}`]),
    ];
    const status = draining ? "draining" : reasons.length === 0 ? "healthy" : "degraded";
    const access = await figuresAccess(c, deps);
    if (access.kind === "limited") return access.response;
    if (access.kind === "denied") return c.json({ status }, draining ? 503 : 200);
    const body = {
      status,
      service: "cc_executor_mcp",
      version: PROTOCOL_VERSION,
      active_sessions: deps.sessions.size,
      max_sessions: deps.config.maxSessions,
      uptime_seconds: (performance.now() - deps.startedAt) / 1000,
      memory: processMemory(),
      // The service's own process (`deno task start` runs it under a launcher).
      pid: Deno.pid,
      running_executions: deps.registry.runningCount,
      detached_executions: deps.registry.detachedCounts(),
      executions_started: m.executionsStarted,
      executions_finished: m.executionsFinished,
      bytes_streamed: m.bytesStreamed,
      queued_bytes: deps.queuedBytes(),
      peak_queued_bytes: m.peakQueuedBytes,
      high_water_mark: deps.config.highWaterMark,
      backpressure_waits: m.backpressureWaits,
      ...outputFigures(m),
      mean_start_latency_ms: Math.round(m.meanStartLatencyMs * 1000) / 1000,
      ...lagFields(deps.eventLoopLag),
      sessions_opened: m.sessionsOpened,
      sessions_refused: m.sessionsRefused,
      sessions_reclaimed: m.sessionsReclaimed,
      ...(reasons.length === 0 ? {} : { degraded_reason: reasons.join("; ") }),
      store,
      crash_journal: journal,
      reaped_groups: recovery.reaped,
      lost_executions: recovery.lost,
      resources: deps.monitor.snapshot(),
      hooks: deps.hooks.status(),
      auth: deps.keyring.hasKeys ? "api_key" : "none",
      permissions,
      containment: deps.containment.status(),
      sandbox: deps.sandbox?.status() ?? { mode: "none" },
      run_as: deps.runAs?.status() ?? null,
      cluster: cluster?.health() ?? null,
    };
    return c.json(body, draining ? 503 : 200);
  });
  return app;
}
