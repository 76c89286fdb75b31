import assert from "node:assert/strict";
import { ProgressReporter } from "../../lib/protocol/mcp/progress.ts";
import { fakeClock } from "../_clock.ts";

function collect(options: { minIntervalMs: number; heartbeatMs: number; maxMessageChars: number }) {
  const sent: { progress: number; message: string; at: number }[] = [];
  const reporter = new ProgressReporter(
    (progress, message) => void sent.push({ progress, message, at: performance.now() }),
    options,
  );
  return { sent, reporter };
}

Deno.test("ProgressReporter sends at most one notification per interval, nothing lost", async () => {
  using clock = fakeClock();
  const { sent, reporter } = collect({
    minIntervalMs: 100,
    heartbeatMs: 60_000,
    maxMessageChars: 10_000,
  });
  const t0 = performance.now();
  for (let i = 0; i < 30; i++) {
    reporter.output(`line${i}\n`);
    await clock.tick(10);
  }
  await clock.tick(150);
  reporter.stop();
  // 450 ms of output and wait: one notification at the start, then one per 100 ms at most.
  const most = Math.floor((performance.now() - t0) / 100) + 1;
  assert.ok(sent.length >= 2 && sent.length <= most, `sent ${sent.length}, at most ${most}`);
  for (let i = 1; i < sent.length; i++) {
    assert.ok(sent[i]!.at - sent[i - 1]!.at >= 100, "spaced by the interval");
    assert.ok(sent[i]!.progress > sent[i - 1]!.progress, "progress increases");
  }
  const all = sent.map((s) => s.message).join("");
  for (let i = 0; i < 30; i++) assert.ok(all.includes(`line${i}\n`), `line${i}`);
});

Deno.test("ProgressReporter sends a heartbeat while the run is silent, and nothing after stop()", async () => {
  using clock = fakeClock();
  const { sent, reporter } = collect({ minIntervalMs: 10, heartbeatMs: 60, maxMessageChars: 100 });
  await clock.tick(59);
  assert.equal(sent.length, 0, "no heartbeat before heartbeatMs");
  await clock.tick(1 + 60 + 60);
  assert.equal(sent.length, 3, "one heartbeat per heartbeatMs");
  for (const s of sent) assert.match(s.message, /still running/);
  reporter.stop();
  reporter.output("late");
  await clock.tick(1000);
  assert.equal(sent.length, 3);
});

Deno.test("ProgressReporter keeps the newest output when a message would be too long", async () => {
  using clock = fakeClock();
  const { sent, reporter } = collect({
    minIntervalMs: 50,
    heartbeatMs: 60_000,
    maxMessageChars: 10,
  });
  reporter.note("started");
  reporter.output("0123456789abcdefghij😀");
  await clock.tick(80);
  reporter.stop();
  assert.equal(sent.length, 1);
  assert.ok(sent[0]!.message.endsWith("ghij😀"));
  assert.ok(sent[0]!.message.startsWith("…"));
  assert.ok(sent[0]!.message.length <= 10);
});
