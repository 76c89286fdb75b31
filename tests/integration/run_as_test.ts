/**
 * `run-as`: a service started as root runs commands as another user. Real
 * server, real WebSocket clients, real children dropped to `nobody` by a
 * real setpriv. Skipped (visibly) unless the tests run as root with setpriv
 * and a `nobody` user.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../lib/config/config.ts";
import { RunAs } from "../../lib/security/run_as.ts";
import {
  eventually,
  pidsWithMarker,
  spawnServer,
  TestClient,
  testServer,
  withServer,
} from "../_helpers.ts";

const NOBODY = { user: "nobody", uid: 65534 };

async function cannotRunAs(): Promise<string | null> {
  if (Deno.uid() !== 0) return "the tests do not run as root";
  try {
    const out = await new Deno.Command("setpriv", {
      args: [
        "--reuid",
        String(NOBODY.uid),
        "--regid",
        String(NOBODY.uid),
        "--clear-groups",
        "true",
      ],
      stderr: "piped",
    }).output();
    return out.success
      ? null
      : `setpriv cannot switch to nobody: ${new TextDecoder().decode(out.stderr)}`;
  } catch {
    return "setpriv (util-linux) is not installed";
  }
}
const SKIP = await cannotRunAs();
if (SKIP !== null) console.log(`run-as tests skipped: ${SKIP}`);

const NO_BWRAP = await new Deno.Command("bwrap", {
  args: ["--ro-bind", "/", "/", "--unshare-pid", "true"],
  stderr: "null",
}).output().then((o) => !o.success, () => true);

const runAsTest = (name: string, fn: () => Promise<void>, ignore = false) =>
  Deno.test({ name, ignore: SKIP !== null || ignore, fn });

/** A workspace root owned by nobody (real path), removed after `fn`. */
async function withUserRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "cc-runas-" }));
  await Deno.chown(root, NOBODY.uid, NOBODY.uid);
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** A file only root may read, removed after `fn`. */
async function withRootOnlyFile(fn: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ prefix: "cc-runas-secret-" });
  await Deno.writeTextFile(path, "root-only-secret\n");
  await Deno.chmod(path, 0o600);
  try {
    await fn(path);
  } finally {
    await Deno.remove(path);
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

const uidOf = (pid: number) =>
  Number(Deno.readTextFileSync(`/proc/${pid}/status`).match(/^Uid:\s+(\d+)/m)?.[1]);

runAsTest(
  "run-as: commands run as the user, who cannot read root-only files or the server's environ",
  async () => {
    await withUserRoot((root) =>
      withRootOnlyFile(async (secret) => {
        const probe = `id -u; cat ${secret} 2>/dev/null || echo no-secret; ` +
          `head -c 0 /proc/${Deno.pid}/environ 2>/dev/null && echo environ-readable || echo no-environ`;
        // The same command without run-as reads both (so this can fail).
        await withServer({ "workspace-roots": root }, async (server) => {
          const client = await TestClient.open(server);
          const r = await client.run({ command: probe });
          assert.equal(r.stdout, "0\nroot-only-secret\nenviron-readable\n");
          await client.close();
        });
        await withServer({ "workspace-roots": root, "run-as": NOBODY.user }, async (server) => {
          const client = await TestClient.open(server);
          const r = await client.run({ command: probe });
          assert.equal(r.stdout, `${NOBODY.uid}\nno-secret\nno-environ\n`, r.stderr);
          // The workspace is the user's: writable, and files there are its own.
          const w = await client.run({ args: ["touch", `${root}/made`] });
          assert.equal(w.completed.status, "completed", w.stderr);
          assert.equal((await Deno.stat(`${root}/made`)).uid, NOBODY.uid);
          // The user's own home, not root's.
          const home = await client.run({
            command: "echo $HOME; grep -E '^(CapEff|CapPrm)' /proc/self/status",
          });
          assert.equal(
            home.stdout,
            "/nonexistent\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n",
          );
          const health = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
          assert.deepEqual(health.run_as, {
            user: "nobody",
            uid: 65534,
            gid: 65534,
            groups: "user",
          });
          await client.close();
        });
      })
    );
  },
);

runAsTest("run-as user:group runs with that group alone", async () => {
  await withServer({ "run-as": "nobody:daemon" }, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.run({ command: "id -u; id -g; id -G" });
    const daemonGid = Number(
      (await Deno.readTextFile("/etc/group")).match(/^daemon:[^:]*:(\d+):/m)![1],
    );
    assert.equal(r.stdout, `${NOBODY.uid}\n${daemonGid}\n${daemonGid}\n`);
    await client.close();
  });
});

runAsTest(
  "run-as: stdin, output, PAUSE, RESUME, CANCEL and time limits work as the user",
  async () => {
    const marker = `cc-runas-${crypto.randomUUID()}`;
    try {
      await withServer({ "run-as": NOBODY.user, "kill-grace": "0.5" }, async (server) => {
        const client = await TestClient.open(server);
        const cat = await client.run({ command: "cat; echo; echo err >&2", stdin: "typed" });
        assert.deepEqual([cat.stdout, cat.stderr], ["typed\n", "err\n"]);
        const r = await client.request("execute", {
          command: `: ${marker}; trap 'echo cleaned-up; exit 0' TERM; ` +
            `while :; do echo tick; sleep 0.02; done`,
        });
        const id = r.result.execution_id;
        await client.event("output", id);
        const [pid] = await pidsWithMarker(marker);
        assert.equal(uidOf(pid!), NOBODY.uid);
        await client.request("control", { type: "PAUSE" });
        await eventually(() => stateOf(pid!) === "T", 5000, "stopped");
        await client.request("control", { type: "RESUME" });
        await eventually(() => stateOf(pid!) !== "T", 5000, "running");
        await client.request("control", { type: "CANCEL" });
        const done = await client.event("completed", id);
        assert.equal(done.params.status, "canceled");
        const output = client.received.map((t) => JSON.parse(t))
          .filter((m) => m.method === "process.output").map((m) => m.params.data).join("");
        assert.match(output, /cleaned-up/);
        const timed = await client.run({ command: `sleep 1000; : ${marker}`, timeout: 0.5 });
        assert.equal(timed.completed.status, "timeout");
        assert.deepEqual(await pidsWithMarker(marker), []);
        await client.close();
      });
    } finally {
      for (const pid of await pidsWithMarker(marker)) Deno.kill(pid, "SIGKILL");
    }
  },
);

runAsTest("run-as with the sandbox: the user inside, without capabilities", async () => {
  await withUserRoot(async (root) => {
    await withServer(
      { "run-as": NOBODY.user, sandbox: "bwrap", "workspace-roots": root },
      async (server) => {
        const client = await TestClient.open(server);
        const r = await client.run({
          command:
            "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; echo w > f && cat f; " +
            "cat /proc/1/environ >/dev/null 2>&1 || echo no-init-environ",
        });
        assert.equal(
          r.stdout,
          `${NOBODY.uid}\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nw\nno-init-environ\n`,
          r.stderr,
        );
        assert.equal((await Deno.stat(`${root}/f`)).uid, NOBODY.uid);
        await client.close();
      },
    );
  });
}, NO_BWRAP);

runAsTest(
  "run-as refuses to start: not root, no such user or group, root itself, a readable keys file",
  async () => {
    const refused = async (start: Promise<unknown>, pattern: RegExp) =>
      await assert.rejects(
        start,
        (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
      );
    await refused(
      RunAs.start("nobody", { currentUid: 1000 }),
      /needs the service to start as root/,
    );
    await refused(testServer({ "run-as": "no-such-user-cc" }), /there is no user no-such-user-cc/);
    await refused(testServer({ "run-as": "nobody:no-such-group-cc" }), /there is no group/);
    await refused(testServer({ "run-as": "root" }), /is root \(uid 0\)/);
    const keys = await Deno.makeTempFile({ prefix: "cc-runas-keys-" });
    try {
      await Deno.chmod(keys, 0o644);
      await refused(
        testServer({ "run-as": NOBODY.user, "api-keys-file": keys }),
        /nobody can read the keys file .*chmod 600/,
      );
      // Private to root: accepted.
      await Deno.chmod(keys, 0o600);
      await withServer({ "run-as": NOBODY.user, "api-keys-file": keys }, () => Promise.resolve());
    } finally {
      await Deno.remove(keys);
    }
  },
);

runAsTest(
  "run-as under deno task start's scoped permissions; a root the user cannot write is named",
  async () => {
    const rootOwned = await Deno.realPath(await Deno.makeTempDir({ prefix: "cc-runas-root-" }));
    // Root's, readable but not writable by the user; and a directory in it the user may not enter.
    await Deno.chmod(rootOwned, 0o755);
    await Deno.mkdir(`${rootOwned}/private/public`, { recursive: true });
    await Deno.chmod(`${rootOwned}/private`, 0o700);
    try {
      const server = await spawnServer(
        { "run-as": NOBODY.user, "workspace-roots": rootOwned, ephemeral: "true" },
        {},
        { script: "scripts/start.ts" },
      );
      try {
        assert.match(server.output(), new RegExp(`"?${rootOwned}"? is not writable by "?nobody`));
        const client = await TestClient.connect(server.wsUrl);
        await client.next((m) => m.method === "connected");
        const r = await client.run({ args: ["id", "-u"] });
        assert.equal(r.stdout, `${NOBODY.uid}\n`, r.stderr);
        // The service (root) could enter it; the command, as the user, may not start there.
        for (const run of [{ args: ["id", "-u"] }, { command: "id -u" }]) {
          const denied = await client.run({ ...run, cwd: `${rootOwned}/private/public` });
          assert.equal(denied.completed.status, "failed");
          assert.equal(denied.completed.exit_code, 126);
          assert.equal(denied.stdout, "");
        }
        await client.close();
      } finally {
        await server.stop();
      }
    } finally {
      await Deno.remove(rootOwned, { recursive: true });
    }
  },
);
