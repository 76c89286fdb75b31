/**
 * The `slow_reader` figure (5 in scripts/bench.ts).
 *
 * @module
 */
import {
  bytesWritten,
  closeQuietly,
  comm,
  FIGURE_TIMEOUT_MS,
  health,
  KiB,
  MB,
  MiB,
  openSocket,
  procStatus,
  quick,
  report,
  round,
  RSS_SAMPLE_MS,
  rssSampler,
  SIZES,
  sleep,
  SLOW_RATE,
  startServer,
  stopProcess,
  streamRun,
  TARGETS,
  untilSessionsClosed,
  withTimeout,
} from "./_common.ts";
import { RawWebSocket } from "../../tests/_raw_ws.ts";
import { groupPids } from "../../lib/process/process_group.ts";

export async function slowReader() {
  const server = await startServer();
  let pgid = 0;
  let client: RawWebSocket | null = null;
  try {
    // One ordinary run of the same command shape first, so what is measured
    // is growth while a reader lags, not the first run's one-off costs (code
    // compiled on first use, heap spaces sized up).
    const warm = await withTimeout(openSocket(server.wsUrl), 10_000, "connect");
    try {
      const command = "head -c 4194304 /dev/zero | tr '\\0' x";
      await withTimeout(streamRun(warm, command), FIGURE_TIMEOUT_MS, "warm-up");
    } finally {
      closeQuietly(warm);
    }
    await sleep(500);
    client = await withTimeout(RawWebSocket.connect(server.wsUrl), 10_000, "handshake");
    const rssBefore = procStatus(server.proc.pid).VmRSS ?? 0;
    await client.sendText(JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "execute",
      params: { command: "cat /dev/zero | tr '\\0' x" },
    }));
    // Read frames properly only until the execute result, which carries the pid.
    let pid = 0;
    const c = client;
    await withTimeout(
      (async () => {
        for (;;) {
          const msg = JSON.parse(await c.readText());
          if (msg.id === 1 && msg.error) throw new Error(`execute failed: ${msg.error.message}`);
          if (msg.id === 1) {
            pid = msg.result.pid;
            pgid = msg.result.pgid;
            return;
          }
        }
      })(),
      10_000,
      "execute result",
    );
    // From here on bytes are drained at SLOW_RATE without parsing; the clock
    // paces total bytes, so short reads do not make the client faster.
    const sampler = rssSampler(server.proc.pid);
    // RSS once a second, to tell a one-off step from steady growth.
    const perSecond: number[] = [];
    const secondTimer = setInterval(() => {
      perSecond.push(round((procStatus(server.proc.pid).VmRSS ?? 0) / MB, 1));
    }, 1000);
    const buf = new Uint8Array(64 * KiB);
    let read = client.buffered;
    const t0 = performance.now();
    const stopAt = t0 + SIZES.slowSeconds * 1000;
    let serverClosed = false;
    // One timer for the whole run: a read still pending when it fires is
    // abandoned, and fails harmlessly once the connection is closed below.
    const timeUp = sleep(SIZES.slowSeconds * 1000).then(() => -1 as const);
    while (performance.now() < stopAt) {
      const n = await Promise.race([client.conn.read(buf).catch(() => null), timeUp]);
      if (n === -1) break;
      if (n === null) {
        serverClosed = true;
        break;
      }
      read += n;
      const due = t0 + read / SLOW_RATE * 1000;
      const wait = Math.min(due, stopAt) - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(secondTimer);
    const rssAfter = procStatus(server.proc.pid).VmRSS ?? 0;
    const peakReading = sampler.peak();
    const h = await health(server);
    const members = await groupPids(pgid);
    // What the command managed to write: with back-pressure working it stays
    // near what the client read plus the socket and pipe buffers.
    const writer = members.find((p) => comm(p) === "tr");
    const childWrote = writer === undefined ? null : bytesWritten(writer);
    // Dropping the connection without a close frame, as a crashed client would.
    const tClose = performance.now();
    client.conn.close();
    client = null;
    let cleanupMs: number | null = null;
    const pollUntil = tClose + 30_000;
    while (performance.now() < pollUntil) {
      if ((await groupPids(pgid)).length === 0) {
        cleanupMs = performance.now() - tClose;
        break;
      }
      await sleep(2);
    }
    // The peak covers the disconnect too: what the server does with a run
    // whose client is gone (output it can no longer send) counts.
    await untilSessionsClosed(server);
    const peak = sampler.stop();
    const growth = rssAfter - rssBefore;
    const peakGrowth = peak - rssBefore;
    report({
      figure: "slow_reader",
      quick,
      seconds: round(seconds, 2),
      client_bytes_read: read,
      client_mb_per_s: round(read / MB / seconds, 2),
      server_closed_early: serverClosed,
      server_rss_before_mb: round(rssBefore / MB, 1),
      server_rss_after_mb: round(rssAfter / MB, 1),
      server_peak_rss_reading_mb: round(peakReading / MB, 1),
      server_peak_rss_mb: round(peak / MB, 1),
      peak_source: `${RSS_SAMPLE_MS} ms VmRSS samples, through the disconnect`,
      rss_growth_mb: round(growth / MB, 1),
      peak_growth_mb: round(peakGrowth / MB, 1),
      output_memory: h.output_memory ?? null,
      rss_each_second_mb: perSecond,
      child_bytes_written: childWrote,
      queued_bytes: h.queued_bytes ?? null,
      peak_queued_bytes: h.peak_queued_bytes ?? null,
      backpressure_waits: h.backpressure_waits ?? null,
      pid,
      group_pids: members.length,
      cleanup_ms: cleanupMs === null ? null : round(cleanupMs, 1),
      target: `peak growth <= ${TARGETS.slowGrowthMiB} MiB, cleanup <= ${TARGETS.cleanupMs} ms`,
      pass: !serverClosed && peakGrowth / MiB <= TARGETS.slowGrowthMiB && cleanupMs !== null &&
        cleanupMs <= TARGETS.cleanupMs,
    });
  } finally {
    client?.conn.close();
    // Nothing of this run may outlive the bench, even if the server failed to end it.
    if (pgid > 0 && (await groupPids(pgid)).length > 0) {
      try {
        Deno.kill(-pgid, "SIGKILL");
      } catch {
        // gone in between
      }
    }
    await stopProcess(server.proc);
  }
}
