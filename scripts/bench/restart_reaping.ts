/**
 * The `restart_reaping` figure (8 in scripts/bench.ts).
 *
 * @module
 */
import {
  closeQuietly,
  health,
  quick,
  report,
  round,
  running,
  type Server,
  sleep,
  startServer,
  stopProcess,
  TARGETS,
} from "./_common.ts";
import { groupPids } from "../../lib/process/process_group.ts";
import { stallConnection } from "./stall.ts";

// ---------------------------------------------------------------- restart reaping

/**
 * The `restart_reaping` figure: 10 running groups (each a shell with a
 * `sleep` grandchild) and 5 paused ones, then SIGKILL to the service; a new
 * server on the same data dir must kill them all: the time from starting it
 * until no process of those groups lives, and what its `/health` reports.
 */
export async function restartReaping() {
  const first = await startServer();
  const pgids: number[] = [];
  const conns: Awaited<ReturnType<typeof stallConnection>>[] = [];
  let second: Server | null = null;
  const live = async () => {
    const alive: number[] = [];
    for (const pgid of pgids) if ((await groupPids(pgid)).length > 0) alive.push(pgid);
    return alive;
  };
  try {
    for (let i = 0; i < 15; i++) {
      const c = await stallConnection(first.wsUrl);
      conns.push(c);
      const result = await c.request("execute", { command: "sleep 1000 & echo ready; wait" });
      pgids.push(result.pgid);
      await c.waitFor("ready", (m) => m.method === "process.output");
      if (i >= 10) await c.request("control", { type: "PAUSE" });
    }
    Deno.kill(first.proc.pid, "SIGKILL");
    await first.proc.exited;
    running.delete(first.proc);
    const survivors = (await live()).length;
    const t0 = performance.now();
    second = await startServer();
    const listening = performance.now() - t0;
    const deadline = performance.now() + 10_000;
    while ((await live()).length > 0 && performance.now() < deadline) await sleep(20);
    const goneS = (performance.now() - t0) / 1000;
    const left = (await live()).length;
    const h = await health(second);
    report({
      figure: "restart_reaping",
      quick,
      groups: pgids.length,
      paused: 5,
      alive_after_kill: survivors,
      server_listening_s: round(listening / 1000, 2),
      all_gone_s: round(goneS, 2),
      groups_left: left,
      reaped_groups: h.reaped_groups ?? null,
      lost_executions: h.lost_executions ?? null,
      target: `every group gone within ${TARGETS.reapSeconds} s of the restart, reported`,
      pass: left === 0 && goneS <= TARGETS.reapSeconds && h.lost_executions === pgids.length,
    });
  } finally {
    for (const c of conns) closeQuietly(c.ws);
    for (const pgid of await live()) {
      try {
        Deno.kill(-pgid, "SIGKILL");
      } catch {
        // gone in between
      }
    }
    if (first.proc.alive) await stopProcess(first.proc);
    if (second !== null) await stopProcess(second.proc);
  }
}
