/**
 * Containment with cgroups (issue 9, item 5): the server's instance in the
 * cgroup root, /health, and ending recorded or stale cgroups. Real server,
 * real children. Skipped (visibly) where no cgroup v2 hierarchy is writable.
 */
import assert from "node:assert/strict";
import { Containment, killCgroup, reapStaleCgroups, RunCgroup } from "../lib/cgroup.ts";
import { ConfigError } from "../lib/config.ts";
import { ProcessGroup } from "../lib/process_group.ts";
import { type Msg, pidsWithMarker, TestClient, testServer, withServer } from "./_helpers.ts";

/** What this machine offers: probed once by setting up (and removing) an instance. */
const probe = await Containment.start("auto");
const offered = probe.status();
await probe.close();
const NO_CGROUPS = offered.mode !== "cgroup";
/**
 * python3 itself, not a wrapper script (pyenv's shims fork while they
 * look for it, which would blur the counts of marked processes); "" if none.
 */
const PYTHON = await new Deno.Command("python3", {
  args: ["-c", "import sys; print(sys.executable)"],
})
  .output().then((o) => o.success ? new TextDecoder().decode(o.stdout).trim() : "", () => "");
const HAS_PYTHON = PYTHON !== "";

/** A marker to find test processes by (passed through env as "$M" where a shell would show it). */
const newMarker = () => `cgtest-${crypto.randomUUID()}`;

async function health(httpUrl: string): Promise<Msg> {
  return await fetch(`${httpUrl}/health`).then((r) => r.json());
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
