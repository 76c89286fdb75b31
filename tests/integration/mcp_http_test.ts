import assert from "node:assert/strict";
import { assertGroupGone, eventually, testServer, withServer } from "../_helpers.ts";
import {
  call,
  closeHttp,
  connectHttp,
  executeWithProgress,
  INIT,
  postMcp,
  readToEnd,
} from "../_mcp.ts";

/** Default settings: requests within a session are not new connections. */
const FLAGS = {};

Deno.test("MCP over Streamable HTTP: initialize, list tools, execute, DELETE ends the session", async () => {
  await withServer(FLAGS, async (server) => {
    const c = await connectHttp(server);
    assert.equal(c.client.getServerVersion()?.name, "cc-executor");
    assert.ok(c.transport.sessionId !== undefined);
    assert.ok(server.sessions.get(c.transport.sessionId!) !== undefined, "session id is ours");
    const health = await (await fetch(`${server.httpUrl}/health`)).json();
    assert.equal(health.active_sessions, 1);
    const { tools } = await c.client.listTools();
    assert.equal(tools.length, 7);
    const r = await call(c.client, "execute", { command: "echo out; echo err >&2; exit 2" });
    assert.equal(r.result.isError, true);
    assert.equal(r.s.exit_code, 2);
    assert.equal(r.s.stdout, "out\n");
    assert.equal(r.s.stderr, "err\n");
    const ok = await call(c.client, "execute", { args: ["echo", "fine"] });
    assert.equal(ok.result.isError, undefined);
    assert.equal(ok.s.stdout, "fine\n");
    await closeHttp(c);
    assert.equal(server.sessions.size, 0);
  });
});

Deno.test("MCP HTTP: requests without a session, with an unknown one, or over the limit are refused", async () => {
  await withServer({ ...FLAGS, "max-sessions": "1" }, async (server) => {
    const list = { jsonrpc: "2.0", id: 2, method: "tools/list" };
    const noSession = await postMcp(server.httpUrl, list);
    assert.equal(noSession.status, 400);
    assert.match((await noSession.json()).error.message, /initialize/);
    const unknown = await postMcp(server.httpUrl, list, {
      "mcp-session-id": crypto.randomUUID(),
      "mcp-protocol-version": "2025-11-25",
    });
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
    const get = await fetch(`${server.httpUrl}/mcp`, { headers: { accept: "text/event-stream" } });
    assert.equal(get.status, 400);
    await get.body?.cancel();
    const put = await fetch(`${server.httpUrl}/mcp`, { method: "PUT" });
    assert.equal(put.status, 405);
    await put.body?.cancel();
    const junk = await postMcp(server.httpUrl, "{");
    assert.equal(junk.status, 400);
    await junk.body?.cancel();
    assert.equal(server.sessions.size, 0, "no session is opened by a refused request");

    const c = await connectHttp(server);
    const over = await postMcp(server.httpUrl, INIT);
    assert.equal(over.status, 503);
    const refusal = await over.json();
    assert.equal(refusal.error.code, -32003);
    assert.equal(refusal.id, 1);
    await closeHttp(c);

    // A refused initialize (wrong Accept) leaves no session behind.
    const badAccept = await postMcp(server.httpUrl, INIT, { accept: "application/json" });
    assert.equal(badAccept.status, 406);
    await badAccept.body?.cancel();
    assert.equal(server.sessions.size, 0);
  });
});

Deno.test("MCP HTTP: a long call streams progress over SSE", async () => {
  await withServer(FLAGS, async (server) => {
    const c = await connectHttp(server);
    const seen: string[] = [];
    const result = await executeWithProgress(
      c.client,
      { command: "for i in 1 2 3; do echo step$i; sleep 0.3; done" },
      (p) => void seen.push(p.message ?? ""),
    );
    assert.equal(result.isError, undefined);
    assert.ok(seen.length >= 3, `progress notifications: ${seen.length}`);
    assert.ok(seen.join("").includes("step2"));
    await closeHttp(c);
  });
});

Deno.test("MCP HTTP: cancelling a call ends its process group", async () => {
  await withServer({ ...FLAGS, "kill-grace": "0.5" }, async (server) => {
    const c = await connectHttp(server);
    const abort = new AbortController();
    let ready!: () => void;
    const started = new Promise<void>((r) => ready = r);
    const running = executeWithProgress(
      c.client,
      { command: "sleep 1000 & echo ready; wait" },
      (p) => {
        if (p.message?.includes("ready")) ready();
      },
      abort.signal,
    );
    await started;
    abort.abort();
    await assert.rejects(running);
    const pgid = (await call(c.client, "list_executions")).s.executions[0].pgid;
    await eventually(async () =>
      (await call(c.client, "list_executions")).s.executions[0].status === "canceled"
    );
    await assertGroupGone(pgid);
    // The session goes on working.
    assert.equal((await call(c.client, "execute", { command: "echo after" })).s.stdout, "after\n");
    await closeHttp(c);
  });
});

Deno.test("MCP HTTP: start + send_input + read_output on cat", async () => {
  await withServer(FLAGS, async (server) => {
    const c = await connectHttp(server);
    const started = await call(c.client, "start", { args: ["cat"], stdin_open: true });
    const id = started.s.execution_id;
    await call(c.client, "send_input", { execution_id: id, input: "ping\n" });
    const first = await call(c.client, "read_output", { execution_id: id, wait_seconds: 10 });
    assert.equal(first.s.stdout, "ping\n");
    await call(c.client, "send_input", { execution_id: id, input: "pong", close_stdin: true });
    const rest = await readToEnd(c.client, id, first.s.next_offset);
    assert.equal(rest.stdout, "pong");
    assert.equal(rest.last.exit_code, 0);
    await closeHttp(c);
  });
});

Deno.test("MCP HTTP: DELETE ends the session, not the runs it started", async () => {
  await withServer({ ...FLAGS, "kill-grace": "0.5" }, async (server) => {
    const c = await connectHttp(server);
    const a = await call(c.client, "start", { command: "echo up; sleep 1000" });
    await call(c.client, "read_output", { execution_id: a.s.execution_id, wait_seconds: 10 });
    await c.transport.terminateSession();
    await c.client.close();
    assert.equal(server.sessions.size, 0);
    const run = server.registry.get(a.s.execution_id)!;
    assert.equal(run.active, true, "the run goes on without its session");
    assert.equal(run.attached, false);
    // Another session of the same principal finds it and ends it.
    const d = await connectHttp(server);
    const cancel = await call(d.client, "control", { type: "CANCEL", execution_id: run.id });
    assert.equal(cancel.s.status, "canceled");
    await assertGroupGone(a.s.pgid, 100);
    await closeHttp(d);
  });
});

Deno.test("MCP HTTP: an idle session expires after mcp-session-timeout, running or not; its run goes on", async () => {
  await withServer({ ...FLAGS, "mcp-session-timeout": "1" }, async (server) => {
    const c = await connectHttp(server);
    const id = c.transport.sessionId!;
    const run = await call(c.client, "start", { command: "sleep 1000" });
    await eventually(() => server.sessions.size === 0, 10_000, "session to expire");
    const res = await postMcp(server.httpUrl, { jsonrpc: "2.0", id: 5, method: "tools/list" }, {
      "mcp-session-id": id,
      "mcp-protocol-version": "2025-11-25",
    });
    assert.equal(res.status, 404);
    await res.body?.cancel();
    await c.client.close();
    const exec = server.registry.get(run.s.execution_id)!;
    assert.equal(exec.active, true, "expiry ends the session, not its runs");
    await exec.cancel();
  });
});

Deno.test("MCP HTTP: shutdown ends the runs of HTTP sessions", async () => {
  const server = await testServer({ ...FLAGS, "kill-grace": "0.5" });
  let pgid = 0;
  try {
    const c = await connectHttp(server);
    pgid = (await call(c.client, "start", { command: "sleep 1000 & sleep 1000; wait" })).s.pgid;
    await server.shutdown();
    await assertGroupGone(pgid, 100);
    assert.equal(server.sessions.size, 0);
    await c.client.close();
  } finally {
    await server.shutdown();
  }
});
