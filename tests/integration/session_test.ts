import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config/config.ts";
import {
  assertGroupGone,
  eventually,
  pidsWithMarker,
  TestClient,
  withServer,
} from "../_helpers.ts";
import { makeSessionManager } from "../_session.ts";

/** Session limits for tests that build a SessionManager by hand. */
const SESSION_CONFIG = {
  // What Session.execute resolves requests with; the rest as the test needs.
  ...loadConfig({ getEnv: () => undefined }),
  maxExecutionsPerSession: 1,
  chunkSize: 65536,
  lineLimit: 65536,
  flushInterval: 5,
  killGrace: 1,
  orphanGrace: 1,
  outputRetention: 65536,
};

Deno.test("over the session limit: -32003 without id, then close 1008", async () => {
  await withServer({ "max-sessions": "2" }, async (server) => {
    const a = await TestClient.open(server);
    const b = await TestClient.open(server);
    const c = await TestClient.connect(server.wsUrl);
    const refusal = await c.next();
    assert.deepEqual(refusal, {
      jsonrpc: "2.0",
      error: { code: -32003, message: "Session limit exceeded", data: null },
    });
    assert.equal((await c.closed).code, 1008);
    const health = await (await fetch(`${server.httpUrl}/health`)).json();
    assert.equal(health.active_sessions, 2);
    assert.equal(health.sessions_refused, 1);
    // A freed slot can be used again.
    await a.close();
    await eventually(() => server.sessions.size === 1);
    const d = await TestClient.open(server);
    await d.close();
    await b.close();
  });
});

Deno.test("an idle session expires and is closed; a running one does not", async () => {
  await withServer({ "session-timeout": "1" }, async (server) => {
    const idle = await TestClient.open(server);
    const busy = await TestClient.open(server);
    const r = await busy.request("execute", { command: "sleep 2; echo still here" });
    const closed = await idle.closed;
    assert.equal(closed.code, 1000);
    assert.equal(closed.reason, "Session expired");
    const done = await busy.event("completed", r.result.execution_id);
    assert.equal(done.params.status, "completed");
    assert.equal(busy.ws.readyState, WebSocket.OPEN);
    await busy.close();
  });
});

Deno.test("a client disconnect ends every process group it started, grandchildren too", async () => {
  await withServer({ "kill-grace": "0.5", "max-executions-per-session": "2" }, async (server) => {
    const client = await TestClient.open(server);
    const a = await client.request("execute", { command: "sleep 1000 & sleep 1000 & wait" });
    const b = await client.request("execute", {
      command: "trap '' TERM; (trap '' TERM; sleep 1000) & wait",
    });
    await client.event("started", a.result.execution_id);
    await client.event("started", b.result.execution_id);
    await new Promise((r) => setTimeout(r, 100)); // let the shells fork
    client.ws.close();
    await assertGroupGone(a.result.pgid);
    await assertGroupGone(b.result.pgid);
    await eventually(() => server.registry.runningCount === 0);
    await eventually(() => server.sessions.size === 0);
  });
});

Deno.test("processes a finished command left behind are ended too", async () => {
  await withServer({ "orphan-grace": "0.2", "kill-grace": "0.5" }, async (server) => {
    const client = await TestClient.open(server);
    // The background sleep keeps stdout open; the one writing to /dev/null does not.
    const run = await client.run({
      command: "sleep 1000 & sleep 1000 >/dev/null 2>&1 & echo leader done",
    });
    assert.equal(run.completed.status, "completed");
    assert.equal(run.stdout, "leader done\n");
    await assertGroupGone(run.result.pgid);
    await client.close();
  });
});

Deno.test("a process that escapes the group (setsid) cannot hold a run open forever", async () => {
  // Process groups only: a run's cgroup would end the escapee (tests/integration/cgroup_test.ts).
  const flags = { "orphan-grace": "0.2", "kill-grace": "0.2", "cgroup-root": "off" };
  await withServer(flags, async (server) => {
    const client = await TestClient.open(server);
    // A unique duration doubles as a marker to find the process by.
    const marker = `1000.${String(Date.now() % 1e6).padStart(6, "0")}`;
    try {
      // setsid leaves our process group but keeps the run's stdout open.
      const run = await client.run({ command: `setsid sleep ${marker} & echo hi` }, 15_000);
      assert.equal(run.completed.status, "completed");
      assert.equal(run.stdout, "hi\n");
      assert.ok((await pidsWithMarker(marker)).length > 0, "the escapee really held stdout");
    } finally {
      for (const pid of await pidsWithMarker(marker)) Deno.kill(pid, "SIGKILL");
    }
    await client.close();
  });
});

Deno.test("sessions removed concurrently by expiry and disconnect are counted once", async () => {
  const { manager } = makeSessionManager({ maxSessions: 1000, sessionTimeoutMs: 0 }, {
    config: SESSION_CONFIG,
    registry: { retentionSeconds: 60, maxRetained: 100 },
  });
  let closes = 0;
  const sessions = Array.from({ length: 200 }, () => manager.open(() => closes++));
  assert.equal(manager.size, 200);
  // Expiry (timeout 0: every idle session is due) races with removal from both ends.
  const removals = sessions.flatMap((s, i) => i % 2 ? [manager.remove(s)] : []);
  const expired = manager.sweep(performance.now() + 1);
  await Promise.all([...removals, ...sessions.map((s) => manager.remove(s))]);
  assert.equal(manager.size, 0);
  assert.equal(expired, 100, "only sessions still present expire");
  assert.equal(closes, 100, "each expired connection is closed exactly once");
  // The limit counts correctly afterwards.
  const again = manager.open(() => {});
  assert.equal(manager.size, 1);
  await manager.remove(again);
});

Deno.test("keep-alive pings go out, and a client that never answers keeps receiving output", async () => {
  await withServer({ "ws-ping-interval": "0.1" }, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", {
      command: "for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.1; done",
    });
    const done = await client.event("completed", r.result.execution_id);
    assert.equal(done.params.status, "completed");
    const pings = client.received.filter((t) => t.includes('"method":"ping"'));
    assert.ok(pings.length >= 4, `only ${pings.length} pings`);
    const ping = JSON.parse(pings[0]!);
    assert.equal(typeof ping.params.timestamp, "number");
    assert.equal("id" in ping, false);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    await client.close();
  });
});

Deno.test("the /ws alias speaks the same protocol; a plain GET gets 426", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.connect(server.wsUrl.replace("/ws/mcp", "/ws"));
    assert.equal((await client.next()).method, "connected");
    const run = await client.run({ command: "echo alias" });
    assert.equal(run.stdout, "alias\n");
    await client.close();
    const res = await fetch(`${server.httpUrl}/ws/mcp`);
    assert.equal(res.status, 426);
    await res.body?.cancel();
  });
});

Deno.test("Session.get() and executions() see the principal's runs, finished ones too, and no one else's", async () => {
  const { manager } = makeSessionManager({ maxSessions: 2, sessionTimeoutMs: 60_000 }, {
    config: { ...SESSION_CONFIG, killGrace: 0.5, orphanGrace: 0.5 },
  });
  const spec = (argv: string[]) => ({
    argv,
    display: argv.join(" "),
    env: { PATH: "/usr/bin:/bin" },
    timeout: 10,
    timeoutSource: "request" as const,
    idleTimeout: null,
    framing: "chunk" as const,
  });
  const sink = { emit: () => {}, ready: () => Promise.resolve() };
  const mine = manager.open(() => {});
  const theirs = manager.open(() => {}, { id: "bob", admin: false });
  const a = await mine.start(spec(["true"]), sink);
  a.run();
  await a.done;
  assert.equal(mine.maxExecutions, 1);
  mine.maxExecutions = 2;
  const b = await mine.start(spec(["sleep", "1000"]), sink);
  const c = await mine.start(spec(["sleep", "1000"]), sink);
  await assert.rejects(mine.start(spec(["true"]), sink), { code: -32602 });
  const other = await theirs.start(spec(["true"]), sink);
  assert.equal(mine.get(a.id), a, "a finished run is still found");
  assert.equal(mine.get(other.id), undefined);
  assert.equal(theirs.get(a.id), undefined);
  assert.deepEqual(mine.executions(), [a, b, c]);
  assert.deepEqual(theirs.executions(), [other]);
  await manager.remove(mine);
  await manager.remove(theirs);
  assert.equal(b.state, "canceled");
});

Deno.test("at the session limit a new MCP HTTP session takes the place of its principal's idle one, never another's or a busy one", async () => {
  const { manager } = makeSessionManager({
    maxSessions: 3,
    sessionTimeoutMs: 60_000,
    reclaimIdleMs: 0,
  });
  const closed: string[] = [];
  const open = (name: string, principal?: { id: string; admin: boolean }, reclaim = true) => {
    const s = manager.open(() => void closed.push(name), principal, { reclaim });
    s.reclaimable = reclaim;
    return s;
  };
  const bob = { id: "bob", admin: false };
  const theirs = open("bob's", bob);
  const busy = open("busy");
  const release = busy.hold();
  const legacy = open("legacy", undefined, false);
  // Full: only a reclaimable, idle session of the same principal may go.
  assert.throws(() => open("new"), { code: -32003 });
  release();
  const fresh = open("new");
  assert.deepEqual(closed, ["busy"]);
  assert.equal(manager.get(busy.id), undefined);
  assert.ok(manager.get(theirs.id) && manager.get(legacy.id) && manager.get(fresh.id));
  // A legacy session is never reclaimed for one, whatever its principal.
  assert.throws(() => manager.open(() => {}, bob, { reclaim: false }), { code: -32003 });
  // bob's newcomer takes bob's own idle session, not local's (local holds only one more than bob).
  const bobs = manager.open(() => {}, bob, { reclaim: true });
  bobs.reclaimable = true;
  assert.deepEqual(closed, ["busy", "bob's"]);
  // carol holds none and local two: local's idle one makes room for her.
  const carol = manager.open(() => {}, { id: "carol", admin: false }, { reclaim: true });
  assert.deepEqual(closed, ["busy", "bob's", "new"]);
  // Now each holds one: nobody's session is taken for a fourth principal.
  assert.throws(() => manager.open(() => {}, { id: "dave", admin: false }, { reclaim: true }), {
    code: -32003,
  });
  for (const s of [bobs, legacy, carol]) await manager.remove(s);
});

Deno.test("a tenant that fills every session with idle MCP HTTP ones cannot keep another out", async () => {
  const { manager } = makeSessionManager({
    maxSessions: 4,
    sessionTimeoutMs: 60_000,
    reclaimIdleMs: 0,
  });
  const closed: string[] = [];
  const hog = { id: "hog", admin: false };
  const sessions = [0, 1, 2, 3].map((i) => {
    const s = manager.open(() => void closed.push(`hog${i}`), hog, { reclaim: true });
    s.reclaimable = true;
    return s;
  });
  const bob = manager.open(() => void closed.push("bob"), { id: "bob", admin: false }, {
    reclaim: true,
  });
  assert.deepEqual(closed.length, 1, "one of the hog's idle sessions made room");
  assert.ok(manager.get(bob.id));
  for (const s of [...sessions, bob]) await manager.remove(s);
});
