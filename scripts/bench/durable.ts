/**
 * The durable-run figures (10 and 11 in scripts/bench.ts).
 *
 * - `replay`: a detached `cat` of a 64 MiB text file (8 MiB with `--quick`)
 *   whose connection is dropped at once, so the run writes its whole output
 *   with no one attached (default settings: 8 MiB stay in memory, the rest
 *   spills to disk). Once it has ended, a new connection `attach`es from 0
 *   and receives until `process.completed`: MB/s over that replay, bytes
 *   lost (expected minus received, by count and SHA-256), gaps announced.
 * - `detached_memory`: 100 connections (20 with `--quick`) each start a
 *   detached `cat` of a 1 MiB text file and disconnect at once; the server's
 *   peak RSS (VmRSS every 20 ms) from before the first connect until every
 *   run has ended, against 128 MiB; then 5 of the runs are replayed from 0
 *   and checked byte for byte.
 *
 * @module
 */
import {
  closeQuietly,
  generateText,
  MB,
  measureChunks,
  MiB,
  openSocket,
  procStatus,
  quick,
  report,
  round,
  rssSampler,
  sha256Hex,
  shellQuote,
  sleep,
  startServer,
  stopProcess,
  withTimeout,
} from "./_common.ts";

const REPLAY_BYTES = quick ? 8 * MiB : 64 * MiB;
const DETACHED_RUNS = quick ? 20 : 100;
const DETACHED_RUN_BYTES = 1 * MiB;
const DETACHED_TARGET_MIB = 128;
const REPLAY_CHECKED = 5;

/** Opens a connection, starts `command` detached, and drops the connection once it started. */
async function startDetached(wsUrl: string, command: string): Promise<string> {
  const ws = await openSocket(wsUrl);
  try {
    return await new Promise<string>((resolve, reject) => {
      ws.onmessage = (e) => {
        const msg = JSON.parse(e.data);
        if (msg.id === 1 && msg.result) resolve(msg.result.execution_id);
        else if (msg.id === 1) reject(new Error(`execute: ${JSON.stringify(msg.error)}`));
      };
      ws.onclose = (e) => reject(new Error(`closed: ${e.code} ${e.reason}`));
      ws.send(JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "execute",
        params: { command, detach: true, timeout: 600 },
      }));
    });
  } finally {
    ws.onmessage = null;
    ws.onclose = null;
    closeQuietly(ws);
  }
}

/** One JSON-RPC request on a fresh connection; its result. */
async function request(wsUrl: string, method: string, params: unknown): Promise<unknown> {
  const ws = await openSocket(wsUrl);
  try {
    return await new Promise((resolve, reject) => {
      ws.onmessage = (e) => {
        const msg = JSON.parse(e.data);
        if (msg.id === 1) msg.error ? reject(new Error(msg.error.message)) : resolve(msg.result);
      };
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }));
    });
  } finally {
    closeQuietly(ws);
  }
}

/** Waits until none of the principal's runs is running. */
async function untilAllEnded(wsUrl: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const r = await request(wsUrl, "list", { state: "running" }) as { executions: unknown[] };
    if (r.executions.length === 0) return;
    await sleep(50);
  }
  throw new Error(`runs still running after ${timeoutMs} ms`);
}

/** Attaches from 0 on a fresh connection and collects stdout until `process.completed`. */
async function replay(wsUrl: string, executionId: string) {
  const ws = await openSocket(wsUrl);
  const chunks: string[] = [];
  let gaps = 0;
  const t0 = performance.now();
  try {
    const status = await new Promise<string>((resolve, reject) => {
      ws.onmessage = (e) => {
        const msg = JSON.parse(e.data);
        if (msg.method === "process.output") chunks.push(msg.params.data);
        else if (msg.method === "process.gap") gaps++;
        else if (msg.method === "process.completed") resolve(msg.params.status);
        else if (msg.id === 1 && msg.error) reject(new Error(msg.error.message));
      };
      ws.onclose = (e) => reject(new Error(`closed: ${e.code} ${e.reason}`));
      ws.send(JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "attach",
        params: { execution_id: executionId, from_seq: 0 },
      }));
    });
    return { seconds: (performance.now() - t0) / 1000, chunks, gaps, status };
  } finally {
    ws.onmessage = null;
    ws.onclose = null;
    closeQuietly(ws);
  }
}

/** Figure 10: replay of a long detached run from offset 0. */
export async function replayFigure(dir: string): Promise<void> {
  const file = `${dir}/replay.txt`;
  const text = generateText(REPLAY_BYTES, 7);
  await Deno.writeFile(file, text);
  const sha = await sha256Hex(text);
  const server = await startServer();
  try {
    const id = await startDetached(server.wsUrl, `cat ${shellQuote(file)}`);
    await untilAllEnded(server.wsUrl, 120_000);
    const r = await withTimeout(replay(server.wsUrl, id), 120_000, "replay");
    const m = await measureChunks(r.chunks);
    const rss = procStatus(server.proc.pid).VmRSS ?? 0;
    report({
      figure: "replay",
      quick,
      bytes: REPLAY_BYTES,
      mb_per_s: round(m.bytes / MB / r.seconds, 1),
      seconds: round(r.seconds, 3),
      bytes_lost: REPLAY_BYTES - m.bytes,
      sha256_match: m.sha256 === sha,
      gaps: r.gaps,
      status: r.status,
      server_rss_after_mb: round(rss / MB, 1),
      target: "0 bytes lost, sha256 match",
      pass: m.bytes === REPLAY_BYTES && m.sha256 === sha && r.gaps === 0,
    });
  } finally {
    await stopProcess(server.proc);
  }
}

/** Figure 11: the server's memory with many detached runs' output retained. */
export async function detachedMemoryFigure(dir: string): Promise<void> {
  const file = `${dir}/detached.txt`;
  const text = generateText(DETACHED_RUN_BYTES, 3, false);
  await Deno.writeFile(file, text);
  const sha = await sha256Hex(text);
  const server = await startServer();
  try {
    const command = `cat ${shellQuote(file)}`;
    // Warm: one run first, so the figure is of a running server.
    await startDetached(server.wsUrl, command);
    await untilAllEnded(server.wsUrl, 30_000);
    await sleep(300);
    const before = procStatus(server.proc.pid).VmRSS ?? 0;
    const sampler = rssSampler(server.proc.pid);
    const t0 = performance.now();
    let ids: string[];
    try {
      ids = await Promise.all(
        Array.from({ length: DETACHED_RUNS }, () => startDetached(server.wsUrl, command)),
      );
      await untilAllEnded(server.wsUrl, 120_000);
    } finally {
      sampler.stop();
    }
    const seconds = (performance.now() - t0) / 1000;
    const peak = sampler.peak();
    let lost = 0;
    let mismatched = 0;
    let gaps = 0;
    const step = Math.max(1, Math.floor(ids.length / REPLAY_CHECKED));
    const checked = ids.filter((_, i) => i % step === 0).slice(0, REPLAY_CHECKED);
    for (const id of checked) {
      const r = await replay(server.wsUrl, id);
      const m = await measureChunks(r.chunks);
      lost += DETACHED_RUN_BYTES - m.bytes;
      gaps += r.gaps;
      if (m.sha256 !== sha) mismatched++;
    }
    const h = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    report({
      figure: "detached_memory",
      quick,
      runs: DETACHED_RUNS,
      bytes_per_run: DETACHED_RUN_BYTES,
      all_ended_s: round(seconds, 2),
      server_rss_before_mb: round(before / MB, 1),
      server_peak_rss_mb: round(peak / MB, 1),
      server_peak_rss_mib: round(peak / MiB, 1),
      output_memory: h.output_memory ?? null,
      replayed_runs: checked.length,
      replay_bytes_lost: lost,
      replay_mismatched: mismatched,
      replay_gaps: gaps,
      target: `peak RSS <= ${DETACHED_TARGET_MIB} MiB, replays exact`,
      pass: peak <= DETACHED_TARGET_MIB * MiB && lost === 0 && mismatched === 0,
    });
  } finally {
    await stopProcess(server.proc);
  }
}
