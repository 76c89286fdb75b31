import assert from "node:assert/strict";
import { assertGroupGone, eventually, type Msg, TestClient, withServer } from "../_helpers.ts";
import { call, connectWs, executeWithProgress, readToEnd } from "../_mcp.ts";

const INIT = {
  protocolVersion: "2025-11-25",
  capabilities: {},
  clientInfo: { name: "raw", version: "1" },
};

Deno.test("MCP over /ws/mcp: the mcp subprotocol is echoed, nothing comes before initialize, requests before it are refused", async () => {
  await withServer({}, async (server) => {
    const raw = await TestClient.connect(server.wsUrl, "mcp");
    assert.equal(raw.ws.protocol, "mcp");
    // A ping answered first: anything sent on connect would have come before its reply.
    assert.deepEqual((await raw.request("ping")).result, {});
    assert.deepEqual(raw.pending(), [], "no `connected` or ping before initialize");
    const early = await raw.request("tools/list", {});
    assert.equal(early.error.code, -32600);
    assert.match(early.error.message, /initialize/);
    assert.deepEqual((await raw.request("ping")).result, {});
    const bad = await raw.request("initialize", { capabilities: {} });
    assert.equal(bad.error.code, -32602, "initialize without protocolVersion");
    const init = await raw.request("initialize", { ...INIT, protocolVersion: "2025-03-26" });
    assert.equal(init.result.protocolVersion, "2025-03-26");
    assert.deepEqual(init.result.capabilities, { tools: { listChanged: false }, logging: {} });
    assert.equal(init.result.serverInfo.name, "cc-executor");
    const again = await raw.request("initialize", INIT);
    assert.equal(again.error.code, -32600);
    raw.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    assert.equal((await raw.request("tools/list", {})).result.tools.length, 7);
    assert.equal((await raw.request("resources/list", {})).error.code, -32601);
    assert.equal((await raw.request("logging/setLevel", { level: "loud" })).error.code, -32602);
    raw.send("{oops");
    assert.equal((await raw.next((m) => m.error?.code === -32700)).id, undefined);
    await raw.close();

    // Versions we do not know are answered with the newest.
    const other = await TestClient.connect(server.wsUrl, "mcp");
    const answer = await other.request("initialize", { ...INIT, protocolVersion: "2099-01-01" });
    assert.equal(answer.result.protocolVersion, "2025-11-25");
    for (const v of ["2025-06-18", "2024-11-05"]) {
      const c = await TestClient.connect(server.wsUrl, "mcp");
      assert.equal(
        (await c.request("initialize", { ...INIT, protocolVersion: v })).result
          .protocolVersion,
        v,
      );
      await c.close();
    }
    await other.close();
  });
});

Deno.test("MCP: tools/list gives every tool an object input schema from the shared zod schemas", async () => {
  await withServer({}, async (server) => {
    const { client } = await connectWs(server);
    assert.equal(client.getServerVersion()?.name, "cc-executor");
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    assert.deepEqual([...byName.keys()].sort(), [
      "control",
      "estimate_timeout",
      "execute",
      "list_executions",
      "read_output",
      "send_input",
      "start",
    ]);
    for (const tool of tools) {
      assert.equal(tool.inputSchema.type, "object", tool.name);
      assert.ok((tool.description ?? "").length > 80, `${tool.name} is described`);
      assert.equal("$schema" in tool.inputSchema, false);
    }
    const execute = byName.get("execute")!.inputSchema.properties!;
    for (
      const p of ["command", "args", "timeout", "cwd", "env", "stdin", "stdin_open", "wait_seconds"]
    ) {
      assert.ok(p in execute, `execute takes ${p}`);
    }
    assert.equal("framing" in execute, false);
    assert.equal("wait_seconds" in byName.get("start")!.inputSchema.properties!, false);
    assert.deepEqual(
      (byName.get("control")!.inputSchema.properties!.type as Msg).enum,
      ["PAUSE", "RESUME", "CANCEL", "INTERRUPT", "SIGNAL"],
    );
    assert.deepEqual(byName.get("read_output")!.inputSchema.required, ["execution_id"]);
    await client.close();
  });
});

Deno.test("MCP execute: stdout, stderr and exit code; a non-zero exit is isError with the output", async () => {
  await withServer({}, async (server) => {
    const { client } = await connectWs(server);
    const ok = await call(client, "execute", { command: "echo out; echo err >&2", timeout: 10 });
    assert.equal(ok.result.isError, undefined);
    assert.equal(ok.s.status, "completed");
    assert.equal(ok.s.exit_code, 0);
    assert.equal(ok.s.stdout, "out\n");
    assert.equal(ok.s.stderr, "err\n");
    assert.equal(ok.s.timeout, 10);
    assert.equal(ok.s.timeout_source, "request");
    assert.equal(ok.s.running, false);
    assert.ok(ok.s.duration_seconds >= 0);
    assert.match(ok.text, /Exited with code 0/);
    assert.match(ok.text, /--- stdout ---\nout\n--- stderr ---\nerr\n/);

    const failed = await call(client, "execute", { args: ["sh", "-c", "echo partial; exit 7"] });
    assert.equal(failed.result.isError, true);
    assert.equal(failed.s.status, "failed");
    assert.equal(failed.s.exit_code, 7);
    assert.equal(failed.s.stdout, "partial\n");
    assert.equal(failed.s.timeout_source, "default");

    const killed = await call(client, "execute", { command: "kill -9 $$" });
    assert.equal(killed.result.isError, true);
    assert.equal(killed.s.signal, "SIGKILL");
    assert.equal(killed.s.exit_code, null);

    const timedOut = await call(client, "execute", { command: "sleep 30", timeout: 0.3 });
    assert.equal(timedOut.s.status, "timeout");
    assert.equal(timedOut.result.isError, true);
    await assertGroupGone(timedOut.s.pgid);

    // Tool-level failures are results the model can read, naming the field.
    const invalid = await call(client, "execute", { command: "true", timeout: -1 });
    assert.equal(invalid.result.isError, true);
    assert.equal(invalid.s.error.code, -32602);
    assert.match(invalid.text, /timeout/);
    const empty = await call(client, "execute", { command: "  " });
    assert.equal(empty.s.error.code, -32001);
    const missing = await call(client, "read_output", { execution_id: "nope" });
    assert.equal(missing.s.error.code, -32002);
    await assert.rejects(call(client, "no_such_tool"), /Unknown tool/);
    await client.close();
  });
});

Deno.test("MCP execute keeps the tail of long output and says how much was left out", async () => {
  await withServer({ "mcp-output-limit": "1024" }, async (server) => {
    const { client } = await connectWs(server);
    const r = await call(client, "execute", {
      command: "for i in $(seq 1 2000); do echo line$i; done; echo é >&2",
    });
    assert.ok(new TextEncoder().encode(r.s.stdout).length <= 1024);
    assert.ok(r.s.stdout.endsWith("line1999\nline2000\n"));
    assert.ok(r.s.stdout_omitted_bytes > 10_000);
    assert.equal(
      r.s.stdout_omitted_bytes + new TextEncoder().encode(r.s.stdout).length,
      r.s.output_bytes - 3,
    );
    assert.equal(r.s.stderr, "é\n");
    assert.equal(r.s.stderr_omitted_bytes, 0);
    assert.match(r.text, /earlier bytes left out/);
    // The omitted head is still readable.
    const head = await call(client, "read_output", { execution_id: r.s.execution_id, offset: 0 });
    assert.ok(head.s.stdout.startsWith("line1\nline2\n"));
    assert.ok(head.s.remaining_bytes > 0);
    await client.close();
  });
});

Deno.test("MCP execute reports progress with the run's output while it runs", async () => {
  await withServer({}, async (server) => {
    const { client } = await connectWs(server);
    const seen: { progress: number; message?: string | undefined }[] = [];
    const result = await executeWithProgress(
      client,
      { command: "for i in 1 2 3 4; do echo tick$i; sleep 0.3; done" },
      (p) => void seen.push(p),
    );
    assert.equal(result.isError, undefined);
    assert.ok(seen.length >= 3, `expected several progress notifications, got ${seen.length}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.progress > seen[i - 1]!.progress);
    const text = seen.map((p) => p.message).join("");
    assert.match(text, /started execution/);
    for (const t of ["tick1", "tick2", "tick3"]) assert.ok(text.includes(t), `progress has ${t}`);
    await client.close();
  });
});

Deno.test("MCP: cancelling a call (AbortSignal) ends its process group and sends no response", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const { client, errors } = await connectWs(server);
    const abort = new AbortController();
    let sawOutput!: () => void;
    const outputSeen = new Promise<void>((r) => sawOutput = r);
    const running = executeWithProgress(
      client,
      { command: "sleep 1000 & echo ready; sleep 1000; wait" },
      (p) => {
        if (p.message?.includes("ready")) sawOutput();
      },
      abort.signal,
    );
    await outputSeen;
    abort.abort("changed my mind");
    await assert.rejects(running);
    const list = await call(client, "list_executions");
    const exec = list.s.executions[0];
    await eventually(async () => {
      const l = await call(client, "list_executions");
      return l.s.executions[0].status === "canceled";
    });
    await assertGroupGone(exec.pgid);
    // One more round trip: a late response to the cancelled call would have come before it.
    await call(client, "list_executions");
    assert.deepEqual(errors.map(String).filter((e) => /unknown message ID/.test(e)), []);
    await client.close();
  });
});

Deno.test("MCP: notifications/cancelled gets no response at all (raw socket)", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const raw = await TestClient.connect(server.wsUrl, "mcp");
    await raw.request("initialize", INIT);
    raw.send({
      jsonrpc: "2.0",
      id: "long",
      method: "tools/call",
      params: {
        name: "execute",
        arguments: { command: "echo go; exec sleep 1000" },
        _meta: { progressToken: "tok" },
      },
    });
    const progress = await raw.next((m) =>
      m.method === "notifications/progress" && m.params.message.includes("go")
    );
    assert.equal(progress.params.progressToken, "tok");
    raw.send({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: "long", reason: "test" },
    });
    const listed = await raw.request("tools/call", { name: "list_executions", arguments: {} });
    const pgid = listed.result.structuredContent.executions[0].pgid;
    await assertGroupGone(pgid);
    await eventually(async () => {
      const l = await raw.request("tools/call", { name: "list_executions", arguments: {} });
      return l.result.structuredContent.executions[0].status === "canceled";
    });
    // One more round trip: a late response to "long" would have come before this reply.
    assert.deepEqual((await raw.request("ping")).result, {});
    assert.equal(raw.received.filter((t) => JSON.parse(t).id === "long").length, 0);
    await raw.close();
  });
});

Deno.test("MCP start + send_input + read_output drive cat through stdin", async () => {
  await withServer({}, async (server) => {
    const { client } = await connectWs(server);
    const started = await call(client, "start", { args: ["cat"], stdin_open: true });
    const id = started.s.execution_id;
    assert.equal(started.s.running, true);
    assert.equal(started.s.stdin_open, true);
    const sent = await call(client, "send_input", { execution_id: id, input: "hello\n" });
    assert.equal(sent.s.bytes_written, 6);
    const first = await call(client, "read_output", {
      execution_id: id,
      offset: 0,
      wait_seconds: 10,
    });
    assert.equal(first.s.stdout, "hello\n");
    assert.equal(first.s.next_offset, 6);
    assert.equal(first.s.running, true);
    await call(client, "send_input", { execution_id: id, input: "bye\n", close_stdin: true });
    const rest = await readToEnd(client, id, 6);
    assert.equal(rest.stdout, "bye\n");
    assert.equal(rest.last.status, "completed");
    assert.equal(rest.last.exit_code, 0);
    // After the end: the output is still there, and input is refused.
    const again = await call(client, "read_output", { execution_id: id });
    assert.equal(again.s.stdout, "hello\nbye\n");
    const late = await call(client, "send_input", { execution_id: id, input: "x" });
    assert.equal(late.result.isError, true);
    assert.match(late.text, /ended/);
    // A run started without stdin_open takes no input.
    const closed = await call(client, "start", { command: "sleep 5" });
    const refused = await call(client, "send_input", {
      execution_id: closed.s.execution_id,
      input: "x",
    });
    assert.equal(refused.result.isError, true);
    assert.match(refused.text, /stdin_open/);
    await call(client, "control", { type: "CANCEL", execution_id: closed.s.execution_id });
    await client.close();
  });
});

Deno.test("MCP execute with wait_seconds returns a partial result; read_output follows it to the end", async () => {
  await withServer({}, async (server) => {
    const { client } = await connectWs(server);
    const partial = await call(client, "execute", {
      command: "echo one; sleep 1.2; echo two; echo oops >&2; exit 3",
      wait_seconds: 0.4,
    });
    assert.equal(partial.result.isError, undefined);
    assert.equal(partial.s.running, true);
    assert.equal(partial.s.stdout, "one\n");
    assert.equal(partial.s.next_offset, 4);
    assert.match(partial.text, /Still running/);
    const rest = await readToEnd(client, partial.s.execution_id, partial.s.next_offset);
    assert.equal(rest.stdout, "two\n");
    assert.equal(rest.stderr, "oops\n");
    assert.equal(rest.last.exit_code, 3);
    assert.equal(rest.last.status, "failed");
    await client.close();
  });
});

Deno.test("MCP control pauses, resumes and cancels; list_executions shows the principal's runs", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const { client } = await connectWs(server);
    const a = await call(client, "start", { command: "sleep 1000 & sleep 1000; wait" });
    const b = await call(client, "execute", { command: "echo quick" });
    const paused = await call(client, "control", { type: "PAUSE", execution_id: a.s.execution_id });
    assert.equal(paused.s.status, "paused");
    const resumed = await call(client, "control", { type: "RESUME" });
    assert.equal(resumed.s.status, "running");
    const canceled = await call(client, "control", {
      type: "CANCEL",
      execution_id: a.s.execution_id,
    });
    assert.equal(canceled.s.status, "canceled");
    assert.equal(canceled.s.running, false);
    await assertGroupGone(a.s.pgid);
    const again = await call(client, "control", { type: "CANCEL", execution_id: a.s.execution_id });
    assert.equal(again.result.isError, true);
    assert.match(again.text, /already ended/);
    const list = await call(client, "list_executions");
    assert.deepEqual(
      list.s.executions.map((e: Msg) => e.execution_id),
      [b.s.execution_id, a.s.execution_id],
    );
    assert.equal((await call(client, "list_executions", { running_only: true })).s.total, 0);
    // Another session of the same principal sees them (another principal's see
    // tests/integration/principals_test.ts).
    const other = await connectWs(server);
    assert.equal((await call(other.client, "list_executions")).s.total, 2);
    const read = await call(other.client, "read_output", { execution_id: b.s.execution_id });
    assert.equal(read.s.stdout, "quick\n");
    await other.client.close();
    await client.close();
  });
});

Deno.test("MCP sessions run several executions at once, up to mcp-max-executions", async () => {
  await withServer({ "mcp-max-executions": "2", "kill-grace": "0.5" }, async (server) => {
    const { client } = await connectWs(server);
    const a = await call(client, "start", { command: "sleep 1000" });
    const b = await call(client, "start", { command: "sleep 1000" });
    assert.equal(b.s.running, true);
    const c = await call(client, "execute", { command: "echo no room" });
    assert.equal(c.result.isError, true);
    assert.match(c.text, /limit/);
    await client.close();
    // The runs are the principal's: they go on without the session.
    const runs = [a, b].map((r) => server.registry.get(r.s.execution_id)!);
    assert.ok(runs.every((e) => e.active));
    await Promise.all(runs.map((e) => e.cancel()));
    await assertGroupGone(a.s.pgid);
    await assertGroupGone(b.s.pgid);
  });
});

Deno.test("MCP logging: a run's end is sent as notifications/message at or above the client's level", async () => {
  await withServer({}, async (server) => {
    const raw = await TestClient.connect(server.wsUrl, "mcp");
    await raw.request("initialize", INIT);
    assert.deepEqual((await raw.request("logging/setLevel", { level: "warning" })).result, {});
    await raw.request("tools/call", { name: "execute", arguments: { command: "true" } });
    await raw.request("tools/call", { name: "execute", arguments: { command: "exit 4" } });
    const message = await raw.next((m) => m.method === "notifications/message");
    assert.equal(message.params.level, "warning");
    assert.equal(message.params.data.event, "execution_ended");
    assert.equal(message.params.data.exit_code, 4);
    // A ping answered after both runs ended: any other message would have come before it.
    assert.deepEqual((await raw.request("ping")).result, {});
    assert.equal(raw.pending().filter((m) => m.method === "notifications/message").length, 0);
    await raw.close();
  });
});

Deno.test("legacy sessions on the same path are unaffected; a first initialize switches to MCP", async () => {
  await withServer({}, async (server) => {
    const legacy = await TestClient.open(server);
    const run = await legacy.run({ command: "echo legacy" });
    assert.equal(run.stdout, "legacy\n");
    assert.equal(run.completed.status, "completed");
    await legacy.close();

    // No subprotocol, but the first request is initialize: `connected` came first, then MCP.
    const switched = await TestClient.connect(server.wsUrl.replace("/ws/mcp", "/ws"));
    assert.equal((await switched.next()).method, "connected");
    const init = await switched.request("initialize", INIT);
    assert.equal(init.result.protocolVersion, "2025-11-25");
    const r = await switched.request("tools/call", {
      name: "execute",
      arguments: { command: "echo mcp" },
    });
    assert.equal(r.result.structuredContent.stdout, "mcp\n");
    assert.equal((await switched.request("execute", { command: "true" })).error.code, -32601);
    await switched.close();

    // A legacy first request keeps it legacy: initialize later is an unknown method.
    const stays = await TestClient.open(server);
    assert.equal((await stays.request("ping")).result !== undefined, true);
    assert.equal((await stays.request("initialize", INIT)).error.code, -32601);
    await stays.close();

    // The SDK client on the /ws alias works too.
    const { client } = await connectWs(server, "/ws");
    assert.equal((await call(client, "execute", { command: "echo alias" })).s.stdout, "alias\n");
    await client.close();
  });
});
