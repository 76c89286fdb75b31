import assert from "node:assert/strict";
import { fakeClock } from "../_clock.ts";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types";
import { Metrics } from "../../lib/ops/metrics.ts";
import { McpSocketTransport } from "../../lib/protocol/mcp/socket_transport.ts";
import { SocketWriter } from "../../lib/core/socket_writer.ts";

function setup(bufferedAmount = 0) {
  const sent: string[] = [];
  const closes: [number, string][] = [];
  const socket = { readyState: 1, bufferedAmount, send: (d: string) => void sent.push(d) };
  const transport = new McpSocketTransport(
    new SocketWriter(socket, 64 * 1024, new Metrics()),
    (code, reason) => void closes.push([code, reason]),
  );
  const received: JSONRPCMessage[] = [];
  transport.onmessage = (m) => void received.push(m);
  return { socket, sent, closes, transport, received };
}

Deno.test("McpSocketTransport passes requests, notifications and responses to the protocol", () => {
  const { transport, received, sent } = setup();
  transport.handle('{"jsonrpc":"2.0","id":"a","method":"tools/list"}');
  transport.handle('{"jsonrpc":"2.0","method":"notifications/initialized"}');
  transport.handle('{"jsonrpc":"2.0","id":3,"result":{}}');
  transport.handle('{"jsonrpc":"2.0","id":4,"error":{"code":1,"message":"x"}}');
  assert.deepEqual(received, [
    { jsonrpc: "2.0", id: "a", method: "tools/list" },
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 3, result: {} },
    { jsonrpc: "2.0", id: 4, error: { code: 1, message: "x" } },
  ]);
  assert.deepEqual(sent, []);
});

Deno.test("McpSocketTransport answers malformed frames itself, never with a null id", () => {
  const { transport, received, sent } = setup();
  transport.handle("not json");
  transport.handle("[1,2]");
  transport.handle('{"jsonrpc":"2.0","id":null,"method":"ping"}');
  transport.handle('{"jsonrpc":"1.0","id":9,"method":"ping"}');
  assert.deepEqual(received, []);
  const replies = sent.map((t) => JSON.parse(t));
  assert.deepEqual(replies.map((r) => [r.id, r.error.code]), [
    [undefined, -32700],
    [undefined, -32600],
    [undefined, -32600],
    [9, -32600],
  ]);
  for (const r of replies) assert.equal("result" in r, false);
});

Deno.test("McpSocketTransport refuses to send a message over 1 MiB", async () => {
  const { transport, sent } = setup();
  await transport.send({ jsonrpc: "2.0", id: 1, result: { text: "x".repeat(1000) } });
  assert.equal(sent.length, 1);
  await assert.rejects(
    transport.send({ jsonrpc: "2.0", id: 2, result: { text: "é".repeat(600_000) } }),
    RangeError,
  );
  assert.equal(sent.length, 1);
});

Deno.test("McpSocketTransport reports the close once and closes the socket on close()", async () => {
  const { transport, closes } = setup();
  let closed = 0;
  transport.onclose = () => void closed++;
  transport.closed();
  transport.closed();
  assert.equal(closed, 1);
  await transport.close();
  assert.deepEqual(closes, [[1000, "Closed"]]);
});

Deno.test("McpSocketTransport.ready() waits while the socket is over its high-water mark", async () => {
  using clock = fakeClock(); // ready() polls the queue
  const { transport, socket } = setup(128 * 1024);
  let ready = false;
  const waiting = transport.ready().then(() => ready = true);
  await clock.tick(1000);
  assert.equal(ready, false);
  socket.bufferedAmount = 0;
  await clock.tick(1000);
  assert.equal(ready, true);
  await waiting;
  assert.equal(ready, true);
});
