import assert from "node:assert/strict";
import { Metrics } from "../../lib/ops/metrics.ts";
import { SocketWriter } from "../../lib/core/socket_writer.ts";
import { fakeClock } from "../_clock.ts";

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
  // ready() polls the queue: a fake clock runs many polls without waiting for them.
  using clock = fakeClock();
  const socket = fakeSocket();
  const metrics = new Metrics();
  const writer = new SocketWriter(socket, 100, metrics);
  writer.send("x".repeat(150));
  assert.equal(metrics.peakQueuedBytes, 150);
  let ready = false;
  const waiting = writer.ready().then(() => ready = true);
  await clock.tick(1000);
  assert.equal(ready, false);
  socket.bufferedAmount = 60; // below the mark, above the low-water mark
  await clock.tick(1000);
  assert.equal(ready, false);
  socket.bufferedAmount = 40;
  await clock.tick(1000);
  assert.equal(ready, true);
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

Deno.test("SocketWriter.ready() holds a queue at the floor while the output budget is spent", async () => {
  const metrics = new Metrics({ outputMemoryBudget: 256 * 1024 });
  const a = fakeSocket();
  const b = fakeSocket();
  const writerA = new SocketWriter(a, 1024 * 1024, metrics);
  const writerB = new SocketWriter(b, 1024 * 1024, metrics);
  writerA.send("x".repeat(100 * 1024)); // 100 KiB of a 1 MiB mark
  writerB.send("y".repeat(200 * 1024)); // together over the 256 KiB budget
  const waiting = writerA.ready();
  assert.equal(metrics.outputMemory.queueWaits, 1, "below its own mark, but the budget is spent");
  assert.equal(metrics.backpressureWaits, 1);
  b.bufferedAmount = 0; // the other client catches up
  await waiting;
  writerA.close();
  writerB.close();
  assert.equal(metrics.outputMemory.queued, 0, "closed sockets no longer count");
});
