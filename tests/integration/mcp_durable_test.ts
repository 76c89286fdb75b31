/**
 * MCP runs belong to the principal, not to the MCP session, against a real
 * server with the official SDK client: a session that goes away without
 * DELETE (as most clients do) leaves its runs to the next session.
 *
 * @module
 */
import assert from "node:assert/strict";
import { assertGroupGone, eventually, TestClient, withServer } from "../_helpers.ts";
import { call, closeHttp, connectHttp, connectWs } from "../_mcp.ts";

Deno.test("MCP HTTP: session A starts and closes without DELETE; session B lists, reads and cancels the run", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const a = await connectHttp(server);
    const started = await call(a.client, "start", {
      command: "echo first; while :; do sleep 0.05; done",
    });
    const id = started.s.execution_id;
    await call(a.client, "read_output", { execution_id: id, wait_seconds: 10 });
    // close() without terminateSession(): no DELETE, as most clients leave.
    await a.client.close();

    const b = await connectHttp(server);
    assert.notEqual(b.transport.sessionId, a.transport.sessionId);
    const list = await call(b.client, "list_executions", { running_only: true });
    assert.deepEqual(list.s.executions.map((e: { execution_id: string }) => e.execution_id), [id]);
    const read = await call(b.client, "read_output", { execution_id: id });
    assert.equal(read.s.stdout, "first\n");
    assert.equal(read.s.running, true);
    const cancel = await call(b.client, "control", { type: "CANCEL", execution_id: id });
    assert.equal(cancel.s.status, "canceled");
    await assertGroupGone(started.s.pgid, 100);
    await closeHttp(b);
  });
});

Deno.test("MCP: a dropped WebSocket leaves its runs running; a call in another session waits on them", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const a = await connectWs(server);
    const started = await call(a.client, "start", {
      command: "read line; echo got $line",
      stdin_open: true,
    });
    const id = started.s.execution_id;
    await a.client.close();
    const b = await connectWs(server);
    // Waits on a run another session started: woken by its output, not only by its end.
    const waiting = call(b.client, "read_output", { execution_id: id, wait_seconds: 30 });
    await call(b.client, "send_input", { execution_id: id, input: "hello\n" });
    const got = await waiting;
    assert.equal(got.s.stdout, "got hello\n");
    await b.client.close();
  });
});

Deno.test("MCP runs can be attached to over the legacy protocol with the same key", async () => {
  await withServer({}, async (server) => {
    const m = await connectWs(server);
    const run = await call(m.client, "execute", { command: "seq 1 1000" });
    assert.equal(run.s.exit_code, 0);
    await m.client.close();
    const legacy = await TestClient.open(server);
    const reply = await legacy.request("attach", { execution_id: run.s.execution_id });
    assert.equal(reply.result.state, "ended");
    let out = "";
    for (;;) {
      const e = await legacy.next((x) => x.params?.execution_id === run.s.execution_id);
      if (e.method === "process.completed") break;
      if (e.method === "process.output") out += e.params.data;
    }
    let expected = "";
    for (let i = 1; i <= 1000; i++) expected += `${i}\n`;
    assert.equal(out, expected);
    await legacy.close();
  });
});

Deno.test("MCP: detach-timeout ends a run no session follows or reads; a call waiting on one keeps it", async () => {
  await withServer({ "detach-timeout": "1", "kill-grace": "0.5" }, async (server) => {
    const a = await connectHttp(server);
    const left = await call(a.client, "start", { args: ["sleep", "1000"] });
    const waited = await call(a.client, "start", { args: ["sleep", "3"] });
    // DELETE: the session ends, and with it the last follower of both runs.
    await a.transport.terminateSession();
    await a.client.close();
    const b = await connectHttp(server);
    // Waits past three timeouts: the waiting call counts as attached.
    const end = await call(b.client, "read_output", {
      execution_id: waited.s.execution_id,
      wait_for: "exit",
      wait_seconds: 30,
    });
    assert.equal(end.s.status, "completed");
    const abandoned = server.registry.get(left.s.execution_id)!;
    const exit = await abandoned.done;
    assert.equal(exit.status, "canceled");
    assert.match(exit.error!, /detach-timeout/);
    await closeHttp(b);
  });
});

Deno.test("MCP: a client's own request timeout leaves the run going; an explicit cancel ends it", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const c = await connectHttp(server);
    // The SDK gives up after 300 ms and sends notifications/cancelled "Request timed out".
    await assert.rejects(
      call(c.client, "execute", { args: ["sleep", "1000"], wait_seconds: 30 }, { timeout: 300 }),
      /timed out/i,
    );
    const running = await call(c.client, "list_executions", { running_only: true });
    assert.equal(running.s.executions.length, 1, "the run outlives the client's impatience");
    const id = running.s.executions[0].execution_id;
    const controller = new AbortController();
    const waiting = call(c.client, "execute", { args: ["sleep", "1000"], wait_seconds: 30 }, {
      signal: controller.signal,
    });
    await eventually(() => server.registry.running().length === 2, 10_000, "the second run");
    const second = server.registry.running().find((e) => e.id !== id)!;
    controller.abort("the user pressed Esc");
    await assert.rejects(waiting);
    assert.equal((await second.done).status, "canceled");
    await call(c.client, "control", { type: "CANCEL", execution_id: id });
    await closeHttp(c);
  });
});

Deno.test("MCP read_output: an offset past an ended run's output is an error naming next_offset", async () => {
  await withServer({}, async (server) => {
    const c = await connectWs(server);
    const run = await call(c.client, "execute", { command: "printf 'hello'" });
    const past = await call(c.client, "read_output", {
      execution_id: run.s.execution_id,
      offset: 1000,
    });
    assert.equal(past.result.isError, true);
    assert.equal(past.s.error.data.field, "offset");
    assert.equal(past.s.error.data.next_offset, 5);
    const end = await call(c.client, "read_output", {
      execution_id: run.s.execution_id,
      offset: 5,
    });
    assert.equal(end.result.isError, undefined);
    assert.equal(end.s.stdout, "");
    await c.client.close();
  });
});
