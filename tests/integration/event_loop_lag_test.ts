import assert from "node:assert/strict";
import { EventLoopLag } from "../../lib/ops/event_loop_lag.ts";
import { withServer } from "../_helpers.ts";

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("EventLoopLag records a loop held up by synchronous work", async () => {
  const lag = new EventLoopLag({ intervalMs: 5 });
  lag.start();
  try {
    // Real time on purpose: the lag of the real event loop is what is measured. Let the
    // sampler run a few times first.
    await tick(20);
    const end = performance.now() + 100;
    while (performance.now() < end) {
      // Holds the loop: the sampler's timer cannot fire meanwhile.
    }
    // Timers fire in due order: the sampler's, overdue, runs before this one.
    await tick(1);
    const { max_ms } = lag.snapshot();
    // A lower bound, whatever the load: the sample was due at most 5 ms into the 100.
    assert.ok(max_ms >= 90, `max ${max_ms} ms`);
  } finally {
    lag.stop();
  }
});

Deno.test("EventLoopLag counts a sample overdue now", () => {
  let t = 1000;
  const lag = new EventLoopLag({ intervalMs: 20, now: () => t });
  lag.start();
  try {
    t = 1520; // due at 1020: 500 ms late, and the loop has not let it run
    assert.deepEqual(lag.snapshot(), { current_ms: 500, max_ms: 500 });
  } finally {
    lag.stop();
  }
  assert.deepEqual(lag.snapshot(), { current_ms: 0, max_ms: 0 });
});

Deno.test("EventLoopLag forgets lags older than its window, in fixed memory", () => {
  let t = 0;
  const lag = new EventLoopLag({ windowMs: 10_000, slots: 10, now: () => t });
  // An hour of samples, one a second, the worst of each minute at its start.
  for (t = 0; t < 3_600_000; t += 1000) lag.record(t % 60_000 === 0 ? t / 60_000 + 100 : 1);
  // The last spike (minute 59, 159 ms) is 59 s old: outside a 10 s window.
  assert.deepEqual(lag.snapshot(), { current_ms: 1, max_ms: 1 });
  t = 3_600_000;
  lag.record(7.25);
  assert.deepEqual(lag.snapshot(), { current_ms: 7.3, max_ms: 7.3 });
  t += 5_000;
  lag.record(2);
  assert.deepEqual(lag.snapshot(), { current_ms: 2, max_ms: 7.3 });
});

Deno.test("/health reports the event loop's lag, now and its worst of the last minute", async () => {
  await withServer({}, async (server) => {
    const h = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    assert.equal(typeof h.event_loop_lag_ms, "number");
    assert.equal(typeof h.event_loop_lag_max_ms, "number");
    assert.ok(h.event_loop_lag_max_ms >= h.event_loop_lag_ms);
  });
});
