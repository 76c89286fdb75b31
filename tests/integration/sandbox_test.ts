/**
 * The sandbox (`sandbox: bwrap`): a real server, real WebSocket clients,
 * real children under a real bubblewrap. The root filesystem is read-only,
 * the workspace writable, /tmp private, the server's processes invisible,
 * the network gone with `sandbox-network: none`, the keys file and data
 * directory covered, and pause, resume, cancel, time limits, stdin and exit
 * statuses work as without it. Skipped (visibly) where bwrap is missing or
 * cannot make namespaces.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../lib/config/config.ts";
import { bwrapOptions, Sandbox } from "../../lib/security/sandbox.ts";
import {
  eventually,
  type Msg,
  pidsWithMarker,
  spawnServer,
  TestClient,
  testServer,
  withServer,
} from "../_helpers.ts";

/** Why bwrap cannot be used here, or null when it can. */
async function bwrapMissing(): Promise<string | null> {
  try {
    const out = await new Deno.Command("bwrap", {
      args: ["--ro-bind", "/", "/", "--unshare-pid", "true"],
      stderr: "piped",
    }).output();
    return out.success
      ? null
      : `bwrap cannot make namespaces here: ${new TextDecoder().decode(out.stderr).trim()}`;
  } catch {
    return "bwrap is not installed (apt-get install bubblewrap)";
  }
}
const NO_BWRAP = await bwrapMissing();
if (NO_BWRAP !== null) console.log(`sandbox tests skipped: ${NO_BWRAP}`);

const BASH = ["/usr/bin/bash", "/bin/bash"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

const sandboxTest = (name: string, fn: () => Promise<void>, ignore = false) =>
  Deno.test({ name, ignore: NO_BWRAP !== null || ignore, fn });

async function health(httpUrl: string, key?: string): Promise<Msg> {
  const headers: Record<string, string> = key === undefined
    ? {}
    : { authorization: `Bearer ${key}` };
  return await fetch(`${httpUrl}/health`, { headers }).then((r) => r.json());
}

/** A workspace root (real path) for one test, removed after it. */
async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "cc-sbx-" }));
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
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

const stateOf = (pid: number) => {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return "gone";
  }
};

sandboxTest(
  "sandbox: writing inside the workspace works, outside it fails; /tmp is private",
  async () => {
    await withRoot(async (root) => {
      const outside = `/var/tmp/cc-sbx-${crypto.randomUUID()}`;
      const hostTmp = await Deno.makeTempFile({ prefix: "cc-sbx-host-" });
      try {
        await withServer({ sandbox: "bwrap", "workspace-roots": root }, async (server) => {
          const client = await TestClient.open(server);
          const r = await client.run({
            command: `echo in > ${root}/inside && echo wrote-inside; ` +
              `echo out > ${outside} 2>/dev/null || echo refused-outside; ` +
              `touch /etc/cc-sbx 2>/dev/null || echo refused-etc; ` +
              `test -e ${hostTmp} && echo host-tmp-visible || echo host-tmp-hidden; ` +
              `echo t > /tmp/own && cat /tmp/own; pwd`,
          });
          assert.equal(r.completed.status, "completed", r.stderr);
          assert.equal(
            r.stdout,
            `wrote-inside\nrefused-outside\nrefused-etc\nhost-tmp-hidden\nt\n${root}\n`,
          );
          assert.equal(await Deno.readTextFile(`${root}/inside`), "in\n");
          await assert.rejects(Deno.stat(outside), Deno.errors.NotFound);
          await assert.rejects(Deno.stat("/etc/cc-sbx"), Deno.errors.NotFound);
          // argv too, with no shell of its own.
          const argv = await client.run({ args: ["touch", "/var/tmp/cc-sbx-argv"] });
          assert.equal(argv.completed.status, "failed");
          assert.match(argv.stderr, /Read-only file system/);
          await client.close();
        });
      } finally {
        await Deno.remove(hostTmp);
        await Deno.remove(outside).catch(() => {});
      }
    });
  },
);

sandboxTest("sandbox: the server's processes are invisible and cannot be signalled", async () => {
  const probe = `test -e /proc/${Deno.pid} && echo visible || echo invisible; ` +
    `kill -0 ${Deno.pid} 2>/dev/null && echo signalled || echo unsignalled; ` +
    `ls /proc | grep -c '^[0-9]'`;
  // Without the sandbox the very same command sees the server (so this can fail).
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.run({ command: probe });
    assert.match(r.stdout, /^visible\nsignalled\n/);
    await client.close();
  });
  await withServer({ sandbox: "bwrap" }, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.run({ command: probe });
    assert.equal(r.completed.status, "completed", r.stderr);
    const [seen, signalled, count] = r.stdout.trim().split("\n");
    assert.equal(seen, "invisible");
    assert.equal(signalled, "unsignalled");
    // bwrap's init, the shell, ls and grep: nothing of anyone else.
    assert.ok(Number(count) <= 4, r.stdout);
    await client.close();
  });
});

sandboxTest(
  "sandbox: with sandbox-network none, a TCP connect to the server's port fails",
  async () => {
    const connect = (port: number) =>
      `exec 3<>/dev/tcp/127.0.0.1/${port} 2>/dev/null && echo connected || echo refused`;
    for (const [network, expected] of [["host", "connected"], ["none", "refused"]] as const) {
      await withServer({ sandbox: "bwrap", "sandbox-network": network }, async (server) => {
        const client = await TestClient.open(server);
        const r = await client.run({ args: [BASH!, "-c", connect(server.port)] });
        assert.equal(r.stdout, `${expected}\n`, `network ${network}: ${r.stderr}`);
        assert.deepEqual((await health(server.httpUrl)).sandbox.network, network);
        await client.close();
      });
    }
  },
  BASH === undefined,
);

for (const cgroupRoot of ["auto", "off"]) {
  sandboxTest(
    `sandbox: CANCEL kills everything in the sandbox, setsid escapees too (cgroup-root ${cgroupRoot})`,
    async () => {
      const marker = `cc-sbx-${crypto.randomUUID()}`;
      try {
        await withServer(
          { sandbox: "bwrap", "cgroup-root": cgroupRoot, "kill-grace": "0.5" },
          async (server) => {
            const client = await TestClient.open(server);
            // A clean-up on SIGTERM, an escapee in a session of its own, and a
            // process that ignores SIGTERM; each holds the marker in its argv.
            const r = await client.request("execute", {
              command: `trap 'echo cleaned-up; exit 0' TERM; ` +
                `setsid sh -c 'sleep 1000' "$M" & (trap '' TERM; exec sh -c 'sleep 1000' "$M") & ` +
                `echo ready; while :; do sleep 0.05; done`,
              env: { M: marker },
            });
            const id = r.result.execution_id;
            await client.event("output", id);
            await eventually(async () => (await pidsWithMarker(marker)).length >= 2);
            await client.request("control", { type: "CANCEL" });
            const done = await client.event("completed", id);
            assert.equal(done.params.status, "canceled");
            // SIGTERM reached the command inside, which could clean up first.
            const output = client.received.map((t) => JSON.parse(t))
              .filter((m) => m.method === "process.output").map((m) => m.params.data).join("");
            assert.match(output, /cleaned-up/);
            assert.deepEqual(await pidsWithMarker(marker), []);
            // A command that ignores SIGTERM: SIGKILL after the grace ends bwrap,
            // and the PID namespace with it.
            const stubborn = await client.request("execute", {
              command: `trap '' TERM; setsid sh -c 'sleep 1000' "$M" & echo ready; ` +
                `while :; do sleep 0.05; done`,
              env: { M: marker },
            });
            await client.event("output", stubborn.result.execution_id);
            await eventually(async () => (await pidsWithMarker(marker)).length >= 1);
            await client.request("control", { type: "CANCEL" });
            const killed = await client.event("completed", stubborn.result.execution_id);
            assert.deepEqual([killed.params.status, killed.params.signal], ["canceled", "SIGKILL"]);
            assert.deepEqual(await pidsWithMarker(marker), []);
            await client.close();
          },
        );
      } finally {
        await killMarked(marker);
      }
    },
  );
}

sandboxTest(
  "sandbox: nothing in it survives the server's SIGKILL (--die-with-parent)",
  async () => {
    const marker = `cc-sbx-${crypto.randomUUID()}`;
    // cgroup-root off: neither crash recovery nor a cgroup is what ends them.
    const server = await spawnServer({ sandbox: "bwrap", ephemeral: "true", "cgroup-root": "off" });
    try {
      const client = await TestClient.connect(server.wsUrl);
      await client.next((m) => m.method === "connected");
      const r = await client.request("execute", {
        command: `setsid sh -c 'sleep 1000' "$M" & sh -c 'sleep 1000' "$M" & echo ready; wait`,
        env: { M: marker },
      });
      await client.event("output", r.result.execution_id);
      await eventually(async () => (await pidsWithMarker(marker)).length === 2);
      server.child.kill("SIGKILL");
      await server.child.status;
      await eventually(async () => (await pidsWithMarker(marker)).length === 0, 5000, "all gone");
      await client.closed;
    } finally {
      await server.stop();
      await killMarked(marker);
    }
  },
);

sandboxTest("sandbox: PAUSE stops the command inside, RESUME continues it", async () => {
  const marker = `cc-sbx-${crypto.randomUUID()}`;
  try {
    await withServer({ sandbox: "bwrap" }, async (server) => {
      const client = await TestClient.open(server);
      const r = await client.request("execute", {
        command: `: ${marker}; i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done`,
      });
      const id = r.result.execution_id;
      await client.event("output", id);
      // bwrap (outside), its init and the shell (inside) all hold the marker.
      const pids = await pidsWithMarker(marker);
      assert.ok(pids.length >= 2, String(pids));
      assert.deepEqual((await client.request("control", { type: "PAUSE" })).result, {
        status: "paused",
      });
      await eventually(() => pids.every((pid) => stateOf(pid) === "T"), 5000, "all stopped");
      assert.deepEqual((await client.request("control", { type: "RESUME" })).result, {
        status: "resumed",
      });
      await eventually(() => pids.every((pid) => stateOf(pid) !== "T"), 5000, "all running");
      // Output flows again after the resume.
      await client.event("resumed", id);
      await client.event("output", id);
      await client.request("control", { type: "CANCEL" });
      assert.equal((await client.event("completed", id)).params.status, "canceled");
      await client.close();
    });
    assert.deepEqual(await pidsWithMarker(marker), []);
  } finally {
    await killMarked(marker);
  }
});

sandboxTest("sandbox: the whole sandbox is in the run's cgroup, joined before bwrap", async () => {
  await withServer({ sandbox: "bwrap" }, async (server) => {
    if (server.containment.status().mode !== "cgroup") {
      console.log(`no cgroups here (${server.containment.status().reason}): nothing to check`);
      return;
    }
    const client = await TestClient.open(server);
    const r = await client.run({
      command: "grep '^0::' /proc/self/cgroup; grep '^0::' /proc/1/cgroup",
    });
    const [own, init] = r.stdout.trim().split("\n");
    assert.ok(own?.endsWith(`/${r.result.execution_id}`), r.stdout);
    // bwrap's init inside is in it too, so everything it starts is.
    assert.equal(init, own);
    await client.close();
  });
});

/** The signals a command starts with ignored, without the sandbox. */
async function plainSigIgn(): Promise<string> {
  let line = "";
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    line = (await client.run({ args: ["grep", "^SigIgn", "/proc/self/status"] })).stdout;
    await client.close();
  });
  return line;
}

sandboxTest("sandbox: time limits, stdin, exit codes and signals are as without it", async () => {
  const marker = `cc-sbx-${crypto.randomUUID()}`;
  try {
    await withServer({ sandbox: "bwrap", "kill-grace": "0.5" }, async (server) => {
      const client = await TestClient.open(server);
      const timed = await client.run({ command: `sleep 1000; : ${marker}`, timeout: 0.5 });
      assert.equal(timed.completed.status, "timeout");
      assert.deepEqual(await pidsWithMarker(marker), []);
      const cat = await client.run({ command: "cat; echo", stdin: "from stdin" });
      assert.equal(cat.stdout, "from stdin\n");
      const exit = await client.run({ command: "echo err >&2; exit 3" });
      assert.deepEqual([exit.completed.status, exit.completed.exit_code], ["failed", 3]);
      assert.equal(exit.stderr, "err\n");
      // The command starts with the signals ignored that it would have without the
      // sandbox, not with SIGTERM (ignored for bwrap) or SIGINT (a background job's).
      const ignored = await client.run({ args: ["grep", "^SigIgn", "/proc/self/status"] });
      assert.equal(ignored.stdout, await plainSigIgn());
      const killed = await client.run({ command: "kill -KILL $$" });
      assert.deepEqual([killed.completed.exit_code, killed.completed.signal], [null, "SIGKILL"]);
      assert.equal(killed.completed.error, "Process killed by SIGKILL");
      await client.close();
    });
  } finally {
    await killMarked(marker);
  }
});

sandboxTest(
  "sandbox: the keys file, data directory and hooks config are hidden; inside a workspace root they are refused",
  async () => {
    await withRoot(async (root) => {
      // Outside the root: covered over. A root inside the data directory stays visible.
      const data = await Deno.realPath(await Deno.makeTempDir({ prefix: "cc-sbx-data-" }));
      await Deno.mkdir(`${data}/work`);
      await Deno.writeTextFile(`${data}/secret`, "data-secret");
      const conf = await Deno.realPath(await Deno.makeTempDir({ prefix: "cc-sbx-conf-" }));
      await Deno.writeTextFile(`${conf}/keys`, "key-secret\n");
      await Deno.writeTextFile(`${conf}/hooks.json`, `{"hooks":{}}`);
      try {
        await withServer({
          sandbox: "bwrap",
          // The data directory is used, and so hidden, only when not ephemeral.
          ephemeral: "false",
          "workspace-roots": `${root},${data}/work`,
          "api-keys-file": `${conf}/keys`,
          "data-dir": data,
          "hooks-config": `${conf}/hooks.json`,
        }, async (server) => {
          const client = await TestClient.connect(server.wsUrl, undefined, {
            authorization: "Bearer key-secret",
          });
          await client.next();
          const r = await client.run({
            command: `cat ${conf}/keys; cat ${conf}/hooks.json; cat ${data}/secret; ` +
              `echo ok > ${data}/work/f && cat ${data}/work/f`,
          });
          assert.equal(r.stdout, "ok\n", r.stderr);
          const status = (await health(server.httpUrl, "key-secret")).sandbox;
          assert.deepEqual(
            status.hidden.sort(),
            [data, `${conf}/keys`, `${conf}/hooks.json`].sort(),
          );
          await client.close();
        });
        assert.equal(await Deno.readTextFile(`${data}/work/f`), "ok\n");
        // Inside a root, a command could rename a directory above the cover
        // and reach what it hides: each of them is refused at startup.
        await Deno.mkdir(`${root}/secret/deeper`, { recursive: true });
        await Deno.writeTextFile(`${root}/secret/deeper/keys`, "k\n");
        for (
          const flags of [
            { "api-keys-file": `${root}/secret/deeper/keys` },
            { "data-dir": `${root}/secret` },
            { "hooks-config": `${root}/secret/deeper/keys` },
          ] as Record<string, string>[]
        ) {
          await assert.rejects(
            testServer({ sandbox: "bwrap", "workspace-roots": root, ephemeral: "false", ...flags }),
            (err: unknown) =>
              err instanceof ConfigError && /lies inside the workspace root/.test(err.message),
            JSON.stringify(flags),
          );
        }
      } finally {
        await Deno.remove(data, { recursive: true });
        await Deno.remove(conf, { recursive: true });
      }
    });
  },
);

Deno.test("Sandbox.start() refuses a bwrap that exits 0 without running the command", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc-fake-bwrap-" });
  try {
    await Deno.writeTextFile(`${dir}/bwrap`, "#!/bin/sh\nexit 0\n");
    await Deno.chmod(`${dir}/bwrap`, 0o755);
    await assert.rejects(
      Sandbox.start({
        mode: "bwrap",
        network: "host",
        workspaceRoots: [],
        hide: [],
        bwrapPaths: [`${dir}/bwrap`],
      }),
      (err: unknown) =>
        err instanceof ConfigError && /without running the command/.test(err.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

sandboxTest(
  "sandbox: a workspace root that is the data directory is refused at startup",
  async () => {
    await withRoot(async (root) => {
      await assert.rejects(
        testServer({
          sandbox: "bwrap",
          "workspace-roots": root,
          "data-dir": root,
          ephemeral: "false",
        }),
        (err: unknown) => err instanceof ConfigError && /hides/.test(err.message),
      );
    });
  },
);

Deno.test("Sandbox.start() says what is missing and how to fix it", async () => {
  const base = { mode: "bwrap" as const, network: "host" as const, workspaceRoots: [], hide: [] };
  await assert.rejects(
    Sandbox.start({ ...base, bwrapPaths: ["/nonexistent/cc/bwrap"] }),
    (err: unknown) =>
      err instanceof ConfigError && /needs bubblewrap/.test(err.message) &&
      /apt-get install bubblewrap/.test(err.message) &&
      /CC_EXECUTOR_SANDBOX=none/.test(err.message),
  );
  // A bwrap that cannot make namespaces (here: one that always fails).
  await assert.rejects(
    Sandbox.start({ ...base, bwrapPaths: ["/bin/false"] }),
    (err: unknown) =>
      err instanceof ConfigError && /cannot create namespaces/.test(err.message) &&
      /unprivileged_userns_clone/.test(err.message),
  );
  assert.equal(await Sandbox.start({ ...base, mode: "none" }), null);
});

Deno.test("bwrapOptions() drops every capability and lays mounts out parents first", () => {
  const options = bwrapOptions({
    network: "host",
    writable: ["/tmp/ws", "/var/lib/cc/work"],
    hidden: [
      { path: "/var/lib/cc", directory: true },
      { path: "/tmp/ws/keys", directory: false },
    ],
  });
  const text = options.join(" ");
  assert.ok(!options.includes("--unshare-net"));
  assert.match(text, /--cap-drop ALL/);
  // /tmp's tmpfs, then the root in it, then the key file in the root.
  assert.ok(text.indexOf("--tmpfs /tmp") < text.indexOf("--bind /tmp/ws /tmp/ws"));
  assert.ok(text.indexOf("--bind /tmp/ws /tmp/ws") < text.indexOf("/dev/null /tmp/ws/keys"));
  // The data directory's tmpfs, then the root inside it.
  assert.ok(text.indexOf("--tmpfs /var/lib/cc") < text.indexOf("--bind /var/lib/cc/work"));
});

sandboxTest(
  "sandbox: deno task start runs it under its scoped permissions; /health says so",
  async () => {
    await withRoot(async (root) => {
      const server = await spawnServer(
        { sandbox: "bwrap", "workspace-roots": root, ephemeral: "true" },
        {},
        { script: "scripts/start.ts" },
      );
      try {
        const status = (await health(server.httpUrl)).sandbox;
        assert.deepEqual([status.mode, status.network, status.writable], ["bwrap", "host", [root]]);
        const client = await TestClient.connect(server.wsUrl);
        await client.next((m) => m.method === "connected");
        const r = await client.run({ command: `pwd; ls /proc | grep -c '^[0-9]'` });
        assert.equal(r.completed.status, "completed", r.stderr);
        assert.equal(r.stdout.split("\n")[0], root);
        const argv = await client.run({ args: ["pwd"] });
        assert.equal(argv.stdout, `${root}\n`);
        await client.close();
      } finally {
        await server.stop();
      }
    });
  },
);

Deno.test("/health says the sandbox is off by default", async () => {
  await withServer({}, async (server) => {
    assert.deepEqual((await health(server.httpUrl)).sandbox, { mode: "none" });
  });
});
