/**
 * The `stdin_flood` figure (6 in scripts/bench.ts).
 *
 * @module
 */
import {
  closeQuietly,
  health,
  KiB,
  MB,
  MiB,
  procStatus,
  quick,
  report,
  round,
  RSS_SAMPLE_MS,
  rssSampler,
  SIZES,
  sleep,
  startServer,
  STDIN_CALL_BYTES,
  STDIN_WINDOW,
  stopProcess,
  TARGETS,
  withTimeout,
} from "./_common.ts";
import { groupPids } from "../../lib/process/process_group.ts";

// ---------------------------------------------------------------- MCP client

/**
 * A minimal MCP client over a browser-style WebSocket (subprotocol `mcp`):
 * requests are matched to answers by id. Enough for `tools/call`; the SDK
 * client would add its own costs to what is measured.
 */
class McpClient {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #waiting = new Map<number, (msg: Record<string, unknown>) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (typeof msg.id === "number") {
        this.#waiting.get(msg.id)?.(msg);
        this.#waiting.delete(msg.id);
      }
    };
  }

  static async connect(url: string): Promise<McpClient> {
    const ws = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, "mcp");
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    const client = new McpClient(ws);
    await client.request(JSON.stringify({
      jsonrpc: "2.0",
      id: client.#nextId,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "cc-executor-bench", version: "1" },
      },
    }));
    ws.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
    return client;
  }

  /** The id the next request must carry. */
  get nextId(): number {
    return this.#nextId;
  }

  /** Sends a request already encoded with id {@linkcode nextId}; resolves with its answer. */
  request(text: string): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    const answer = new Promise<Record<string, unknown>>((resolve) =>
      this.#waiting.set(id, resolve)
    );
    this.#ws.send(text);
    return answer;
  }

  /** Calls a tool; resolves with its result (or the JSON-RPC error). */
  async call(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const msg = await this.request(JSON.stringify({
      jsonrpc: "2.0",
      id: this.#nextId,
      method: "tools/call",
      params: { name, arguments: args },
    }));
    if (msg.error) throw new Error(`${name}: ${JSON.stringify(msg.error)}`);
    return msg.result as Record<string, unknown>;
  }

  close(): void {
    closeQuietly(this.#ws);
  }
}

export async function stdinFlood() {
  const server = await startServer();
  let client: McpClient | null = null;
  let pgid = 0;
  try {
    client = await withTimeout(McpClient.connect(server.wsUrl), 10_000, "MCP connect");
    const c = client;
    // Warm up the paths the flood takes (tools/call, send_input, a large message).
    const warm = await c.call("start", { args: ["cat"], stdin_open: true });
    const warmId = (warm.structuredContent as Record<string, unknown>).execution_id;
    await c.call("send_input", { execution_id: warmId, input: "x".repeat(64 * KiB) });
    await c.call("control", { type: "CANCEL", execution_id: warmId });
    const started = await c.call("start", { command: "sleep 1000", stdin_open: true });
    const info = started.structuredContent as Record<string, unknown>;
    const execId = String(info.execution_id);
    pgid = Number(info.pgid);
    await sleep(500);
    const before = procStatus(server.proc.pid).VmRSS ?? 0;
    const sampler = rssSampler(server.proc.pid);
    // The request text around the input, so each call costs one concatenation.
    const payload = "x".repeat(STDIN_CALL_BYTES);
    const tail = `,"method":"tools/call","params":{"name":"send_input","arguments":` +
      `{"execution_id":${JSON.stringify(execId)},"input":"${payload}"}}}`;
    let issued = 0;
    let answered = 0;
    let ok = 0;
    let refused = 0;
    let unanswered = 0;
    let slowest = 0;
    let firstError: string | null = null;
    const t0 = performance.now();
    const worker = async () => {
      while (issued < SIZES.stdinCalls && unanswered === 0) {
        issued++;
        const sent = performance.now();
        const answer = await withTimeout(
          c.request(`{"jsonrpc":"2.0","id":${c.nextId}${tail}`),
          10_000,
          "send_input",
        ).catch(() => null);
        if (answer === null) {
          unanswered++;
          return;
        }
        slowest = Math.max(slowest, (performance.now() - sent) / 1000);
        answered++;
        const result = answer.result as { isError?: boolean; content?: { text?: string }[] };
        if (result?.isError !== true && answer.error === undefined) ok++;
        else {
          refused++;
          firstError ??= result?.content?.[0]?.text ?? JSON.stringify(answer.error);
        }
      }
    };
    await Promise.all(Array.from({ length: STDIN_WINDOW }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const h = await health(server);
    const peakFlood = sampler.peak();
    // Cancel inside the sampled window: dropping what was buffered counts too.
    await withTimeout(
      c.call("control", { type: "CANCEL", execution_id: execId }),
      30_000,
      "cancel",
    ).catch(() => {});
    const peak = sampler.stop();
    const growth = peak - before;
    report({
      figure: "stdin_flood",
      quick,
      calls: SIZES.stdinCalls,
      bytes_per_call: STDIN_CALL_BYTES,
      in_flight: STDIN_WINDOW,
      calls_issued: issued,
      calls_answered: answered,
      calls_unanswered: unanswered,
      calls_ok: ok,
      calls_error: refused,
      ...(firstError !== null ? { first_error: String(firstError).slice(0, 300) } : {}),
      seconds: round(seconds, 2),
      slowest_answer_s: round(slowest, 3),
      server_rss_before_mb: round(before / MB, 1),
      server_peak_rss_flood_mb: round(peakFlood / MB, 1),
      server_peak_rss_mb: round(peak / MB, 1),
      peak_source: `${RSS_SAMPLE_MS} ms VmRSS samples, through the cancel`,
      peak_growth_mb: round(growth / MB, 1),
      stdin_pending_bytes: h.stdin_pending_bytes ?? null,
      output_memory: h.output_memory ?? null,
      target: `peak growth <= ${TARGETS.stdinGrowthMiB} MiB, every call answered within ` +
        `${TARGETS.stdinAnswerS} s`,
      pass: unanswered === 0 && answered === SIZES.stdinCalls &&
        slowest <= TARGETS.stdinAnswerS && growth / MiB <= TARGETS.stdinGrowthMiB,
    });
  } finally {
    client?.close();
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
