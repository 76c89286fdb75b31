/**
 * Automatic time limits through a running server with default settings:
 * the work that used to be killed after 1 s now completes, no estimate is
 * below the floor, `timeout: 0` turns the automatic limit off, and a run
 * killed by an automatic limit says so and doubles the next one.
 */
import assert from "node:assert/strict";
import { eventually, TestClient, withServer } from "../_helpers.ts";
import { call, connectWs } from "../_mcp.ts";

/** Waits until `history` holds `n` records: recording happens after `process.completed`. */
async function recorded(client: TestClient, n: number): Promise<void> {
  await eventually(
    async () => (await client.request("history", { limit: 1000 })).result.records.length >= n,
    10_000,
    `${n} records`,
  );
}

Deno.test("ordinary work after quick runs of its kind is never cut short (default settings)", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    // Quick echos first: their class must not decide the limit of a loop.
    for (let i = 0; i < 4; i++) await client.run({ command: `echo quick${i}` });
    await recorded(client, 4);
    const loop = await client.run({
      command: "for i in 1 2 3 4; do echo tick$i; sleep 0.4; done",
    });
    assert.equal(loop.completed.status, "completed", JSON.stringify(loop.completed));
    assert.equal(loop.stdout, "tick1\ntick2\ntick3\ntick4\n");
    assert.ok(loop.result.timeout >= 60, `the loop got ${loop.result.timeout}s`);

    // A script that took 0.05 s five times, then 3 s.
    const dir = await Deno.makeTempDir({ prefix: "cc_auto_" });
    try {
      const script = `${dir}/job.sh`;
      await Deno.writeTextFile(script, 'sleep "${1:-0}"; echo done\n');
      await Deno.chmod(script, 0o755);
      for (let i = 0; i < 5; i++) await client.run({ command: `${script} 0.05` });
      await recorded(client, 10);
      const slow = await client.run({ command: `${script} 3` });
      assert.equal(slow.completed.status, "completed", JSON.stringify(slow.completed));
      assert.equal(slow.result.timeout_source, "history");
      assert.ok(slow.result.timeout >= 60);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }

    // Three quick python runs, then one that sleeps 3 s.
    for (let i = 0; i < 3; i++) await client.run({ command: "python3 -c 'print(1)'" });
    await recorded(client, 14);
    const py = await client.run({ command: "python3 -c 'import time; time.sleep(3); print(2)'" });
    assert.equal(py.completed.status, "completed", JSON.stringify(py.completed));
    assert.equal(py.stdout, "2\n");
    await client.close();
  });
});

Deno.test("no estimate is below 60 s, whatever the history", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    for (const c of ["echo a", "head -c1 /dev/null", "wc -c /dev/null", "node -e 1", "true"]) {
      await client.run({ command: c });
    }
    await recorded(client, 5);
    const cases: [string | string[], number][] = [
      ["cp -r a b", 60],
      ["node server.js", 7200],
      ["tail -f /var/log/syslog", 7200],
      ["python3", 7200],
      ["sleep 77200.5", 86400],
      ["npm test", 600],
      ["make", 600],
      [["sh", "-c", "npm test"], 600],
      ["echo a", 60],
    ];
    for (const [command, atLeast] of cases) {
      const params = typeof command === "string" ? { command } : { args: command };
      const e = (await client.request("estimate", params)).result;
      assert.ok(e.timeout >= atLeast, `${command}: ${e.timeout}s < ${atLeast}s`);
      assert.ok(e.reasoning.floor_s === 60, JSON.stringify(e.reasoning));
    }
    // `sleep N` is one class, whatever N.
    const a = (await client.request("estimate", { command: "sleep 5" })).result.reasoning.class;
    const b = (await client.request("estimate", { command: "sleep 77200.5" })).result.reasoning;
    assert.equal(a, "cmd:sleep");
    assert.equal(b.class, "cmd:sleep");
    assert.equal(b.stated_s, 77200.5);
    // argv and the same command as a shell string are one class.
    const argv = (await client.request("estimate", { args: ["sh", "-c", "npm test"] })).result;
    const line = (await client.request("estimate", { command: "sh -c 'npm test'" })).result;
    assert.equal(argv.reasoning.class, line.reasoning.class);
    await client.close();
  });
});

Deno.test("timeout 0 means no automatic limit: only max-timeout applies", async () => {
  await withServer({ "max-timeout": "5000" }, async (server) => {
    const client = await TestClient.open(server);
    const run = await client.run({ command: "echo none", timeout: 0 });
    assert.equal(run.result.timeout, 5000);
    assert.equal(run.result.timeout_source, "request");
    assert.equal(run.completed.status, "completed");
    const text = await client.run({ command: "echo none", timeout: "0" });
    assert.equal(text.result.timeout, 5000);
    assert.equal(
      (await client.request("execute", { command: "x", timeout: -1 })).error.code,
      -32602,
    );
    await client.close();

    // MCP follows the same rule.
    const { client: mcp } = await connectWs(server);
    const { s } = await call(mcp, "execute", { command: "echo mcp", timeout: 0 });
    assert.equal(s.status, "completed");
    assert.equal(s.timeout, 5000);
    assert.equal(s.timeout_source, "request");
    await mcp.close();
  });
});

Deno.test("a run killed by an automatic limit says so, and the next limit doubles", async () => {
  // A low floor and default so the test takes seconds, not minutes.
  await withServer({ "min-auto-timeout": "1", "timeout-low": "1" }, async (server) => {
    const client = await TestClient.open(server);
    const hang = "python3 -c 'import time; time.sleep(60)'";
    const first = await client.run({ command: hang });
    assert.equal(first.result.timeout, 1);
    assert.equal(first.result.timeout_source, "default");
    assert.equal(first.completed.status, "timeout");
    assert.match(first.completed.error, /timed out after 1s: an automatic limit/);
    assert.match(first.completed.error, /the default for cmd:python:inline/);
    assert.match(first.completed.error, /set "timeout" to choose the limit, or 0 for none/);
    await recorded(client, 1);

    const e = (await client.request("estimate", { command: hang })).result;
    assert.equal(e.timeout, 2);
    assert.equal(e.reasoning.decided_by, "backoff");
    assert.equal(e.reasoning.timeouts_since_success, 1);
    const second = await client.run({ command: hang });
    assert.equal(second.result.timeout, 2);
    assert.equal(second.completed.status, "timeout");
    await recorded(client, 2);
    assert.equal((await client.request("estimate", { command: hang })).result.timeout, 4);

    // A limit the request set is not automatic and says nothing more.
    const asked = await client.run({ command: hang, timeout: 0.5 });
    assert.equal(asked.completed.error, "Process timed out after 0.5s");
    await recorded(client, 3);
    assert.equal((await client.request("estimate", { command: hang })).result.timeout, 4);

    // A success of the class ends the back-off.
    await client.run({ command: "python3 -c 'pass'" });
    await recorded(client, 4);
    const after = (await client.request("estimate", { command: hang })).result;
    assert.equal(after.reasoning.timeouts_since_success, 0);
    assert.ok(after.timeout < 4, JSON.stringify(after));
    await client.close();

    // MCP execute reports the same automatic limit.
    const { client: mcp } = await connectWs(server);
    const { s, result } = await call(mcp, "execute", { command: hang });
    assert.equal(result.isError, true);
    assert.equal(s.status, "timeout");
    assert.match(s.error, /an automatic limit/);
    await mcp.close();
  });
});

Deno.test("MCP start of a REPL gets a long-running limit", async () => {
  await withServer({}, async (server) => {
    const { client } = await connectWs(server);
    const { s } = await call(client, "start", { command: "python3", stdin_open: true });
    assert.ok(s.timeout >= 7200, JSON.stringify(s));
    await call(client, "control", { type: "CANCEL", execution_id: s.execution_id });
    await client.close();
  });
});

Deno.test("an idle_timeout is not an automatic limit, and the back-off says it decided", async () => {
  await withServer({ "min-auto-timeout": "1", "timeout-low": "1" }, async (server) => {
    const client = await TestClient.open(server);
    const quiet = "python3 -c 'import time; print(1, flush=True); time.sleep(30)'";
    const idle = await client.run({ command: quiet, idle_timeout: 0.5, timeout: 0 });
    assert.equal(idle.completed.status, "timeout");
    assert.match(idle.completed.error, /no output for 0.5s/);
    await recorded(client, 1);
    const e = (await client.request("estimate", { command: quiet })).result.reasoning;
    assert.equal(e.timeouts_since_success, 0);
    assert.equal(e.backoff_s, undefined);

    await client.run({ command: quiet }); // killed by the automatic 1 s
    await recorded(client, 2);
    const second = await client.run({ command: quiet });
    assert.equal(second.result.timeout, 2);
    assert.match(second.completed.error, /automatic limit \(doubled for cmd:python:inline after 1/);
    await client.close();
  });
});

Deno.test("estimate is capped at max-timeout like execute", async () => {
  await withServer({ "max-timeout": "3600" }, async (server) => {
    const client = await TestClient.open(server);
    const e = (await client.request("estimate", { command: "sleep infinity" })).result;
    assert.equal(e.timeout, 3600);
    assert.equal(e.reasoning.decided_by, "max");
    const run = await client.request("execute", { command: "sleep infinity" });
    assert.equal(run.result.timeout, 3600);
    await client.request("control", { type: "CANCEL" });
    await client.event("completed");
    await client.close();
  });
});

Deno.test("timeouts written as Python writes numbers, and null params, are accepted", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    for (const [timeout, expected] of [["1e3", 1000], [".5", 0.5], ["5.", 5], ["+5", 5]] as const) {
      const r = await client.request("execute", { command: "true", timeout });
      assert.equal(r.result?.timeout, expected, JSON.stringify(r));
      await client.event("completed", r.result.execution_id);
    }
    const nulls = await client.run({ command: "echo ok", cwd: null, env: null, stdin: null });
    assert.equal(nulls.stdout, "ok\n");
    for (const bad of ["inf", "1e", "-5", "5s"]) {
      const r = await client.request("execute", { command: "true", timeout: bad });
      assert.equal(r.error?.code, -32602, bad);
    }
    await client.close();
  });
});
