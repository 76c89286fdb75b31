/**
 * The directory checked against the workspace roots is the directory the
 * child starts in, even while a client swaps it for a symlink that leads
 * out of the root: a real server, a real WebSocket client, and a separate
 * process renaming a directory and a symlink to /etc in and out of its place.
 */
import assert from "node:assert/strict";
import { type Msg, spawnServer, TestClient, testServer } from "../_helpers.ts";
import { ProcessGroup } from "../../lib/process/process_group.ts";
import { CWD_CHANGED_MESSAGE, launchArgv } from "../../lib/process/launch.ts";

/** A root holding `d` (a directory), `dir0`/`lnk0` (the spare names the swapper renames through). */
async function raceRoot(
  owner?: number,
): Promise<{ root: string; dir: string; remove: () => Promise<void> }> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "cc-race-" }));
  await Deno.mkdir(`${root}/d`);
  await Deno.symlink("/etc", `${root}/lnk0`);
  if (owner !== undefined) {
    for (const path of [root, `${root}/d`]) await Deno.chown(path, owner, owner);
  }
  return { root, dir: `${root}/d`, remove: () => Deno.remove(root, { recursive: true }) };
}

/**
 * Swaps `root/d` between a directory and a symlink to /etc as fast as it can,
 * in a process of its own (so the server's event loop is not the one held up).
 */
async function startSwapper(root: string): Promise<{ stop: () => Promise<number> }> {
  const code = `
    const [root] = Deno.args;
    const d = root + "/d", dir0 = root + "/dir0", lnk0 = root + "/lnk0";
    console.log("swapping");
    const hold = (us) => { const t = performance.now() + us / 1000; while (performance.now() < t); };
    let n = 0;
    for (;;) {
      // Mostly a directory, so requests get through; a symlink for a moment.
      hold(300);
      Deno.renameSync(d, dir0); Deno.renameSync(lnk0, d);
      hold(50);
      Deno.renameSync(d, lnk0); Deno.renameSync(dir0, d);
      if (++n % 1000 === 0) Deno.writeTextFileSync(root + ".n", String(n));
    }`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code, root],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  // Synchronise on its first line: from then on it is swapping.
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /swapping/);
  reader.releaseLock();
  return {
    stop: async () => {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
      const n = await Deno.readTextFile(`${root}.n`).catch(() => "0");
      await Deno.remove(`${root}.n`).catch(() => {});
      return Number(n);
    },
  };
}

/** Puts `root/d` back as a directory, whichever state the swapper left it in. */
async function settle(root: string): Promise<void> {
  const isDir = async (p: string) => (await Deno.lstat(p).catch(() => null))?.isDirectory === true;
  if (await isDir(`${root}/d`)) return;
  await Deno.remove(`${root}/d`).catch(() => {});
  if (await isDir(`${root}/dir0`)) await Deno.rename(`${root}/dir0`, `${root}/d`);
}

type Outcome = "inside" | "refused" | "changed" | "escaped" | "other";

/** Runs `pwd -P` in `dir` and says where it ran, or how it was stopped. */
async function oneRun(
  client: TestClient,
  params: Record<string, unknown>,
  root: string,
  escapes: string[],
): Promise<Outcome> {
  const response = await client.request("execute", params);
  if (response.error) {
    const e = response.error;
    return e.code === -32602 && e.data?.field === "cwd" ? "refused" : "other";
  }
  const id = response.result.execution_id;
  let stdout = "";
  let stderr = "";
  let done: Msg;
  for (;;) {
    const m = await client.next((x) => x.params?.execution_id === id);
    if (m.method === "process.output") {
      if (m.params.type === "stdout") stdout += m.params.data;
      else stderr += m.params.data;
    }
    if (m.method === "process.completed") {
      done = m.params;
      break;
    }
  }
  // The checked directory may be renamed to dir0 by the swapper while pwd
  // runs: still inside the root, and still the directory that was checked.
  const where = stdout.trim();
  const inside = where.startsWith(`${root}/`);
  if (where !== "" && !inside) {
    escapes.push(where);
    return "escaped";
  }
  if (done.status === "completed") return inside ? "inside" : "other";
  if (done.exit_code === 126 && stderr.startsWith(CWD_CHANGED_MESSAGE)) {
    assert.match(done.error, /Working directory changed during start/);
    return "changed";
  }
  return "other";
}

/** A server to race against: in this process, or as `deno task start` runs it. */
interface RaceServer {
  wsUrl: string;
  stop: () => Promise<unknown>;
}

async function race(
  flags: Record<string, string>,
  runs: number,
  start = async (flags: Record<string, string>): Promise<RaceServer> => {
    const server = await testServer(flags);
    return { wsUrl: server.wsUrl, stop: () => server.shutdown() };
  },
  owner?: number,
): Promise<void> {
  const { root, dir, remove } = await raceRoot(owner);
  const server = await start({ "workspace-roots": root, ...flags });
  const swapper = await startSwapper(root);
  const counts: Record<Outcome, number> = {
    inside: 0,
    refused: 0,
    changed: 0,
    escaped: 0,
    other: 0,
  };
  const escapes: string[] = [];
  try {
    const clients = await Promise.all([1, 2, 3, 4].map(async () => {
      const client = await TestClient.connect(server.wsUrl);
      await client.next((m) => m.method === "connected");
      return client;
    }));
    let next = 0;
    await Promise.all(clients.map(async (client) => {
      for (let i = next++; i < runs; i = next++) {
        // Half shell strings, half argv (no shell of the command's own).
        const params = i % 2 === 0
          ? { command: "pwd -P", cwd: dir, timeout: 30 }
          : { args: ["pwd", "-P"], cwd: dir, timeout: 30 };
        counts[await oneRun(client, params, root, escapes)]++;
      }
      await client.close();
    }));
  } finally {
    const swaps = await swapper.stop();
    await server.stop();
    await settle(root);
    await remove();
    console.log(`${JSON.stringify(flags)}: ${JSON.stringify(counts)}, ${swaps}+ swaps`);
  }
  assert.deepEqual(escapes, [], `runs started outside the root: ${escapes.join(", ")}`);
  assert.equal(counts.escaped, 0);
  // The race was on: some requests found the symlink (else nothing was tested).
  assert.ok(counts.refused + counts.changed > 0, JSON.stringify(counts));
  assert.ok(counts.inside > 0, JSON.stringify(counts));
}

Deno.test("300 racing requests never start outside the workspace root (cgroups as found)", async () => {
  await race({}, 300);
});

Deno.test("300 racing requests never start outside the workspace root (cgroup-root off)", async () => {
  await race({ "cgroup-root": "off" }, 300);
});

Deno.test({
  name: "300 racing requests never start outside the root under allowed-commands (deno task start)",
  // Scoped --allow-run: Deno would fork the server to start each command;
  // setsid and the wrapper shell are granted for the check instead.
  fn: () =>
    race(
      { "allowed-commands": "pwd", ephemeral: "true" },
      300,
      (flags) => spawnServer(flags, {}, { script: "scripts/start.ts" }),
    ),
});

/** Whether commands can run as nobody in a sandbox here (root, setpriv, bwrap). */
const SANDBOX_AS_NOBODY = Deno.uid() === 0 && await new Deno.Command("bwrap", {
  args: ["--ro-bind", "/", "/", "--unshare-pid", "setpriv", "--reuid", "65534", "true"],
  stderr: "null",
}).output().then((o) => o.success, () => false);

Deno.test({
  name: "300 racing requests never start outside the root, sandboxed as a run-as user",
  ignore: !SANDBOX_AS_NOBODY,
  // The user checks the directory as the sandbox shows it, after setpriv.
  fn: () => race({ sandbox: "bwrap", "run-as": "nobody" }, 300, undefined, 65534),
});

Deno.test("launchArgv()'s check refuses a directory that became a symlink after the check", async () => {
  const { root, dir, remove } = await raceRoot();
  try {
    // The state a swap leaves between the server's check and the child's start.
    await Deno.rename(dir, `${root}/dir0`);
    await Deno.rename(`${root}/lnk0`, dir);
    for (
      const [program, args] of [
        ["/bin/sh", ["-c", "pwd -P"]], // merged into the command's own script
        ["/bin/pwd", ["-P"]], // argv: through the wrapper shell
      ] as const
    ) {
      const argv = launchArgv({ program, args, verifyCwd: dir });
      const out = await new Deno.Command(argv[0]!, {
        args: argv.slice(1),
        cwd: "/",
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 126, program);
      assert.equal(new TextDecoder().decode(out.stdout), "", "the command never ran");
      assert.equal(new TextDecoder().decode(out.stderr), `${CWD_CHANGED_MESSAGE}\n`);
    }
    // Back to a directory: the same argv runs, there.
    await Deno.rename(dir, `${root}/lnk0`);
    await Deno.rename(`${root}/dir0`, dir);
    const argv = launchArgv({ program: "/bin/pwd", args: ["-P"], verifyCwd: dir });
    const out = await new Deno.Command(argv[0]!, { args: argv.slice(1), cwd: "/" }).output();
    assert.equal(out.code, 0);
    assert.equal(new TextDecoder().decode(out.stdout), `${dir}\n`);
  } finally {
    await remove();
  }
});

Deno.test("ProcessGroup.spawn() refuses a checked cwd that no longer resolves to itself (-32602)", async () => {
  const { root, dir, remove } = await raceRoot();
  try {
    await Deno.rename(dir, `${root}/dir0`);
    await Deno.rename(`${root}/lnk0`, dir);
    assert.throws(
      () =>
        ProcessGroup.spawn({
          argv: ["pwd"],
          cwd: dir,
          cwdChecked: true,
          env: { PATH: "/usr/bin:/bin" },
          stdin: false,
        }),
      (err: unknown) => {
        const e = err as { code?: number; data?: { field?: string; reason?: string } };
        assert.equal(e.code, -32602);
        assert.deepEqual(e.data, { field: "cwd", reason: "changed during start" });
        return true;
      },
    );
  } finally {
    await remove();
  }
});
