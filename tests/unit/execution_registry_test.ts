import assert from "node:assert/strict";
import { execLimits, execSpec } from "../_exec.ts";
import { ExecutionRegistry } from "../../lib/core/execution_registry.ts";
import { Metrics } from "../../lib/ops/metrics.ts";
import { SpillStore } from "../../lib/output/spill.ts";

function spawn(registry: ExecutionRegistry, argv: string[], metrics = new Metrics()) {
  return registry.spawn({
    sessionId: null,
    spec: execSpec(argv, { timeout: null, timeoutSource: "default" }),
    sink: { emit: () => {}, ready: () => Promise.resolve() },
    limits: execLimits({ orphanGraceMs: 100, outputRetention: 1024 }),
    metrics,
  });
}

Deno.test("ExecutionRegistry tracks runs apart from sessions and keeps finished ones", async () => {
  const registry = new ExecutionRegistry({ retentionSeconds: 60, maxRetained: 2 });
  const runs = ["a", "b", "c"].map((x) => {
    const e = spawn(registry, ["echo", x]);
    e.run();
    return e;
  });
  // The runs race each other: record the order they really finish in, not the spawn order.
  const finished: string[] = [];
  await Promise.all(runs.map((e) => e.done.then(() => finished.push(e.id))));
  assert.equal(registry.runningCount, 0);
  // Only the two most recently finished are retained.
  assert.equal(registry.list().length, 2);
  assert.equal(registry.get(finished[0]!), undefined, "the first to finish was dropped");
  for (const id of finished.slice(1)) {
    assert.equal(registry.get(id)?.exit?.status, "completed");
  }
});

Deno.test("ExecutionRegistry.prune() drops finished runs past their age", async () => {
  const registry = new ExecutionRegistry({ retentionSeconds: 1, maxRetained: 100 });
  const e = spawn(registry, ["true"]);
  e.run();
  await e.done;
  assert.ok(registry.get(e.id));
  registry.prune(Date.now() + 2000);
  assert.equal(registry.get(e.id), undefined);
});

Deno.test("ExecutionRegistry.terminateAll() ends every running execution", async () => {
  const registry = new ExecutionRegistry({ retentionSeconds: 60, maxRetained: 10 });
  const a = spawn(registry, ["sleep", "1000"]);
  const b = spawn(registry, ["sleep", "1000"]);
  a.run();
  b.run();
  assert.equal(registry.runningCount, 2);
  const exits = await registry.terminateAll();
  assert.deepEqual(exits.map((x) => x.status), ["canceled", "canceled"]);
  assert.equal(registry.runningCount, 0);
});

Deno.test("ExecutionRegistry keeps finished runs' output within a total budget", async () => {
  const registry = new ExecutionRegistry({
    retentionSeconds: 60,
    maxRetained: 10,
    maxRetainedOutput: 1500,
  });
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const e = spawn(registry, ["sh", "-c", "head -c 1000 /dev/zero | tr '\\0' x"]);
    e.run();
    await e.done;
    runs.push(e);
  }
  // 3 x 1000 bytes > 1500: the two oldest lost their output, the newest kept it.
  assert.deepEqual(runs.map((e) => e.output.bytes), [0, 0, 1000]);
  assert.equal(registry.list().length, 3, "the runs themselves are still listed");
  assert.equal(runs[0]!.output.next, 1000, "offsets survive the clearing");
});

Deno.test("ExecutionRegistry moves finished output past the budget to disk, and deletes it with the run", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "registry_spill_" });
  const metrics = new Metrics();
  const spill = SpillStore.open({ dir, perRun: 1 << 20, total: 1 << 20 });
  metrics.outputMemory.spill = spill;
  try {
    const registry = new ExecutionRegistry({
      retentionSeconds: 1,
      maxRetained: 10,
      maxRetainedOutput: 1500,
    });
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const e = spawn(registry, ["sh", "-c", "head -c 1000 /dev/zero | tr '\\0' x"], metrics);
      e.run();
      await e.done;
      runs.push(e);
    }
    assert.deepEqual(runs.map((e) => e.output.bytes), [0, 0, 1000], "in memory");
    assert.deepEqual(runs.map((e) => e.output.first), [0, 0, 0], "all of it readable");
    for (const e of runs) {
      assert.equal(new TextDecoder().decode(e.output.read(0, 1000)), "x".repeat(1000));
    }
    assert.equal(spill.runs, 2);
    assert.ok(spill.bytes >= 2000);
    // Past execution-retention the runs are forgotten, their files with them.
    registry.prune(Date.now() + 2000);
    assert.equal(registry.list().length, 0);
    assert.equal(spill.runs, 0);
    assert.equal(spill.bytes, 0);
    assert.deepEqual([...Deno.readDirSync(spill.dir)], []);
  } finally {
    spill.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
