import assert from "node:assert/strict";
import { TestClient, withServer } from "../_helpers.ts";
import { closeHttp, connectHttp, connectWs } from "../_mcp.ts";
import type { ServerHandle } from "../../main.ts";

/** One sample: its metric name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition's samples (what the server writes: no escapes in values). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of `name` with exactly `labels`; throws when it is not exposed. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  const found = samples.find((s) =>
    s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want
  );
  assert.ok(found, `${name}${JSON.stringify(labels)} is not exposed`);
  return found.value;
}

async function scrape(server: ServerHandle, headers: HeadersInit = {}): Promise<Sample[]> {
  const res = await fetch(`${server.httpUrl}/metrics`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

const promtool = await new Deno.Command("sh", {
  args: ["-c", "command -v promtool"],
  stdout: "piped",
  stderr: "null",
}).output().then((o) => o.success ? new TextDecoder().decode(o.stdout).trim() : null);

Deno.test("/metrics: runs move the counters by status and stream, and the histograms", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const runs = [
      await client.run({ command: "printf abc" }),
      await client.run({ command: "printf de >&2; exit 3" }),
      await client.run({ command: "printf hello; printf xyz >&2" }),
    ];
    assert.deepEqual(runs.map((r) => r.completed.status), ["completed", "failed", "completed"]);
    // process.completed is sent after the run was counted: no wait needed.
    const s = await scrape(server);
    const runsTotal = (status: string) => value(s, "cc_executor_executions_total", { status });
    assert.equal(runsTotal("completed"), 2);
    assert.equal(runsTotal("failed"), 1);
    for (const status of ["canceled", "timeout", "lost"]) assert.equal(runsTotal(status), 0);
    assert.equal(value(s, "cc_executor_executions_started_total"), 3);
    assert.equal(value(s, "cc_executor_executions_running"), 0);
    const bytes = (stream: string) => value(s, "cc_executor_output_bytes_total", { stream });
    assert.equal(bytes("stdout"), 8);
    assert.equal(bytes("stderr"), 5);
    assert.equal(value(s, "cc_executor_execution_duration_seconds_count"), 3);
    assert.equal(value(s, "cc_executor_execution_duration_seconds_bucket", { le: "+Inf" }), 3);
    assert.ok(value(s, "cc_executor_execution_duration_seconds_sum") > 0);
    assert.equal(value(s, "cc_executor_spawn_seconds_count"), 3);
    assert.equal(value(s, "cc_executor_sessions", { protocol: "legacy_ws" }), 1);
    assert.ok(value(s, "cc_executor_messages_sent_total") > 0);
    assert.ok(value(s, "process_resident_memory_bytes") > 0);
    assert.ok(value(s, "process_start_time_seconds") * 1000 <= Date.now());
    // Labels come from fixed sets: no command text, no id.
    const ids = runs.map((r) => r.result.execution_id as string);
    for (const sample of s) {
      for (const v of Object.values(sample.labels)) {
        for (const secret of ["printf", "abc", "hello", ...ids]) {
          assert.ok(!v.includes(secret), `${sample.name} has label value ${v}`);
        }
      }
    }
    await client.close();
  });
});

Deno.test("/metrics: sessions are counted by protocol", async () => {
  await withServer({}, async (server) => {
    const legacy = await TestClient.open(server);
    const ws = await connectWs(server);
    const http = await connectHttp(server);
    const s = await scrape(server);
    for (const protocol of ["legacy_ws", "mcp_ws", "mcp_http"]) {
      assert.equal(value(s, "cc_executor_sessions", { protocol }), 1, protocol);
    }
    await closeHttp(http);
    await ws.client.close();
    await legacy.close();
  });
});

Deno.test("/metrics: with keys, only a valid key reads it; refusals count as auth failures", async () => {
  await withServer({ "api-keys": "right-key" }, async (server) => {
    const get = (headers: HeadersInit) => fetch(`${server.httpUrl}/metrics`, { headers });
    const anonymous = await get({});
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get("www-authenticate"), 'Bearer realm="cc-executor"');
    assert.deepEqual(await anonymous.json(), { error: "Unauthorized" });
    const wrong = await get({ Authorization: "Bearer wrong-key" });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    // The guard's refusal of a WebSocket counts too.
    await assert.rejects(TestClient.connect(server.wsUrl, undefined, { "X-API-Key": "wrong-key" }));
    const s = await scrape(server, { Authorization: "Bearer right-key" });
    assert.equal(value(s, "cc_executor_auth_failures_total"), 3);
  });
});

Deno.test("/metrics: refusals by the connection and message limits are counted by kind", async () => {
  await withServer(
    { "conn-burst": "1", "conn-rate": "0.01", "msg-burst": "3", "msg-rate": "0.01" },
    async (server) => {
      const client = await TestClient.open(server); // the one connection token
      const refused = await fetch(`${server.httpUrl}/ws`);
      assert.equal(refused.status, 429);
      await refused.body?.cancel();
      for (let i = 0; i < 5; i++) client.send({ jsonrpc: "2.0", method: "ping", id: i });
      const replies = [];
      for (let i = 0; i < 5; i++) replies.push(await client.next((m) => m.id === i));
      assert.equal(replies.filter((r) => r.error?.code === -32029).length, 2);
      const s = await scrape(server);
      assert.equal(value(s, "cc_executor_rate_limited_total", { kind: "connections" }), 1);
      assert.equal(value(s, "cc_executor_rate_limited_total", { kind: "messages" }), 2);
      await client.close();
    },
  );
});

Deno.test({
  name: promtool === null
    ? "/metrics passes promtool check metrics (ignored: promtool is not installed)"
    : "/metrics passes promtool check metrics",
  ignore: promtool === null,
  fn: async () => {
    await withServer({}, async (server) => {
      const client = await TestClient.open(server);
      await client.run({ command: "echo out; echo err >&2; exit 1" });
      const text = await fetch(`${server.httpUrl}/metrics`).then((r) => r.text());
      const check = new Deno.Command(promtool!, {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = check.stdin.getWriter();
      await writer.write(new TextEncoder().encode(text));
      await writer.close();
      const out = await check.output();
      const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      // promtool also prints lint warnings with status 0: none are expected either.
      assert.equal(said.trim(), "");
      assert.ok(out.success);
      await client.close();
    });
  },
});
