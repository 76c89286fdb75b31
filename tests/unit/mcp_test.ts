import assert from "node:assert/strict";
import type { Transport, TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport";
import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types";
import { McpProtocol } from "../../lib/protocol/mcp/mcp.ts";
import type { HookRunner } from "../../lib/ops/hooks.ts";
import { assertGroupGone, eventually, type Msg } from "../_helpers.ts";
import { makeSession, testConfig, withHooks } from "../_session.ts";

const config = testConfig(["--kill-grace", "0.5"]);

/** An McpProtocol on an in-memory transport; `sent` holds what it sent, with options. */
async function setup(hooks?: HookRunner) {
  const sent: { message: Msg; options?: TransportSendOptions | undefined }[] = [];
  const cancelled: RequestId[] = [];
  const transport: Transport = {
    start: () => Promise.resolve(),
    close: () => Promise.resolve(),
    send: (message: JSONRPCMessage, options?: TransportSendOptions) => {
      sent.push({ message, options });
      return Promise.resolve();
    },
  };
  const { session, services } = makeSession({ config, ...(hooks ? { hooks } : {}) });
  const protocol = new McpProtocol(session, transport, config, services, {
    cancelled: (id) => void cancelled.push(id),
    progress: { minIntervalMs: 20, heartbeatMs: 50, maxMessageChars: 2000 },
  });
  await protocol.start();
  const receive = (m: Msg) => transport.onmessage!(m);
  const reply = async (id: RequestId) => {
    let found: Msg;
    await eventually(() => (found = sent.find((s) => s.message.id === id)) !== undefined);
    return found.message;
  };
  const initialize = async () => {
    receive({
      jsonrpc: "2.0",
      id: "init",
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t" } },
    });
    return await reply("init");
  };
  return { protocol, transport, session, sent, cancelled, receive, reply, initialize };
}

Deno.test("McpProtocol answers ping before initialize and refuses everything else", async () => {
  const { receive, reply, initialize, session } = await setup();
  receive({ jsonrpc: "2.0", id: 1, method: "ping" });
  assert.deepEqual((await reply(1)).result, {});
  receive({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "execute" } });
  assert.equal((await reply(2)).error.code, -32600);
  assert.equal(session.runningCount, 0);
  const init = await initialize();
  assert.equal(init.result.protocolVersion, "2025-11-25");
  assert.equal(typeof init.result.instructions, "string");
  receive({ jsonrpc: "2.0", id: 3, method: "prompts/list" });
  assert.equal((await reply(3)).error.code, -32601);
  receive({ jsonrpc: "2.0", id: 4, method: "tools/call", params: { arguments: {} } });
  const malformed = await reply(4);
  assert.equal(malformed.error.code, -32602);
  assert.equal(malformed.error.data.field, "name");
});

Deno.test("McpProtocol raises the session's execution limit to mcp-max-executions", async () => {
  const { session } = await setup();
  assert.equal(config.maxExecutionsPerSession, 1);
  assert.equal(session.maxExecutions, config.mcpMaxExecutions);
});

Deno.test("McpProtocol: progress goes with its request; a cancelled call ends its run and gets no response", async () => {
  const { receive, sent, cancelled, initialize, session } = await setup();
  await initialize();
  receive({
    jsonrpc: "2.0",
    id: 7,
    method: "tools/call",
    params: {
      name: "execute",
      arguments: { command: "echo hi; exec sleep 1000" },
      _meta: { progressToken: 42 },
    },
  });
  await eventually(() =>
    sent.some((s) =>
      s.message.method === "notifications/progress" && /hi/.test(s.message.params.message)
    )
  );
  const progress = sent.filter((s) => s.message.method === "notifications/progress");
  for (const p of progress) {
    assert.equal(p.message.params.progressToken, 42);
    assert.equal(p.options?.relatedRequestId, 7, "routed to the request's stream");
  }
  const exec = session.executions().filter((e) => e.active)[0]!;
  receive({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 7 } });
  await exec.done;
  assert.equal(exec.state, "canceled");
  await assertGroupGone(exec.pgid);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sent.filter((s) => s.message.id === 7).length, 0);
  assert.deepEqual(cancelled, [7]);
});

Deno.test("McpProtocol.log() honours logging/setLevel and says nothing before initialize", async () => {
  const { protocol, receive, reply, sent, initialize } = await setup();
  const messages = () => sent.filter((s) => s.message.method === "notifications/message");
  protocol.log("error", "early");
  assert.equal(messages().length, 0);
  await initialize();
  protocol.log("debug", "hidden by default");
  protocol.log("info", "shown");
  assert.deepEqual(messages().map((s) => s.message.params.data), ["shown"]);
  receive({ jsonrpc: "2.0", id: 9, method: "logging/setLevel", params: { level: "error" } });
  assert.deepEqual((await reply(9)).result, {});
  protocol.log("warning", "below");
  protocol.log("critical", "above");
  assert.deepEqual(messages().map((s) => s.message.params.data), ["shown", "above"]);
  assert.equal(messages()[1]!.message.params.level, "critical");
});

Deno.test("McpProtocol: a silent run and a waiting read_output still report progress", async () => {
  const { receive, reply, sent, initialize, session } = await setup();
  await initialize();
  const progressOf = (token: string) =>
    sent.filter((s) =>
      s.message.method === "notifications/progress" &&
      s.message.params.progressToken === token
    );
  receive({
    jsonrpc: "2.0",
    id: "quiet",
    method: "tools/call",
    params: {
      name: "execute",
      arguments: { command: "sleep 0.4" },
      _meta: { progressToken: "q" },
    },
  });
  const done = await reply("quiet");
  assert.equal(done.result.structuredContent.status, "completed");
  assert.ok(progressOf("q").some((s) => /still running/.test(s.message.params.message)));

  receive({
    jsonrpc: "2.0",
    id: "start",
    method: "tools/call",
    params: { name: "start", arguments: { command: "sleep 0.4; echo late" } },
  });
  const id = (await reply("start")).result.structuredContent.execution_id;
  receive({
    jsonrpc: "2.0",
    id: "wait",
    method: "tools/call",
    params: {
      name: "read_output",
      arguments: { execution_id: id, wait_seconds: 10 },
      _meta: { progressToken: "w" },
    },
  });
  const read = await reply("wait");
  assert.equal(read.result.structuredContent.stdout, "late\n");
  assert.ok(progressOf("w").length >= 2, `heartbeats: ${progressOf("w").length}`);
  await session.end("disconnect");
});

Deno.test("McpProtocol: pre_execute and post_execute hooks reach the client as notifications/message", async () => {
  await withHooks({
    pre_execute: [{ name: "before", argv: ["true"] }],
    post_execute: [{ name: "after", argv: ["false"] }],
  }, async (hooks) => {
    const { receive, reply, sent, initialize } = await setup(hooks);
    await initialize();
    receive({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "execute", arguments: { command: "true" } },
    });
    const id = (await reply(1)).result.structuredContent.execution_id;
    const hookMessages = () =>
      sent.map((s) => s.message)
        .filter((m) => m.method === "notifications/message" && m.params.data.hook !== undefined);
    await eventually(() => hookMessages().length === 2);
    const [before, after] = hookMessages();
    assert.deepEqual(
      [before.params.data.name, before.params.data.hook, before.params.level],
      ["before", "pre_execute", "info"],
    );
    assert.deepEqual(
      [after.params.data.name, after.params.data.hook, after.params.level],
      ["after", "post_execute", "warning"],
    );
    assert.equal(before.params.data.execution_id, id);
    assert.equal(after.params.data.execution_id, id);
  });
});
