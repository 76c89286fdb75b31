/**
 * The `slow_reader` figure (5 in scripts/bench.ts).
 *
 * @module
 */
import {
  bytesWritten,
  closeQuietly,
  comm,
  encoder,
  FIGURE_TIMEOUT_MS,
  groupMembers,
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

// ---------------------------------------------------------------- raw WebSocket client

/**
 * A WebSocket client on a bare TCP socket: it reads only when it chooses to,
 * which is the point, since a browser-style WebSocket always reads as fast
 * as data arrives. Parses server frames (unmasked, 7/16/64-bit lengths) only
 * as far as needed to find the `execute` result.
 */
class RawClient {
  readonly conn: Deno.TcpConn;
  #buf = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  static async connect(port: number, path: string): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const client = new RawClient(conn);
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await client.#writeAll(encoder.encode(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    let end: number;
    while ((end = indexOfCrlf2(client.#buf)) === -1) {
      if (!await client.#fill()) throw new Error("connection closed during the handshake");
    }
    const head = new TextDecoder().decode(client.#buf.subarray(0, end));
    if (!head.startsWith("HTTP/1.1 101")) throw new Error(`handshake refused: ${head}`);
    // Whatever followed the headers is already frame data.
    client.#buf = client.#buf.slice(end + 4);
    return client;
  }

  /** Sends one text frame, masked as RFC 6455 requires of a client. */
  async sendText(text: string): Promise<void> {
    const payload = encoder.encode(text);
    const n = payload.length;
    const header = n < 126 ? [0x81, 0x80 | n] : [0x81, 0x80 | 126, n >> 8, n & 0xff];
    if (n > 0xffff) throw new Error("frame too large for this client");
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const frame = new Uint8Array(header.length + 4 + n);
    frame.set(header);
    frame.set(mask, header.length);
    for (let i = 0; i < n; i++) frame[header.length + 4 + i] = payload[i]! ^ mask[i & 3]!;
    await this.#writeAll(frame);
  }

  /** The next whole text frame (server frames of this protocol are never fragmented). */
  async readText(): Promise<string> {
    for (;;) {
      const frame = this.#parseFrame();
      if (frame !== null) {
        if (frame.opcode === 0x1) return new TextDecoder().decode(frame.payload);
        if (frame.opcode === 0x8) throw new Error("server closed the WebSocket");
        continue; // ping/pong/binary: not needed here
      }
      if (!await this.#fill()) throw new Error("connection closed");
    }
  }

  /** Bytes already read from the socket but not yet consumed. */
  get buffered(): number {
    return this.#buf.length;
  }

  #parseFrame(): { opcode: number; payload: Uint8Array } | null {
    const b = this.#buf;
    if (b.length < 2) return null;
    let len = b[1]! & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = (b[2]! << 8) | b[3]!;
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
      off = 10;
    }
    if (b.length < off + len) return null;
    const payload = b.slice(off, off + len);
    this.#buf = b.slice(off + len);
    return { opcode: b[0]! & 0x0f, payload };
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * KiB);
    const n = await this.conn.read(chunk);
    if (n === null) return false;
    const merged = new Uint8Array(this.#buf.length + n);
    merged.set(this.#buf);
    merged.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = merged;
    return true;
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.conn.write(data.subarray(off));
  }
}

function indexOfCrlf2(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

export async function slowReader() {
  const server = await startServer();
  let pgid = 0;
  let client: RawClient | null = null;
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
    client = await withTimeout(RawClient.connect(server.port, "/ws/mcp"), 10_000, "handshake");
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
    const members = groupMembers(pgid);
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
      if (groupMembers(pgid).length === 0) {
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
    if (pgid > 0 && groupMembers(pgid).length > 0) {
      try {
        Deno.kill(-pgid, "SIGKILL");
      } catch {
        // gone in between
      }
    }
    await stopProcess(server.proc);
  }
}
