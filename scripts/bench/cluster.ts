/**
 * The multi-node figure (13 in scripts/bench.ts), `cluster`: a real
 * redis-server and nodes started exactly as `deno task start` starts one,
 * with `CC_EXECUTOR_REDIS_URL` and their own node ids.
 *
 * - Relay throughput: a client of node `a` runs `cat` of a 64 MiB random
 *   binary file (8 MiB with `--quick`) on node `b` (`node: "b"`), as bytes
 *   (`encoding: "base64"`, decoded inside the clock), and the same run on
 *   `a` itself; MB/s, median of 3 rounds (1 with `--quick`) after a warm-up;
 *   `ratio` is relayed over local (target >= 0.5), 0 bytes lost, SHA-256 equal.
 * - Remote latency: `true` run on `a` and on `b` from `a`, 50 of each (20
 *   with `--quick`), one at a time, from `execute` to `process.completed`;
 *   the p50 difference is what placement and relay add (target <= 25 ms).
 * - Loss detection: node `c` runs `sleep` for a client of `a`; `c`'s
 *   service process is SIGKILLed; the time until the client has
 *   `process.completed` `status: "lost"` (target <= 15 s: a 10 s liveness
 *   key, swept every 3 s).
 *
 * @module
 */
import * as common from "./_common.ts";

const FILE_BYTES = common.quick ? 8 * common.MiB : 64 * common.MiB;
const ROUNDS = common.quick ? 1 : 3;
const LATENCY_RUNS = common.quick ? 20 : 50;
const RATIO_TARGET = 0.5;
const EXTRA_LATENCY_TARGET_MS = 25;
const LOST_TARGET_S = 15;

/** A redis-server of the bench's own, without persistence. */
async function startRedis(): Promise<{ url: string; child: Deno.ChildProcess }> {
  const port = common.freePort();
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 200; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { url: `redis://127.0.0.1:${port}`, child };
    } catch {
      await common.sleep(50);
    }
  }
  child.kill("SIGKILL");
  throw new Error("redis-server did not start");
}

/** One `execute` on `ws` to its end: seconds, decoded bytes, SHA-256, status. */
async function runOn(
  ws: WebSocket,
  params: Record<string, unknown>,
  id: number,
): Promise<{ seconds: number; bytes: number; sha: string; status: string; node: string }> {
  const chunks: string[] = [];
  const t0 = performance.now();
  const { status, node } = await new Promise<{ status: string; node: string }>(
    (resolve, reject) => {
      ws.onmessage = (e) => {
        const msg = JSON.parse(e.data);
        if (msg.method === "process.output") chunks.push(msg.params.data);
        else if (msg.method === "process.completed") {
          resolve({ status: msg.params.status, node: msg.params.node });
        } else if (msg.id === id && msg.error) reject(new Error(msg.error.message));
      };
      ws.onclose = (e) => reject(new Error(`closed: ${e.code} ${e.reason}`));
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method: "execute", params }));
    },
  );
  const parts = params.encoding === "base64" ? chunks.map((c) => Uint8Array.fromBase64(c)) : [];
  const seconds = (performance.now() - t0) / 1000;
  let bytes = 0;
  for (const p of parts) bytes += p.length;
  const all = new Uint8Array(bytes);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  ws.onmessage = null;
  ws.onclose = null;
  return { seconds, bytes, sha: parts.length ? await common.sha256Hex(all) : "", status, node };
}

function node(redis: string, id: string, dir: string): Promise<common.Server> {
  return common.startServer({
    CC_EXECUTOR_REDIS_URL: redis,
    CC_EXECUTOR_NODE_ID: id,
    CC_EXECUTOR_DATA_DIR: `${dir}/node-${id}`,
  });
}

/** Figure 13: relay throughput and latency against local runs, and time to `lost`. */
export async function clusterFigure(dir: string): Promise<void> {
  const file = `${dir}/cluster.bin`;
  const data = new Uint8Array(FILE_BYTES);
  for (let off = 0; off < FILE_BYTES; off += 65536) {
    crypto.getRandomValues(data.subarray(off, Math.min(FILE_BYTES, off + 65536)));
  }
  await Deno.writeFile(file, data);
  const sha = await common.sha256Hex(data);
  const redis = await startRedis();
  const servers: common.Server[] = [];
  try {
    const a = await node(redis.url, "a", dir);
    servers.push(a);
    servers.push(await node(redis.url, "b", dir));
    const c = await node(redis.url, "c", dir);
    servers.push(c);
    const ws = await common.openSocket(a.wsUrl);
    let id = 1;
    // Every node registered and seen by a before the clock starts.
    for (let i = 0; i < 100; i++) {
      const h = await common.health(a) as { cluster?: { nodes?: unknown[] } };
      if ((h.cluster?.nodes?.length ?? 0) >= 3) break;
      await common.sleep(200);
    }
    const cat = { args: ["cat", file], encoding: "base64", timeout: 600 };
    await runOn(ws, { ...cat, node: "b" }, id++);
    await runOn(ws, cat, id++);
    const relayed: number[] = [];
    const local: number[] = [];
    let lost = 0;
    let matches = true;
    for (let i = 0; i < ROUNDS; i++) {
      const r = await runOn(ws, { ...cat, node: "b" }, id++);
      relayed.push(r.bytes / common.MB / r.seconds);
      lost += FILE_BYTES - r.bytes;
      matches &&= r.sha === sha && r.node === "b";
      const l = await runOn(ws, cat, id++);
      local.push(l.bytes / common.MB / l.seconds);
      lost += FILE_BYTES - l.bytes;
    }
    const latency = async (params: Record<string, unknown>) => {
      const ms: number[] = [];
      for (let i = 0; i < LATENCY_RUNS; i++) {
        ms.push((await runOn(ws, params, id++)).seconds * 1000);
      }
      return common.percentile(ms.sort((x, y) => x - y), 50);
    };
    await latency({ args: ["true"], node: "b" });
    const localP50 = await latency({ args: ["true"] });
    const remoteP50 = await latency({ args: ["true"], node: "b" });
    // Loss: c dies mid-run.
    const lostAt = await new Promise<number>((resolve, reject) => {
      let killedAt = 0;
      let pgid = 0;
      const rid = id++;
      ws.onmessage = (e) => {
        const msg = JSON.parse(e.data);
        if (msg.id === rid && msg.result) {
          pgid = msg.result.pgid;
          killedAt = performance.now();
          Deno.kill(c.proc.pid, "SIGKILL");
        } else if (msg.id === rid && msg.error) {
          reject(new Error(msg.error.message));
        } else if (msg.method === "process.completed") {
          // What the killed node left is ended here; its restart would reap it too.
          try {
            Deno.kill(-pgid, "SIGKILL");
          } catch {
            // gone
          }
          if (msg.params.status !== "lost") reject(new Error(`ended ${msg.params.status}`));
          else resolve((performance.now() - killedAt) / 1000);
        }
      };
      ws.send(JSON.stringify({
        jsonrpc: "2.0",
        id: rid,
        method: "execute",
        params: { args: ["sleep", "300"], node: "c", timeout: 600 },
      }));
    });
    common.closeQuietly(ws);
    const ratio = common.median(relayed) / common.median(local);
    const extra = remoteP50 - localP50;
    common.report({
      figure: "cluster",
      quick: common.quick,
      bytes: FILE_BYTES,
      relay_mb_per_s: common.round(common.median(relayed), 1),
      local_mb_per_s: common.round(common.median(local), 1),
      ratio: common.round(ratio, 2),
      bytes_lost: lost,
      sha256_match: matches,
      local_true_p50_ms: common.round(localP50, 2),
      remote_true_p50_ms: common.round(remoteP50, 2),
      extra_latency_p50_ms: common.round(extra, 2),
      kill_to_lost_s: common.round(lostAt, 2),
      target:
        `ratio >= ${RATIO_TARGET}, 0 bytes lost, extra p50 <= ${EXTRA_LATENCY_TARGET_MS} ms, ` +
        `lost within ${LOST_TARGET_S} s`,
      pass: ratio >= RATIO_TARGET && lost === 0 && matches &&
        extra <= EXTRA_LATENCY_TARGET_MS && lostAt <= LOST_TARGET_S,
    });
  } finally {
    for (const s of servers) await common.stopProcess(s.proc);
    redis.child.kill("SIGKILL");
    await redis.child.status;
  }
}
