import assert from "node:assert/strict";
import { Execution } from "../../lib/core/execution.ts";
import { Metrics } from "../../lib/ops/metrics.ts";
import { eventually } from "../_helpers.ts";
import { execLimits, execSpec } from "../_exec.ts";
import type { ExecSpec, ExecutionEvent } from "../../lib/types.ts";

const spec = execSpec;

function start(s: ExecSpec, metrics = new Metrics()) {
  const events: ExecutionEvent[] = [];
  const exec = Execution.spawn({
    id: crypto.randomUUID(),
    sessionId: null,
    spec: s,
    sink: { emit: (e) => void events.push(e), ready: () => Promise.resolve() },
    limits: execLimits(),
    metrics,
    receivedAt: performance.now(),
  });
  exec.run();
  return { exec, events };
}

Deno.test("Execution emits started, output, completed in order and counts bytes", async () => {
  const metrics = new Metrics();
  const { exec, events } = start(spec(["sh", "-c", "printf abc; printf de >&2"]), metrics);
  const exit = await exec.done;
  assert.equal(exit.status, "completed");
  assert.equal(events[0]!.type, "started");
  assert.equal(events.at(-1)!.type, "completed");
  assert.deepEqual(exec.bytes, { stdout: 3, stderr: 2 });
  assert.equal(metrics.bytesStreamed, 5);
  assert.equal(metrics.executionsStarted, 1);
  assert.equal(metrics.executionsFinished, 1);
  assert.ok(metrics.meanStartLatencyMs >= 0);
  assert.equal(exec.state, "completed");
  assert.equal(exec.active, false);
});

Deno.test("Execution keeps the newest output within its retention for reads", async () => {
  // One message per line, so there are many chunks to drop, however the reads fall.
  const { exec } = start(
    spec(["sh", "-c", "for i in $(seq 1 100); do echo line$i; done"], { framing: "line" }),
  );
  await exec.done;
  const slice = exec.output.since(0);
  assert.ok(slice.skipped > 0, "old output was dropped");
  assert.ok(retained(exec).endsWith("line100\n"));
  assert.equal(slice.next, exec.bytes.stdout);
  assert.ok(exec.output.bytes <= 64, "within the retention");
});

Deno.test("Execution.cancel() reason decides the final status; the first reason wins", async () => {
  const { exec } = start(spec(["sleep", "1000"]));
  const a = exec.cancel("shutdown");
  const b = exec.cancel("canceled");
  const [x, y] = await Promise.all([a, b]);
  assert.equal(x.status, "canceled");
  assert.equal(x.error, "Server shutting down");
  assert.deepEqual(x, y);
  assert.throws(() => exec.cancel("canceled"), { code: -32002 });
  assert.throws(() => exec.pause(), { code: -32002 });
  assert.throws(() => exec.resume(), { code: -32002 });
});

Deno.test("Execution pause() and resume() report whether they changed anything", async () => {
  const { exec, events } = start(spec(["sleep", "1000"]));
  assert.equal(exec.pause(), true);
  assert.equal(exec.pause(), false);
  assert.equal(exec.state, "paused");
  assert.equal(exec.resume(), true);
  assert.equal(exec.resume(), false);
  // The protocol sends its own paused/resumed notification, after its reply.
  assert.ok(!events.some((e) => e.type === "paused"));
  assert.ok(events.every((e) => e.executionId === exec.id));
  await exec.cancel();
});

Deno.test("Execution timeout reports status timeout with the limit in the error", async () => {
  const { exec } = start(spec(["sleep", "1000"], { timeout: 0.2 }));
  const exit = await exec.done;
  assert.equal(exit.status, "timeout");
  assert.equal(exit.error, "Process timed out after 0.2s");
  assert.equal(exit.signal, "SIGTERM");
});

/** The output a run still retains, as text. */
function retained(exec: Execution): string {
  return new TextDecoder().decode(exec.output.read(0, exec.output.next));
}

/** Waits until the run's output contains `text`. */
async function outputHas(exec: Execution, text: string): Promise<void> {
  await eventually(() => retained(exec).includes(text), 10_000, `"${text}" in the output`);
}

Deno.test("Execution with stdinOpen takes input while it runs; closing stdin ends cat", async () => {
  const { exec } = start(spec(["cat"], { stdin: "first\n", stdinOpen: true }));
  assert.equal(exec.stdinOpen, true);
  await outputHas(exec, "first\n");
  assert.equal(await exec.writeInput("second\n"), 7);
  await outputHas(exec, "second\n");
  assert.equal(exec.active, true, "cat waits for more");
  assert.equal(await exec.writeInput("é", true), 2);
  assert.equal(exec.stdinOpen, false);
  await assert.rejects(exec.writeInput("more"), { code: -32002, message: "stdin is not open" });
  const exit = await exec.done;
  assert.equal(exit.status, "completed");
  assert.equal(retained(exec), "first\nsecond\né");
});

Deno.test("Execution without stdinOpen refuses input; an ended run closes its stdin", async () => {
  const { exec } = start(spec(["sleep", "1000"]));
  assert.equal(exec.stdinOpen, false);
  await assert.rejects(exec.writeInput("x"), { code: -32002 });
  await exec.cancel();

  const open = start(spec(["sh", "-c", "exit 0"], { stdinOpen: true })).exec;
  await open.done;
  assert.equal(open.stdinOpen, false, "stdin is released when the run ends");
  await assert.rejects(open.writeInput("x"), { code: -32002 });
});
