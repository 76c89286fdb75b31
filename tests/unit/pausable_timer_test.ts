import assert from "node:assert/strict";
import { PausableTimer } from "../../lib/core/pausable_timer.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("PausableTimer fires once after its duration", async () => {
  let fired = 0;
  new PausableTimer(30, () => fired++);
  await sleep(120);
  assert.equal(fired, 1);
});

Deno.test("PausableTimer does not count paused time", async () => {
  let fired = 0;
  const t = new PausableTimer(100, () => fired++);
  t.pause();
  await sleep(200);
  assert.equal(fired, 0);
  assert.ok(t.remaining() > 50);
  t.resume();
  await sleep(250);
  assert.equal(fired, 1);
});

Deno.test("PausableTimer.touch() pushes the deadline out (idle timers)", async () => {
  let fired = 0;
  const t = new PausableTimer(120, () => fired++);
  for (let i = 0; i < 5; i++) {
    await sleep(60);
    t.touch();
  }
  assert.equal(fired, 0);
  await sleep(300);
  assert.equal(fired, 1);
});

Deno.test("PausableTimer.clear() cancels for good", async () => {
  let fired = 0;
  const t = new PausableTimer(20, () => fired++);
  t.clear();
  t.resume();
  await sleep(80);
  assert.equal(fired, 0);
});
