import assert from "node:assert/strict";
import { Metrics } from "../lib/metrics.ts";
import { SocketWriter } from "../lib/socket_writer.ts";

/** A socket whose queue the test drains by hand (no network involved). */
function fakeSocket() {
  return {
    readyState: 1,
    bufferedAmount: 0,
    sent: [] as string[],
    send(data: string) {
      this.sent.push(data);
      this.bufferedAmount += data.length;
    },
  };
}

Deno.test("SocketWriter.ready() waits above the high-water mark until below half of it", async () => {
  const socket = fakeSocket();
  const metrics = new Metrics();
  const writer = new SocketWriter(socket, 100, metrics);
  writer.send("x".repeat(150));
  assert.equal(metrics.peakQueuedBytes, 150);
  let ready = false;
  const waiting = writer.ready().then(() => ready = true);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(ready, false);
  socket.bufferedAmount = 60; // below the mark, above the low-water mark
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(ready, false);
  socket.bufferedAmount = 40;
  await waiting;
  assert.equal(metrics.backpressureWaits, 1);
});

Deno.test("SocketWriter releases waiters and drops sends once closed", async () => {
  const socket = fakeSocket();
  const writer = new SocketWriter(socket, 10, new Metrics());
  writer.send("x".repeat(50));
  const waiting = writer.ready();
  writer.close();
  await waiting;
  assert.equal(writer.send("more"), false);
  assert.equal(socket.sent.length, 1);
});
