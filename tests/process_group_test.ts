import assert from "node:assert/strict";
import { groupPids, ProcessGroup, signalGroup } from "../lib/process_group.ts";
import { assertGroupGone, eventually } from "./_helpers.ts";

const env = { PATH: "/usr/bin:/bin" };

async function discard(g: ProcessGroup): Promise<void> {
  await Promise.all([g.stdout.cancel(), g.stderr.cancel()]);
}

Deno.test("ProcessGroup.spawn() makes the command a group leader with an explicit env", async () => {
  const g = ProcessGroup.spawn({ argv: ["sh", "-c", 'echo "$$:$HOME"'], env, stdin: false });
  assert.equal(g.pgid, g.pid);
  const text = await new Response(g.stdout).text();
  await g.stderr.cancel();
  assert.equal(text, `${g.pid}:\n`); // HOME unset: nothing of the parent's env leaks
  assert.equal((await g.status).code, 0);
  assert.ok(g.exited);
});

Deno.test("ProcessGroup.terminate() ends grandchildren as well as the leader", async () => {
  const g = ProcessGroup.spawn({
    argv: ["sh", "-c", "sleep 1000 & sleep 1000 & wait"],
    env,
    stdin: false,
  });
  await eventually(async () => (await groupPids(g.pgid)).length === 3, 5000, "children");
  await g.terminate(2000);
  await discard(g);
  assert.equal((await g.status).signal, "SIGTERM");
  await assertGroupGone(g.pgid, 1000);
});

Deno.test("ProcessGroup.terminate() escalates to SIGKILL when SIGTERM is ignored", async () => {
  const g = ProcessGroup.spawn({
    argv: ["sh", "-c", "trap '' TERM; echo ready; sleep 1000 & wait"],
    env,
    stdin: false,
  });
  const reader = g.stdout.getReader();
  await reader.read(); // "ready": the trap is installed
  reader.releaseLock();
  await g.terminate(200);
  await discard(g);
  assert.equal((await g.status).signal, "SIGKILL");
  await assertGroupGone(g.pgid, 1000);
});

Deno.test("ProcessGroup.terminate() resumes a stopped group so it can die", async () => {
  const g = ProcessGroup.spawn({ argv: ["sleep", "1000"], env, stdin: false });
  await g.signal("SIGSTOP");
  await g.terminate(2000);
  await discard(g);
  assert.equal((await g.status).signal, "SIGTERM");
});

Deno.test("signalGroup() reports a vanished group as false", async () => {
  const g = ProcessGroup.spawn({ argv: ["true"], env, stdin: false });
  await discard(g);
  await g.status;
  assert.equal(await signalGroup(g.pgid, "SIGCONT"), false);
});

Deno.test("signalGroup() works under a scoped --allow-run by running kill", async () => {
  // A child Deno with --allow-run=sleep,kill cannot use Deno.kill(-pgid).
  const script = `
    import { ProcessGroup } from "${new URL("../lib/process_group.ts", import.meta.url)}";
    const g = ProcessGroup.spawn({ argv: ["sleep", "1000"], env: { PATH: "/usr/bin:/bin" }, stdin: false });
    await g.terminate(2000);
    await Promise.all([g.stdout.cancel(), g.stderr.cancel()]);
    console.log((await g.status).signal);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--allow-run=sleep,kill", "--allow-read", script],
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /SIGTERM/);
});

Deno.test("groupPids() lists live members of a group and ignores others", async () => {
  const g = ProcessGroup.spawn({ argv: ["sh", "-c", "sleep 1000 & wait"], env, stdin: false });
  await eventually(async () => (await groupPids(g.pgid)).length === 2, 5000, "two pids");
  assert.ok((await groupPids(g.pgid)).includes(g.pid));
  assert.equal((await groupPids(g.pgid)).includes(Deno.pid), false);
  await g.terminate(1000);
  await discard(g);
  await g.status;
});
