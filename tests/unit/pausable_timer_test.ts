import assert from "node:assert/strict";
import { PausableTimer } from "../../lib/core/pausable_timer.ts";
import { fakeClock } from "../_clock.ts";

Deno.test("PausableTimer fires once after its duration", async () => {
  using clock = fakeClock();
  let fired = 0;
  new PausableTimer(30, () => fired++);
  await clock.tick(29);
  assert.equal(fired, 0);
  await clock.tick(1);
  assert.equal(fired, 1);
  await clock.tick(1000);
  assert.equal(fired, 1, "once only");
});

Deno.test("PausableTimer does not count paused time", async () => {
  using clock = fakeClock();
  let fired = 0;
  const t = new PausableTimer(100, () => fired++);
  await clock.tick(40);
  t.pause();
  await clock.tick(10_000);
  assert.equal(fired, 0);
  assert.equal(t.remaining(), 60);
  t.resume();
  await clock.tick(59);
  assert.equal(fired, 0);
  await clock.tick(1);
  assert.equal(fired, 1);
});

Deno.test("PausableTimer.touch() pushes the deadline out (idle timers)", async () => {
  using clock = fakeClock();
  let fired = 0;
  const t = new PausableTimer(120, () => fired++);
  for (let i = 0; i < 5; i++) {
    await clock.tick(60);
    t.touch();
  }
  assert.equal(fired, 0);
  await clock.tick(119);
  assert.equal(fired, 0, "the full duration counts from the last touch");
  await clock.tick(1);
  assert.equal(fired, 1);
});

Deno.test("PausableTimer.clear() cancels for good", async () => {
  using clock = fakeClock();
  let fired = 0;
  const t = new PausableTimer(20, () => fired++);
  t.clear();
  t.resume();
  await clock.tick(10_000);
  assert.equal(fired, 0);
});
