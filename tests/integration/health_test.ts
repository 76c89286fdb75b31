import assert from "node:assert/strict";
import { TestClient, withServer } from "../_helpers.ts";

Deno.test("/health reports the protocol's fields and the streaming figures", async () => {
  await withServer({ "max-sessions": "5" }, async (server) => {
    const client = await TestClient.open(server);
    await client.run({ command: "head -c 100000 /dev/zero | tr '\\0' x" });
    const res = await fetch(`${server.httpUrl}/health`);
    assert.equal(res.status, 200);
    const h = await res.json();
    assert.equal(h.status, "healthy");
    assert.equal(h.service, "cc_executor_mcp");
    assert.equal(h.version, "1.0.0");
    assert.equal(h.active_sessions, 1);
    assert.equal(h.max_sessions, 5);
    assert.equal(typeof h.uptime_seconds, "number");
    assert.equal(h.running_executions, 0);
    assert.equal(h.bytes_streamed, 100000);
    assert.equal(typeof h.queued_bytes, "number");
    assert.ok(h.peak_queued_bytes > 0);
    assert.equal(typeof h.backpressure_waits, "number");
    assert.ok(h.mean_start_latency_ms > 0);
    await client.close();
  });
});

Deno.test("/healthz is a plain liveness answer; unknown paths are 404", async () => {
  await withServer({}, async (server) => {
    const res = await fetch(`${server.httpUrl}/healthz`);
    assert.deepEqual(await res.json(), { status: "ok" });
    const missing = await fetch(`${server.httpUrl}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });
});
