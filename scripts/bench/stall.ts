/**
 * The `stall` figure (7 in scripts/bench.ts).
 *
 * @module
 */
import {
  closeQuietly,
  FIGURE_TIMEOUT_MS,
  health,
  MB,
  openSocket,
  percentile,
  procStatFields,
  procStatus,
  quick,
  report,
  round,
  rssSampler,
  sleep,
  startServer,
  stopProcess,
  TARGETS,
  withTimeout,
} from "./_common.ts";
import { groupPids } from "../../lib/process/process_group.ts";

// ---------------------------------------------------------------- stall

/** Polls `/healthz` every 10 ms until stopped: the latency of each answer, and failures. */
function healthzPoller(httpUrl: string) {
  const latencies: number[] = [];
  let failures = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(10_000) });
        await res.body?.cancel();
        if (!res.ok) failures++;
      } catch {
        failures++;
      }
      latencies.push(performance.now() - t0);
      await sleep(10);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { latencies: latencies.sort((a, b) => a - b), failures };
    },
  };
}

/** One connection of the stall figure: its messages, and a wait for one of them. */
export async function stallConnection(url: string) {
  const ws = await withTimeout(openSocket(url), 10_000, "connect");
  // deno-lint-ignore no-explicit-any
  const seen: any[] = [];
  let wake = () => {};
  ws.onmessage = (e) => {
    seen.push(JSON.parse(e.data));
    wake();
  };
  // deno-lint-ignore no-explicit-any
  const waitFor = (what: string, pred: (m: any) => boolean) =>
    withTimeout(
      (async () => {
        for (;;) {
          const found = seen.find(pred);
          if (found !== undefined) return found;
          await new Promise<void>((resolve) => wake = resolve);
        }
      })(),
      FIGURE_TIMEOUT_MS,
      what,
    );
  let id = 0;
  return {
    ws,
    waitFor,
    /** Sends a request and returns its result (throws on an error reply). */
    async request(method: string, params: unknown) {
      const myId = ++id;
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: myId, method, params }));
      const reply = await waitFor(method, (m) => m.id === myId);
      if (reply.error) throw new Error(`${method}: ${reply.error.message}`);
      return reply.result;
    },
  };
}

export async function stallFigure() {
  const server = await startServer();
  const pgids: number[] = [];
  const conns: Awaited<ReturnType<typeof stallConnection>>[] = [];
  try {
    for (let i = 0; i < 18; i++) conns.push(await stallConnection(server.wsUrl));
    const start = async (i: number, params: Record<string, unknown>) => {
      const result = await conns[i]!.request("execute", params);
      pgids.push(result.pgid);
      return result.execution_id as string;
    };
    // SIGTERM-ignoring members, each saying when its trap is set.
    const stubborn: string[] = [];
    for (let i = 0; i < 6; i++) {
      const command = i < 3
        ? "(trap '' TERM; echo ready; exec sleep 1000) & wait"
        : "trap '' TERM; (trap '' TERM; exec sleep 1000) & echo ready; wait";
      const id = await start(i, { command });
      await conns[i]!.waitFor("ready", (m) => m.method === "process.output");
      stubborn.push(id);
    }
    const plain: string[] = [];
    for (let i = 6; i < 12; i++) plain.push(await start(i, { command: "sleep 1000; true" }));
    const rssBefore = procStatus(server.proc.pid).VmRSS ?? 0;
    const rss = rssSampler(server.proc.pid);
    const poller = healthzPoller(server.httpUrl);
    await sleep(100);
    for (let i = 12; i < 18; i++) await start(i, { command: "sleep 1000; true", timeout: 1 });
    const t0 = performance.now();
    await Promise.all(
      [...stubborn, ...plain].map((execution_id, i) =>
        conns[i]!.request("control", { type: "CANCEL", execution_id })
      ),
    );
    // When each run's process.completed arrives, after the CANCELs were sent.
    const endedAfter = await Promise.all(conns.map(async (c) => {
      const m = await c.waitFor("completed", (x) => x.method === "process.completed");
      return { ms: performance.now() - t0, status: m.params.status as string };
    }));
    await sleep(100);
    const polled = await poller.stop();
    const peak = rss.stop();
    // Only now: a scan of /proc blocks this process, and would show in the polls.
    // (A run's completed comes once nothing of its group lives.)
    const liveGroups = () => {
      const wanted = new Set(pgids);
      const live = new Set<number>();
      for (const entry of Deno.readDirSync("/proc")) {
        const f = /^\d+$/.test(entry.name) ? procStatFields(Number(entry.name)) : null;
        if (f !== null && f[0] !== "Z" && wanted.has(Number(f[2]))) live.add(Number(f[2]));
      }
      return live;
    };
    let left = liveGroups();
    const goneBy = performance.now() + 10_000;
    while (left.size > 0 && performance.now() < goneBy) {
      await sleep(20);
      left = liveGroups();
    }
    const h = await health(server);
    const killMs = endedAfter.slice(0, 6).map((e) => Math.round(e.ms));
    const statuses = endedAfter.map((e) => e.status);
    const expected = [...Array(12).fill("canceled"), ...Array(6).fill("timeout")];
    const statusesOk = statuses.every((st, i) => st === expected[i]);
    const max = polled.latencies.at(-1) ?? NaN;
    report({
      figure: "stall",
      quick,
      groups: 18,
      healthz_polls: polled.latencies.length,
      healthz_failures: polled.failures,
      healthz_max_ms: round(max, 1),
      healthz_p99_ms: round(percentile(polled.latencies, 99), 1),
      healthz_p50_ms: round(percentile(polled.latencies, 50), 1),
      term_ignoring_ended_after_cancel_ms: killMs,
      kill_grace_ms: 5000,
      statuses_ok: statusesOk,
      groups_left: left.size,
      server_event_loop_lag_max_ms: h.event_loop_lag_max_ms ?? null,
      server_rss_before_mb: round(rssBefore / MB, 1),
      server_peak_rss_mb: round(peak / MB, 1),
      target: `/healthz max <= ${TARGETS.stallMaxMs} ms, every group gone`,
      pass: polled.failures === 0 && statusesOk && left.size === 0 &&
        max <= TARGETS.stallMaxMs,
    });
  } finally {
    for (const c of conns) closeQuietly(c.ws);
    // Nothing of this figure may outlive the bench, even if the server failed to end it.
    for (const pgid of pgids) {
      if ((await groupPids(pgid)).length === 0) continue;
      try {
        Deno.kill(-pgid, "SIGKILL");
      } catch {
        // gone in between
      }
    }
    await stopProcess(server.proc);
  }
}
