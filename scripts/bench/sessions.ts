/**
 * The `sessions` figure (4 in scripts/bench.ts).
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
  MiB,
  procStatus,
  quick,
  report,
  resetPeak,
  round,
  RSS_SAMPLE_MS,
  rssSampler,
  SESSION_BYTES,
  shellQuote,
  SIZES,
  sleep,
  startServer,
  stopProcess,
  TARGETS,
  untilSessionsClosed,
  withTimeout,
} from "./_common.ts";

/** One session of the burst: connect, execute at once, collect until completed. */
function burstSession(url: string, command: string, sockets: WebSocket[]) {
  type Outcome = { chunks: string[]; opened: number; end: number; error: string | null };
  return new Promise<Outcome>((resolve) => {
    const chunks: string[] = [];
    let opened = NaN;
    const ws = new WebSocket(url);
    sockets.push(ws);
    const finish = (error: string | null) => {
      ws.onmessage = null;
      ws.onclose = null;
      resolve({ chunks, opened, end: performance.now(), error });
    };
    ws.onopen = () => {
      opened = performance.now();
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "execute", params: { command } }));
    };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.method === "process.output") chunks.push(msg.params.data);
      else if (msg.method === "process.completed") finish(null);
      else if (msg.error) finish(`${msg.error.code} ${msg.error.message}`);
    };
    ws.onclose = (e) =>
      finish(
        Number.isNaN(opened)
          ? "refused before the WebSocket opened (HTTP error on the upgrade?)"
          : `closed ${e.code} ${e.reason}`,
      );
  });
}

async function burst(url: string, n: number, command: string) {
  const sockets: WebSocket[] = [];
  const t0 = performance.now();
  try {
    const all = Promise.all(Array.from({ length: n }, () => burstSession(url, command, sockets)));
    const sessions = await withTimeout(all, FIGURE_TIMEOUT_MS, `${n} sessions`);
    const seconds = (Math.max(...sessions.map((s) => s.end)) - t0) / 1000;
    const opened = sessions.map((s) => s.opened).filter((t) => !Number.isNaN(t));
    const connectSeconds = opened.length > 0 ? (Math.max(...opened) - t0) / 1000 : NaN;
    const firstDone = (Math.min(...sessions.map((s) => s.end)) - t0) / 1000;
    return { seconds, connectSeconds, firstDone, sessions };
  } finally {
    for (const ws of sockets) closeQuietly(ws);
  }
}

export async function sessions(file: string, fileSha: string) {
  const server = await startServer();
  try {
    const command = `cat ${shellQuote(file)}`;
    // A small burst first, so the figure measures a warm server (JIT, spawn
    // paths), as a server that has been up a while would be.
    await burst(server.wsUrl, 5, command);
    await sleep(500);
    const before = procStatus(server.proc.pid).VmRSS ?? 0;
    const peakReset = resetPeak(server.proc.pid);
    const sampler = rssSampler(server.proc.pid);
    const cpuServer0 = cpuSeconds(server.proc.pid);
    const cpuClient0 = cpuSeconds("self");
    const machine0 = machineTicks();
    // Bytes queued on all sockets together, from /health every 25 ms (cheap
    // for the server): how much of the output sits in the server at once.
    let peakQueued = 0;
    // The server's own account of the output it holds (retained + queued), where it reports one.
    let peakOutputMemory: number | null = null;
    let sampling = true;
    const queueSampler = (async () => {
      while (sampling) {
        const h = await health(server);
        const q = h.queued_bytes;
        if (typeof q === "number") peakQueued = Math.max(peakQueued, q);
        const m = h.output_memory as { retained?: number; queued?: number } | undefined;
        if (typeof m?.retained === "number" && typeof m.queued === "number") {
          peakOutputMemory = Math.max(peakOutputMemory ?? 0, m.retained + m.queued);
        }
        await sleep(25);
      }
    })();
    let sampledPeak = 0;
    let result;
    try {
      result = await burst(server.wsUrl, SIZES.sessions, command);
      // The burst closes its sockets: keep sampling until the server has
      // ended every session, so the disconnect is part of the peak.
      await untilSessionsClosed(server);
    } finally {
      sampledPeak = sampler.stop();
      sampling = false;
      await queueSampler;
    }
    const serverCpu = cpuSeconds(server.proc.pid) - cpuServer0;
    const clientCpu = cpuSeconds("self") - cpuClient0;
    const machinePct = machineBusyPct(machine0);
    const hwm = procStatus(server.proc.pid).VmHWM ?? 0;
    const peak = peakReset ? Math.max(hwm, sampledPeak) : sampledPeak;
    let received = 0;
    let mismatched = 0;
    const errors: string[] = [];
    for (const s of result.sessions) {
      const m = await measureChunks(s.chunks);
      received += m.bytes;
      if (m.sha256 !== fileSha) mismatched++;
      if (s.error !== null) errors.push(s.error);
    }
    const expected = SESSION_BYTES * SIZES.sessions;
    const lost = expected - received;
    report({
      figure: "sessions",
      quick,
      sessions: SIZES.sessions,
      bytes_per_session: SESSION_BYTES,
      wall_s: round(result.seconds, 3),
      all_connected_s: round(result.connectSeconds, 3),
      first_completed_s: round(result.firstDone, 3),
      bytes_expected: expected,
      bytes_received: received,
      bytes_lost: lost,
      sessions_mismatched: mismatched,
      errors: errors.length,
      ...(errors.length > 0 ? { first_error: errors[0] } : {}),
      server_rss_before_mb: round(before / MB, 1),
      server_peak_rss_mb: round(peak / MB, 1),
      sampled_peak_rss_mb: round(sampledPeak / MB, 1),
      peak_source: peakReset
        ? `VmHWM reset via clear_refs + ${RSS_SAMPLE_MS} ms VmRSS samples`
        : `${RSS_SAMPLE_MS} ms VmRSS samples`,
      peak_output_memory_mb: peakOutputMemory === null ? null : round(peakOutputMemory / MB, 1),
      peak_total_queued_mb: round(peakQueued / MB, 1),
      server_cpu_pct: Math.round(100 * serverCpu / result.seconds),
      client_cpu_pct: Math.round(100 * clientCpu / result.seconds),
      machine_busy_pct: machinePct,
      target: `<= ${TARGETS.sessionsSeconds} s, peak RSS <= ${TARGETS.sessionsPeakMiB} MiB, 0 lost`,
      pass: lost === 0 && mismatched === 0 && errors.length === 0 &&
        result.seconds <= TARGETS.sessionsSeconds && peak / MiB <= TARGETS.sessionsPeakMiB,
    });
  } finally {
    await stopProcess(server.proc);
  }
}
