/**
 * Containment with cgroups (issue 9, item 5): runs in cgroups of their own
 * end together with everything they started, also processes that left the
 * process group; memory-max and pids-max hold; /health says what is in
 * force; and with `cgroup-root off` process groups still work. Real server,
 * real children. Skipped (visibly) where no cgroup v2 hierarchy is writable.
 */
import assert from "node:assert/strict";
import { Containment, type ContainmentStatus } from "../../lib/process/cgroup.ts";
import { detectLayout } from "../../lib/process/cgroup_layout.ts";
import { killCgroup, reapStaleCgroups } from "../../lib/process/cgroup_reap.ts";
import { RunCgroup } from "../../lib/process/run_cgroup.ts";
import { ConfigError } from "../../lib/config/config.ts";
import { ProcessGroup } from "../../lib/process/process_group.ts";
import {
  eventually,
  type Msg,
  pidsWithMarker,
  spawnServer,
  TestClient,
  testServer,
  withServer,
} from "../_helpers.ts";

const MiB = 1024 * 1024;

/** What this machine offers: probed once by setting up (and removing) an instance. */
const probe = await Containment.start("auto");
const offered = probe.status();
await probe.close();
const NO_CGROUPS = offered.mode !== "cgroup";
const NO_MEMORY = !offered.controllers.includes("memory");
const NO_PIDS = !offered.controllers.includes("pids");
/**
 * python3 itself, not a wrapper script (pyenv's shims fork while they
 * look for it, which would blur the counts of marked processes); "" if none.
 */
const PYTHON = await new Deno.Command("python3", {
  args: ["-c", "import sys; print(sys.executable)"],
})
  .output().then((o) => o.success ? new TextDecoder().decode(o.stdout).trim() : "", () => "");
const HAS_PYTHON = PYTHON !== "";

/** A marker only the escapee's command line holds: it is passed through env as "$M". */
const newMarker = () => `cgtest-${crypto.randomUUID()}`;

/** Sleeps in a new session (out of the run's process group), holding the run's stdout. */
const ESCAPEE = `setsid ${PYTHON} -c "import time; time.sleep(1000)" "$M" & echo ready; sleep 1000`;

/** A classic daemon: fork, setsid, fork again, all output closed; the run ends at once. */
const DAEMON = "import os, sys, time\n" +
  "if os.fork(): sys.exit(0)\n" +
  "os.setsid()\n" +
  "if os.fork(): os._exit(0)\n" +
  "time.sleep(1000)\n";

async function health(httpUrl: string): Promise<Msg> {
  return await fetch(`${httpUrl}/health`).then((r) => r.json());
}

/** Every directory of a run's cgroups, from /health's containment and its execution id. */
function runDirs(status: ContainmentStatus, executionId: string): string[] {
  const dirs = [`${status.root}/${status.instance}/${executionId}`];
  for (const where of Object.values(status.hierarchies)) {
    if (where !== "v2") dirs.push(`${where}/${executionId}`);
  }
  return [...new Set(dirs)];
}

function gone(path: string): boolean {
  try {
    Deno.statSync(path);
    return false;
  } catch {
    return true;
  }
}

/** Kills whatever a failed test left behind. */
async function killMarked(marker: string): Promise<void> {
  for (const pid of await pidsWithMarker(marker)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}

/** Starts the escapee, waits until it runs, and returns the execute result. */
async function startEscapee(
  client: TestClient,
  marker: string,
  extra: Record<string, unknown> = {},
): Promise<Msg> {
  const r = await client.request("execute", { command: ESCAPEE, env: { M: marker }, ...extra });
  assert.ok(r.result, JSON.stringify(r.error));
  await client.event("started", r.result.execution_id);
  await eventually(async () => (await pidsWithMarker(marker)).length === 1, 10_000, "escapee");
  return r;
}

const cgroupTest = (
  name: string,
  fn: () => Promise<void>,
  options: { ignore?: boolean } = {},
) =>
  Deno.test({
    name: `cgroup: ${name}`,
    ignore: NO_CGROUPS || !HAS_PYTHON || options.ignore === true,
    fn,
  });

cgroupTest("/health reports the containment in force", async () => {
  await withServer({}, async (server) => {
    const h = await health(server.httpUrl);
    assert.equal(h.containment.mode, "cgroup");
    assert.equal(h.containment.root, offered.root);
    assert.match(h.containment.instance, new RegExp(`^${Deno.pid}-[0-9a-f]{8}$`));
    assert.deepEqual(h.containment.controllers, offered.controllers);
    assert.equal(h.containment.access, "direct");
    assert.equal(h.containment.memory_max, 0);
    assert.ok(!gone(`${h.containment.root}/${h.containment.instance}/cgroup.kill`));
  });
});

cgroupTest("killCgroup() and reapStaleCgroups() end what they are given", async () => {
  // A root of its own: reaping with a list of live ids ends every other instance in it.
  const parent = offered.root!.slice(0, offered.root!.lastIndexOf("/"));
  const root = `${parent}/cc-executor-test-${crypto.randomUUID().slice(0, 8)}`;
  const containment = await Containment.start(root);
  const markers = [newMarker(), newMarker()];
  try {
    const placement = containment.placement!;
    // A recorded run cgroup, as crash recovery finds it.
    const cgroup = RunCgroup.create({ placement, name: "recorded" });
    const group = ProcessGroup.spawn({
      argv: [PYTHON, "-c", "import time; time.sleep(1000)", markers[0]!],
      env: { PATH: Deno.env.get("PATH")! },
      stdin: false,
    });
    await cgroup.adopt(group.pid);
    assert.equal(await killCgroup(cgroup.path), true);
    assert.equal((await group.status).signal, "SIGKILL");
    assert.ok(gone(cgroup.path));
    assert.equal(await killCgroup(cgroup.path), true, "twice is fine");
    await Promise.all([group.stdout.cancel(), group.stderr.cancel()]);

    // An instance of a server that is gone: a pid that just exited names it.
    const exited = new Deno.Command("true").spawn();
    await exited.status;
    const dead = exited.pid;
    const stale = `${root}/${dead}-deadbeef`;
    Deno.mkdirSync(`${stale}/run`, { recursive: true });
    const sleeper = ProcessGroup.spawn({
      argv: [PYTHON, "-c", "import time; time.sleep(1000)", markers[1]!],
      env: { PATH: Deno.env.get("PATH")! },
      stdin: false,
    });
    Deno.writeTextFileSync(`${stale}/run/cgroup.procs`, String(sleeper.pid));
    // Live ones stay: this server's own, and any listed.
    assert.deepEqual(
      await reapStaleCgroups(root, [containment.instanceId!, `${dead}-deadbeef`]),
      [],
    );
    assert.ok(!gone(stale));
    assert.deepEqual(await containment.reapStale(), [`${dead}-deadbeef`]);
    assert.equal((await sleeper.status).signal, "SIGKILL");
    assert.ok(gone(stale));
    assert.ok(!gone(placement.unified), "its own instance is kept");
    await Promise.all([sleeper.stdout.cancel(), sleeper.stderr.cancel()]);
  } finally {
    for (const m of markers) await killMarked(m);
    await containment.close();
    await killCgroup(root);
  }
});

cgroupTest(
  "an explicit cgroup-root is used, and kept; an unusable one stops the start",
  async () => {
    const parent = offered.root!.slice(0, offered.root!.lastIndexOf("/"));
    const root = `${parent}/cc-executor-test-${crypto.randomUUID().slice(0, 8)}`;
    try {
      await withServer({ "cgroup-root": root }, async (server) => {
        assert.equal((await health(server.httpUrl)).containment.root, root);
        const client = await TestClient.open(server);
        assert.equal((await client.run({ command: "echo in" })).stdout, "in\n");
        await client.close();
      });
      assert.ok(!gone(root), "a root that was set is not removed");
      assert.deepEqual([...Deno.readDirSync(root)].filter((e) => e.isDirectory), []);
    } finally {
      try {
        Deno.removeSync(root);
      } catch {
        // never made
      }
    }
    await assert.rejects(testServer({ "cgroup-root": "/tmp/not-a-cgroup/cc" }), ConfigError);
  },
);

cgroupTest("CANCEL ends a setsid escapee too, and the run's cgroup is removed", async () => {
  const marker = newMarker();
  try {
    await withServer({ "kill-grace": "0.5" }, async (server) => {
      const status = server.containment.status();
      const client = await TestClient.open(server);
      const r = await startEscapee(client, marker);
      const dirs = runDirs(status, r.result.execution_id);
      for (const dir of dirs) assert.ok(!gone(dir), `${dir} exists while the run does`);
      // The command really is in its cgroup before it runs.
      const procs = Deno.readTextFileSync(`${dirs[0]}/cgroup.procs`).trim().split("\n");
      assert.ok(procs.includes(String(r.result.pid)), procs.join(","));
      assert.equal(r.result.pgid, r.result.pid);
      await client.request("control", { type: "CANCEL" });
      const done = await client.event("completed", r.result.execution_id);
      assert.equal(done.params.status, "canceled");
      // Gone by the time completed is sent.
      assert.deepEqual(await pidsWithMarker(marker), []);
      // Removed right after the run's end (bookkeeping, after completed).
      await eventually(() => dirs.every((dir) => gone(dir)), 5000, "the run's cgroups removed");
      await client.close();
    });
  } finally {
    await killMarked(marker);
  }
});

cgroupTest("a time limit ends a setsid escapee too", async () => {
  const marker = newMarker();
  try {
    await withServer({ "kill-grace": "0.3" }, async (server) => {
      const client = await TestClient.open(server);
      const r = await startEscapee(client, marker, { timeout: 1 });
      const done = await client.event("completed", r.result.execution_id);
      assert.equal(done.params.status, "timeout");
      assert.deepEqual(await pidsWithMarker(marker), []);
      await client.close();
    });
  } finally {
    await killMarked(marker);
  }
});

cgroupTest("a client disconnect ends a setsid escapee too", async () => {
  const marker = newMarker();
  try {
    await withServer({ "kill-grace": "0.3" }, async (server) => {
      const client = await TestClient.open(server);
      const r = await startEscapee(client, marker);
      const dirs = runDirs(server.containment.status(), r.result.execution_id);
      client.ws.close();
      await eventually(() => server.registry.runningCount === 0, 10_000, "the run to end");
      assert.deepEqual(await pidsWithMarker(marker), []);
      // Removed right after the run's end (bookkeeping, after completed).
      await eventually(() => dirs.every((dir) => gone(dir)), 5000, "the run's cgroups removed");
    });
  } finally {
    await killMarked(marker);
  }
});

cgroupTest("a double-forking daemon ends with the run that started it", async () => {
  const marker = newMarker();
  try {
    await withServer({ "orphan-grace": "0.2", "kill-grace": "0.3" }, async (server) => {
      const client = await TestClient.open(server);
      // The daemon closes every pipe: the leader's exit ends the run at once.
      const run = await client.run({
        command: `${PYTHON} -c "$D" "$M" </dev/null >/dev/null 2>&1; echo leader done`,
        env: { D: DAEMON, M: marker },
      });
      assert.equal(run.completed.status, "completed");
      assert.equal(run.stdout, "leader done\n");
      assert.deepEqual(await pidsWithMarker(marker), []);
      // Cancelled while the leader still runs, the same.
      const r = await client.request("execute", {
        command: `${PYTHON} -c "$D" "$M" </dev/null >/dev/null 2>&1; sleep 1000`,
        env: { D: DAEMON, M: marker },
      });
      await eventually(async () => (await pidsWithMarker(marker)).length === 1, 10_000, "daemon");
      await client.request("control", { type: "CANCEL" });
      assert.equal(
        (await client.event("completed", r.result.execution_id)).params.status,
        "canceled",
      );
      assert.deepEqual(await pidsWithMarker(marker), []);
      await client.close();
    });
  } finally {
    await killMarked(marker);
  }
});

cgroupTest("PAUSE stops an escapee as well, RESUME continues it", async () => {
  const marker = newMarker();
  try {
    await withServer({ "kill-grace": "0.3" }, async (server) => {
      const client = await TestClient.open(server);
      // The escapee ticks on the run's stdout; the leader only waits.
      const r = await client.request("execute", {
        command: `setsid sh -c 'while :; do echo tick; sleep 0.02; done' "$M" & sleep 1000`,
        env: { M: marker },
      });
      const id = r.result.execution_id;
      await client.event("output", id);
      const fields = (pid: number) => {
        const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
        return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      };
      const state = (pid: number) => fields(pid)[0];
      // The escapee is the session leader setsid made: its shell forks for
      // each `sleep`, and such a fork shows the marker until it execs.
      const leaders = (await pidsWithMarker(marker)).filter((pid) => {
        try {
          return Number(fields(pid)[3]) === pid;
        } catch {
          return false; // gone meanwhile: a fork
        }
      });
      const [escapee] = leaders;
      assert.ok(escapee !== undefined && escapee !== r.result.pid, JSON.stringify(leaders));
      await client.request("control", { type: "PAUSE" });
      await client.event("paused", id);
      // Both show as stopped, as a group does: SIGSTOP, not a freeze.
      await eventually(() => state(r.result.pid) === "T", 5000, "the leader to stop");
      await eventually(() => state(escapee) === "T", 5000, "the escapee to stop");
      // Output written just before the stop may still be in the pipe or the framer; no event
      // marks "all of it was sent", so this settles it. The quiet period after is the test.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const ticks = () => client.received.filter((t) => t.includes('"process.output"')).length;
      const before = ticks();
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(ticks(), before, "no output while paused");
      await client.request("control", { type: "RESUME" });
      await client.event("resumed", id);
      await eventually(() => ticks() > before + 2, 5000, "ticks after RESUME");
      await client.request("control", { type: "CANCEL" });
      await client.event("completed", id);
      assert.deepEqual(await pidsWithMarker(marker), []);
      await client.close();
    });
  } finally {
    await killMarked(marker);
  }
});

cgroupTest("shutdown ends escapees and removes the instance", async () => {
  const marker = newMarker();
  try {
    const server = await testServer({ "kill-grace": "0.3" });
    const status = server.containment.status();
    const client = await TestClient.open(server);
    await startEscapee(client, marker);
    await server.shutdown();
    assert.deepEqual(await pidsWithMarker(marker), []);
    assert.ok(gone(`${status.root}/${status.instance}`));
    for (const where of Object.values(status.hierarchies)) {
      if (where !== "v2") await eventually(() => gone(where), 5000, `${where} removed`);
    }
    await client.closed;
  } finally {
    await killMarked(marker);
  }
});

cgroupTest("a crashed server's cgroups are reaped when the next one starts", async () => {
  const marker = newMarker();
  try {
    const crashed = await spawnServer({ "kill-grace": "0.3", ephemeral: "true" });
    let instance: string;
    try {
      const h = await health(crashed.httpUrl);
      instance = `${h.containment.root}/${h.containment.instance}`;
      const client = await TestClient.open({ wsUrl: crashed.wsUrl } as never);
      await startEscapee(client, marker);
      crashed.child.kill("SIGKILL");
      await crashed.stop();
      await client.closed;
    } catch (err) {
      await crashed.stop();
      throw err;
    }
    assert.equal((await pidsWithMarker(marker)).length, 1, "the escapee outlived its server");
    assert.ok(!gone(instance));
    await withServer({}, () => Promise.resolve());
    assert.deepEqual(await pidsWithMarker(marker), []);
    assert.ok(gone(instance), `${instance} is reaped`);
  } finally {
    await killMarked(marker);
  }
});

cgroupTest(
  "ProcessGroup.spawn() puts the command in its cgroup, whichever way it starts",
  async () => {
    const containment = await Containment.start("auto");
    const text = async (g: ProcessGroup) => {
      const [out] = await Promise.all([new Response(g.stdout).text(), g.stderr.cancel()]);
      await g.status;
      return out;
    };
    try {
      const placement = containment.placement!;
      const env = { PATH: "/usr/bin:/bin" };
      // A shell command joins in its own script; a program through the wrapper shell.
      for (
        const argv of [["/bin/sh", "-c", "cat /proc/self/cgroup"], ["cat", "/proc/self/cgroup"]]
      ) {
        const cgroup = RunCgroup.create({ placement, name: `spawn-${argv.length}` });
        const group = ProcessGroup.spawn({ argv, env, stdin: false, cgroup });
        assert.equal(group.startedBy, "setsid");
        assert.equal(group.pgid, group.pid);
        const own = (await text(group)).split("\n").find((l) => l.startsWith("0::"));
        assert.ok(own?.endsWith(`/${containment.instanceId}/spawn-${argv.length}`), own);
        await group.terminate(500);
        assert.ok(gone(cgroup.path));
      }
      // Where the program cannot be checked first (a relative PATH entry), Deno
      // spawns it detached, and it is moved in right after.
      const cgroup = RunCgroup.create({ placement, name: "detached" });
      const group = ProcessGroup.spawn({
        argv: ["sleep", "1000"],
        env: { PATH: "bin:/usr/bin:/bin" },
        stdin: false,
        cgroup,
      });
      assert.equal(group.startedBy, "detached");
      await eventually(() =>
        Deno.readTextFileSync(`${cgroup.path}/cgroup.procs`).includes(String(group.pid))
      );
      await Promise.all([group.stdout.cancel(), group.stderr.cancel()]);
      await group.terminate(500);
      assert.equal((await group.status).signal, "SIGTERM");
      assert.ok(gone(cgroup.path));
    } finally {
      await containment.close();
    }
  },
);

cgroupTest("under deno task start's scoped permissions, cgroups work just the same", async () => {
  const marker = newMarker();
  const server = await spawnServer(
    { "kill-grace": "0.3", ephemeral: "true", "memory-max": String(64 * MiB) },
    {},
    { script: "scripts/start.ts" },
  );
  let instance = "";
  try {
    const h = await health(server.httpUrl);
    instance = `${h.containment.root}/${h.containment.instance}`;
    // Deno grants /sys only with --allow-all: a helper shell reaches the cgroups.
    assert.equal(h.permissions.read.state, "scoped");
    assert.equal(h.permissions.write.state, "none");
    assert.equal(h.containment.mode, "cgroup", h.containment.reason);
    assert.equal(h.containment.access, "helper");
    assert.equal(h.containment.root, offered.root);
    assert.deepEqual(h.containment.controllers, offered.controllers);
    const client = await TestClient.open({ wsUrl: server.wsUrl } as never);
    const r = await startEscapee(client, marker);
    await client.request("control", { type: "CANCEL" });
    assert.equal(
      (await client.event("completed", r.result.execution_id)).params.status,
      "canceled",
    );
    assert.deepEqual(await pidsWithMarker(marker), []);
    for (const dir of runDirs(h.containment, r.result.execution_id)) assert.ok(gone(dir), dir);
    if (!NO_MEMORY) {
      const hog = await client.run({ args: [PYTHON, "-c", "b = bytearray(512 * 1024 * 1024)"] });
      assert.match(hog.completed.error, /killed by the out-of-memory killer \(memory-max 67108864/);
    }
    await client.close();
  } finally {
    await server.stop();
    await killMarked(marker);
  }
  assert.ok(gone(instance), `${instance} is removed on SIGTERM`);
});

Deno.test({
  name: "cgroup: with cgroup-root off, runs are contained by their process group only",
  ignore: !HAS_PYTHON,
  fn: async () => {
    assert.deepEqual(await detectLayout("off"), { reason: "cgroup-root is off" });
    const marker = newMarker();
    try {
      await withServer({ "cgroup-root": "off", "kill-grace": "0.3" }, async (server) => {
        const h = await health(server.httpUrl);
        assert.deepEqual(h.containment.mode, "process-group");
        assert.equal(h.containment.root, null);
        assert.deepEqual(h.containment.controllers, []);
        assert.equal(h.containment.reason, "cgroup-root is off");
        const client = await TestClient.open(server);
        const run = await client.run({ command: "echo $$; cat /proc/self/cgroup" });
        assert.equal(run.completed.status, "completed");
        assert.ok(!run.stdout.includes("cc-executor"), run.stdout);
        assert.equal(Number(run.stdout.split("\n")[0]), run.result.pid);
        assert.equal(run.result.pgid, run.result.pid);
        const refused = await client.request("execute", { command: "true", memory_max: 64 * MiB });
        assert.equal(refused.error?.code, -32602);
        assert.match(refused.error.data.reason, /not enforced here/);
        // What process groups cannot do: an escapee outlives CANCEL.
        const r = await startEscapee(client, marker);
        await client.request("control", { type: "CANCEL" });
        await client.event("completed", r.result.execution_id);
        assert.equal((await pidsWithMarker(marker)).length, 1);
        await client.close();
      });
    } finally {
      await killMarked(marker);
    }
  },
});

cgroupTest("memory-max: the OOM killer ends a memory hog, and the run says so", async () => {
  await withServer({ "memory-max": String(256 * MiB) }, async (server) => {
    const client = await TestClient.open(server);
    const hog = await client.run({
      args: [PYTHON, "-c", "b = bytearray(512 * 1024 * 1024)"],
      memory_max: 64 * MiB,
    });
    assert.equal(hog.completed.status, "failed");
    assert.equal(hog.completed.signal, "SIGKILL");
    assert.equal(
      hog.completed.error,
      `Process killed by the out-of-memory killer (memory-max ${64 * MiB} bytes)`,
    );
    // The server's limit applies when the request gives none; under a shell
    // the shell survives and reports it.
    const shell = await client.run({ command: `${PYTHON} -c 'b = bytearray(512 * 1024 * 1024)'` });
    assert.equal(shell.completed.status, "failed");
    assert.equal(shell.completed.exit_code, 137);
    assert.equal(
      shell.completed.error,
      `A process of the run was killed by the out-of-memory killer (memory-max ${256 * MiB} bytes)`,
    );
    // Within the limit nothing is said.
    const fits = await client.run({ args: [PYTHON, "-c", "b = bytearray(16 * 1024 * 1024)"] });
    assert.equal(fits.completed.status, "completed");
    assert.equal(fits.completed.error, null);
    await client.close();
  });
}, { ignore: NO_MEMORY });

cgroupTest("pids-max: a fork loop cannot go past the limit", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    // At most 40 forks, each child sleeping: the limit stops it first.
    const script = "import os, time\n" +
      "kids = []\n" +
      "for i in range(40):\n" +
      "    try:\n" +
      "        pid = os.fork()\n" +
      "    except OSError:\n" +
      "        break\n" +
      "    if pid == 0:\n" +
      "        time.sleep(5)\n" +
      "        os._exit(0)\n" +
      "    kids.append(pid)\n" +
      "print(len(kids))\n";
    const run = await client.run({ args: [PYTHON, "-c", script], pids_max: 8 });
    assert.equal(run.completed.status, "completed", run.stderr);
    const forked = Number(run.stdout.trim());
    // python itself is one of the 8.
    assert.ok(forked >= 1 && forked <= 7, `forked ${forked}`);
    await client.close();
  });
}, { ignore: NO_PIDS });

cgroupTest("limits: a request may only lower the server's; its own are applied", async () => {
  await withServer({ "memory-max": String(256 * MiB), "pids-max": "64" }, async (server) => {
    const client = await TestClient.open(server);
    for (const [field, value] of [["memory_max", 512 * MiB], ["pids_max", 65]] as const) {
      const r = await client.request("execute", { command: "true", [field]: value });
      assert.equal(r.error?.code, -32602, JSON.stringify(r));
      assert.equal(r.error.data.field, field);
      assert.match(r.error.data.reason, /^at most /);
    }
    for (const bad of [0, -1, 1.5, "1"]) {
      const r = await client.request("execute", { command: "true", pids_max: bad });
      assert.equal(r.error?.code, -32602, `pids_max ${bad}`);
    }
    const status = server.containment.status();
    const read = async (params: Record<string, unknown>) => {
      const r = await client.request("execute", { command: "sleep 1000", ...params });
      const [unified, ...v1] = runDirs(status, r.result.execution_id);
      const dir = (c: "memory" | "pids") =>
        status.hierarchies[c] === "v2"
          ? unified!
          : v1.find((d) => d.startsWith(status.hierarchies[c]!))!;
      const memoryFile = status.hierarchies.memory === "v2"
        ? "memory.max"
        : "memory.limit_in_bytes";
      const limits = {
        memory: Number(Deno.readTextFileSync(`${dir("memory")}/${memoryFile}`)),
        pids: Number(Deno.readTextFileSync(`${dir("pids")}/pids.max`)),
      };
      await client.request("control", { type: "CANCEL" });
      await client.event("completed", r.result.execution_id);
      return limits;
    };
    assert.deepEqual(await read({}), { memory: 256 * MiB, pids: 64 });
    assert.deepEqual(await read({ memory_max: 32 * MiB, pids_max: 10 }), {
      memory: 32 * MiB,
      pids: 10,
    });
    await client.close();
  });
}, { ignore: NO_MEMORY || NO_PIDS });
