/**
 * The `latency` figure (3 in scripts/bench.ts).
 *
 * @module
 */
import {
  closeQuietly,
  errorText,
  FIGURE_TIMEOUT_MS,
  MB,
  median,
  openSocket,
  percentile,
  procStatus,
  quick,
  report,
  round,
  SIZES,
  startServer,
  stopProcess,
  TARGETS,
  withTimeout,
} from "./_common.ts";

/**
 * Run by `deno eval` in a fresh process: median time to `spawn()` `sh -c
 * true` with piped output, as the server does, and wait for it: plainly,
 * through `setsid` (plain spawn, as lib/process/process_group.ts does when it can;
 * null without /usr/bin/setsid) and `detached` (its fallback). A fresh
 * process, because a detached `spawn()` forks, so its cost grows with the
 * spawning process's RSS, and this script's own RSS says nothing about the
 * server's. (`Command.output()` does not show this.)
 */
const SPAWN_PROBE = `
const runs = Number(Deno.args[0]);
async function probe(program, args, detached) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await new Deno.Command(program, {
      args, stdin: "null", stdout: "piped", stderr: "piped", detached,
    }).spawn().output();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
const sh = ["-c", "true"];
let hasSetsid = false;
try {
  hasSetsid = Deno.statSync("/usr/bin/setsid").isFile;
} catch {
  // no setsid: the server spawns detached
}
const plain = await probe("/bin/sh", sh, false);
const setsid = hasSetsid ? await probe("/usr/bin/setsid", ["--", "/bin/sh", ...sh], false) : null;
const detached = await probe("/bin/sh", sh, true);
const rss = Number(/VmRSS:\\s+(\\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))[1]) * 1024;
console.log(JSON.stringify({ plain, setsid, detached, rss }));
`;

/** Spawn cost from Deno, measured by {@linkcode SPAWN_PROBE}; null if the probe failed. */
async function spawnFloor(runs: number) {
  try {
    const out = await withTimeout(
      new Deno.Command(Deno.execPath(), {
        args: ["eval", SPAWN_PROBE, String(runs)],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output(),
      FIGURE_TIMEOUT_MS,
      "spawn probe",
    );
    return JSON.parse(new TextDecoder().decode(out.stdout)) as {
      plain: number;
      setsid: number | null;
      detached: number;
      rss: number;
    };
  } catch {
    return null;
  }
}

/** Whether /usr/bin/setsid exists; undefined until the first minimal run. */
let hasSetsid: boolean | undefined;

/**
 * One run of the least a Deno executor must do for `true`: a new session
 * (setsid, as the server's spawn), both pipes read to the end, the status.
 */
async function minimalRun(): Promise<number> {
  const t0 = performance.now();
  hasSetsid ??= (() => {
    try {
      return Deno.statSync("/usr/bin/setsid").isFile;
    } catch {
      return false; // as the server then does: a detached spawn
    }
  })();
  const child = new Deno.Command(hasSetsid ? "/usr/bin/setsid" : "/bin/sh", {
    args: hasSetsid ? ["/bin/sh", "-c", "true"] : ["-c", "true"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: !hasSetsid,
  }).spawn();
  await Promise.all([
    new Response(child.stdout).arrayBuffer(),
    new Response(child.stderr).arrayBuffer(),
  ]);
  await child.status;
  return performance.now() - t0;
}

/** Runs of a minimal executor interleaved with the latency figure's. */
const MINIMAL_BLOCK = 10;

export async function latency() {
  const server = await startServer();
  const ws = await withTimeout(openSocket(server.wsUrl), 10_000, "connect");
  try {
    const total: number[] = [];
    const toResult: number[] = [];
    const minimal: number[] = [];
    let errors = 0;
    let lastError = "";
    let waiter: PromiseWithResolvers<void> | null = null;
    let resultAt = 0;
    let id = 0;
    let pinging = false;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.id === id && msg.error) waiter?.reject(new Error(msg.error.message));
      else if (msg.id === id && msg.result) {
        resultAt = performance.now();
        if (pinging) waiter?.resolve();
      } else if (msg.method === "process.completed") waiter?.resolve();
    };
    ws.onclose = () => waiter?.reject(new Error("socket closed"));
    for (let i = 0; i < SIZES.warmupRuns + SIZES.latencyRuns; i++) {
      // Blocks of 10 ours, 10 minimal: the same load for both, and our runs
      // still back to back (as a client in a loop sends them).
      if (i % MINIMAL_BLOCK === 0 && i > 0) {
        for (let j = 0; j < MINIMAL_BLOCK; j++) {
          const ms = await withTimeout(minimalRun(), 30_000, "minimal executor");
          if (i > SIZES.warmupRuns) minimal.push(ms);
        }
      }
      waiter = Promise.withResolvers();
      id++;
      const t0 = performance.now();
      ws.send(JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "execute",
        params: { command: "true" },
      }));
      try {
        await withTimeout(waiter.promise, 30_000, "execute true");
      } catch (err) {
        // Counted, not fatal: e.g. "A process is already running" would mean
        // the session is not free again by the time its completed arrives.
        errors++;
        lastError = errorText(err);
        continue;
      }
      if (i < SIZES.warmupRuns) continue;
      total.push(performance.now() - t0);
      toResult.push(resultAt - t0);
    }
    total.sort((a, b) => a - b);
    toResult.sort((a, b) => a - b);
    const p50 = percentile(total, 50);
    const minimalP50 = median(minimal);
    const ratio = p50 / minimalP50;
    const serverRss = procStatus(server.proc.pid).VmRSS ?? 0;
    const floor = await spawnFloor(SIZES.latencyRuns);
    // JSON-RPC `ping` on the same connection: the round trip every request
    // pays (client, socket, server dispatch) without any process.
    pinging = true;
    const pings: number[] = [];
    for (let i = 0; i < SIZES.latencyRuns; i++) {
      waiter = Promise.withResolvers();
      id++;
      const t0 = performance.now();
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method: "ping" }));
      await withTimeout(waiter.promise, 30_000, "ping");
      pings.push(performance.now() - t0);
    }
    report({
      figure: "latency",
      quick,
      runs: total.length,
      warmup_runs: SIZES.warmupRuns,
      p50_ms: round(p50, 3),
      p99_ms: round(percentile(total, 99), 3),
      min_ms: round(total[0] ?? NaN, 3),
      max_ms: round(total[total.length - 1] ?? NaN, 3),
      mean_ms: round(total.reduce((s, v) => s + v, 0) / total.length, 3),
      execute_to_result_p50_ms: round(percentile(toResult, 50), 3),
      minimal_executor_p50_ms: round(minimalP50, 3),
      minimal_executor_runs: minimal.length,
      ratio_to_minimal: round(ratio, 3),
      server_rss_mb: round(serverRss / MB, 1),
      spawn_detached_p50_ms: floor && round(floor.detached, 3),
      spawn_setsid_p50_ms: floor && floor.setsid !== null ? round(floor.setsid, 3) : null,
      spawn_plain_p50_ms: floor && round(floor.plain, 3),
      spawn_probe_rss_mb: floor && round(floor.rss / MB, 1),
      ping_rtt_p50_ms: round(median(pings), 3),
      errors,
      ...(errors > 0 ? { last_error: lastError } : {}),
      target: `p50 <= ${TARGETS.p50Ms} ms and <= ${TARGETS.minimalRatio} x a minimal executor`,
      pass: errors === 0 && p50 <= TARGETS.p50Ms && ratio <= TARGETS.minimalRatio,
    });
  } finally {
    closeQuietly(ws);
    await stopProcess(server.proc);
  }
}
