import assert from "node:assert/strict";
import { assertGroupGone, eventually, groupHas, spawnServer, TestClient } from "../_helpers.ts";

Deno.test("SIGTERM drains: 503 draining, new sessions refused, every group gone, exit 0", async () => {
  const server = await spawnServer({ "kill-grace": "1.5", "max-executions-per-session": "2" });
  try {
    const client = await TestClient.connect(server.wsUrl);
    assert.equal((await client.next()).method, "connected");
    const plain = await client.request("execute", { command: "sleep 1000 & sleep 1000 & wait" });
    // This one ignores SIGTERM, so draining lasts the kill grace and can be observed.
    const stubborn = await client.request("execute", {
      command: "trap '' TERM; (trap '' TERM; sleep 1000) & wait",
    });
    await client.event("started", plain.result.execution_id);
    await client.event("started", stubborn.result.execution_id);
    // The shells have forked their children and set their traps.
    await groupHas(plain.result.pgid, "sleep", 2);
    await groupHas(stubborn.result.pgid, "sleep", 1);

    server.child.kill("SIGTERM");
    // While draining: /health says so with 503, and upgrades are refused.
    let health: Response | undefined;
    await eventually(
      async () => {
        await health?.body?.cancel();
        health = await fetch(`${server.httpUrl}/health`);
        return health.status === 503;
      },
      5000,
      "/health to say draining",
    );
    assert.equal(health!.status, 503);
    assert.equal((await health!.json()).status, "draining");
    const refused = await fetch(`${server.httpUrl}/ws/mcp`, {
      headers: { Upgrade: "websocket", Connection: "Upgrade" },
    });
    assert.equal(refused.status, 503);
    await refused.body?.cancel();

    // The client is told how each run ended, then the connection closes with 1001.
    const endings = new Map<string, string>();
    for (let i = 0; i < 2; i++) {
      const done = await client.event("completed");
      endings.set(done.params.execution_id, done.params.error);
      assert.equal(done.params.status, "canceled");
    }
    assert.equal(endings.get(plain.result.execution_id), "Server shutting down");
    assert.equal(endings.get(stubborn.result.execution_id), "Server shutting down");
    assert.equal((await client.closed).code, 1001);

    const status = await server.stop();
    assert.equal(status.code, 0, server.output());
    await assertGroupGone(plain.result.pgid, 2000);
    await assertGroupGone(stubborn.result.pgid, 2000);
  } finally {
    await server.stop();
  }
});

Deno.test("a bad setting stops startup with a message naming it and the range", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../main.ts", import.meta.url).pathname],
    env: { CC_EXECUTOR_MAX_SESSIONS: "0", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  const text = new TextDecoder().decode(out.stderr);
  assert.match(text, /CC_EXECUTOR_MAX_SESSIONS="0"/);
  assert.match(text, /an integer from 1 to 100000/);
});
