/**
 * Learned time limits through a running server: estimates that move with
 * history, `estimate` and `history`, hooks around runs, and a Redis that
 * goes away and comes back while commands run.
 */
import assert from "node:assert/strict";
import { eventually, TestClient, testServer, withServer } from "../_helpers.ts";
import { call, connectWs } from "../_mcp.ts";
import { freePort, hasRedisServer, RedisServer } from "../_redis.ts";

Deno.test("estimate moves from the default to history after three successful runs", async () => {
  await withServer({ "timeout-trivial": "9", "min-auto-timeout": "1" }, async (server) => {
    const client = await TestClient.open(server);
    const command = "echo learn-me";
    const first = await client.request("estimate", { command });
    assert.equal(first.result.timeout_source, "default");
    assert.equal(first.result.timeout, 9);
    assert.equal(first.result.reasoning.class, "cmd:echo");
    assert.equal(first.result.reasoning.samples, 0);
    const firstRun = await client.run({ command });
    assert.equal(firstRun.result.timeout_source, "default");
    for (let i = 0; i < 2; i++) await client.run({ command });
    await eventually(async () =>
      (await client.request("estimate", { command })).result.timeout_source === "history"
    );
    const learned = await client.request("estimate", { command });
    assert.equal(learned.result.reasoning.samples, 3);
    assert.equal(learned.result.reasoning.percentile, 90);
    assert.ok(learned.result.timeout >= 1 && learned.result.timeout < 9);
    // The next execute without a timeout gets the learned limit.
    const run = await client.run({ command });
    assert.equal(run.result.timeout_source, "history");
    assert.equal(run.result.timeout, learned.result.timeout);
    // Given a timeout, the request wins.
    assert.equal((await client.run({ command, timeout: 3 })).result.timeout_source, "request");
    // A class with no history of its own borrows from a similar one.
    const similar = await client.request("estimate", { command: "echo something-else" });
    assert.ok(["history", "similar"].includes(similar.result.timeout_source));
    await client.close();
  });
});

Deno.test("estimate and history refuse bad params with -32602", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    assert.equal((await client.request("estimate", {})).error.code, -32602);
    assert.equal((await client.request("estimate", { command: 5 })).error.code, -32602);
    assert.equal((await client.request("history", { limit: 0 })).error.code, -32602);
    assert.equal((await client.request("history", { limit: "x" })).error.data.field, "limit");
    await client.close();
  });
});

Deno.test("history returns finished runs' records, newest first, by class", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    await client.run({ command: "echo one" });
    await client.run({ command: "printf two; exit 3", timeout: 5 });
    await client.run({ args: ["sleep", "5"], timeout: 0.2 });
    await eventually(async () =>
      (await client.request("history", { limit: 10 })).result.records.length === 3
    );
    const { records } = (await client.request("history", { limit: 10 })).result;
    assert.deepEqual(records.map((r: { status: string }) => r.status), [
      "timeout",
      "failed",
      "completed",
    ]);
    const failed = records[1];
    assert.equal(failed.command, "printf two; exit 3");
    assert.equal(failed.exit_code, 3);
    assert.equal(failed.bytes_out, 3);
    assert.equal(failed.timeout_s, 5);
    assert.equal(failed.timeout_source, "request");
    assert.equal(typeof failed.execution_id, "string");
    const byClass = await client.request("history", { limit: 10, class: "cmd:echo" });
    assert.equal(byClass.result.records.length, 1);
    assert.equal((await client.request("history", { limit: 1 })).result.records.length, 1);
    await client.close();
  });
});

Deno.test("hooks run around a command, report hook.* and block only when required", async () => {
  const dir = await Deno.makeTempDir();
  const log = `${dir}/post.log`;
  await Deno.writeTextFile(
    `${dir}/hooks.json`,
    JSON.stringify({
      timeout: 5,
      hooks: {
        pre_execute: [
          { name: "warns", argv: ["sh", "-c", "echo soft failure >&2; exit 1"] },
          {
            name: "gate",
            argv: ["sh", "-c", 'case "$CC_EXECUTOR_COMMAND" in *forbidden*) exit 9;; esac'],
            required: true,
          },
        ],
        post_execute: [{
          name: "record",
          argv: [
            "sh",
            "-c",
            `echo "$CC_EXECUTOR_STATUS $CC_EXECUTOR_EXIT_CODE $CC_EXECUTOR_EXECUTION_ID" >> ${log}`,
          ],
        }],
        on_timeout: [{
          name: "alarm",
          argv: ["sh", "-c", `echo "timeout $CC_EXECUTOR_EXECUTION_ID" >> ${log}`],
        }],
      },
    }),
  );
  try {
    await withServer({ "hooks-config": `${dir}/hooks.json` }, async (server) => {
      const client = await TestClient.open(server);
      const status = await client.request("hook_status");
      assert.deepEqual(status.result, {
        enabled: true,
        config_path: `${dir}/hooks.json`,
        hooks_configured: ["pre_execute", "post_execute", "on_timeout"],
        timeout: 5,
        parallel: false,
      });
      // A failing optional hook warns; the command still runs.
      const run = await client.run({ command: "exit 4" });
      const warning = client.received.map((t) => JSON.parse(t)).find((m) =>
        m.method === "hook.warning"
      );
      assert.equal(warning.params.name, "warns");
      assert.equal(warning.params.hook, "pre_execute");
      assert.equal(warning.params.exit_code, 1);
      assert.equal(warning.params.output, "soft failure\n");
      assert.equal(run.completed.exit_code, 4);
      const post = await client.next((m) =>
        m.method === "hook.completed" && m.params.hook === "post_execute"
      );
      assert.equal(post.params.execution_id, run.result.execution_id);
      assert.equal(await Deno.readTextFile(log), `failed 4 ${run.result.execution_id}\n`);
      // A failing required hook stops the command from running at all.
      const refused = await client.request("execute", { command: "echo forbidden" });
      assert.equal(refused.error.code, -32001);
      assert.match(refused.error.message, /Required pre_execute hook 'gate' failed/);
      assert.equal(refused.error.data.exit_code, 9);
      // on_timeout runs before post_execute when the limit ends a run.
      const slow = await client.run({ command: "sleep 5", timeout: 0.2 });
      await client.next((m) =>
        m.method === "hook.completed" && m.params.hook === "post_execute" &&
        m.params.execution_id === slow.result.execution_id
      );
      const lines = (await Deno.readTextFile(log)).trim().split("\n");
      assert.deepEqual(lines.slice(1), [
        `timeout ${slow.result.execution_id}`,
        `timeout  ${slow.result.execution_id}`,
      ]);
      await client.close();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("/health reports the store, the resource monitor and the hooks", async () => {
  await withServer({}, async (server) => {
    const h = await (await fetch(`${server.httpUrl}/health`)).json();
    assert.equal(h.status, "healthy");
    assert.deepEqual(h.store, { backend: "embedded", ok: true });
    assert.equal(typeof h.resources.multiplier, "number");
    assert.equal(h.resources.threshold_percent, 14);
    assert.ok("gpu_percent" in h.resources);
    assert.equal(h.hooks.enabled, false);
  });
});

Deno.test("MCP estimate_timeout explains the limit a command would get", async () => {
  await withServer({ "timeout-high": "444" }, async (server) => {
    const { client } = await connectWs(server);
    const { s, text } = await call(client, "estimate_timeout", {
      command: 'claude -p "refactor the authentication module and write tests for it"',
    });
    assert.equal(s.timeout_source, "default");
    assert.equal(s.reasoning.category, "claude");
    assert.ok(s.timeout >= 60, `a substantial prompt gets ${s.timeout}s`);
    assert.match(text, /: the default for \w+ commands \(444s\)/);
    assert.match(text, /Decided by the base 444s/);
    assert.doesNotMatch(text, /x 1\.2/);
    await client.close();
  });
});

if (!(await hasRedisServer())) {
  Deno.test({
    ignore: true,
    name: "Redis outage around live executions (skipped: redis-server not installed)",
    fn() {},
  });
} else {
  Deno.test("a Redis that goes away mid-run degrades estimates, never execution, and recovers", async () => {
    const redis = await RedisServer.start(freePort());
    const server = await testServer({ "redis-url": redis.url, "redis-prefix": `t${Date.now()}:` });
    let restarted: RedisServer | undefined;
    try {
      const client = await TestClient.open(server);
      await client.run({ command: "echo before" });
      const h0 = await (await fetch(`${server.httpUrl}/health`)).json();
      assert.deepEqual([h0.status, h0.store.backend, h0.store.ok], ["healthy", "redis", true]);

      // Redis dies while a command runs: the command is unaffected.
      const live = await client.request("execute", { command: "sleep 0.5; echo survived" });
      await redis.stop();
      const done = await client.event("completed", live.result.execution_id);
      assert.equal(done.params.status, "completed");
      await eventually(async () =>
        (await (await fetch(`${server.httpUrl}/health`)).json()).status === "degraded"
      );
      const h1 = await (await fetch(`${server.httpUrl}/health`)).json();
      assert.equal(h1.store.ok, false);
      assert.match(h1.degraded_reason, /^store: /);
      // New runs still start, with default limits; estimates say why.
      const during = await client.run({ command: "echo during" });
      assert.equal(during.stdout, "during\n");
      assert.equal(during.result.timeout_source, "default");
      const est = await client.request("estimate", { command: "echo during" });
      assert.equal(typeof est.result.reasoning.store_error, "string");

      // Redis comes back on the same port: the service reconnects by itself.
      restarted = await RedisServer.start(redis.port);
      await eventually(
        async () => (await (await fetch(`${server.httpUrl}/health`)).json()).status === "healthy",
        20_000,
      );
      await client.run({ command: "echo after" });
      await eventually(async () => {
        const r = await client.request("history", { limit: 10 });
        return r.result?.records?.some((x: { command: string }) => x.command === "echo after");
      });
      await client.close();
    } finally {
      await server.shutdown();
      await restarted?.stop();
      await redis.stop();
    }
  });
}
