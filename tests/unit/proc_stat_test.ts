import assert from "node:assert/strict";
import {
  bootId,
  parseStat,
  parseStats,
  readStats,
  StartClock,
} from "../../lib/process/proc_stat.ts";

/** A stat line with `comm` and start tick `start` (the other fields as a sleeping process's). */
function statLine(pid: number, comm: string, start: number, pgid = pid): string {
  const rest = ["S", "1", String(pgid), String(pgid), "0", "-1", "4194560"];
  while (rest.length < 19) rest.push("0");
  rest.push(String(start), "8392704", "200");
  while (rest.length < 50) rest.push("0");
  return `${pid} (${comm}) ${rest.join(" ")}\n`;
}

Deno.test("parseStat() reads state, group, session and start time past a tricky name", () => {
  assert.deepEqual(parseStat(statLine(7, "a) S 1 2 3", 99, 5)), {
    pid: 7,
    state: "S",
    pgid: 5,
    sid: 5,
    startTicks: 99,
  });
  assert.equal(parseStat("garbage"), null);
});

Deno.test("parseStats() splits cat's output by the pids asked for, names with ')' and newlines included", () => {
  // 11 is gone (cat skipped it); 12's name tries to pass itself off as 13.
  const text = statLine(10, "sleep", 1000) + statLine(12, "x)\n13 (y", 1200) +
    statLine(13, "z", 1300);
  const stats = parseStats(text, [10, 11, 12, 13]);
  assert.deepEqual([...stats.keys()], [10, 12, 13]);
  assert.equal(stats.get(12)?.startTicks, 1200);
  assert.equal(stats.get(13)?.startTicks, 1300);
  assert.equal(parseStats("", [1, 2]).size, 0);
});

Deno.test("readStats() reads live processes and skips missing ones", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const stats = await readStats([child.pid, 2 ** 22 + 7]);
    assert.equal(stats.get(child.pid)?.state !== undefined, true);
    assert.equal(stats.has(2 ** 22 + 7), false);
  } finally {
    child.kill();
    await child.status;
  }
});

Deno.test("bootId() is this boot's id", async () => {
  const id = await bootId();
  assert.equal(id, (await Deno.readTextFile("/proc/sys/kernel/random/boot_id")).trim());
});

Deno.test("StartClock derives the start time of a spawned process within a few ticks", async () => {
  // readProc: false, as under deno task start's scoped permissions.
  const clock = await StartClock.calibrate({ readProc: false });
  for (let i = 0; i < 20; i++) {
    const before = performance.now();
    const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
    const window = clock.window(before, performance.now(), child.pid);
    try {
      const start = (await readStats([child.pid])).get(child.pid)!.startTicks;
      assert.ok(StartClock.matches(window, start), `${start} not in ${window.lo}..${window.hi}`);
      assert.ok(!StartClock.matches(window, window.lo - 2));
      assert.ok(!StartClock.matches(window, window.hi + 2));
    } finally {
      child.kill();
      await child.status;
    }
  }
});

Deno.test("StartClock reads the exact start time where /proc is readable", async () => {
  const clock = await StartClock.calibrate({ readProc: true });
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const window = clock.window(0, 0, child.pid);
    const start = (await readStats([child.pid])).get(child.pid)!.startTicks;
    assert.deepEqual(window, { lo: start, hi: start });
  } finally {
    child.kill();
    await child.status;
  }
});
