import assert from "node:assert/strict";
import fc from "fast-check";
import { EmbeddedStore } from "../../lib/store/embedded.ts";
import { ResourceMonitor } from "../../lib/ops/monitor.ts";
import type { Store, TimingRun } from "../../lib/store/store.ts";
import { classify } from "../../lib/timing/classify.ts";
import { DEFAULT_TIMEOUTS_S } from "../../lib/timing/complexity.ts";
import { estimateTimeout, restate } from "../../lib/timing/estimate.ts";
import { explainEstimate } from "../../lib/timing/explain.ts";
import { run } from "../store_contract.ts";

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

/** A run ended by an automatic limit of `limit` seconds. */
const autoTimeout = (limit: number): Partial<TimingRun> => ({
  status: "timeout",
  exit_code: null,
  timed_out: true,
  limit_s: limit,
  auto: true,
});

Deno.test("DEFAULT_TIMEOUTS_S holds the documented, generous defaults", () => {
  assert.deepEqual(DEFAULT_TIMEOUTS_S, {
    trivial: 60,
    simple: 120,
    low: 300,
    medium: 600,
    high: 1800,
    complex: 3600,
    extreme: 7200,
  });
});

Deno.test("estimateTimeout() moves from the default to history after 3 successes", async () => {
  await withStore(async (store) => {
    // A clone is not long work: its history may bring its limit down.
    const command = "git clone https://x/y.git";
    const cls = classify(command).class;
    const estimate = () => estimateTimeout({ command, store });

    const first = await estimate();
    assert.equal(first.source, "default");
    assert.equal(first.timeout_s, 600);
    assert.equal(first.reasoning.class, "cmd:git:clone");
    assert.equal(first.reasoning.complexity, "medium");
    assert.equal(first.reasoning.samples, 0);
    assert.equal(first.reasoning.default_s, 600);
    assert.equal(first.reasoning.minimum_s, undefined);

    await store.appendRun(cls, run(40));
    await store.appendRun(cls, run(50));
    // Failures and timeouts are not successes and do not count.
    // (A failure shorter than the successes adds nothing; a longer one would count twice.)
    await store.appendRun(cls, run(30, 0, { status: "failed", exit_code: 101 }));
    await store.appendRun(
      cls,
      run(360, 0, { status: "timeout", exit_code: null, timed_out: true }),
    );
    const two = await estimate();
    assert.equal(two.source, "default");
    assert.equal(two.reasoning.samples, 2);
    assert.equal(two.reasoning.longest_success_s, 50);

    await store.appendRun(cls, run(45));
    const three = await estimate();
    assert.equal(three.source, "history");
    assert.equal(three.reasoning.samples, 3);
    assert.equal(three.reasoning.percentile, 90);
    assert.equal(three.reasoning.percentile_s, 50);
    assert.equal(three.reasoning.learned_s, 60);
    assert.equal(three.reasoning.longest_success_s, 50);
    // Twice the longest success (100) beats the learned 60.
    assert.equal(three.reasoning.base_s, 100);
    assert.equal(three.reasoning.decided_by, "base");
    assert.equal(three.timeout_s, 100);

    // More history moves it again.
    for (const d of [100, 110, 120]) await store.appendRun(cls, run(d));
    const six = await estimate();
    assert.equal(six.reasoning.samples, 6);
    assert.equal(six.reasoning.percentile_s, 120);
    assert.equal(six.timeout_s, 240);
  });
});

Deno.test("estimateTimeout() names the percentile it used, whatever it is", async () => {
  await withStore(async (store) => {
    for (const d of [10, 20, 30, 40]) await store.appendRun("cmd:pytest", run(d));
    const e = await estimateTimeout({ command: "pytest", store, percentile: 50, floorS: 1 });
    assert.equal(e.reasoning.percentile, 50);
    assert.equal(e.reasoning.percentile_s, 20);
    assert.equal(e.reasoning.learned_s, 24);
    assert.equal("p90" in e.reasoning, false);
  });
});

Deno.test("estimateTimeout() is never below the floor nor twice the longest success", async () => {
  await withStore(async (store) => {
    // The bug report: quick echos, then a loop of sleeps, then a slow script.
    for (const d of [0.015, 0.01, 0.012]) await store.appendRun("cmd:echo", run(d));
    const echo = await estimateTimeout({ command: "echo hi", store });
    assert.equal(echo.source, "history");
    assert.equal(echo.timeout_s, 60);
    assert.equal(echo.reasoning.decided_by, "floor");
    assert.equal(echo.reasoning.floor_s, 60);

    for (const d of [0.05, 0.05, 0.05, 0.05, 0.05, 40]) await store.appendRun("cmd:x.sh", run(d));
    const script = await estimateTimeout({ command: "./x.sh", store });
    assert.equal(script.timeout_s, 80);
    assert.match(script.reasoning.rule, /2 x longest 40/);
  });
});

Deno.test("estimateTimeout() applies the resource multiplier to the base, not the floor", async () => {
  await withStore(async (store) => {
    const idle = await estimateTimeout({
      command: "git status",
      store,
      monitor: { multiplier: () => 1 },
    });
    assert.equal(idle.timeout_s, 60);
    assert.equal(idle.reasoning.multiplier, 1);

    const loaded = await estimateTimeout({ command: "git status", store, monitor: busy });
    assert.equal(loaded.timeout_s, 180);
    assert.equal(loaded.reasoning.base_s, 60);
    assert.equal(loaded.reasoning.multiplier, 3);

    const cls = classify("rsync -a src dst").class;
    for (const d of [10, 10, 10]) await store.appendRun(cls, run(d));
    const learned = await estimateTimeout({ command: "rsync -a src dst", store, monitor: busy });
    assert.equal(learned.source, "history");
    assert.equal(learned.reasoning.base_s, 20);
    // 20 x 3 = 60, which is the floor too.
    assert.equal(learned.timeout_s, 60);
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
      assert.equal(e.timeout_s, 180);
    });
  } finally {
    await monitor.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("estimateTimeout() pools only classes of the same program and sub-command", async () => {
  await withStore(async (store) => {
    // Same category (test), other programs: never pooled.
    await store.appendRun("cmd:pytest", run(1));
    await store.appendRun("cmd:make:test", run(1));
    await store.appendRun("cmd:jest", run(1));
    const npm = await estimateTimeout({ command: "npm test", store });
    assert.equal(npm.source, "default");
    assert.equal(npm.timeout_s, 600);

    // A conditional around `rsync` is a class of its own; `rsync` itself is similar.
    for (const d of [100, 110, 120]) await store.appendRun("cmd:rsync", run(d));
    const wrapped = await estimateTimeout({
      command: "if [ -d src ]; then rsync -a src dst; fi",
      store,
    });
    assert.equal(wrapped.reasoning.class, "shell:if:rsync");
    assert.equal(wrapped.source, "similar");
    assert.deepEqual(wrapped.reasoning.similar_classes, ["cmd:rsync"]);
    assert.equal(wrapped.timeout_s, 240);

    // A loop over it is not: a loop repeats its body.
    const loop = await estimateTimeout({
      command: "for d in a b; do rsync -a $d dst; done",
      store,
    });
    assert.equal(loop.source, "default");

    // A tagged command pools with untagged runs of the same program and sub-command.
    for (const d of [25, 30, 35]) await store.appendRun("claude:code:low", run(d));
    const tagged = await estimateTimeout({
      command: `[category:proj][task:fn][complexity:low] claude -p "Write a function to add"`,
      store,
    });
    assert.equal(tagged.source, "similar");
    assert.deepEqual(tagged.reasoning.similar_classes, ["claude:code:low"]);
    assert.equal(tagged.timeout_s, 70);

    // `cp -r` learns nothing from echo, head and wc (same category, other programs).
    for (const c of ["cmd:echo", "cmd:head", "cmd:wc"]) {
      for (let i = 0; i < 3; i++) await store.appendRun(c, run(0.01));
    }
    const cp = await estimateTimeout({ command: "cp -r a b", store });
    assert.equal(cp.source, "default");
    assert.equal(cp.reasoning.similar_classes, undefined);
  });
});

Deno.test("estimateTimeout() doubles after an automatic timeout until a success", async () => {
  await withStore(async (store) => {
    const cls = "cmd:build.sh";
    for (const d of [1, 1, 1]) await store.appendRun(cls, run(d));
    assert.equal((await estimateTimeout({ command: "./build.sh", store })).timeout_s, 60);

    await store.appendRun(cls, run(60, 0, autoTimeout(60)));
    const once = await estimateTimeout({ command: "./build.sh", store });
    assert.equal(once.timeout_s, 120);
    assert.equal(once.reasoning.decided_by, "backoff");
    assert.equal(once.reasoning.timeouts_since_success, 1);
    assert.equal(once.reasoning.backoff_s, 120);

    // A failure in between changes nothing; another timeout doubles again.
    await store.appendRun(cls, run(3, 0, { status: "failed", exit_code: 2 }));
    await store.appendRun(cls, run(120, 0, autoTimeout(120)));
    const twice = await estimateTimeout({ command: "./build.sh", store });
    assert.equal(twice.timeout_s, 240);
    assert.equal(twice.reasoning.timeouts_since_success, 2);
    assert.match(explainEstimate(twice), /back-off: 2 run\(s\).*doubled to 240s/);

    // A limit the request set says nothing about the automatic one.
    await store.appendRun(cls, run(5, 0, { ...autoTimeout(5), auto: false }));
    assert.equal((await estimateTimeout({ command: "./build.sh", store })).timeout_s, 240);

    // A success ends the back-off; its duration now counts twice.
    await store.appendRun(cls, run(200));
    const after = await estimateTimeout({ command: "./build.sh", store });
    assert.equal(after.reasoning.timeouts_since_success, 0);
    assert.equal(after.reasoning.backoff_s, undefined);
    assert.equal(after.timeout_s, 400);
  });
});

Deno.test("estimateTimeout() never lets quick runs shrink a build or test class below its default", async () => {
  await withStore(async (store) => {
    // Three single-test runs, then the whole suite: the same class.
    for (const d of [0.5, 0.4, 0.6]) await store.appendRun("cmd:pytest", run(d));
    const suite = await estimateTimeout({ command: "pytest", store });
    assert.equal(suite.source, "history");
    assert.equal(suite.reasoning.minimum_s, 600);
    assert.equal(suite.timeout_s, 600);
    for (const d of [0.1, 0.1, 0.1]) await store.appendRun("cmd:cargo:build", run(d));
    assert.equal(
      (await estimateTimeout({ command: "cargo build --release", store })).timeout_s,
      1800,
    );
    // Other classes learn downwards to the floor.
    for (const d of [0.1, 0.1, 0.1]) await store.appendRun("cmd:x.sh", run(d));
    assert.equal((await estimateTimeout({ command: "./x.sh", store })).timeout_s, 60);
  });
});

Deno.test("estimateTimeout() counts a long failed run like a success for the 2 x longest term", async () => {
  await withStore(async (store) => {
    for (const d of [1, 1, 1]) await store.appendRun("cmd:check.sh", run(d));
    await store.appendRun("cmd:check.sh", run(300, 0, { status: "failed", exit_code: 1 }));
    const e = await estimateTimeout({ command: "./check.sh", store });
    assert.equal(e.reasoning.longest_failure_s, 300);
    assert.equal(e.timeout_s, 600);
  });
});

Deno.test("estimateTimeout() is capped at max-timeout and says so", async () => {
  await withStore(async (store) => {
    const e = await estimateTimeout({
      command: "sleep 77200.5",
      store,
      maxS: 86400,
      monitor: busy,
    });
    assert.equal(e.timeout_s, 86400);
    assert.equal(e.reasoning.decided_by, "max");
    assert.match(e.reasoning.rule, /capped at max 86400/);
    assert.match(explainEstimate(e), /the cap \(max-timeout 86400s\)/);
  });
});

Deno.test("estimateTimeout() does not pool claude prompts of another complexity", async () => {
  await withStore(async (store) => {
    for (const d of [3, 3, 3]) await store.appendRun("claude:code:low", run(d));
    const complex = await estimateTimeout({
      command: "claude -p 'Write a complete production-ready library for parsing config files'",
      store,
    });
    assert.notEqual(complex.reasoning.complexity, "low");
    assert.equal(complex.source, "default");
  });
});

Deno.test("estimateTimeout() respects what a command states about itself", async () => {
  await withStore(async (store) => {
    for (const d of [5, 5, 5]) await store.appendRun("cmd:sleep", run(d));
    const long = await estimateTimeout({ command: "sleep 300", store });
    assert.equal(long.reasoning.class, "cmd:sleep");
    assert.equal(long.reasoning.stated_s, 300);
    assert.equal(long.timeout_s, 600);
    const limited = await estimateTimeout({ command: "timeout 900 ./x.sh", store });
    assert.equal(limited.timeout_s, 1800);
  });
});

Deno.test("estimateTimeout() falls back to defaults when the store fails", async () => {
  const store = await EmbeddedStore.open({ path: ":memory:" });
  for (const d of [1, 1, 1]) await store.appendRun("cmd:make", run(d));
  // A closed store fails every call, as a Redis that is down does.
  await store.close();
  const e = await estimateTimeout({ command: "make", store, monitor: busy });
  assert.equal(e.source, "default");
  assert.equal(e.timeout_s, 1800);
  assert.match(e.reasoning.store_error ?? "", /unavailable: store is closed/);
  assert.equal(e.reasoning.multiplier, 3);
  assert.match(explainEstimate(e), /history unavailable/);
});

Deno.test("estimateTimeout() takes overridden defaults and knobs", async () => {
  await withStore(async (store) => {
    const e = await estimateTimeout({ command: "ls", store, defaults: { trivial: 5 }, floorS: 1 });
    assert.equal(e.timeout_s, 5);
    assert.equal(e.reasoning.store_error, undefined);
    const medium = await estimateTimeout({ command: "npm test", store, defaults: { trivial: 5 } });
    assert.equal(medium.timeout_s, 600);

    for (const d of [10, 20]) await store.appendRun("cmd:ls", run(d));
    const two = await estimateTimeout({
      command: "ls",
      store,
      minSamples: 2,
      headroom: 3,
      floorS: 1,
    });
    assert.equal(two.source, "history");
    assert.equal(two.timeout_s, 60);
  });
});

Deno.test("restate() reapplies the load and the stated duration to the same history", async () => {
  await withStore(async (store) => {
    for (const d of [10, 10, 10]) await store.appendRun("cmd:rsync", run(d));
    const e = await estimateTimeout({ command: "rsync a b", store, floorS: 1 });
    assert.equal(e.timeout_s, 20);
    assert.equal(restate(e, 1).timeout_s, 20);
    const loaded = restate(e, 3);
    assert.equal(loaded.timeout_s, 60);
    assert.equal(loaded.reasoning.multiplier, 3);
    assert.equal(loaded.reasoning.base_s, 20);
    assert.equal(restate(e, 1.2).timeout_s, 24);
    assert.equal(restate(e, 1, 100).timeout_s, 200);
    assert.equal(restate(restate(e, 1, 100), 1, null).timeout_s, 20);
  });
});

/** A random run: a success, a failure, or a timeout (automatic or not). */
const anyRun = fc.record({
  duration_s: fc.double({ min: 0, max: 5000, noNaN: true }),
  kind: fc.constantFrom("ok", "failed", "auto_timeout", "request_timeout", "canceled"),
});

Deno.test("no automatic limit is ever below the floor or twice the longest success (fast-check)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(anyRun, { maxLength: 30 }),
      fc.constantFrom("make", "echo hi", "for i in 1 2; do sleep 1; done", "./x.sh"),
      fc.double({ min: 1, max: 5, noNaN: true }),
      fc.integer({ min: 1, max: 600 }),
      async (runs, command, multiplier, floorS) => {
        const store = await EmbeddedStore.open({ path: ":memory:" });
        try {
          const cls = classify(command).class;
          let longest = 0;
          let at = 0;
          for (const r of runs) {
            const ok = r.kind === "ok";
            if (ok) longest = Math.max(longest, r.duration_s);
            const timedOut = r.kind.endsWith("timeout");
            await store.appendRun(cls, {
              duration_s: r.duration_s,
              exit_code: ok ? 0 : timedOut || r.kind === "canceled" ? null : 1,
              status: ok
                ? "completed"
                : timedOut
                ? "timeout"
                : r.kind === "canceled"
                ? "canceled"
                : "failed",
              timed_out: timedOut,
              limit_s: timedOut ? r.duration_s : null,
              auto: r.kind === "auto_timeout",
              at: Date.now() - 1000 + at++,
            });
          }
          const e = await estimateTimeout({
            command,
            store,
            floorS,
            monitor: { multiplier: () => multiplier },
          });
          assert.ok(e.timeout_s >= floorS, `${e.timeout_s} < floor ${floorS}`);
          assert.ok(e.timeout_s >= 2 * longest - 0.001, `${e.timeout_s} < 2 x ${longest}`);
          // The newest automatic timeout since the last success doubles.
          const newestFirst = [...runs].reverse();
          const lastOk = newestFirst.findIndex((r) => r.kind === "ok");
          const since = lastOk === -1 ? newestFirst : newestFirst.slice(0, lastOk);
          const killed = since.find((r) => r.kind === "auto_timeout");
          if (killed) assert.ok(e.timeout_s >= 2 * killed.duration_s - 0.001);
        } finally {
          await store.close();
        }
      },
    ),
    { numRuns: 60 },
  );
});
