/**
 * `/metrics` in the Prometheus text format, with prom-client and a private
 * registry. The hot paths only bump plain fields of {@linkcode Metrics} and
 * of the services; counters and gauges read them when scraped (`collect`),
 * so nothing here runs per output chunk. Only the two histograms are fed as
 * runs go, once per run, through {@linkcode Metrics.observer}.
 *
 * Labels take values from fixed sets only (statuses, streams, protocols,
 * limit kinds): never a command, an id, a principal or a path.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EventLoopLagSnapshot } from "./event_loop_lag.ts";
import type { Metrics } from "./metrics.ts";

/** What the exporter reads, each when scraped. */
export interface PrometheusSources {
  metrics: Metrics;
  /** Executions running now (the registry's `runningCount`). */
  runningExecutions: () => number;
  /** Open sessions by protocol (`SessionManager.countByProtocol`). */
  sessions: () => Readonly<Record<string, number>>;
  /** The store's rejected calls and whether it is healthy now. */
  store: { readonly failures: number; health(): { ok: boolean } };
  /** Refusals of each rate limiter, by kind (`connections`, `messages`). */
  rateLimits: Readonly<Record<string, { readonly refused: number }>>;
  eventLoopLag: { snapshot(): EventLoopLagSnapshot };
  /** Crash recovery (groups reaped, runs lost); null or absent: nothing is journaled. */
  recovery?: { health(): { reapedGroups: number; lostExecutions: number } } | null;
}

/** Run durations, 10 ms to 4 h: commands range from `echo` to overnight builds. */
// deno-fmt-ignore
export const DURATION_BUCKETS: readonly number[] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400];

/** Execute-to-started latency, 1 ms to 10 s (a pre_execute hook can take seconds). */
// deno-fmt-ignore
export const SPAWN_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const PREFIX = "cc_executor_";

/**
 * The service's figures as Prometheus series. Making one hooks its
 * histograms into `sources.metrics` (replacing any earlier exporter's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Metrics } from "./metrics.ts";
 * import { PrometheusExporter } from "./prometheus.ts";
 * const metrics = new Metrics();
 * const exporter = new PrometheusExporter({
 *   metrics,
 *   runningExecutions: () => 0,
 *   sessions: () => ({ legacy_ws: 1 }),
 *   store: { failures: 0, health: () => ({ ok: true }) },
 *   rateLimits: { connections: { refused: 2 } },
 *   eventLoopLag: { snapshot: () => ({ current_ms: 1, max_ms: 5 }) },
 * });
 * metrics.recordFinish({ status: "failed", exitCode: 3, signal: null, error: null, executionTime: 0.2 });
 * const text = await exporter.metrics();
 * assert.match(text, /^cc_executor_executions_total\{status="failed"\} 1$/m);
 * assert.match(text, /^cc_executor_rate_limited_total\{kind="connections"\} 2$/m);
 * assert.match(text, /^cc_executor_execution_duration_seconds_count 1$/m);
 * ```
 */
export class PrometheusExporter {
  readonly #registry = new Registry();

  /** Registers every series; nothing is read until {@linkcode metrics}. */
  constructor(sources: PrometheusSources) {
    const m = sources.metrics;
    const r = this.#registry;
    const counter = (name: string, help: string, read: () => number) =>
      labelled(r, "counter", name, help, "", () => ({ "": read() }));
    const gauge = (name: string, help: string, read: () => number) =>
      labelled(r, "gauge", name, help, "", () => ({ "": read() }));

    labelled(r, "counter", "executions_total", "Runs ended, by final status", "status", () => ({
      ...m.executionsByStatus,
      // Lost here (a node cut off) and lost to a crash, found at the next start.
      lost: m.executionsByStatus.lost + (sources.recovery?.health().lostExecutions ?? 0),
    }));
    counter("executions_started_total", "Runs started", () => m.executionsStarted);
    gauge("executions_running", "Runs not ended yet", sources.runningExecutions);
    const duration = new Histogram({
      name: `${PREFIX}execution_duration_seconds`,
      help: "Wall-clock time from spawn to end of each run",
      buckets: [...DURATION_BUCKETS],
      registers: [r],
    });
    const spawn = new Histogram({
      name: `${PREFIX}spawn_seconds`,
      help: "Time from receiving execute to sending process.started",
      buckets: [...SPAWN_BUCKETS],
      registers: [r],
    });
    m.observer = {
      started: (ms) => spawn.observe(ms / 1000),
      finished: (exit) => duration.observe(exit.executionTime),
    };
    labelled(
      r,
      "counter",
      "output_bytes_total",
      "Output bytes read from children, by stream",
      "stream",
      () => m.outputBytes,
    );
    counter(
      "backpressure_waits_total",
      "Times a run stopped reading its pipes for a slow client",
      () => m.backpressureWaits,
    );
    labelled(r, "gauge", "sessions", "Open sessions, by protocol", "protocol", sources.sessions);
    counter("sessions_opened_total", "Sessions opened", () => m.sessionsOpened);
    counter(
      "sessions_refused_total",
      "Sessions refused at a session limit or while draining",
      () => m.sessionsRefused,
    );
    const lag = () => sources.eventLoopLag.snapshot();
    gauge(
      "event_loop_lag_seconds",
      "How late a 20 ms timer fires now",
      () => lag().current_ms / 1e3,
    );
    gauge(
      "event_loop_lag_max_seconds",
      "The worst event-loop lag of the last minute",
      () => lag().max_ms / 1e3,
    );
    counter(
      "store_errors_total",
      "Store calls (reads, writes, probes) that failed",
      () => sources.store.failures,
    );
    gauge(
      "store_healthy",
      "1 while the store can be reached and written, else 0",
      () => sources.store.health().ok ? 1 : 0,
    );
    labelled(
      r,
      "counter",
      "rate_limited_total",
      "Requests refused by a rate limit, by kind",
      "kind",
      () => Object.fromEntries(Object.entries(sources.rateLimits).map(([k, l]) => [k, l.refused])),
    );
    counter(
      "auth_failures_total",
      "Requests refused (401) for a missing or wrong API key",
      () => m.authFailures,
    );
    counter(
      "reaped_groups_total",
      "Process groups of dead instances killed by crash recovery",
      () => sources.recovery?.health().reapedGroups ?? 0,
    );
    const memory = m.outputMemory;
    gauge("output_memory_budget_bytes", "The output memory budget", () => memory.budget);
    gauge(
      "output_memory_retained_bytes",
      "Output bytes retained in memory by all runs",
      () => memory.retained,
    );
    gauge("output_memory_queued_bytes", "Output bytes queued on sockets", () => memory.queued);
    counter(
      "output_memory_dropped_bytes_total",
      "Retained output given up for the budget (finished and running runs)",
      () => memory.droppedBytes + memory.trimmedBytes,
    );
    counter("messages_sent_total", "WebSocket messages sent", () => m.messagesSent);
    counter(
      "messages_dropped_total",
      "Messages dropped unencoded because their socket had closed",
      () => m.messagesDropped,
    );
    // The two process series Prometheus expects, read cheaply: the default
    // collectors want /proc, which the service's permissions do not grant.
    new Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size in bytes",
      registers: [r],
      collect() {
        this.set(Deno.memoryUsage().rss);
      },
    });
    new Gauge({
      name: "process_start_time_seconds",
      help: "Start time of the process since unix epoch in seconds",
      registers: [r],
      collect() {
        this.set(Math.round(performance.timeOrigin) / 1000);
      },
    });
  }

  /** The `Content-Type` of {@linkcode metrics}'s text. */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /** Reads every source and renders the exposition text. */
  metrics(): Promise<string> {
    return this.#registry.metrics();
  }
}

/**
 * A counter or gauge whose values `read` gives when scraped, one per value
 * of `label` (`label` "" and key "": no label).
 */
function labelled(
  registry: Registry,
  type: "counter" | "gauge",
  name: string,
  help: string,
  label: string,
  read: () => Readonly<Record<string, number>>,
): void {
  const labelNames = label === "" ? [] : [label];
  const set = (metric: Counter | Gauge, value: number, key: string) => {
    const labels = label === "" ? {} : { [label]: key };
    // A counter can only grow: reset, then raise it to the figure.
    if (metric instanceof Gauge) metric.set(labels, value);
    else metric.inc(labels, value);
  };
  const collect = (metric: Counter | Gauge) => {
    metric.reset();
    for (const [key, value] of Object.entries(read())) set(metric, value, key);
  };
  const options = { name: `${PREFIX}${name}`, help, labelNames, registers: [registry] };
  if (type === "counter") {
    new Counter({
      ...options,
      collect() {
        collect(this);
      },
    });
  } else {
    new Gauge({
      ...options,
      collect() {
        collect(this);
      },
    });
  }
}
