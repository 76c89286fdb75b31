/**
 * Durable runs over the legacy protocol, against a real server: `detach`,
 * `attach` from any byte offset (replay, then live), `process.gap` for a
 * range that is gone, `list`, INTERRUPT and SIGNAL, `detach-timeout`, and
 * one tenant's runs out of another's reach.
 *
 * @module
 */
import assert from "node:assert/strict";
import { eventually, type Msg, TestClient, testServer, withServer } from "../_helpers.ts";
import { RawWebSocket } from "../_raw_ws.ts";
import type { ServerHandle } from "../../main.ts";

/** `seq 1 n` as the command prints it. */
function seqText(n: number): string {
  let out = "";
  for (let i = 1; i <= n; i++) out += `${i}\n`;
  return out;
}

/**
 * Sends `attach` and collects what follows up to `process.completed`:
 * output in order, gaps, and a check that offsets are contiguous.
 */
async function attachToEnd(client: TestClient, executionId: string, fromSeq?: number) {
  const reply = await client.request("attach", {
    execution_id: executionId,
    ...(fromSeq !== undefined ? { from_seq: fromSeq } : {}),
  });
  assert.equal(reply.error, undefined, JSON.stringify(reply.error));
  const gaps: Msg[] = [];
  let stdout = "";
  let stderr = "";
  let expected: number | null = null;
  let firstSeq: number | null = null;
  let bytes = 0;
  for (;;) {
    const m = await client.next((x) => x.params?.execution_id === executionId, 30_000);
    if (m.method === "process.gap") {
      gaps.push(m.params);
      expected = m.params.to;
      continue;
    }
    if (m.method === "process.output") {
      firstSeq ??= m.params.seq;
      if (expected !== null) assert.equal(m.params.seq, expected, "offsets are contiguous");
      const n = new TextEncoder().encode(m.params.data).length;
      expected = m.params.seq + n;
      bytes += n;
      if (m.params.type === "stdout") stdout += m.params.data;
      else stderr += m.params.data;
      continue;
    }
    if (m.method === "process.completed") {
      return { reply: reply.result, gaps, stdout, stderr, firstSeq, bytes, completed: m.params };
    }
  }
}

/** Connects a raw socket and starts a detached run on it; returns both. */
async function startDetachedRaw(server: ServerHandle, params: Record<string, unknown>) {
  const raw = await RawWebSocket.connect(server.wsUrl);
  const connected = JSON.parse(await raw.readText());
  assert.equal(connected.method, "connected");
  await raw.sendText(JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "execute",
    params: { ...params, detach: true },
  }));
  for (;;) {
    const m = JSON.parse(await raw.readText());
    if (m.id === 1) {
      assert.equal(m.result.detached, true);
      return { raw, executionId: m.result.execution_id as string };
    }
  }
}

Deno.test("detach, drop the socket without a close frame, attach from 0: a byte-exact 2 MB replay", async () => {
  await withServer({}, async (server) => {
    // The client reads nothing and then vanishes: no close frame, no FIN handshake.
    const { raw, executionId } = await startDetachedRaw(server, { command: "seq 1 300000" });
    raw.close();
    await eventually(() => server.sessions.size === 0, 20_000, "the server to see the drop");
    const exec = server.registry.get(executionId)!;
    assert.ok(exec !== undefined);
    const client = await TestClient.open(server);
    const got = await attachToEnd(client, executionId, 0);
    const expected = seqText(300000);
    assert.equal(got.gaps.length, 0);
    assert.equal(got.firstSeq, 0);
    assert.equal(got.stdout.length, expected.length);
    assert.ok(got.stdout === expected, "the replay is byte-exact");
    assert.equal(got.completed.status, "completed", "the run was never ended for the drop");
    assert.equal(got.completed.exit_code, 0);
    await client.close();
  });
});

Deno.test("attach mid-run from an offset continues exactly where the first client stopped", async () => {
  await withServer({}, async (server) => {
    const a = await TestClient.open(server);
    const started = await a.request("execute", {
      command: "for i in $(seq 1 150); do echo line$i; sleep 0.01; done",
      detach: true,
    });
    const id = started.result.execution_id;
    let seen = "";
    let next = 0;
    while (!seen.includes("line20\n")) {
      const m = await a.event("output", id);
      assert.equal(m.params.seq, next);
      seen += m.params.data;
      next += new TextEncoder().encode(m.params.data).length;
    }
    await a.close();
    const b = await TestClient.open(server);
    const rest = await attachToEnd(b, id, next);
    assert.equal(rest.reply.status, "attached");
    assert.equal(rest.firstSeq, next, "the replay starts at the offset asked for");
    let expected = "";
    for (let i = 1; i <= 150; i++) expected += `line${i}\n`;
    assert.equal(seen + rest.stdout, expected);
    assert.equal(rest.completed.status, "completed");
    // Attaching again to the ended run replays it whole, while it is retained.
    const again = await attachToEnd(b, id);
    assert.equal(again.reply.state, "ended");
    assert.equal(again.stdout, expected);
    await b.close();
  });
});

Deno.test("attach to a range that is gone sends process.gap first, then what is retained", async () => {
  await withServer({ "output-retention": "4096", "output-spill": "false" }, async (server) => {
    const a = await TestClient.open(server);
    const run = await a.run({ command: "seq 1 20000", detach: true });
    assert.equal(run.completed.status, "completed");
    const expected = seqText(20000);
    const got = await attachToEnd(a, run.result.execution_id, 0);
    assert.equal(got.gaps.length, 1);
    const gap = got.gaps[0]!;
    assert.equal(gap.from, 0);
    assert.equal(gap.to, got.reply.oldest_seq);
    assert.ok(gap.to > 0 && gap.to <= expected.length - 4096 + 16, `gap to ${gap.to}`);
    assert.equal(got.firstSeq, gap.to);
    assert.equal(got.reply.next_seq, expected.length);
    assert.equal(got.stdout, expected.slice(gap.to), "what is retained is replayed exactly");
    // From an offset still retained there is no gap.
    const tail = await attachToEnd(a, run.result.execution_id, expected.length - 100);
    assert.equal(tail.gaps.length, 0);
    assert.equal(tail.stdout, expected.slice(-100));
    await a.close();
  });
});

Deno.test("list shows state, status, pid, timing, exit, detached, attached and node", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const a = await TestClient.open(server);
    const done = await a.run({ command: "exit 3", detach: true });
    const live = await a.request("execute", { args: ["sleep", "1000"], detach: true });
    const liveId = live.result.execution_id;
    await a.event("started", liveId);
    const all = (await a.request("list", {})).result.executions;
    const byId = new Map(all.map((e: Msg) => [e.execution_id, e]));
    const ended = byId.get(done.result.execution_id) as Msg;
    assert.equal(ended.state, "ended");
    assert.equal(ended.status, "failed");
    assert.equal(ended.exit_code, 3);
    assert.equal(ended.signal, null);
    assert.equal(ended.node, null);
    assert.equal(ended.detached, true);
    assert.equal(typeof ended.duration_s, "number");
    assert.ok(!Number.isNaN(Date.parse(ended.started_at)));
    const running = byId.get(liveId) as Msg;
    assert.equal(running.state, "running");
    assert.equal(running.attached, true, "its starting connection follows it");
    assert.equal(running.pid, live.result.pid);
    await a.close();
    const b = await TestClient.open(server);
    const onlyRunning = (await b.request("list", { state: "running" })).result.executions;
    assert.deepEqual(onlyRunning.map((e: Msg) => e.execution_id), [liveId]);
    assert.equal(onlyRunning[0].attached, false, "nobody follows it after the disconnect");
    const health = await (await fetch(`${server.httpUrl}/health`)).json();
    assert.deepEqual(health.detached_executions, { running: 1, unattached: 1 });
    const endedOnly = (await b.request("list", { state: "ended" })).result.executions;
    assert.deepEqual(endedOnly.map((e: Msg) => e.execution_id), [done.result.execution_id]);
    // A run is controlled from any connection of its principal; followers hear of it.
    const follower = await TestClient.open(server);
    await follower.request("attach", { execution_id: liveId });
    const cancel = await b.request("control", { type: "CANCEL", execution_id: liveId });
    assert.equal(cancel.result.status, "canceled");
    assert.equal((await follower.event("canceled", liveId)).params.status, "canceled");
    assert.equal((await follower.event("completed", liveId)).params.status, "canceled");
    await b.event("canceled", liveId);
    await follower.close();
    await b.close();
  });
});

Deno.test("control INTERRUPT ends sleep with SIGINT; SIGNAL sends the signal named", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const started = await client.request("execute", { args: ["sleep", "1000"] });
    const id = started.result.execution_id;
    await client.event("started", id);
    const r = await client.request("control", { type: "INTERRUPT" });
    assert.deepEqual(r.result, { status: "interrupted" });
    const done = await client.event("completed", id);
    assert.equal(done.params.signal, "SIGINT");
    assert.equal(done.params.status, "failed");

    const second = await client.request("execute", { args: ["sleep", "1000"] });
    const id2 = second.result.execution_id;
    await client.event("started", id2);
    const bad = await client.request("control", { type: "SIGNAL", execution_id: id2 });
    assert.equal(bad.error.code, -32602);
    assert.equal(bad.error.data.field, "signal");
    const wrong = await client.request("control", { type: "SIGNAL", signal: "STOPALL" });
    assert.equal(wrong.error.code, -32602);
    const sent = await client.request("control", { type: "SIGNAL", signal: "usr1" });
    assert.deepEqual(sent.result, { status: "signaled", signal: "SIGUSR1" });
    assert.equal((await client.event("completed", id2)).params.signal, "SIGUSR1");
    const none = await client.request("control", { type: "INTERRUPT" });
    assert.equal(none.error.code, -32002);
    await client.close();
  });
});

Deno.test("a detached run nobody attaches to is canceled after detach-timeout; an attached one is not", async () => {
  await withServer({ "detach-timeout": "2", "kill-grace": "0.5" }, async (server) => {
    const a = await TestClient.open(server);
    const left = await a.request("execute", { args: ["sleep", "1000"], detach: true });
    const leftId = left.result.execution_id;
    await a.close();
    const exec = server.registry.get(leftId)!;
    const exit = await exec.done;
    assert.equal(exit.status, "canceled");
    assert.match(exit.error!, /detach-timeout/);

    const b = await TestClient.open(server);
    // Outlives two timeouts while attached, and ends by itself.
    const kept = await b.request("execute", { args: ["sleep", "5"], detach: true });
    const keptId = kept.result.execution_id;
    await b.close();
    const c = await TestClient.open(server);
    await c.request("attach", { execution_id: keptId });
    const end = await c.event("completed", keptId);
    assert.equal(end.params.status, "completed");
    await c.close();
  });
});

Deno.test("without detach a disconnect still ends the run, as in the original", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const a = await TestClient.open(server);
    const r = await a.request("execute", { args: ["sleep", "1000"] });
    assert.equal(r.result.detached, undefined);
    await a.event("started", r.result.execution_id);
    const exec = server.registry.get(r.result.execution_id)!;
    await a.close();
    assert.equal((await exec.done).status, "canceled");
  });
});

Deno.test("another principal's runs cannot be attached to or listed; an admin's list has all", async () => {
  const keys = "alice:alice-key,bob:bob-key,ops:ops-key:admin";
  await withServer({ "api-keys": keys, "kill-grace": "0.5" }, async (server) => {
    const as = (key: string) =>
      TestClient.connect(server.wsUrl, undefined, { authorization: `Bearer ${key}` });
    const alice = await as("alice-key");
    await alice.next((m) => m.method === "connected");
    const run = await alice.request("execute", { args: ["sleep", "1000"], detach: true });
    const id = run.result.execution_id;
    const bob = await as("bob-key");
    await bob.next((m) => m.method === "connected");
    const theirs = await bob.request("attach", { execution_id: id });
    const unknown = crypto.randomUUID();
    const none = await bob.request("attach", { execution_id: unknown });
    assert.equal(theirs.error.code, -32002);
    assert.equal(theirs.error.message.replace(id, "ID"), none.error.message.replace(unknown, "ID"));
    assert.deepEqual((await bob.request("list", {})).result.executions, []);
    const ops = await as("ops-key");
    await ops.next((m) => m.method === "connected");
    const listed = (await ops.request("list", {})).result.executions;
    assert.deepEqual(listed.map((e: Msg) => [e.execution_id, e.principal]), [[id, "alice"]]);
    await ops.request("control", { type: "CANCEL", execution_id: id });
    await alice.event("completed", id);
    for (const c of [alice, bob, ops]) await c.close();
  });
});

Deno.test("max-detached-per-principal bounds a principal's detached runs over all its connections", async () => {
  await withServer({ "max-detached-per-principal": "2", "kill-grace": "0.5" }, async (server) => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await TestClient.open(server);
      const r = await c.request("execute", { args: ["sleep", "1000"], detach: true });
      ids.push(r.result.execution_id);
      await c.close();
    }
    const c = await TestClient.open(server);
    const refused = await c.request("execute", { args: ["sleep", "1000"], detach: true });
    assert.equal(refused.error.code, -32602);
    assert.match(refused.error.message, /max-detached-per-principal/);
    // A run that is not detached is not counted.
    const plain = await c.request("execute", { args: ["true"] });
    assert.equal(plain.error, undefined);
    await c.event("completed", plain.result.execution_id);
    await c.request("control", { type: "CANCEL", execution_id: ids[0] });
    await server.registry.get(ids[0]!)!.done;
    const room = await c.request("execute", { args: ["true"], detach: true });
    assert.equal(room.error, undefined, JSON.stringify(room.error));
    await c.request("control", { type: "CANCEL", execution_id: ids[1] });
    await c.close();
  });
});

Deno.test("a client that never reads cannot pile up replays or list replies in the server", async () => {
  await withServer({}, async (server) => {
    const a = await TestClient.open(server);
    const run = await a.run({ command: "seq 1 600000", detach: true }, 30_000);
    const raw = await RawWebSocket.connect(server.wsUrl);
    for (let i = 0; i < 200; i++) {
      await raw.sendText(JSON.stringify({
        jsonrpc: "2.0",
        id: i,
        method: i % 2 === 0 ? "attach" : "list",
        params: i % 2 === 0 ? { execution_id: run.result.execution_id, from_seq: 0 } : {},
      }));
    }
    // The server goes on serving others meanwhile; what it queues for the reader stays bounded.
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      assert.deepEqual((await a.request("ping")).result, {});
      const h = await (await fetch(`${server.httpUrl}/health`)).json();
      peak = Math.max(peak, h.queued_bytes);
    }
    // Unbounded, 100 replays of 4.5 MB would queue 450 MB.
    assert.ok(peak < 8 * 1024 * 1024, `queued ${peak} bytes`);
    raw.close();
    await a.close();
  });
});

Deno.test("list entries carry a bounded command, newest `limit` of them, and the total", async () => {
  await withServer({}, async (server) => {
    const c = await TestClient.open(server);
    const long = `true ${"x".repeat(5000)}`;
    for (let i = 0; i < 3; i++) await c.run({ command: long, detach: true });
    const r = (await c.request("list", { limit: 2 })).result;
    assert.equal(r.total, 3);
    assert.equal(r.executions.length, 2);
    for (const e of r.executions) assert.ok(e.command.length <= 1001, `${e.command.length}`);
    await c.close();
  });
});

Deno.test("max-detached-per-principal holds against starts from many connections at once", async () => {
  await withServer({ "max-detached-per-principal": "3", "kill-grace": "0.5" }, async (server) => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.open(server)));
    const replies = await Promise.all(
      clients.map((c) => c.request("execute", { args: ["sleep", "1000"], detach: true })),
    );
    const accepted = replies.filter((r) => r.result !== undefined);
    assert.equal(accepted.length, 3);
    for (const r of replies) if (r.error) assert.match(r.error.message, /max-detached/);
    for (const r of accepted) {
      await clients[0]!.request("control", { type: "CANCEL", execution_id: r.result.execution_id });
    }
    await Promise.all(accepted.map((r) => server.registry.get(r.result.execution_id)!.done));
    for (const c of clients) await c.close();
  });
});

Deno.test("offsets count the child's bytes: `bytes` on each message, attach inside a character starts at the next", async () => {
  await withServer({}, async (server) => {
    const c = await TestClient.open(server);
    const bad = await c.run({ command: "printf 'ab\\377\\376cd\\n'; printf 'step 1 é€\\n' >&2" });
    const outs = bad.events.filter((e) => e.method === "process.output");
    const first = outs[0]!.params;
    assert.equal(first.data, "ab\ufffd\ufffdcd\n");
    assert.equal(first.bytes, 7, "the child wrote 7 bytes, whatever the text's length");
    assert.equal(outs[1]!.params.seq, first.seq + first.bytes);
    // "step 1 é€\n" starts at 7: é is bytes 14-15, € 16-18.
    const mid = await c.request("attach", { execution_id: bad.result.execution_id, from_seq: 15 });
    assert.equal(mid.result.from_seq, 16);
    const m = await c.event("output", bad.result.execution_id);
    assert.equal(m.params.seq, 16);
    assert.equal(m.params.data, "€\n");
    await c.event("completed", bad.result.execution_id);
    const past = await c.request("attach", { execution_id: bad.result.execution_id, from_seq: 99 });
    assert.equal(past.error.code, -32602);
    assert.equal(past.error.data.field, "from_seq");
    assert.equal(past.error.data.next_seq, 20);
    await c.close();
  });
});

Deno.test("at shutdown a client attached to a detached run still gets its process.completed", async () => {
  const server = await testServer({ "kill-grace": "0.5" });
  try {
    const a = await TestClient.open(server);
    const r = await a.request("execute", { args: ["sleep", "1000"], detach: true });
    const id = r.result.execution_id;
    await a.close();
    const b = await TestClient.open(server);
    await b.request("attach", { execution_id: id });
    const stopping = server.shutdown();
    const done = await b.event("completed", id);
    assert.equal(done.params.status, "canceled");
    assert.match(done.params.error, /shutting down/);
    await stopping;
    await b.closed;
  } finally {
    await server.shutdown();
  }
});

Deno.test("limits beyond what one timer holds (24.8 days) do not fire at once", async () => {
  const month = String(30 * 86400);
  await withServer({ "detach-timeout": month, "max-timeout": month }, async (server) => {
    const a = await TestClient.open(server);
    const long = await a.run({ args: ["sleep", "0.3"], timeout: 30 * 86400 - 1 });
    assert.equal(long.completed.status, "completed", long.completed.error);
    const r = await a.request("execute", { args: ["sleep", "1000"], detach: true });
    const id = r.result.execution_id;
    await a.close();
    // Its session is gone: the detach clock runs, a month long.
    await eventually(() => server.sessions.size === 0, 10_000, "the session to end");
    const b = await TestClient.open(server);
    const [entry] = (await b.request("list", { state: "running" })).result.executions;
    assert.equal(entry.execution_id, id, "still running after its connection left");
    await b.request("control", { type: "CANCEL", execution_id: id });
    const exit = await server.registry.get(id)!.done;
    assert.equal(exit.error, "Canceled by client");
    await b.close();
  });
});

Deno.test("a run being canceled can still be sent KILL, and a second CANCEL is not announced twice", async () => {
  await withServer({ "kill-grace": "30" }, async (server) => {
    const c = await TestClient.open(server);
    const r = await c.request("execute", { command: "trap '' TERM; echo armed; sleep 1000" });
    const id = r.result.execution_id;
    await c.event("output", id);
    assert.equal((await c.request("control", { type: "CANCEL" })).result.status, "canceled");
    await c.event("canceled", id);
    assert.equal((await c.request("control", { type: "CANCEL" })).result.status, "canceled");
    // Not 30 s of grace: KILL now.
    const kill = await c.request("control", { type: "SIGNAL", signal: "KILL", execution_id: id });
    assert.deepEqual(kill.result, { status: "signaled", signal: "SIGKILL" });
    const done = await c.event("completed", id);
    assert.equal(done.params.status, "canceled");
    assert.equal(c.pending().filter((m) => m.method === "process.canceled").length, 0);
    await c.close();
  });
});
