/**
 * Nothing left running after a crash: a server killed with SIGKILL leaves
 * its process groups behind (paused ones included); the next server on the
 * data directory kills them, provided they are provably the dead server's,
 * and records their runs as `lost`. Servers run as their own processes, as
 * `main.ts -A` and as `deno task start` does (scoped permissions).
 *
 * @module
 */
import assert from "node:assert/strict";
import { CrashRecovery } from "../../lib/core/crash_recovery.ts";
import type { GroupReaper } from "../../lib/core/group_reaper.ts";
import { GroupJournal, type GroupRecord } from "../../lib/core/group_journal.ts";
import { createStore } from "../../lib/store/store.ts";
import { groupPids, signalGroup } from "../../lib/process/process_group.ts";
import { bootId, readStats } from "../../lib/process/proc_stat.ts";
import { classify } from "../../lib/timing/classify.ts";
import {
  assertGroupGone,
  eventually,
  type Msg,
  type ServerProcess,
  spawnServer,
  TestClient,
} from "../_helpers.ts";

type Script = "main.ts" | "scripts/start.ts";

async function health(server: ServerProcess): Promise<Msg> {
  return await (await fetch(`${server.httpUrl}/health`)).json();
}

async function history(server: ServerProcess): Promise<Msg[]> {
  const client = await TestClient.open({ wsUrl: server.wsUrl } as never);
  try {
    return (await client.request("history", { limit: 100 })).result.records;
  } finally {
    await client.close();
  }
}

/** The pid of the server itself: `main.ts`, or the child `scripts/start.ts` runs it in. */
async function serverPid(server: ServerProcess, script: Script): Promise<number> {
  if (script === "main.ts") return server.pid;
  const children: number[] = [];
  for await (const task of Deno.readDir(`/proc/${server.pid}/task`)) {
    const text = await Deno.readTextFile(`/proc/${server.pid}/task/${task.name}/children`);
    children.push(...text.trim().split(/\s+/).filter(Boolean).map(Number));
  }
  assert.equal(children.length, 1, `start.ts children: ${children}`);
  return children[0]!;
}

/** Kills the server process with SIGKILL, as a crash would, and waits for it to be gone. */
async function crash(server: ServerProcess, script: Script): Promise<void> {
  Deno.kill(await serverPid(server, script), "SIGKILL");
  await server.child.status;
}

/** Starts `sleep 1000 & echo ready; wait` and returns its execution id and pgid once both run. */
async function startGroup(
  client: TestClient,
  seconds: number,
): Promise<{ id: string; pgid: number }> {
  const r = await client.request("execute", { command: `sleep ${seconds} & echo ready; wait` });
  assert.ok(r.result, JSON.stringify(r.error));
  await client.event("output", r.result.execution_id);
  return { id: r.result.execution_id, pgid: r.result.pgid };
}

/** SIGKILLs whatever is left of `pgids`, so a failing test leaks nothing. */
async function cleanUp(pgids: number[]): Promise<void> {
  for (const pgid of pgids) await signalGroup(pgid, "SIGKILL");
}

async function killNineTest(script: Script): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cc_crash_" });
  const flags = { "data-dir": `${dir}/data`, "max-executions-per-session": "4" };
  const pgids: number[] = [];
  let second: ServerProcess | undefined;
  const first = await spawnServer(flags, {}, { script });
  try {
    const client = await TestClient.open({ wsUrl: first.wsUrl } as never);
    const running = await startGroup(client, 1000);
    const paused = await startGroup(client, 1001);
    pgids.push(running.pgid, paused.pgid);
    assert.deepEqual(
      (await client.request("control", { type: "PAUSE", execution_id: paused.id })).result,
      { status: "paused" },
    );
    await client.event("paused", paused.id);
    const h1 = await health(first);
    assert.equal(h1.crash_journal.tracked, 2);
    // Under deno task start /proc is out of reach: start times come from the clock and `cat`.
    assert.equal(h1.permissions.read.state, script === "main.ts" ? "all" : "scoped");

    await crash(first, script);
    await client.closed;
    // What a crash did before: both groups, sh and its sleep, outlive the server.
    for (const pgid of pgids) assert.ok((await groupPids(pgid)).length >= 2, `group ${pgid}`);

    second = await spawnServer(flags, {}, { script });
    for (const pgid of pgids) await assertGroupGone(pgid, 5000);
    const h = await health(second);
    assert.equal(h.reaped_groups, 2);
    assert.equal(h.lost_executions, 2);
    assert.equal(h.status, "healthy");
    const lost = (await history(second)).filter((r) => r.status === "lost");
    assert.deepEqual(lost.map((r) => r.execution_id).sort(), [running.id, paused.id].sort());
    for (const r of lost) {
      assert.equal(r.signal, "SIGKILL");
      assert.equal(r.class, classify(r.command).class);
      assert.match(r.command, /^sleep 100[01] & echo ready; wait$/);
    }
    // The dead instance's journal is gone; only the live one's remains.
    const files = [...Deno.readDirSync(`${dir}/data/running`)].filter((e) =>
      e.name.endsWith(".db")
    );
    assert.deepEqual(files.map((e) => e.name), [h.crash_journal.path.split("/").at(-1)]);
  } finally {
    await cleanUp(pgids);
    await first.stop();
    await second?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("crash recovery: after kill -9 of main.ts -A, the restart kills running and paused groups", () =>
  killNineTest("main.ts"));

Deno.test("crash recovery: the same under deno task start's scoped permissions", () =>
  killNineTest("scripts/start.ts"));

/** Starts `sleep 1000` as the leader of its own session, as the server's commands are. */
async function ownGroup(): Promise<{ child: Deno.ChildProcess; startTicks: number }> {
  const child = new Deno.Command("setsid", {
    args: ["sleep", "1000"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let startTicks = 0;
  // setsid execs sleep in place once it has its own session.
  await eventually(async () => {
    const stat = (await readStats([child.pid])).get(child.pid);
    startTicks = stat?.startTicks ?? 0;
    const comm = await Deno.readTextFile(`/proc/${child.pid}/comm`).catch(() => "");
    return stat?.pgid === child.pid && comm.trim() === "sleep";
  });
  return { child, startTicks };
}

/** Whether `child` still runs (not exited, not a zombie). */
async function alive(child: Deno.ChildProcess): Promise<boolean> {
  const stat = (await readStats([child.pid])).get(child.pid);
  return stat !== undefined && stat.state !== "Z";
}

function record(id: string, pid: number, startTicks: number, boot: string): GroupRecord {
  return {
    executionId: id,
    pgid: pid,
    pid,
    startLo: startTicks,
    startHi: startTicks,
    bootId: boot,
    cgroup: null,
    startedAt: Date.now() - 5000,
    command: "sleep 1000",
    limitClass: null,
    line: null,
    timeoutS: null,
    timeoutSource: "default",
    principal: "local",
  };
}

async function reusedPidTest(script: Script, flags: Record<string, string>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cc_crash_" });
  const data = `${dir}/data`;
  const boot = await bootId();
  // Three live processes of ours a dead server's journal names: one as it
  // started it, one whose pid was reused since (another start time), one
  // recorded in another boot.
  const ours = await ownGroup();
  const reused = await ownGroup();
  const otherBoot = await ownGroup();
  const children = [ours, reused, otherBoot].map((g) => g.child);
  let server: ServerProcess | undefined;
  try {
    const dead = GroupJournal.open({ dir: `${data}/running`, instance: "dead", retryMs: 1000 });
    dead.add(record("ours", ours.child.pid, ours.startTicks, boot));
    dead.add(record("reused", reused.child.pid, reused.startTicks - 50, boot));
    dead.add(
      record(
        "other-boot",
        otherBoot.child.pid,
        otherBoot.startTicks,
        "0".repeat(8) + boot.slice(8),
      ),
    );
    // Closing with groups recorded keeps the file and drops its lock: a dead instance.
    dead.close();

    server = await spawnServer({ "data-dir": data, ...flags }, {}, { script });
    if (flags["allowed-commands"] !== undefined) {
      const run = (await health(server)).permissions.run;
      assert.equal(run.state, "scoped");
      assert.ok(run.scope.includes("cat") && run.scope.includes("kill"), run.scope.join());
    }
    // Recovery is done before the server listens.
    await ours.child.status;
    await assertGroupGone(ours.child.pid);
    assert.ok(await alive(reused.child), "a reused pid must not be killed");
    assert.ok(await alive(otherBoot.child), "another boot's pid must not be killed");
    const h = await health(server);
    assert.equal(h.reaped_groups, 1);
    assert.equal(h.lost_executions, 3);
    const lost = new Map((await history(server)).map((r) => [r.execution_id, r]));
    assert.equal(lost.get("ours")?.status, "lost");
    assert.equal(lost.get("ours")?.signal, "SIGKILL");
    for (const id of ["reused", "other-boot"]) {
      assert.equal(lost.get(id)?.status, "lost");
      assert.equal(lost.get(id)?.signal, null);
    }
    assert.match(
      server.output(),
      /Left group \d+ of lost run "reused" alone: "pid \d+ started at tick/,
    );
  } finally {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
    }
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("crash recovery: a recorded pid with another start time, or boot, is never killed (main.ts -A)", () =>
  reusedPidTest("main.ts", {}));

Deno.test("crash recovery: the same under deno task start with an ALLOWED_COMMANDS list", () =>
  // --allow-run is then scoped: start times come through `cat`, signals through `kill`.
  reusedPidTest("scripts/start.ts", { "allowed-commands": "echo" }));

Deno.test("crash recovery: servers sharing a data dir leave each other's groups alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_crash_" });
  const flags = { "data-dir": `${dir}/data`, "store-retry": "0.1" };
  const pgids: number[] = [];
  const a = await spawnServer(flags);
  let b: ServerProcess | undefined;
  let c: ServerProcess | undefined;
  try {
    const client = await TestClient.open({ wsUrl: a.wsUrl } as never);
    const group = await startGroup(client, 1000);
    pgids.push(group.pgid);

    // B starts while A runs: A's journal is locked, so A's group is left alone.
    b = await spawnServer(flags);
    const hb = await health(b);
    assert.equal(hb.reaped_groups, 0);
    assert.ok((await groupPids(group.pgid)).length >= 2);
    // The store is A's: B runs degraded, and says why.
    assert.equal(hb.status, "degraded");
    assert.match(hb.store.reason, /database is locked/);

    await crash(a, "main.ts");
    await client.closed;
    // C starts after A died, with B alive: C reaps A's group, B never did.
    c = await spawnServer(flags);
    await assertGroupGone(group.pgid, 5000);
    assert.equal((await health(c)).reaped_groups, 1);
    assert.equal((await health(b)).reaped_groups, 0);
    // The store passed to B when A died, so C holds A's lost run until it gets the store.
    await b.stop();
    await eventually(async () => (await health(c!)).lost_executions === 1, 10_000, "lost record");
    const lost = (await history(c)).find((r) => r.execution_id === group.id);
    assert.equal(lost?.status, "lost");
  } finally {
    await cleanUp(pgids);
    await a.stop();
    await b?.stop();
    await c?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CrashRecovery.start() hands dead instances' records to the reaper given (e.g. for cgroups)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_crash_" });
  const store = await createStore({ ephemeral: true });
  try {
    const dead = GroupJournal.open({ dir, instance: "dead", retryMs: 1000 });
    dead.add({ ...record("in-cgroup", 1, 1, "b"), cgroup: "/sys/fs/cgroup/cc/in-cgroup" });
    dead.add(record("plain", 2, 2, "b"));
    dead.close();
    const asked: string[] = [];
    const cgroupReaper: GroupReaper = {
      kill: (r) => {
        asked.push(r.executionId);
        return Promise.resolve(r.cgroup !== null ? { result: "killed" } : { result: "gone" });
      },
    };
    const recovery = await CrashRecovery.start({
      dir,
      store,
      retryMs: 1000,
      reaper: (records) => {
        assert.equal(records.length, 2);
        return Promise.resolve(cgroupReaper);
      },
    });
    assert.deepEqual(asked.sort(), ["in-cgroup", "plain"]);
    assert.equal(recovery.health().reapedGroups, 1);
    assert.equal(recovery.health().lostExecutions, 2);
    const records = new Map((await store.records()).map((r) => [r.execution_id, r]));
    assert.equal(records.get("in-cgroup")?.signal, "SIGKILL");
    assert.equal(records.get("plain")?.signal, null);
    assert.equal(records.get("plain")?.status, "lost");
    recovery.close();
    // Only the live instance's journal was left, and closing removed it.
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
