/**
 * `GET /metrics`: the service's figures in the Prometheus text format
 * (lib/ops/prometheus.ts), under `/health`'s rule for its figures
 * (routes/figures_access.ts); where `/health` would answer only its status,
 * this answers 401.
 *
 * @module
 */
import { Hono } from "hono";
import type { Metrics } from "../lib/ops/metrics.ts";
import type { PrometheusExporter } from "../lib/ops/prometheus.ts";
import { figuresAccess, type FiguresAccessDeps } from "./figures_access.ts";
import type { GuardEnv } from "./guard.ts";

/** What `/metrics` reads. */
export interface MetricsRouteDeps extends FiguresAccessDeps {
  exporter: Pick<PrometheusExporter, "metrics" | "contentType">;
  /** Counts the 401s, as the guard does. */
  metrics: Pick<Metrics, "authFailures">;
}

/**
 * The `/metrics` route.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ApiKeyring } from "../lib/security/auth.ts";
 * import { metricsRoutes } from "./metrics.ts";
 * const metrics = { authFailures: 0 };
 * const app = metricsRoutes({
 *   keyring: new ApiKeyring(["secret"]),
 *   exporter: { contentType: "text/plain", metrics: () => Promise.resolve("up 1\n") },
 *   metrics,
 * });
 * assert.equal((await app.request("/metrics")).status, 401);
 * assert.equal(metrics.authFailures, 1);
 * const res = await app.request("/metrics", { headers: { Authorization: "Bearer secret" } });
 * assert.equal(await res.text(), "up 1\n");
 * ```
 */
export function metricsRoutes(deps: MetricsRouteDeps): Hono<GuardEnv> {
  const app = new Hono<GuardEnv>();
  app.get("/metrics", async (c) => {
    const access = await figuresAccess(c, deps);
    if (access.kind === "limited") return access.response;
    if (access.kind === "denied") {
      deps.metrics.authFailures++;
      return c.json({ error: "Unauthorized" }, 401, {
        "WWW-Authenticate": 'Bearer realm="cc-executor"',
      });
    }
    return c.body(await deps.exporter.metrics(), 200, {
      "Content-Type": deps.exporter.contentType,
    });
  });
  return app;
}
