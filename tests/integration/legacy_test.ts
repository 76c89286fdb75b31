import assert from "node:assert/strict";
import { groupPids } from "../../lib/process/process_group.ts";
import {
  assertGroupGone,
  cancelStubbornGroup,
  eventually,
  TestClient,
  withServer,
} from "../_helpers.ts";

Deno.test("connected is the first message, with session id, version and capabilities", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.connect(server.wsUrl);
    const first = await client.next();
    assert.equal(first.jsonrpc, "2.0");
    assert.equal(first.method, "connected");
    assert.match(first.params.session_id, /^[0-9a-f-]{36}$/);
    assert.equal(first.params.version, "1.0.0");
    assert.deepEqual(first.params.capabilities, ["execute", "control", "stream"]);
    await client.close();
  });
});

Deno.test("execute streams stdout and stderr and ends with one process.completed", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const run = await client.run({ command: "echo out; echo err >&2; exit 0" });
    assert.equal(run.result.status, "started");
    assert.equal(run.result.pid, run.result.pgid);
    assert.equal(typeof run.result.execution_id, "string");
    assert.equal(run.result.timeout_source, "default");
    assert.equal(run.events[0].method, "process.started");
    assert.deepEqual(run.events[0].params, {
      status: "started",
      pid: run.result.pid,
      pgid: run.result.pgid,
      exit_code: null,
      error: null,
      execution_id: run.result.execution_id,
    });
    assert.equal(run.stdout, "out\n");
    assert.equal(run.stderr, "err\n");
    const completed = run.events.filter((e) => e.method === "process.completed");
    assert.equal(completed.length, 1);
    assert.equal(run.completed.status, "completed");
    assert.equal(run.completed.exit_code, 0);
    assert.equal(run.completed.error, null);
    assert.equal(typeof run.completed.execution_time, "number");
    const output = run.events.find((e) => e.method === "process.output");
    assert.deepEqual(Object.keys(output.params).sort(), [
      "bytes",
      "chunk_index",
      "data",
      "execution_id",
      "seq",
      "total_chunks",
      "truncated",
      "type",
    ]);
    // Nothing arrives after process.completed: a ping answered later comes alone.
    assert.deepEqual((await client.request("ping")).result, {});
    assert.deepEqual(client.pending(), []);
    await client.close();
  });
});

Deno.test("a non-zero exit is failed with its code; a signal gives exit_code null and signal", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const failed = await client.run({ command: "exit 7" });
    assert.equal(failed.completed.status, "failed");
    assert.equal(failed.completed.exit_code, 7);
    assert.equal("signal" in failed.completed, false);
    const killed = await client.run({ command: "kill -KILL $$" });
    assert.equal(killed.completed.status, "failed");
    assert.equal(killed.completed.exit_code, null);
    assert.equal(killed.completed.signal, "SIGKILL");
    await client.close();
  });
});

Deno.test("ids are echoed unchanged: strings, numbers, and unknown params are ignored", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const a = await client.request("ping", undefined, "abc-1");
    assert.deepEqual(a, { jsonrpc: "2.0", result: {}, id: "abc-1" });
    const b = await client.request("ping", {}, 42.5);
    assert.equal(b.id, 42.5);
    const run = await client.request("execute", {
      command: "true",
      id: "client-side-id",
      path: "/x",
      model: "m",
    });
    assert.equal(run.result.status, "started");
    await client.event("completed");
    await client.close();
  });
});

Deno.test("timeout accepts a number or a numeric string; null gets an estimated limit", async () => {
  await withServer(
    { "timeout-trivial": "7", "timeout-medium": "123", "min-auto-timeout": "1" },
    async (server) => {
      const client = await TestClient.open(server);
      for (const [timeout, expected] of [[5, 5], ["2.5", 2.5]] as const) {
        const run = await client.run({ command: "true", timeout });
        assert.equal(run.result.timeout, expected);
        assert.equal(run.result.timeout_source, "request");
      }
      // No history yet: the default for the command's class (`true` is trivial, a
      // git clone medium), from the configured table.
      const trivial = await client.run({ command: "true", timeout: null });
      assert.deepEqual([trivial.result.timeout, trivial.result.timeout_source], [7, "default"]);
      const medium = await client.request("execute", { command: "git clone /nonexistent/x y" });
      assert.deepEqual([medium.result.timeout, medium.result.timeout_source], [123, "default"]);
      await client.event("completed");
      await client.close();
    },
  );
});

Deno.test("PAUSE, RESUME and CANCEL act on the whole group, replies before notifications", async () => {
  await withServer({ "kill-grace": "1" }, async (server) => {
    const client = await TestClient.open(server);
    const started = await client.request("execute", {
      command:
        "sleep 1000 & sleep 1000 & for i in 1 2 3 4 5 6 7 8 9; do echo tick; sleep 0.2; done; wait",
    });
    const id = started.result.execution_id;
    await client.event("started", id);
    await client.event("output", id);

    client.send({ jsonrpc: "2.0", method: "control", params: { type: "PAUSE" }, id: "p" });
    const pauseReply = client.next((m) => m.id === "p");
    const paused = client.event("paused", id);
    assert.deepEqual((await pauseReply).result, { status: "paused" });
    assert.equal((await paused).params.execution_id, id);
    // Every process of the group stops.
    const pids = await groupPids(started.result.pgid);
    assert.ok(pids.length >= 3, `expected sh and two sleeps, got ${pids}`);
    // Re-list each time: a process that exits (or is forked) meanwhile must not break the check.
    const states = async () =>
      (await Promise.all((await groupPids(started.result.pgid)).map(async (pid) => {
        try {
          const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
          return stat.slice(stat.lastIndexOf(")") + 2)[0];
        } catch {
          return "gone";
        }
      }))).filter((s) => s !== "gone");
    let seen: (string | undefined)[] = [];
    await eventually(
      // D: a shell waiting in the kernel for a child that was stopped before
      // it could exec (vfork); it runs no code of its own until resumed.
      async () => (seen = await states()).every((s) => s === "T" || s === "D"),
      5000,
      "all stopped",
    ).catch((e) => {
      throw new Error(`${e.message}: states ${seen.join(",")}`);
    });
    // And stays stopped: no new output while paused.
    const outputs = () => client.received.filter((t) => t.includes('"process.output"')).length;
    const before = outputs();
    // The quiet period is what is tested: no event can say "nothing happened".
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(outputs(), before);
    // Paused twice: same answer, no second notification.
    assert.deepEqual((await client.request("control", { type: "PAUSE" })).result, {
      status: "paused",
    });

    const resume = await client.request("control", { type: "RESUME", execution_id: id });
    assert.deepEqual(resume.result, { status: "resumed" });
    await client.event("resumed", id);

    client.send({ jsonrpc: "2.0", method: "control", params: { type: "CANCEL" }, id: "c" });
    const order: string[] = [];
    for (;;) {
      const m = await client.next((x) => x.id === "c" || x.params?.execution_id === id);
      if (m.method === "process.output") continue;
      order.push(m.id === "c" ? "reply" : m.method);
      if (m.method === "process.completed") {
        assert.equal(m.params.status, "canceled");
        break;
      }
    }
    assert.deepEqual(order, ["reply", "process.canceled", "process.completed"]);
    assert.deepEqual(
      client.received.filter((t) => t.includes('"process.paused"')).length,
      1,
    );
    await assertGroupGone(started.result.pgid);
    await client.close();
  });
});

Deno.test("CANCEL of a paused run kills it (SIGCONT is sent so it can die)", async () => {
  await withServer({ "kill-grace": "1" }, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", { command: "sleep 1000" });
    await client.event("started");
    await client.request("control", { type: "PAUSE" });
    await client.request("control", { type: "CANCEL" });
    const done = await client.event("completed");
    assert.equal(done.params.status, "canceled");
    await assertGroupGone(r.result.pgid);
    await client.close();
  });
});

Deno.test("CANCEL escalates to SIGKILL for a group that ignores SIGTERM", async () => {
  await withServer({ "kill-grace": "0.3" }, async (server) => {
    const client = await TestClient.open(server);
    await cancelStubbornGroup(client);
    await client.close();
  });
});

Deno.test("a time limit ends the run with status timeout and escalation", async () => {
  await withServer({ "kill-grace": "0.3" }, async (server) => {
    const client = await TestClient.open(server);
    const run = await client.run({ command: "trap '' TERM; sleep 1000 & wait", timeout: 0.3 });
    assert.equal(run.completed.status, "timeout");
    assert.match(run.completed.error, /timed out after 0.3s/);
    await assertGroupGone(run.result.pgid);
    await client.close();
  });
});

Deno.test("time spent paused does not count against the timeout", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", { command: "sleep 0.6; echo finished", timeout: 1 });
    await client.event("started");
    await client.request("control", { type: "PAUSE" });
    await new Promise((res) => setTimeout(res, 1500)); // longer than the whole limit
    await client.request("control", { type: "RESUME" });
    const done = await client.event("completed", r.result.execution_id);
    assert.equal(done.params.status, "completed");
    assert.ok(done.params.execution_time >= 1.5);
    await client.close();
  });
});

Deno.test("idle_timeout ends a run that stays silent, not one that keeps talking", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const talking = await client.run({
      command: "for i in 1 2 3 4 5 6; do echo $i; sleep 0.1; done",
      idle_timeout: 0.4,
    });
    assert.equal(talking.completed.status, "completed");
    const silent = await client.run({ command: "echo hi; sleep 1000", idle_timeout: 0.3 });
    assert.equal(silent.completed.status, "timeout");
    assert.match(silent.completed.error, /no output for 0.3s/);
    await client.close();
  });
});

Deno.test("args runs without a shell; cwd, env and stdin are applied", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const noShell = await client.run({ args: ["echo", "$HOME", "a;b"] });
    assert.equal(noShell.stdout, "$HOME a;b\n");
    const dir = await Deno.makeTempDir();
    try {
      const cwd = await client.run({ command: "pwd", cwd: dir });
      assert.equal(cwd.stdout, (await Deno.realPath(dir)) + "\n");
    } finally {
      await Deno.remove(dir);
    }
    const env = await client.run({ command: 'echo "$FOO"', env: { FOO: "bar baz" } });
    assert.equal(env.stdout, "bar baz\n");
    const stdin = await client.run({ command: "tr a-z A-Z", stdin: "hello\nworld" });
    assert.equal(stdin.stdout, "HELLO\nWORLD");
    // Without stdin the child's stdin is closed: cat ends at once.
    const closed = await client.run({ command: "cat; echo done", timeout: 5 });
    assert.equal(closed.stdout, "done\n");
    await client.close();
  });
});

Deno.test("the child environment is built, never the server's own", async () => {
  Deno.env.set("CC_EXECUTOR_TEST_SECRET", "s3cret");
  try {
    await withServer({}, async (server) => {
      const client = await TestClient.open(server);
      const run = await client.run({ args: ["env"] });
      const names = run.stdout.trim().split("\n").map((l: string) => l.split("=")[0]).sort();
      assert.deepEqual(names, [
        "DEBIAN_FRONTEND",
        "GIT_PAGER",
        "GIT_TERMINAL_PROMPT",
        "HOME",
        "LANG",
        "PAGER",
        "PATH",
        "PWD",
        "PYTHONUNBUFFERED",
        "TERM",
      ]);
      assert.ok(!run.stdout.includes("s3cret"));
      await client.close();
    });
  } finally {
    Deno.env.delete("CC_EXECUTOR_TEST_SECRET");
  }
});

Deno.test("framing line sends exactly one line per message", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const run = await client.run({ command: "printf 'a\\nbb\\nccc\\n'", framing: "line" });
    const data = run.events.filter((e) => e.method === "process.output").map((e) => e.params.data);
    assert.deepEqual(data, ["a\n", "bb\n", "ccc\n"]);
    await client.close();
  });
});

Deno.test("a line over the line limit is split into truncated pieces with chunk_index", async () => {
  await withServer({ "line-limit": "1000", "chunk-size": "500" }, async (server) => {
    const client = await TestClient.open(server);
    const run = await client.run({ command: "head -c 2500 /dev/zero | tr '\\0' x; echo" });
    const pieces = run.events.filter((e) => e.method === "process.output").map((e) => e.params);
    assert.equal(run.stdout, "x".repeat(2500) + "\n");
    assert.deepEqual(pieces.map((p) => [p.truncated, p.chunk_index]), [
      [true, 0],
      [true, 1],
      [false, 2],
    ]);
    assert.equal(pieces.at(-1).total_chunks, 3);
    await client.close();
  });
});

Deno.test("a second execute while one runs is refused with -32602; the first is unharmed", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const first = await client.request("execute", { command: "sleep 0.3; echo first" });
    const second = await client.request("execute", { command: "echo second" });
    assert.deepEqual(second.error, {
      code: -32602,
      message: "A process is already running",
      data: null,
    });
    const done = await client.event("completed", first.result.execution_id);
    assert.equal(done.params.status, "completed");
    // Right after completed, a new execute is accepted.
    const third = await client.run({ command: "echo third" });
    assert.equal(third.stdout, "third\n");
    await client.close();
  });
});

Deno.test("several executions per session when allowed; control picks by execution_id", async () => {
  await withServer({ "max-executions-per-session": "3" }, async (server) => {
    const client = await TestClient.open(server);
    const a = await client.request("execute", { command: "sleep 1000" });
    const b = await client.request("execute", { command: "sleep 0.2; echo b" });
    const cancel = await client.request("control", {
      type: "CANCEL",
      execution_id: a.result.execution_id,
    });
    assert.deepEqual(cancel.result, { status: "canceled" });
    const doneA = await client.event("completed", a.result.execution_id);
    const doneB = await client.event("completed", b.result.execution_id);
    assert.equal(doneA.params.status, "canceled");
    assert.equal(doneB.params.status, "completed");
    const unknown = await client.request("control", { type: "CANCEL", execution_id: "nope" });
    assert.equal(unknown.error.code, -32002);
    await client.close();
  });
});

Deno.test("hook_status answers truthfully; ping is answered; pong and notifications are not", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const hooks = await client.request("hook_status");
    assert.deepEqual(Object.keys(hooks.result).sort(), [
      "config_path",
      "enabled",
      "hooks_configured",
      "parallel",
      "timeout",
    ]);
    client.send({ jsonrpc: "2.0", method: "pong", params: {}, id: 9 });
    client.send({ jsonrpc: "2.0", method: "ping" });
    client.send({ jsonrpc: "2.0", method: "no_such_method" });
    // A notification is acted on: this one starts a run whose events do arrive.
    client.send({ jsonrpc: "2.0", method: "execute", params: { command: "echo quiet" } });
    const done = await client.event("completed");
    assert.equal(done.params.status, "completed");
    const replies = client.received.filter((t) => {
      const m = JSON.parse(t);
      return "result" in m || "error" in m;
    });
    assert.equal(replies.length, 1); // only hook_status
    await client.close();
  });
});
