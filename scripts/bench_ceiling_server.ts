/**
 * The benchmark's ceiling: the least a Deno WebSocket server can do to send a
 * file to a client, so `scripts/bench.ts` can say how close cc-executor comes.
 *
 * Usage: `deno run -A scripts/bench_ceiling_server.ts <file>`. It listens on a
 * free port of 127.0.0.1 and prints `{"port":N}` on stdout once listening.
 * On the first `execute` request a connection sends, it streams `<file>` in
 * 64 KiB pieces and then ends, in one of two modes (query `?mode=`):
 *
 * - `rpc` (default): the pieces travel in the same JSON-RPC envelope
 *   cc-executor uses (`execute` result, `process.output` per piece,
 *   `process.completed`), so the client does exactly the work it does against
 *   cc-executor. This is the ceiling the ratio is taken against.
 * - `raw`: each piece is sent as a bare text frame and the socket is closed
 *   with 1000 at the end: what the envelope costs, for context.
 *
 * Back-pressure mirrors cc-executor's defaults (stop reading above 2 MiB
 * queued, poll `bufferedAmount` every 2 ms until below half), so both servers
 * run under the same memory bound and the comparison measures everything else.
 *
 * @module
 */

const PIECE = 64 * 1024;
const HIGH_WATER = 2 * 1024 * 1024;
const LOW_WATER = HIGH_WATER / 2;
const POLL_MS = 2;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function streamFile(socket: WebSocket, path: string, send: (text: string) => void) {
  const file = await Deno.open(path);
  // A 64 KiB read can end inside a UTF-8 character: the streaming decoder
  // carries it into the next piece, as cc-executor's framer does.
  const decoder = new TextDecoder();
  const buf = new Uint8Array(PIECE);
  try {
    for (;;) {
      if (socket.bufferedAmount > HIGH_WATER) {
        while (socket.readyState === WebSocket.OPEN && socket.bufferedAmount > LOW_WATER) {
          await sleep(POLL_MS);
        }
      }
      if (socket.readyState !== WebSocket.OPEN) return;
      const n = await file.read(buf);
      if (n === null) break;
      const text = decoder.decode(buf.subarray(0, n), { stream: true });
      if (text.length > 0) send(text);
    }
    const tail = decoder.decode();
    if (tail.length > 0) send(tail);
  } finally {
    file.close();
  }
}

function serve(path: string): void {
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  }, (req) => {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("Expected a WebSocket upgrade", { status: 426 });
    }
    const raw = new URL(req.url).searchParams.get("mode") === "raw";
    const { socket, response } = Deno.upgradeWebSocket(req);
    let started = false;
    socket.onmessage = (event) => {
      if (started || typeof event.data !== "string") return;
      let id: unknown = null;
      try {
        const msg = JSON.parse(event.data);
        if (msg?.method !== "execute") return;
        id = msg.id ?? null;
      } catch {
        return;
      }
      started = true;
      const t0 = performance.now();
      const rpc = (text: string) =>
        socket.send(JSON.stringify({
          jsonrpc: "2.0",
          method: "process.output",
          params: {
            type: "stdout",
            data: text,
            truncated: false,
            chunk_index: null,
            total_chunks: null,
          },
        }));
      if (!raw) {
        socket.send(JSON.stringify({ jsonrpc: "2.0", result: { status: "started" }, id }));
      }
      streamFile(socket, path, raw ? (text) => socket.send(text) : rpc).then(() => {
        if (socket.readyState !== WebSocket.OPEN) return;
        if (raw) {
          socket.close(1000, "done");
          return;
        }
        socket.send(JSON.stringify({
          jsonrpc: "2.0",
          method: "process.completed",
          params: {
            status: "completed",
            exit_code: 0,
            error: null,
            execution_time: (performance.now() - t0) / 1000,
          },
        }));
      }, (err) => {
        console.error(`ceiling server: ${err}`);
        if (socket.readyState === WebSocket.OPEN) socket.close(1011, "read failed");
      });
    };
    return response;
  });
}

if (import.meta.main) {
  const path = Deno.args[0];
  if (path === undefined) {
    console.error("usage: bench_ceiling_server.ts <file>");
    Deno.exit(2);
  }
  serve(path);
}
