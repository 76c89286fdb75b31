/**
 * The `throughput` and `ceiling` figures (1 and 2 in scripts/bench.ts).
 *
 * @module
 */
import {
  closeQuietly,
  cpuSeconds,
  FIGURE_TIMEOUT_MS,
  health,
  machineBusyPct,
  machineTicks,
  MB,
  measureChunks,
  median,
  openSocket,
  procStatus,
  quick,
  report,
  resetPeak,
  round,
  shellQuote,
  SIZES,
  startCeiling,
  startServer,
  stopProcess,
  streamRun,
  TARGETS,
  withTimeout,
} from "./_common.ts";

/** One streaming run against a server, with the server's CPU time over it. */
async function timedRun(url: string, command: string, serverPid: number, raw = false) {
  const ws = await withTimeout(openSocket(url), 10_000, "connect");
  try {
    const cpuServer0 = cpuSeconds(serverPid);
    const cpuClient0 = cpuSeconds("self");
    const machine0 = machineTicks();
    const run = await withTimeout(streamRun(ws, command, raw), FIGURE_TIMEOUT_MS, "stream");
    return {
      ...run,
      serverCpu: cpuSeconds(serverPid) - cpuServer0,
      clientCpu: cpuSeconds("self") - cpuClient0,
      machineBusyPct: machineBusyPct(machine0),
    };
  } finally {
    closeQuietly(ws);
  }
}

export async function throughputAndCeiling(file: string, fileSha: string, fileBytes: number) {
  const server = await startServer();
  const ceiling = await startCeiling(file);
  try {
    const command = `cat ${shellQuote(file)}`;
    const ceilingUrl = `ws://127.0.0.1:${ceiling.port}/`;
    const ours: number[] = [];
    const theirs: number[] = [];
    const rawRates: number[] = [];
    let lost = 0;
    let received = 0;
    let allMatch = true;
    let ceilingMatch = true;
    let messages = 0;
    let maxMessage = 0;
    let medianMessage = 0;
    // CPU shares are summed over the counted rounds: CPU seconds over wall seconds.
    const cpu = { seconds: 0, server: 0, client: 0, machine: 0, ceilSeconds: 0, ceilServer: 0 };
    let stderr = 0;
    resetPeak(server.proc.pid);
    // Round 0 warms both servers' JIT and the page cache and is not counted;
    // rounds alternate servers so drift (thermal, other load) hits both alike.
    for (let r = 0; r <= SIZES.rounds; r++) {
      const a = await timedRun(server.wsUrl, command, server.proc.pid);
      const b = await timedRun(ceilingUrl, command, ceiling.proc.pid);
      const c = await timedRun(`${ceilingUrl}?mode=raw`, command, ceiling.proc.pid, true);
      const ma = await measureChunks(a.chunks);
      const mb = await measureChunks(b.chunks);
      const mc = await measureChunks(c.chunks);
      if (r === 0) continue;
      ours.push(ma.bytes / MB / a.seconds);
      theirs.push(mb.bytes / MB / b.seconds);
      rawRates.push(mc.bytes / MB / c.seconds);
      received += ma.bytes;
      lost += Math.max(0, fileBytes - ma.bytes);
      allMatch &&= ma.sha256 === fileSha && a.status === "completed";
      ceilingMatch &&= mb.sha256 === fileSha && mc.sha256 === fileSha;
      messages = ma.messages;
      maxMessage = Math.max(maxMessage, ma.maxMessage);
      medianMessage = ma.medianMessage;
      stderr += a.stderrChunks;
      cpu.seconds += a.seconds;
      cpu.server += a.serverCpu;
      cpu.client += a.clientCpu;
      cpu.machine += a.machineBusyPct * a.seconds;
      cpu.ceilSeconds += b.seconds;
      cpu.ceilServer += b.serverCpu;
    }
    const h = await health(server);
    const mine = median(ours);
    const ceil = median(theirs);
    const ratio = mine / ceil;
    const rss = procStatus(server.proc.pid);
    report({
      figure: "throughput",
      quick,
      mb_per_s: round(mine, 1),
      rounds_mb_per_s: ours.map((v) => round(v, 1)),
      bytes_expected: fileBytes * ours.length,
      bytes_received: received,
      bytes_lost: lost,
      sha256_match: allMatch,
      messages_per_run: messages,
      mean_message_bytes: Math.round(fileBytes / messages),
      median_message_bytes: medianMessage,
      max_message_bytes: maxMessage,
      stderr_messages: stderr,
      server_cpu_pct: Math.round(100 * cpu.server / cpu.seconds),
      client_cpu_pct: Math.round(100 * cpu.client / cpu.seconds),
      machine_busy_pct: Math.round(cpu.machine / cpu.seconds),
      server_peak_rss_mb: round((rss.VmHWM ?? 0) / MB, 1),
      backpressure_waits: h.backpressure_waits ?? null,
      peak_queued_bytes: h.peak_queued_bytes ?? null,
      best_mb_per_s: round(Math.max(...ours), 1),
      ratio_to_ceiling: round(ratio, 3),
      target: `>= ${TARGETS.ratio} x ceiling, 0 bytes lost`,
      pass: lost === 0 && allMatch && ratio >= TARGETS.ratio,
    });
    report({
      figure: "ceiling",
      quick,
      mb_per_s: round(ceil, 1),
      rounds_mb_per_s: theirs.map((v) => round(v, 1)),
      best_mb_per_s: round(Math.max(...theirs), 1),
      raw_frames_mb_per_s: round(median(rawRates), 1),
      sha256_match: ceilingMatch,
      server_cpu_pct: Math.round(100 * cpu.ceilServer / cpu.ceilSeconds),
      ratio: round(ratio, 3),
      best_ratio: round(Math.max(...ours) / Math.max(...theirs), 3),
      target: `ratio >= ${TARGETS.ratio}`,
      pass: ratio >= TARGETS.ratio,
    });
  } finally {
    await stopProcess(ceiling.proc);
    await stopProcess(server.proc);
  }
}
