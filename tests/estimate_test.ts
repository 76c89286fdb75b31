import assert from "node:assert/strict";
import { EmbeddedStore } from "../lib/store/embedded.ts";
import { ResourceMonitor } from "../lib/monitor.ts";
import type { Store } from "../lib/store/store.ts";
import { classify } from "../lib/timing/classify.ts";
import { DEFAULT_TIMEOUTS_S, estimateTimeout, withMultiplier } from "../lib/timing/estimate.ts";
import { run } from "./store_contract.ts";

async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
  const store = await EmbeddedStore.open({ path: ":memory:" });
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

/** A fixed multiplier, as a busy or idle monitor would give. */
const busy = { multiplier: () => 3 };

Deno.test("DEFAULT_TIMEOUTS_S holds the documented defaults", () => {
  assert.deepEqual(DEFAULT_TIMEOUTS_S, {
    trivial: 15,
    simple: 30,
    low: 60,
    medium: 180,
    high: 360,
    complex: 600,
    extreme: 900,
  });
});

Deno.test("estimateTimeout() moves from the default to history after 3 successes", async () => {
  await withStore(async (store) => {
    const command = "cargo build --release";
    const cls = classify(command).class;
    const estimate = () => estimateTimeout({ command, store });

    const first = await estimate();
    assert.equal(first.source, "default");
    assert.equal(first.timeout_s, 360);
    assert.equal(first.reasoning.class, "cmd:cargo:build");
    assert.equal(first.reasoning.complexity, "high");
    assert.equal(first.reasoning.samples, 0);

    await store.appendRun(cls, run(40));
    await store.appendRun(cls, run(50));
    // Failures and timeouts are not successes and do not count.
    await store.appendRun(cls, run(900, 0, { status: "failed", exit_code: 101 }));
    await store.appendRun(
      cls,
      run(360, 0, { status: "timeout", exit_code: null, timed_out: true }),
    );
    const two = await estimate();
    assert.equal(two.source, "default");
    assert.equal(two.reasoning.samples, 2);

    await store.appendRun(cls, run(45));
    const three = await estimate();
    assert.equal(three.source, "history");
    assert.equal(three.reasoning.samples, 3);
    assert.equal(three.reasoning.percentile, 90);
    assert.equal(three.reasoning.p90, 50);
    assert.equal(three.reasoning.longest_success, 50);
    assert.equal(three.reasoning.base_s, 60);
    assert.equal(three.timeout_s, 60);

    // More history moves it again.
    for (const d of [100, 110, 120]) await store.appendRun(cls, run(d));
    const six = await estimate();
    assert.equal(six.source, "history");
    assert.equal(six.reasoning.samples, 6);
    assert.equal(six.reasoning.p90, 120);
    assert.equal(six.timeout_s, 144);
  });
});

Deno.test("estimateTimeout() never goes below the longest success", async () => {
  await withStore(async (store) => {
    const cls = classify("pytest").class;
    // p90 of ten runs is the 9th fastest (10 s); 10 x 1.2 = 12 is less than the 30 s outlier.
    for (let i = 0; i < 9; i++) await store.appendRun(cls, run(10));
    await store.appendRun(cls, run(30));
    const e = await estimateTimeout({ command: "pytest -x", store });
    assert.equal(e.source, "history");
    assert.equal(e.reasoning.p90, 10);
    assert.equal(e.reasoning.longest_success, 30);
    assert.equal(e.timeout_s, 30);
  });
});

Deno.test("estimateTimeout() applies the resource multiplier", async () => {
  await withStore(async (store) => {
    const idle = await estimateTimeout({
      command: "git status",
      store,
      monitor: { multiplier: () => 1 },
    });
    assert.equal(idle.timeout_s, 15);
    assert.equal(idle.reasoning.multiplier, 1);

    const loaded = await estimateTimeout({ command: "git status", store, monitor: busy });
    assert.equal(loaded.timeout_s, 45);
    assert.equal(loaded.reasoning.base_s, 15);
    assert.equal(loaded.reasoning.multiplier, 3);

    const cls = classify("make").class;
    for (const d of [10, 10, 10]) await store.appendRun(cls, run(d));
    const learned = await estimateTimeout({ command: "make", store, monitor: busy });
    assert.equal(learned.source, "history");
    assert.equal(learned.reasoning.base_s, 12);
    assert.equal(learned.timeout_s, 36);
  });
});

Deno.test("estimateTimeout() takes the multiplier from a real ResourceMonitor", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_est_" });
  const monitor = new ResourceMonitor({ statPath: `${dir}/stat`, nvidiaSmi: null });
  try {
    await Deno.writeTextFile(`${dir}/stat`, "cpu  0 0 0 1000 0 0 0 0 0 0\n");
    await monitor.sample();
    // 50 of 100 ticks busy: above the 14 % threshold.
    await Deno.writeTextFile(`${dir}/stat`, "cpu  50 0 0 1050 0 0 0 0 0 0\n");
    await monitor.sample();
    await withStore(async (store) => {
      const e = await estimateTimeout({ command: "ls", store, monitor });
      assert.equal(e.reasoning.multiplier, 3);
      assert.equal(e.timeout_s, 45);
    });
  } finally {
    await monitor.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("estimateTimeout() pools similar classes when its own history is short", async () => {
  await withStore(async (store) => {
    // Same category and complexity (test/medium) as `npm test`.
    await store.appendRun("cmd:pytest", run(20));
    await store.appendRun("cmd:pytest", run(30));
    await store.appendRun("cmd:make:test", run(40));
    // Different category or complexity: not similar.
    await store.appendRun("cmd:cargo:test", run(500));
    await store.appendRun("cmd:git:clone", run(600));
    // Similar, but without a success: contributes nothing.
    await store.appendRun("cmd:jest", run(700, 0, { status: "failed", exit_code: 1 }));

    const e = await estimateTimeout({ command: "npm test", store });
    assert.equal(e.source, "similar");
    assert.deepEqual(e.reasoning.similar_classes, ["cmd:make:test", "cmd:pytest"]);
    assert.equal(e.reasoning.samples, 3);
    assert.equal(e.reasoning.p90, 40);
    assert.equal(e.timeout_s, 48);

    // A tagged command pools with untagged runs of the same program, sub-command and complexity.
    await store.appendRun("claude:code:low", run(25));
    await store.appendRun("claude:code:low", run(30));
    await store.appendRun("claude:code:low", run(35));
    const tagged = await estimateTimeout({
      command: `[category:proj][task:fn][complexity:low] claude -p "Write a function to add"`,
      store,
    });
    assert.equal(tagged.source, "similar");
    assert.deepEqual(tagged.reasoning.similar_classes, ["claude:code:low"]);
    assert.equal(tagged.timeout_s, 42);
  });
});

Deno.test("estimateTimeout() prefers the class's own history to similar classes", async () => {
  await withStore(async (store) => {
    for (const d of [1, 1, 1]) await store.appendRun("cmd:pytest", run(d));
    for (const d of [100, 100, 100]) await store.appendRun("cmd:npm:test", run(d));
    const e = await estimateTimeout({ command: "pytest", store });
    assert.equal(e.source, "history");
    assert.equal(e.reasoning.similar_classes, undefined);
    assert.equal(e.timeout_s, 2);
  });
});

Deno.test("estimateTimeout() falls back to defaults when the store fails", async () => {
  const store = await EmbeddedStore.open({ path: ":memory:" });
  for (const d of [1, 1, 1]) await store.appendRun("cmd:make", run(d));
  // A closed store fails every call, as a Redis that is down does.
  await store.close();
  const e = await estimateTimeout({ command: "make", store, monitor: busy });
  assert.equal(e.source, "default");
  assert.equal(e.timeout_s, 540);
  assert.match(e.reasoning.store_error ?? "", /unavailable: store is closed/);
  assert.equal(e.reasoning.multiplier, 3);
});

Deno.test("estimateTimeout() takes overridden defaults and knobs", async () => {
  await withStore(async (store) => {
    const e = await estimateTimeout({ command: "ls", store, defaults: { trivial: 5 } });
    assert.equal(e.timeout_s, 5);
    assert.equal(e.reasoning.store_error, undefined);
    const medium = await estimateTimeout({ command: "npm test", store, defaults: { trivial: 5 } });
    assert.equal(medium.timeout_s, 180);

    for (const d of [10, 20]) await store.appendRun("cmd:ls", run(d));
    const two = await estimateTimeout({ command: "ls", store, minSamples: 2, headroom: 2 });
    assert.equal(two.source, "history");
    assert.equal(two.timeout_s, 40);
  });
});

Deno.test("estimateTimeout() never returns less than one second", async () => {
  await withStore(async (store) => {
    for (const d of [0.01, 0.02, 0.01]) await store.appendRun("cmd:echo", run(d));
    const e = await estimateTimeout({ command: "echo hi", store });
    assert.equal(e.source, "history");
    assert.equal(e.timeout_s, 1);
  });
});

Deno.test("withMultiplier() reapplies the load to the same history, rounding like the estimate", () => {
  const estimate = {
    timeout_s: 12,
    source: "history" as const,
    reasoning: {
      class: "cmd:make:build",
      category: "build",
      complexity: "medium" as const,
      samples: 3,
      multiplier: 1,
      base_s: 12,
    },
  };
  assert.equal(withMultiplier(estimate, 1).timeout_s, 12);
  const busy = withMultiplier(estimate, 3);
  assert.equal(busy.timeout_s, 36);
  assert.equal(busy.reasoning.multiplier, 3);
  assert.equal(busy.reasoning.base_s, 12);
  assert.equal(
    withMultiplier({ ...estimate, reasoning: { ...estimate.reasoning, base_s: 10 } }, 1.2)
      .timeout_s,
    12,
  );
});
