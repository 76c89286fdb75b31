import assert from "node:assert/strict";
import { ResourceMonitor } from "../../lib/ops/monitor.ts";
import { eventually } from "../_helpers.ts";

/** A temp dir for fake /proc files, removed after `fn`. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cc_monitor_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A /proc/stat whose aggregate line has these user, system, idle and iowait ticks. */
function stat(user: number, system: number, idle: number, iowait = 0): string {
  return `cpu  ${user} 0 ${system} ${idle} ${iowait} 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n`;
}

/** Samples `first` then `second` as /proc/stat and returns the monitor. */
async function twoSamples(
  dir: string,
  first: string,
  second: string,
  options: ConstructorParameters<typeof ResourceMonitor>[0] = {},
): Promise<ResourceMonitor> {
  const path = `${dir}/stat`;
  const monitor = new ResourceMonitor({ statPath: path, nvidiaSmi: null, ...options });
  await Deno.writeTextFile(path, first);
  await monitor.sample();
  await Deno.writeTextFile(path, second);
  await monitor.sample();
  return monitor;
}

Deno.test("ResourceMonitor.sample() reads the real /proc", async () => {
  const monitor = new ResourceMonitor({ nvidiaSmi: null });
  // CPU % needs two samples some ticks apart; poll rather than assume a duration.
  await eventually(
    async () => {
      await monitor.sample();
      return monitor.snapshot().cpu_percent !== null;
    },
    10_000,
    "a CPU figure",
  );
  const s = monitor.snapshot();
  assert.equal(typeof s.cpu_percent, "number");
  assert.ok(s.cpu_percent! >= 0 && s.cpu_percent! <= 100, `cpu ${s.cpu_percent}`);
  assert.ok(s.load_avg !== null && s.load_avg.every((n) => n >= 0));
  assert.ok(s.memory !== null);
  assert.ok(s.memory.total_bytes > 0);
  assert.ok(s.memory.available_bytes <= s.memory.total_bytes);
  assert.ok(s.memory.used_percent >= 0 && s.memory.used_percent <= 100);
  assert.equal(s.gpu_percent, null);
  assert.equal(typeof s.sampled_at, "number");
});

Deno.test("ResourceMonitor.snapshot() gives CPU busy % from two /proc/stat readings", async () => {
  await withDir(async (dir) => {
    // 100 more ticks, 25 of them idle (20 idle + 5 iowait): 75 % busy.
    const monitor = await twoSamples(dir, stat(100, 100, 780, 20), stat(150, 125, 800, 25));
    assert.equal(monitor.snapshot().cpu_percent, 75);
    assert.equal(monitor.snapshot().busy, true);
  });
});

Deno.test("ResourceMonitor.snapshot() has no CPU figure after one sample", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stat`, stat(1, 1, 1));
    const monitor = new ResourceMonitor({ statPath: `${dir}/stat`, nvidiaSmi: null });
    assert.equal(monitor.snapshot().sampled_at, null);
    await monitor.sample();
    assert.equal(monitor.snapshot().cpu_percent, null);
    assert.equal(monitor.multiplier(), 1);
  });
});

Deno.test("ResourceMonitor.multiplier() is x3 only above the 14 % threshold", async () => {
  await withDir(async (dir) => {
    const at = await twoSamples(dir, stat(0, 0, 0), stat(14, 0, 86));
    assert.equal(at.snapshot().cpu_percent, 14);
    assert.equal(at.multiplier(), 1);

    const above = await twoSamples(dir, stat(0, 0, 0), stat(15, 0, 85));
    assert.equal(above.snapshot().cpu_percent, 15);
    assert.equal(above.multiplier(), 3);
    assert.equal(above.snapshot().multiplier, 3);
    assert.equal(above.snapshot().threshold_percent, 14);

    const idle = await twoSamples(dir, stat(0, 0, 0), stat(5, 0, 95));
    assert.equal(idle.multiplier(), 1);
  });
});

Deno.test("ResourceMonitor.multiplier() follows the configured threshold and multiplier", async () => {
  await withDir(async (dir) => {
    const options = { thresholdPercent: 50, multiplier: 2 };
    const below = await twoSamples(dir, stat(0, 0, 0), stat(40, 0, 60), options);
    assert.equal(below.multiplier(), 1);
    const above = await twoSamples(dir, stat(0, 0, 0), stat(60, 0, 40), options);
    assert.equal(above.multiplier(), 2);
  });
});

Deno.test("ResourceMonitor.snapshot() reads load and memory from the given files", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/loadavg`, "1.50 0.75 0.25 2/345 6789\n");
    await Deno.writeTextFile(
      `${dir}/meminfo`,
      "MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     250 kB\n",
    );
    await Deno.writeTextFile(`${dir}/stat`, stat(1, 1, 1));
    const monitor = new ResourceMonitor({
      statPath: `${dir}/stat`,
      loadavgPath: `${dir}/loadavg`,
      meminfoPath: `${dir}/meminfo`,
      nvidiaSmi: null,
    });
    const s = await monitor.sample();
    assert.deepEqual(s.load_avg, [1.5, 0.75, 0.25]);
    assert.deepEqual(s.memory, { total_bytes: 1024000, available_bytes: 256000, used_percent: 75 });
  });
});

Deno.test("ResourceMonitor reports gpu null and probes a missing nvidia-smi once", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stat`, stat(1, 1, 1));
    const monitor = new ResourceMonitor({
      statPath: `${dir}/stat`,
      nvidiaSmi: `${dir}/no-such-nvidia-smi`,
      gpuIntervalMs: 0,
    });
    for (let i = 0; i < 5; i++) await monitor.sample();
    assert.equal(monitor.snapshot().gpu_percent, null);
    assert.equal(monitor.gpuProbes, 1);
  });
});

Deno.test("ResourceMonitor reads GPU use from nvidia-smi and multiplies when it is busy", async () => {
  await withDir(async (dir) => {
    const smi = `${dir}/nvidia-smi`;
    // Two GPUs; the busiest one counts. Each run is logged so spawns can be counted.
    await Deno.writeTextFile(smi, `#!/bin/sh\necho run >> "${dir}/runs"\nprintf '37\\n12\\n'\n`);
    await Deno.chmod(smi, 0o755);
    const monitor = await twoSamples(dir, stat(0, 0, 0), stat(1, 0, 99), {
      nvidiaSmi: smi,
      gpuIntervalMs: 3_600_000,
    });
    const s = monitor.snapshot();
    assert.equal(s.cpu_percent, 1);
    assert.equal(s.gpu_percent, 37);
    assert.equal(s.busy, true);
    assert.equal(monitor.multiplier(), 3);
    // Within gpuIntervalMs the last reading is kept, not queried again.
    assert.equal(monitor.gpuProbes, 1);
    assert.equal((await Deno.readTextFile(`${dir}/runs`)).trim().split("\n").length, 1);
  });
});

Deno.test("ResourceMonitor reports gpu null and backs off when nvidia-smi fails", async () => {
  await withDir(async (dir) => {
    const smi = `${dir}/nvidia-smi`;
    await Deno.writeTextFile(smi, "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n");
    await Deno.chmod(smi, 0o755);
    await Deno.writeTextFile(`${dir}/stat`, stat(1, 1, 1));
    const monitor = new ResourceMonitor({
      statPath: `${dir}/stat`,
      nvidiaSmi: smi,
      gpuIntervalMs: 0,
    });
    await monitor.sample();
    await monitor.sample();
    assert.equal(monitor.snapshot().gpu_percent, null);
    assert.equal(monitor.gpuProbes, 1);
  });
});

Deno.test("ResourceMonitor.start() samples in the background and stop() ends it", async () => {
  const monitor = new ResourceMonitor({ intervalMs: 10, nvidiaSmi: null });
  // The snapshot is there at once, before any sample, without waiting.
  assert.equal(monitor.snapshot().sampled_at, null);
  monitor.start();
  monitor.start();
  try {
    await eventually(() => monitor.snapshot().cpu_percent !== null, 10_000, "a CPU figure");
    assert.equal(typeof monitor.snapshot().cpu_percent, "number");
  } finally {
    await monitor.stop();
  }
  // Stopped: nothing is left scheduled or in flight. Deno's op sanitizer fails this test if a
  // timer or a read is still pending when it returns, so no waiting is needed to see it.
});

Deno.test("ResourceMonitor.stop() during a sample leaves nothing scheduled", async () => {
  const monitor = new ResourceMonitor({ intervalMs: 10, nvidiaSmi: null });
  // start() begins a sample at once; stop() waits for it and must not let it reschedule.
  monitor.start();
  await monitor.stop();
  assert.notEqual(monitor.snapshot().sampled_at, null);
  // Nothing rescheduled: the op sanitizer fails this test on a timer still pending at its end.
});

Deno.test("ResourceMonitor rejects invalid options with RangeError", () => {
  assert.throws(() => new ResourceMonitor({ intervalMs: 0 }), RangeError);
  assert.throws(() => new ResourceMonitor({ multiplier: 0.5 }), RangeError);
});
