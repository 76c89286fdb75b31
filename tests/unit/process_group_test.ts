import assert from "node:assert/strict";
import { settlesWithin } from "../../lib/async.ts";
import { groupPids, ProcessGroup, signalGroup } from "../../lib/process/process_group.ts";
import { assertGroupGone, eventually, pidsWithMarker } from "../_helpers.ts";

const env = { PATH: "/usr/bin:/bin" };

async function discard(g: ProcessGroup): Promise<void> {
  await Promise.all([g.stdout.cancel(), g.stderr.cancel()]);
}

const moduleUrl = new URL("../../lib/process/process_group.ts", import.meta.url).href;

/** pgrp and session of a live process, and its parent, from /proc. */
function ids(pid: number): { ppid: number; pgrp: number; session: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // After the last ')': state ppid pgrp session ...
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(fields[1]), pgrp: Number(fields[2]), session: Number(fields[3]) };
}

/**
 * Starts `script` in a child Deno under `flags`. From a file: `deno eval`
 * accepts permission flags but runs with all permissions regardless.
 */
async function denoRun(flags: string[], script: string): Promise<Deno.ChildProcess> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/script.js`, script);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...flags, `${dir}/script.js`],
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  child.status.finally(() => Deno.remove(dir, { recursive: true }));
  return child;
}

/** Output of a script that runs to its end, stdout then stderr. */
async function denoOutput(flags: string[], script: string): Promise<{ code: number; out: string }> {
  const child = await denoRun(flags, script);
  await child.stdin.close();
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, out: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

/**
 * Run by a child Deno under the permissions given: spawns `sh -c` with a
 * grandchild, reports how the session was made and what spawn() throws for a
 * missing program and a missing cwd, then, once a line arrives on stdin,
 * sends the group SIGTERM and reports how the leader ended. The parent looks at /proc:
 * Deno 2 wants --allow-all for any read there.
 */
const SESSION_SCRIPT = `
import { ProcessGroup } from "${moduleUrl}";
const env = { PATH: "/usr/bin:/bin" };
function thrown(options) {
  try {
    ProcessGroup.spawn(options);
    return "nothing";
  } catch (err) {
    return err.constructor.name;
  }
}
const g = ProcessGroup.spawn({ argv: ["sh", "-c", "sleep 1000 & wait"], env, stdin: false });
const missing = thrown({ argv: ["no-such-program-cc"], env, stdin: false });
const missingCwd = thrown({ argv: ["sh", "-c", "true"], cwd: "/no/such/dir", env, stdin: false });
console.log(JSON.stringify({ self: Deno.pid, startedBy: g.startedBy, pid: g.pid, pgid: g.pgid, missing, missingCwd }));
await Deno.stdin.readable.getReader().read();
await g.signal("SIGTERM"); // not terminate(): it may read /proc
await Promise.all([g.stdout.cancel(), g.stderr.cancel()]);
console.log((await g.status).signal);
`;

/**
 * Runs {@linkcode SESSION_SCRIPT} under `flags` and checks that the leader
 * and its grandchild share one session and group whose id is the leader's
 * pid, that spawn() threw NotFound for both misses, and that SIGTERM to the
 * group left nothing behind.
 */
async function assertOwnSession(flags: string[], startedBy: string): Promise<void> {
  const child = await denoRun(flags, SESSION_SCRIPT);
  const stderr = new Response(child.stderr).text();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await stdout.read();
    if (done) break;
    text += value;
  }
  const writer = child.stdin.getWriter();
  try {
    // stderr only once the child has ended: awaiting it sooner would deadlock.
    if (!text.includes("\n")) assert.fail(text + (await stderr));
    const report = JSON.parse(text.slice(0, text.indexOf("\n")));
    assert.equal(report.startedBy, startedBy);
    assert.equal(report.pgid, report.pid);
    assert.equal(report.missing, "NotFound");
    assert.equal(report.missingCwd, "NotFound");
    const pid: number = report.pid;
    await eventually(async () => (await groupPids(pid)).length === 2, 5000, "grandchild");
    for (const member of await groupPids(pid)) {
      const ppid = member === pid ? report.self : pid;
      assert.deepEqual(ids(member), { ppid, pgrp: pid, session: pid });
    }
    await writer.write(new TextEncoder().encode("\n"));
    for (;;) {
      const { value, done } = await stdout.read();
      if (done) break;
      text += value;
    }
    if ((await child.status).code !== 0) assert.fail(text + (await stderr));
    assert.equal(text.slice(text.indexOf("\n") + 1).trim(), "SIGTERM");
    await assertGroupGone(pid, 1000);
  } finally {
    await writer.close().catch(() => {}); // ends the child if a check failed
    await child.status;
  }
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

Deno.test("ProcessGroup.spawn() uses setsid under an unscoped --allow-run: pid = pgid = session", async () => {
  await assertOwnSession(["--allow-run", "--allow-read"], "setsid");
});

Deno.test("ProcessGroup.spawn() falls back to detached when it may not read the program", async () => {
  // The service's own flags: --allow-read lists /proc but not /usr/bin.
  await assertOwnSession(["--allow-run", "--allow-read=/proc"], "detached");
});

Deno.test("ProcessGroup.spawn() keeps detached under a scoped --allow-run", async () => {
  // setsid would make Deno check the list against setsid alone. The missing
  // program is listed, so that Deno's answer is NotFound, not NotCapable.
  const flags = ["--allow-run=sh,kill,no-such-program-cc", "--allow-read"];
  await assertOwnSession(flags, "detached");
});

Deno.test("ProcessGroup.spawn() leaves a --deny-run program to Deno, which refuses it", async () => {
  const script = `
    import { ProcessGroup } from "${moduleUrl}";
    try {
      const g = ProcessGroup.spawn({ argv: ["sleep", "0"], env: { PATH: "/usr/bin:/bin" }, stdin: false });
      console.log("spawned by " + g.startedBy);
    } catch (err) {
      console.log(err.constructor.name);
    }
  `;
  const { out } = await denoOutput(["--allow-run", "--deny-run=sleep", "--allow-read"], script);
  assert.equal(out.trim(), "NotCapable");
});

Deno.test("ProcessGroup.spawn() resolves programs as Deno does, and throws as it did", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/a`);
    await Deno.mkdir(`${dir}/b`);
    await Deno.mkdir(`${dir}/a/prog.d`);
    const script = (name: string) => `#!/bin/sh\necho ${name} "$0" "$@"\n`;
    await Deno.writeTextFile(`${dir}/a/prog`, script("a"), { mode: 0o644 }); // not executable
    await Deno.writeTextFile(`${dir}/b/prog`, script("b"), { mode: 0o755 });
    await Deno.symlink("prog.d", `${dir}/a/dirprog`);
    const run = async (argv: string[], options: { cwd?: string; path?: string } = {}) => {
      const g = ProcessGroup.spawn({
        argv,
        cwd: options.cwd,
        env: { PATH: options.path ?? "/usr/bin:/bin" },
        stdin: false,
      });
      const text = await new Response(g.stdout).text();
      await g.stderr.cancel();
      assert.equal((await g.status).code, 0);
      return { text, startedBy: g.startedBy };
    };
    // PATH skips what cannot run, as Deno's lookup does; argv[0] is the path found.
    assert.deepEqual(await run(["prog", "x"], { path: `${dir}/a:${dir}/b` }), {
      text: `b ${dir}/b/prog x\n`,
      startedBy: "setsid",
    });
    // A relative path is relative to the requested cwd, not the server's.
    assert.notEqual(Deno.cwd(), dir);
    assert.deepEqual(await run(["./b/prog"], { cwd: dir }), {
      text: `b ${dir}/b/prog\n`,
      startedBy: "setsid",
    });
    // A relative PATH entry is Deno's to resolve.
    assert.equal((await run(["true"], { path: "bin:/usr/bin:/bin" })).startedBy, "detached");

    const spawn = (argv: string[], cwd?: string) => () =>
      ProcessGroup.spawn({ argv, cwd, env, stdin: false });
    assert.throws(spawn(["no-such-program-cc"]), Deno.errors.NotFound);
    assert.throws(spawn([`${dir}/b/missing`]), Deno.errors.NotFound);
    assert.throws(spawn(["./missing"], dir), Deno.errors.NotFound);
    assert.throws(spawn(["./prog"], dir), Deno.errors.NotFound); // it is in b/, not in dir
    assert.throws(spawn(["true"], `${dir}/missing`), Deno.errors.NotFound);
    assert.throws(spawn([`${dir}/a/prog`]), Deno.errors.PermissionDenied);
    assert.throws(spawn([`${dir}/a/dirprog`]), Deno.errors.PermissionDenied);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ProcessGroup signals reach a command spawned a moment ago", async () => {
  // spawn() returns once setsid is exec'd, before its setsid() call: the
  // group does not exist yet, and a signal must still reach the command.
  for (let i = 0; i < 20; i++) {
    const g = ProcessGroup.spawn({
      argv: ["sh", "-c", "sleep 1000 & sleep 1000 & wait"],
      env,
      stdin: false,
    });
    if (i % 2 === 1) {
      assert.equal(await g.signal("SIGSTOP"), true);
      assert.equal(await g.signal("SIGCONT"), true);
    }
    await g.terminate(2000);
    await discard(g);
    assert.equal((await g.status).signal, "SIGTERM");
    await assertGroupGone(g.pgid, 1000);
  }
});

Deno.test("ProcessGroup.spawn() leaves no group member outside the session", async () => {
  const g = ProcessGroup.spawn({ argv: ["sh", "-c", "sleep 1000 & wait"], env, stdin: false });
  await eventually(async () => (await groupPids(g.pgid)).length === 2, 5000, "children");
  for (const pid of await groupPids(g.pgid)) {
    const ppid = pid === g.pid ? Deno.pid : g.pid;
    assert.deepEqual(ids(pid), { ppid, pgrp: g.pid, session: g.pid });
  }
  await g.terminate(2000);
  await discard(g);
  await g.status;
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
    import { ProcessGroup } from "${moduleUrl}";
    const g = ProcessGroup.spawn({ argv: ["sleep", "1000"], env: { PATH: "/usr/bin:/bin" }, stdin: false });
    let refused = false;
    try {
      Deno.kill(-g.pgid, "SIGCONT");
    } catch (err) {
      refused = err instanceof Deno.errors.NotCapable;
    }
    await g.terminate(2000);
    await Promise.all([g.stdout.cancel(), g.stderr.cancel()]);
    console.log(refused ? "refused" : "allowed", (await g.status).signal);
  `;
  const { code, out } = await denoOutput(["--allow-run=sleep,kill", "--allow-read"], script);
  assert.equal(code, 0, out);
  assert.equal(out.trim(), "refused SIGTERM");
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

Deno.test("ProcessGroup.terminate() lets timers run while a member outlives SIGTERM", async () => {
  // The leader dies on SIGTERM, its child ignores it: the wait for SIGKILL
  // must be made of timers, not of awaits that never give the loop a turn.
  // Without /proc, as under deno task start: a /proc read there is no op
  // that yields, it throws at once.
  const script = `
    import { ProcessGroup } from "${moduleUrl}";
    const g = ProcessGroup.spawn({
      argv: ["sh", "-c", "(trap '' TERM; echo ready; exec sleep 1000) & wait"],
      env: { PATH: "/usr/bin:/bin" }, stdin: false,
    });
    const reader = g.stdout.getReader();
    await reader.read(); // "ready": the trap is installed
    reader.releaseLock();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    let atExit = -1;
    g.status.then(() => atExit = ticks);
    await g.terminate(300);
    clearInterval(ticker);
    await Promise.all([g.stdout.cancel(), g.stderr.cancel()]);
    console.log(JSON.stringify({ pgid: g.pgid, atExit, ticks, signal: (await g.status).signal }));
  `;
  const { code, out } = await denoOutput(["--allow-run", "--allow-read"], script);
  assert.equal(code, 0, out);
  const report = JSON.parse(out);
  assert.equal(report.signal, "SIGTERM");
  assert.ok(report.atExit >= 0, out);
  assert.ok(
    report.ticks > report.atExit,
    `no timer ran between the leader's exit and SIGKILL: ${out}`,
  );
  await assertGroupGone(report.pgid, 1000);
});

/**
 * A group left holding only a zombie that nobody will reap while the test
 * runs: `true` exits, and its parent has moved to a session of its own
 * (setsid) and sleeps. The group can still be signalled, yet nothing in it
 * lives; prints the pgid, then the marker process's pid once it has moved.
 */
function zombieGroupArgv(marker: string): string[] {
  return ["sh", "-c", `(true & exec setsid sleep ${marker}) & wait`];
}

/** Pid of the `sleep <marker>` that has left group `pgid`, once it has. */
async function escapedSleeper(marker: string, pgid: number): Promise<number> {
  let pid = 0;
  await eventually(
    async () => {
      for (const p of await pidsWithMarker(marker)) {
        if (ids(p).pgrp !== pgid) pid = p;
      }
      return pid !== 0;
    },
    5000,
    "the sleeper to leave the group",
  );
  return pid;
}

/** Whether any process (zombies included) is still in group `pgid`. */
function signalable(pgid: number): boolean {
  try {
    Deno.kill(-pgid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

Deno.test("ProcessGroup.terminate() ends once only zombies are left (census from /proc)", async () => {
  const marker = `1000.${Date.now() % 100000}1`;
  const g = ProcessGroup.spawn({ argv: zombieGroupArgv(marker), env, stdin: false });
  const sleeper = await escapedSleeper(marker, g.pgid);
  try {
    await eventually(async () => (await groupPids(g.pgid)).length === 1, 5000, "the zombie");
    // A grace longer than the test may take: ending at all means the census said so.
    const terminating = g.terminate(600_000);
    const ended = await settlesWithin(terminating, 20_000);
    if (ended) await terminating; // a rejection fails the test
    await discard(g);
    assert.equal(ended, true, "terminate() waited for the zombie");
    assert.ok(signalable(g.pgid), "the zombie should still be there");
    assert.equal((await g.status).signal, "SIGTERM");
  } finally {
    Deno.kill(sleeper, "SIGKILL");
  }
  await eventually(() => !signalable(g.pgid), 5000, "the zombie to be reaped");
});

Deno.test("ProcessGroup.terminate() ends once only zombies are left (census from ps, no /proc)", async () => {
  // The service's own situation under deno task start: Deno refuses /proc.
  const marker = `1000.${Date.now() % 100000}2`;
  const script = `
    import { ProcessGroup } from "${moduleUrl}";
    const g = ProcessGroup.spawn({ argv: ${JSON.stringify(zombieGroupArgv(marker))},
      env: { PATH: "/usr/bin:/bin" }, stdin: false });
    console.log(g.pgid);
    await Deno.stdin.readable.getReader().read();
    let timer;
    const ended = await Promise.race([
      g.terminate(600_000).then(() => "ended"),
      new Promise((resolve) => timer = setTimeout(() => resolve("waited"), 20_000)),
    ]);
    clearTimeout(timer);
    await Promise.all([g.stdout.cancel(), g.stderr.cancel()]);
    console.log(ended, (await g.status).signal);
  `;
  const child = await denoRun(["--allow-run", "--allow-read"], script);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  let sleeper = 0;
  try {
    const first = await lines.read();
    const pgid = Number(first.value);
    assert.ok(pgid > 0, String(first.value));
    sleeper = await escapedSleeper(marker, pgid);
    await eventually(async () => (await groupPids(pgid)).length === 1, 5000, "the zombie");
    await writer.write(new TextEncoder().encode("\n"));
    let text = "";
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      text += value;
    }
    assert.equal(text.trim(), "ended SIGTERM");
    assert.ok(signalable(pgid), "the zombie should still be there");
  } finally {
    if (sleeper !== 0) Deno.kill(sleeper, "SIGKILL");
    await writer.close().catch(() => {});
    await child.stderr.cancel();
    await child.status;
  }
});
