/**
 * Three nodes on one real redis-server, as separate server processes on
 * loopback (labels `a`; `b,gpu`; `b`): placement, the relay, control and
 * attach across nodes, shared history, a node killed or cut off mid-run, and
 * Redis restarting under a run.
 */
import assert from "node:assert/strict";
import {
  assertGroupGone,
  eventually,
  type Msg,
  type ServerProcess,
  spawnServer,
  TestClient,
} from "../_helpers.ts";
import { freePort, hasRedisServer, RedisServer } from "../_redis.ts";
import { call, closeHttp, connectHttp, readToEnd } from "../_mcp.ts";
import type { ServerHandle } from "../../main.ts";

const redisAvailable = await hasRedisServer();

/** The nodes of the test, by id. */
interface Nodes {
  redis: RedisServer;
  dir: string;
  procs: Map<string, ServerProcess>;
}

const LABELS: Record<string, string> = { a: "a", b: "b,gpu", c: "b" };

async function startNode(nodes: Nodes, id: string): Promise<ServerProcess> {
  const proc = await spawnServer({
    "redis-url": nodes.redis.url,
    "node-id": id,
    "node-labels": LABELS[id]!,
    "data-dir": `${nodes.dir}/${id}`,
    "ws-ping-interval": "0",
    "busy-multiplier": "1",
    "kill-grace": "1",
    "max-executions-per-session": "8",
  });
  nodes.procs.set(id, proc);
  return proc;
}

async function open(proc: ServerProcess): Promise<TestClient> {
  const client = await TestClient.connect(proc.wsUrl);
  const first = await client.next();
  assert.equal(first.method, "connected");
  return client;
}

async function health(proc: ServerProcess): Promise<Msg> {
  const res = await fetch(`${proc.httpUrl}/health`);
  return await res.json();
}

/** Waits until every node sees all of `ids` alive. */
async function allSee(nodes: Nodes, ids: string[]): Promise<void> {
  for (const proc of nodes.procs.values()) {
    await eventually(
      async () => {
        const h = await health(proc);
        const seen = (h.cluster?.nodes ?? []).map((n: { id: string }) => n.id);
        return ids.every((id) => seen.includes(id));
      },
      20_000,
      `every node to see ${ids.join(", ")}`,
    );
  }
}

/** Every output and the end of run `id`, as `client` gets them. */
async function collect(client: TestClient, id: string, ms = 30_000) {
  const events: Msg[] = [];
  for (;;) {
    const m = await client.next((x) => x.params?.execution_id === id, ms);
    events.push(m);
    if (m.method === "process.completed") break;
  }
  const outputs = events.filter((e) => e.method === "process.output");
  return { events, outputs, completed: events.at(-1)!.params };
}

/** `redis-cli` against the test's Redis: one command, its reply as text. */
async function redisCli(redis: RedisServer, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-p", String(redis.port), ...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** Waits until `client` has a message matching `pred` queued, leaving it there. */
async function seen(client: TestClient, pred: (m: Msg) => boolean): Promise<void> {
  await eventually(() => client.pending().some(pred), 20_000, "a message");
}

/** The parent pid of `pid` (from /proc). */
async function parentOf(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** Whether `pid` descends from `ancestor`. */
async function descendsFrom(pid: number, ancestor: number): Promise<boolean> {
  for (let p = pid, i = 0; p > 1 && i < 10; i++) {
    if (p === ancestor) return true;
    p = await parentOf(p);
  }
  return false;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toHex();
}

Deno.test({
  name: "cluster: three nodes share placement, relay, control, attach, history and failure",
  ignore: !redisAvailable,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "cc-cluster-" });
    const nodes: Nodes = { redis: await RedisServer.start(freePort()), dir, procs: new Map() };
    const clients: TestClient[] = [];
    const client = async (id: string) => {
      const c = await open(nodes.procs.get(id)!);
      clients.push(c);
      return c;
    };
    try {
      for (const id of ["a", "b", "c"]) await startNode(nodes, id);
      await allSee(nodes, ["a", "b", "c"]);
      const a = await client("a");

      await t.step("placement by label and by node, under that node's server", async () => {
        const gpu = await a.request("execute", { command: "echo $$", labels: ["gpu"] });
        assert.equal(gpu.result.node, "b", JSON.stringify(gpu));
        const run = await collect(a, gpu.result.execution_id);
        assert.equal(run.completed.status, "completed");
        assert.equal(run.completed.node, "b");
        assert.ok(run.outputs.every((o: Msg) => o.params.node === "b"));

        const long = await a.request("execute", { command: "sleep 30", node: "c", timeout: 60 });
        assert.equal(long.result.node, "c");
        assert.ok(await descendsFrom(long.result.pid, nodes.procs.get("c")!.pid));
        // c is busy now: of the two `b` nodes, b runs the fewest.
        const b = await a.request("execute", { command: "echo least", labels: ["b"] });
        assert.equal(b.result.node, "b");
        await collect(a, b.result.execution_id);
        assert.equal(
          (await a.request("control", {
            type: "CANCEL",
            execution_id: long.result.execution_id,
          })).result.status,
          "canceled",
        );
        await collect(a, long.result.execution_id);

        const none = await a.request("execute", { command: "true", labels: ["tpu"] });
        assert.equal(none.error.code, -32005);
        assert.deepEqual(none.error.data.labels, ["tpu"]);
        assert.deepEqual(none.error.data.live.map((n: Msg) => n.id), ["a", "b", "c"]);
        const here = await a.request("execute", { command: "echo here", labels: ["a"] });
        assert.equal(here.result.node, "a");
        await collect(a, here.result.execution_id);
      });

      await t.step("a 1.3 MB relay is byte-exact, at the same offsets", async () => {
        const file = `${dir}/blob`;
        const blob = crypto.getRandomValues(new Uint8Array(65536));
        const data = new Uint8Array(1_300_000);
        for (let i = 0; i < data.length; i += blob.length) {
          data.set(blob.subarray(0, data.length - i), i);
        }
        await Deno.writeFile(file, data);
        const r = await a.request("execute", {
          args: ["cat", file],
          node: "b",
          encoding: "base64",
        });
        const run = await collect(a, r.result.execution_id);
        assert.equal(run.completed.status, "completed");
        const parts: Uint8Array[] = run.outputs.map((o: Msg) =>
          Uint8Array.fromBase64(o.params.data)
        );
        const got = new Uint8Array(parts.reduce((n: number, p: Uint8Array) => n + p.length, 0));
        let at = 0;
        for (const [i, p] of parts.entries()) {
          assert.equal(run.outputs[i].params.seq, at, "offsets count the bytes before");
          got.set(p, at);
          at += p.length;
        }
        assert.equal(await sha256(got), await sha256(data));
        // Its keys do not stay in Redis for ever.
        const id = r.result.execution_id;
        await eventually(
          async () =>
            Number(await redisCli(nodes.redis, "pttl", `cc_executor:exec:{${id}}:out`)) > 0 &&
            Number(await redisCli(nodes.redis, "pttl", `cc_executor:exec:{${id}}`)) > 0,
          10_000,
          "the keys to expire",
        );
      });

      await t.step("CANCEL and INTERRUPT through the relay end the group on its node", async () => {
        const r = await a.request("execute", { command: "sleep 30 & wait", node: "b" });
        await a.event("started", r.result.execution_id);
        await a.request("control", { type: "CANCEL", execution_id: r.result.execution_id });
        const run = await collect(a, r.result.execution_id);
        assert.ok(run.events.some((e: Msg) => e.method === "process.canceled"));
        assert.equal(run.completed.status, "canceled");
        await assertGroupGone(r.result.pgid);

        const i = await a.request("execute", {
          command: "trap 'echo got INT; exit 7' INT; echo ready; sleep 30 & wait",
          node: "c",
        });
        await a.next((m) =>
          m.params?.execution_id === i.result.execution_id && m.params.data === "ready\n"
        );
        const reply = await a.request("control", {
          type: "INTERRUPT",
          execution_id: i.result.execution_id,
        });
        assert.equal(reply.result.status, "interrupted");
        const irun = await collect(a, i.result.execution_id);
        assert.equal(irun.outputs.map((o: Msg) => o.params.data).join(""), "got INT\n");
        assert.equal(irun.completed.exit_code, 7);
        await assertGroupGone(i.result.pgid);
      });

      await t.step(
        "attach from a third node replays and follows with the same offsets",
        async () => {
          const r = await a.request("execute", {
            command: "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.2; done",
            node: "b",
            detach: true,
          });
          const id = r.result.execution_id;
          await seen(a, (m) => m.params?.execution_id === id && m.params.data?.includes("line 2"));
          const c = await client("c");
          const attached = await c.request("attach", { execution_id: id, from_seq: 0 });
          assert.equal(attached.result.status, "attached", JSON.stringify(attached));
          assert.equal(attached.result.node, "b");
          const [fromA, fromC] = await Promise.all([collect(a, id), collect(c, id)]);
          const text = (run: { outputs: Msg[] }) =>
            run.outputs.map((o: Msg) => o.params.data).join("");
          const whole = [1, 2, 3, 4, 5, 6].map((i) => `line ${i}\n`).join("");
          assert.equal(text(fromA), whole);
          assert.equal(text(fromC), whole);
          // Chunks may be cut elsewhere (a replay coalesces), but every byte is at its offset.
          for (const o of [...fromA.outputs, ...fromC.outputs]) {
            assert.equal(
              whole.slice(o.params.seq, o.params.seq + o.params.data.length),
              o.params.data,
            );
          }
          assert.equal(fromC.completed.status, "completed");
          assert.equal(fromC.completed.node, "b");
          // `list` on a third node shows a run of another node with its node.
          const running = await a.request("execute", {
            command: "sleep 30",
            node: "b",
            detach: true,
          });
          await eventually(
            async () => {
              const list = await c.request("list", { state: "running" });
              return list.result.executions.some((e: Msg) =>
                e.execution_id === running.result.execution_id && e.node === "b"
              );
            },
            10_000,
            "c to list b's run",
          );
          await a.request("control", { type: "CANCEL", execution_id: running.result.execution_id });
          await collect(a, running.result.execution_id);
        },
      );

      await t.step(
        "MCP: execute by label, start and send_input across nodes, read from a third",
        async () => {
          const mcpA = await connectHttp(nodes.procs.get("a")! as unknown as ServerHandle);
          const mcpC = await connectHttp(nodes.procs.get("c")! as unknown as ServerHandle);
          try {
            const ran = await call(mcpA.client, "execute", {
              command: "echo via-mcp",
              labels: ["gpu"],
            });
            assert.equal(ran.s.node, "b", ran.text);
            assert.match(ran.text, /via-mcp/);
            const started = await call(mcpA.client, "start", {
              command: "read line; echo got:$line",
              node: "c",
              stdin_open: true,
            });
            assert.equal(started.s.node, "c", started.text);
            const id = started.s.execution_id;
            const sent = await call(mcpA.client, "send_input", {
              execution_id: id,
              input: "hello\n",
              close_stdin: true,
            });
            assert.equal(sent.result.isError, undefined, sent.text);
            // From a third node, as the principal's other session would.
            const read = await readToEnd(mcpC.client, id);
            assert.equal(read.stdout, "got:hello\n");
            // A running run of another node is in list_executions, and canceled from there.
            const long = await call(mcpA.client, "start", { command: "sleep 30", node: "b" });
            const listed = await call(mcpC.client, "list_executions", {});
            const entry = listed.s.executions.find((e: Msg) =>
              e.execution_id === long.s.execution_id
            );
            assert.equal(entry?.node, "b", listed.text);
            const canceled = await call(mcpC.client, "control", {
              type: "CANCEL",
              execution_id: long.s.execution_id,
            });
            assert.equal(canceled.s.status, "canceled", canceled.text);
            // What was read from c's control stream (the input's bytes) is not kept there.
            await eventually(
              async () => await redisCli(nodes.redis, "xlen", "cc_executor:node:{c}:ctl") === "0",
              10_000,
              "c's control stream to be emptied",
            );
          } finally {
            await closeHttp(mcpA);
            await closeHttp(mcpC);
          }
        },
      );

      await t.step(
        "a run its own node started is listed, attached and canceled from another",
        async () => {
          const b = await client("b");
          const r = await b.request("execute", {
            command: "echo early; sleep 0.3; echo later; sleep 30",
            detach: true,
          });
          assert.equal(r.result.node, "b");
          const id = r.result.execution_id;
          await seen(b, (m) => m.params?.execution_id === id && m.params.data === "later\n");
          const c = await client("c");
          const list = await c.request("list", { state: "running" });
          const entry = list.result.executions.find((e: Msg) => e.execution_id === id);
          assert.equal(entry?.node, "b", JSON.stringify(list.result));
          const attached = await c.request("attach", { execution_id: id, from_seq: 0 });
          assert.equal(attached.result.node, "b", JSON.stringify(attached));
          assert.equal(attached.result.next_seq, "early\nlater\n".length);
          await seen(c, (m) => m.params?.execution_id === id && m.params.data?.includes("later"));
          assert.equal(
            (await c.request("control", { type: "CANCEL", execution_id: id })).result.status,
            "canceled",
          );
          const [onB, onC] = await Promise.all([collect(b, id), collect(c, id)]);
          assert.equal(onB.completed.status, "canceled");
          assert.equal(onC.completed.status, "canceled");
          assert.equal(onC.outputs.map((o: Msg) => o.params.data).join(""), "early\nlater\n");
          await assertGroupGone(r.result.pgid);
        },
      );

      await t.step(
        "PAUSE on one node, RESUME from another; a late attach sees it paused",
        async () => {
          const r = await a.request("execute", {
            command: "for i in $(seq 1 100); do echo n $i; sleep 0.05; done",
            node: "b",
            detach: true,
          });
          const id = r.result.execution_id;
          await seen(a, (m) => m.params?.execution_id === id && m.params.data?.includes("n 2"));
          assert.equal(
            (await a.request("control", { type: "PAUSE", execution_id: id })).result.status,
            "paused",
          );
          await a.event("paused", id);
          const c = await client("c");
          const attached = await c.request("attach", { execution_id: id, tail_bytes: 0 });
          assert.equal(attached.result.run_status, "paused", JSON.stringify(attached.result));
          assert.equal(
            (await c.request("control", { type: "RESUME", execution_id: id })).result.status,
            "resumed",
          );
          const run = await collect(a, id);
          assert.equal(run.completed.status, "completed");
          assert.ok(run.events.some((e: Msg) => e.method === "process.resumed"));
        },
      );

      await t.step(
        "attach from another node to a node's own run mid-output: the owner's offsets",
        async () => {
          const b = await client("b");
          const r = await b.request("execute", {
            command: "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo done; sleep 30",
            detach: true,
          });
          const id = r.result.execution_id;
          await seen(b, (m) => m.params?.execution_id === id && m.params.data?.includes("done"));
          const c = await client("c");
          const mid = await c.request("attach", { execution_id: id, from_seq: 2_500_000 });
          assert.equal(mid.result.next_seq, 3_000_006, JSON.stringify(mid.result));
          assert.equal(mid.result.from_seq, 2_500_000);
          const c2 = await client("c");
          const tail = await c2.request("attach", { execution_id: id, tail_bytes: 5 });
          assert.equal(tail.result.from_seq, 3_000_001);
          await seen(c2, (m) => m.params?.execution_id === id && m.params.data === "done\n");
          const replayed = c2.pending().filter((m: Msg) => m.method === "process.output");
          assert.equal(replayed.map((m: Msg) => m.params.data).join(""), "done\n");
          await b.request("control", { type: "CANCEL", execution_id: id });
          await collect(b, id);
        },
      );

      await t.step("history is shared: a run on b is in c's history", async () => {
        const r = await a.request("execute", { command: "echo shared-history-marker", node: "b" });
        await collect(a, r.result.execution_id);
        const c = await client("c");
        await eventually(
          async () => {
            const h = await c.request("history", { limit: 50 });
            return h.result.records.some((x: Msg) => x.execution_id === r.result.execution_id);
          },
          10_000,
          "the record in c's history",
        );
      });

      await t.step("kill -9 of a node mid-run: lost at the client, never re-run", async () => {
        const marker = `${dir}/runs-of-lost`;
        const r = await a.request("execute", {
          command: `echo run >> ${marker}; echo started; sleep 60`,
          node: "b",
          timeout: 120,
        });
        await a.next((m) =>
          m.params?.execution_id === r.result.execution_id && m.params.data === "started\n"
        );
        const killedAt = performance.now();
        Deno.kill(nodes.procs.get("b")!.pid, "SIGKILL");
        const run = await collect(a, r.result.execution_id, 30_000);
        const seconds = (performance.now() - killedAt) / 1000;
        assert.equal(run.completed.status, "lost");
        assert.equal(run.completed.node, "b");
        assert.match(run.completed.error, /node b stopped answering/);
        assert.ok(seconds <= 30, `lost after ${seconds} s`);
        await nodes.procs.get("b")!.stop();
        // Back with the same id: crash recovery ends what it left, and nothing runs again.
        await startNode(nodes, "b");
        await assertGroupGone(r.result.pgid, 15_000);
        await allSee(nodes, ["a", "b", "c"]);
        assert.equal(await Deno.readTextFile(marker), "run\n");
        const h = await a.request("history", { limit: 50 });
        const records = h.result.records.filter((x: Msg) =>
          x.execution_id === r.result.execution_id
        );
        // Declared lost by a sweep, and found again by b's crash recovery: recorded once.
        assert.deepEqual(records.map((x: Msg) => x.status), ["lost"]);
      });

      await t.step(
        "a detached run whose starting node dies gets its detach clock where it runs",
        async () => {
          const d = await startNode(nodes, "d");
          const viaD = await open(d);
          const r = await viaD.request("execute", {
            command: "echo started; sleep 120",
            node: "b",
            detach: true,
            detach_timeout: 2,
          });
          assert.equal(r.result.node, "b", JSON.stringify(r));
          await viaD.next((m) =>
            m.params?.execution_id === r.result.execution_id && m.params.data === "started\n"
          );
          Deno.kill(d.pid, "SIGKILL");
          await d.stop();
          nodes.procs.delete("d");
          await assertGroupGone(r.result.pgid, 40_000);
        },
      );

      await t.step(
        "two processes with one node id: the second waits, the first runs on",
        async () => {
          const twin = await spawnServer({
            "redis-url": nodes.redis.url,
            "node-id": "b",
            "node-labels": "b,gpu",
            "data-dir": `${dir}/b-twin`,
            "ws-ping-interval": "0",
          });
          try {
            await eventually(
              () => twin.output().includes("Another process is running as node"),
              15_000,
              "the twin to wait",
            );
            const r = await a.request("execute", { command: "sleep 4; echo ok", node: "b" });
            const run = await collect(a, r.result.execution_id);
            assert.equal(run.completed.status, "completed");
            assert.ok(!nodes.procs.get("b")!.output().includes("declared dead"));
          } finally {
            await twin.stop();
          }
        },
      );

      await t.step(
        "a fence without a sweep (epoch raised) still ends the run lost for its followers",
        async () => {
          const r = await a.request("execute", { command: "echo started; sleep 60", node: "c" });
          const id = r.result.execution_id;
          await a.next((m) => m.params?.execution_id === id && m.params.data === "started\n");
          await redisCli(nodes.redis, "incr", "cc_executor:node:{c}:epoch");
          const run = await collect(a, id, 20_000);
          assert.equal(run.completed.status, "lost");
          await assertGroupGone(r.result.pgid);
          await allSee(nodes, ["a", "b", "c"]);
        },
      );

      await t.step(
        "a node cut off and declared dead ends what it still runs when it returns",
        async () => {
          const r = await a.request("execute", { command: "echo started; sleep 60", node: "c" });
          await a.next((m) =>
            m.params?.execution_id === r.result.execution_id && m.params.data === "started\n"
          );
          const c = nodes.procs.get("c")!;
          Deno.kill(c.pid, "SIGSTOP");
          try {
            const run = await collect(a, r.result.execution_id, 30_000);
            assert.equal(run.completed.status, "lost");
          } finally {
            Deno.kill(c.pid, "SIGCONT");
          }
          // Its heartbeat finds its epoch raised: it kills the group it still holds.
          await assertGroupGone(r.result.pgid, 15_000);
          await eventually(() => c.output().includes("declared dead"), 10_000, "c to say so");
        },
      );

      await t.step(
        "a frozen Redis: a remote start fails within seconds and never runs later",
        async () => {
          const marker = `${dir}/ran-after-freeze`;
          nodes.redis.freeze(true);
          let reply: Msg;
          const asked = performance.now();
          try {
            reply = await a.request("execute", { command: `touch ${marker}`, node: "b" });
          } finally {
            nodes.redis.freeze(false);
          }
          assert.equal(reply.error?.code, -32006, JSON.stringify(reply));
          assert.ok(performance.now() - asked < 10_000);
          // Thawed: the job may be read now, but its deadline has passed.
          await allSee(nodes, ["a", "b", "c"]);
          const r = await a.request("execute", { command: "echo after", node: "b" });
          await collect(a, r.result.execution_id);
          assert.equal(await Deno.stat(marker).then(() => true, () => false), false);
        },
      );

      await t.step(
        "Redis restarting under a run: the run ends whole; remote starts fail clearly meanwhile",
        async () => {
          await allSee(nodes, ["a", "b", "c"]);
          const r = await a.request("execute", {
            command: "for i in $(seq 1 80); do echo tick $i; sleep 0.1; done",
            node: "b",
          });
          const id = r.result.execution_id;
          await seen(a, (m) => m.params?.execution_id === id && m.params.data?.includes("tick 3"));
          await nodes.redis.stop();
          const down = await a.request("execute", { command: "true", node: "b" });
          assert.equal(down.error.code, -32006, JSON.stringify(down));
          const local = await a.request("execute", { command: "echo local" });
          assert.equal(local.result.status, "started");
          nodes.redis = await RedisServer.start(nodes.redis.port);
          // Redis came back empty: b describes its run again, and c finds it.
          const c = await client("c");
          await eventually(
            async () => {
              const attached = await c.request("attach", { execution_id: id, tail_bytes: 0 });
              return attached.result?.node === "b";
            },
            20_000,
            "c to find b's run again",
          );
          const [run, fromC] = await Promise.all([collect(a, id, 30_000), collect(c, id, 30_000)]);
          const text = run.outputs.map((o: Msg) => o.params.data).join("");
          assert.equal(text, Array.from({ length: 80 }, (_, i) => `tick ${i + 1}\n`).join(""));
          assert.equal(run.completed.status, "completed");
          assert.equal(fromC.completed.status, "completed");
          await allSee(nodes, ["a", "b", "c"]);
          const after = await a.request("execute", { command: "echo again", node: "c" });
          assert.equal(after.result.node, "c", JSON.stringify(after));
          await collect(a, after.result.execution_id);
        },
      );
    } finally {
      for (const c of clients) await c.close().catch(() => {});
      for (const p of nodes.procs.values()) {
        try {
          Deno.kill(p.pid, "SIGCONT");
        } catch {
          // gone
        }
        await p.stop();
      }
      await nodes.redis.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
