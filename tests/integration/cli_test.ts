/**
 * The command-line client against a real server, run as a user runs it:
 * exit statuses, stdout and stderr apart and byte-exact, detach and attach,
 * ps, logs, cancel, signal, estimate, health, keys, stdin, a reader that
 * goes away, Ctrl-C without a terminal, and a connection cut mid-run
 * (a TCP proxy the test stops and starts again).
 *
 * @module
 */
import assert from "node:assert/strict";
import { assertGroupGone, pidsWithMarker, testServer, withServer } from "../_helpers.ts";
import {
  cli,
  CLI_MAIN,
  CLI_PERMISSIONS,
  CliProcess,
  spawnCli,
  startDetached,
  withProxy,
} from "../_cli.ts";
import { loadConfig } from "../../lib/config/config.ts";
import { startServer } from "../../main.ts";

/** Random bytes, invalid UTF-8 among them, in a file a remote `cat` can read. */
async function randomFile(bytes: number): Promise<{ path: string; data: Uint8Array }> {
  const data = new Uint8Array(bytes);
  for (let off = 0; off < bytes; off += 65536) {
    crypto.getRandomValues(data.subarray(off, Math.min(bytes, off + 65536)));
  }
  const path = await Deno.makeTempFile({ prefix: "cc-cli-" });
  await Deno.writeFile(path, data);
  return { path, data };
}

Deno.test("cli run: the remote exit code, stdout and stderr apart", async () => {
  await withServer({}, async (server) => {
    const r = await cli(server.wsUrl, [
      "run",
      "--",
      "sh",
      "-c",
      "echo out; echo err >&2; echo out2; exit 7",
    ]);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.text, "out\nout2\n");
    assert.equal(r.stderr, "err\n");
    const ok = await cli(server.wsUrl, ["run", "--shell", "printf 'a b' | tr ' ' _"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.text, "a_b");
  });
});

Deno.test("cli run: a signal is 128+N, a time limit 124, no server 255", async () => {
  await withServer({}, async (server) => {
    const term = await cli(server.wsUrl, ["run", "--", "sh", "-c", "kill -TERM $$"]);
    assert.equal(term.code, 143, term.stderr);
    const limit = await cli(server.wsUrl, ["run", "--timeout", "0.5", "--", "sleep", "30"]);
    assert.equal(limit.code, 124, limit.stderr);
    assert.match(limit.stderr, /timeout/);
  });
  // A port nothing listens on.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const none = await cli(`ws://127.0.0.1:${port}/ws/mcp`, ["run", "--", "true"]);
  assert.equal(none.code, 255);
  assert.match(none.stderr, /cannot connect/);
  const refused = await cli(`ws://127.0.0.1:${port}/ws/mcp`, ["ps"]);
  assert.equal(refused.code, 255);
});

Deno.test("cli run: binary output and stdin byte for byte", async () => {
  const { path, data } = await randomFile(300_000);
  try {
    await withServer({}, async (server) => {
      const out = await cli(server.wsUrl, ["run", "--", "cat", path]);
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(out.stdout, data);
      // --stdin: the same bytes through the remote's stdin and back.
      const p = new CliProcess(["run", "--stdin", "--", "cat"], { url: server.wsUrl, stdin: true });
      const writer = p.child.stdin.getWriter();
      await writer.write(data);
      await writer.close();
      const back = await p.done();
      assert.equal(back.code, 0, back.stderr);
      assert.deepEqual(back.stdout, data);
    });
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("cli: run --detach prints the id; attach replays and exits with the run's code; ps and logs", async () => {
  await withServer({}, async (server) => {
    const id = await startDetached(
      server.wsUrl,
      "echo one; echo two >&2; read x < /dev/null; sleep 0.5; echo three; exit 3",
    );
    assert.match(id, /^[0-9a-f-]{36}$/);
    const ps = await cli(server.wsUrl, ["ps"]);
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.text, new RegExp(`^${id} +running`, "m"));
    const a = await cli(server.wsUrl, ["attach", id]);
    assert.equal(a.code, 3, a.stderr);
    assert.equal(a.text, "one\nthree\n");
    assert.equal(a.stderr, "two\n");
    // From an offset: "one\n" is 4 bytes, "two\n" the next 4.
    const from = await cli(server.wsUrl, ["attach", id, "--from", "8"]);
    assert.equal(from.code, 3);
    assert.equal(from.text, "three\n");
    assert.equal(from.stderr, "");
    const logs = await cli(server.wsUrl, ["logs", id, "--tail", "6"]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.text, "three\n");
    const all = await cli(server.wsUrl, ["ps", "--all", "--json"]);
    const entries = all.text.trim().split("\n").map((l) => JSON.parse(l));
    const mine = entries.find((e) => e.execution_id === id);
    assert.equal(mine.status, "failed");
    assert.equal(mine.exit_code, 3);
    // Only running ones without --all.
    assert.doesNotMatch((await cli(server.wsUrl, ["ps"])).text, new RegExp(id));
    const unknown = await cli(server.wsUrl, ["attach", "no-such-run"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No execution/);
  });
});

Deno.test("cli: cancel and signal reach a detached run; its follower sees how it ended", async () => {
  await withServer({}, async (server) => {
    const marker = `cc-cli-${crypto.randomUUID()}`;
    const d = await cli(server.wsUrl, [
      "run",
      "--detach",
      "--shell",
      `trap 'echo usr1; exit 9' USR1; echo ready; while :; do sleep 0.05; done # ${marker}`,
    ]);
    const id = d.text.trim();
    const follower = new CliProcess(["attach", id], { url: server.wsUrl });
    await follower.until((p) => new TextDecoder().decode(p.stdout).includes("ready"));
    const s = await cli(server.wsUrl, ["signal", id, "USR1"]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.text, /SIGUSR1/);
    const f = await follower.done();
    assert.equal(f.code, 9, f.stderr);
    assert.equal(f.text, "ready\nusr1\n");
    const d2 = await cli(server.wsUrl, ["run", "--detach", "--", "sleep", "30"]);
    const id2 = d2.text.trim();
    const watcher = new CliProcess(["attach", id2, "--json"], { url: server.wsUrl });
    await watcher.until((p) => new TextDecoder().decode(p.stdout).includes('"event":"attach"'));
    const c = await cli(server.wsUrl, ["cancel", id2]);
    assert.equal(c.code, 0, c.stderr);
    const w = await watcher.done();
    assert.equal(w.code, 143, w.stderr);
    const events = w.text.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(events.at(-1).event, "exit");
    assert.equal(events.at(-2).event, "completed");
    assert.equal(events.at(-2).status, "canceled");
    const bad = await cli(server.wsUrl, ["signal", id2, "NOPE"]);
    assert.equal(bad.code, 1);
  });
});

Deno.test("cli: SIGINT without a terminal interrupts the remote group and exits 130", async () => {
  await withServer({}, async (server) => {
    const p = new CliProcess([
      "run",
      "--",
      "sh",
      "-c",
      "trap 'echo interrupted; exit 5' INT; echo ready; while :; do sleep 0.05; done",
    ], { url: server.wsUrl });
    await p.until((c) => new TextDecoder().decode(c.stdout).includes("ready"));
    p.child.kill("SIGINT");
    const r = await p.done();
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.text, "ready\ninterrupted\n");
    assert.match(r.stderr, /interrupting/);
    // A run that ignores SIGINT: the second SIGINT within 2 s cancels it.
    const marker = `cc-cli-${crypto.randomUUID()}`;
    const q = new CliProcess([
      "run",
      "--shell",
      `trap '' INT; echo ready; while :; do sleep 0.05; done # ${marker}`,
    ], { url: server.wsUrl });
    await q.until((c) => new TextDecoder().decode(c.stdout).includes("ready"));
    q.child.kill("SIGINT");
    await q.until((c) => c.stderr.includes("interrupting"));
    // Past the window in which a repeated signal counts as the same press.
    await new Promise((r) => setTimeout(r, 300));
    q.child.kill("SIGINT");
    const rq = await q.done();
    assert.equal(rq.code, 130, rq.stderr);
    assert.match(rq.stderr, /canceling/);
    assert.deepEqual(await pidsWithMarker(marker), []);
  });
});

Deno.test("cli: SIGTERM to the CLI cancels the run; a reader that goes away cancels it too", async () => {
  await withServer({}, async (server) => {
    const p = new CliProcess(["run", "--", "sh", "-c", "echo ready; exec sleep 30"], {
      url: server.wsUrl,
    });
    await p.until((c) => new TextDecoder().decode(c.stdout).includes("ready"));
    const pgid = server.registry.running()[0]!.pgid;
    p.child.kill("SIGTERM");
    const r = await p.done();
    assert.equal(r.code, 143, r.stderr);
    await assertGroupGone(pgid);
    // `| head -c 1`: once the reader is gone, `yes` on the server is ended.
    const yes = spawnCli(server.wsUrl, ["run", "--", "yes"]);
    const reader = yes.stdout.getReader();
    assert.equal((await reader.read()).done, false);
    const ypgid = server.registry.running().find((e) => e.spec.argv[0] === "yes")!.pgid;
    await reader.cancel();
    const status = await yes.status;
    assert.equal(status.code, 141, "128 + SIGPIPE, as a local producer");
    await assertGroupGone(ypgid);
  });
});

Deno.test("cli: a connection cut mid-run is made again and the output stays byte-exact", async () => {
  // 256 KiB retained, nothing spilled: the run must wait for its CLI while the connection is
  // down, or most of its output would be gone.
  const flags = { "output-retention": "262144", "output-spill": "false" };
  await withProxy(flags, async (_server, proxy, url) => {
    // 1.3 MB, line by line, written over a second or two.
    const script = "z=$(printf %092d 0); i=0; while [ $i -lt 13000 ]; do " +
      'printf "%05d %s\\n" $i "$z"; i=$((i+1)); ' +
      "case $i in *000) sleep 0.1;; esac; done; echo tail >&2; exit 4";
    const p = new CliProcess(["run", "--shell", script], {
      url: url,
    });
    await p.until((c) => c.stdoutBytes > 200_000, 30_000, "the first 200 kB");
    proxy.cut();
    await p.until((c) => c.stderr.includes("reconnecting"), 30_000, "a reconnect notice");
    await proxy.restore();
    const r = await p.done();
    assert.equal(r.code, 4, r.stderr);
    let expected = "";
    for (let i = 0; i < 13000; i++) {
      expected += `${String(i).padStart(5, "0")} ${"0".repeat(92)}\n`;
    }
    assert.equal(r.text.length, expected.length, "no byte lost or repeated");
    assert.ok(r.text === expected, "the same bytes in the same order");
    assert.match(r.stderr, /reconnected/);
    assert.match(r.stderr, /tail\n/);
    assert.ok(proxy.accepted >= 2);
  });
});

Deno.test("cli: a connection that goes silent (no reset) is taken for dead by its keepalive and made again", async () => {
  await withProxy({}, async (_server, proxy, url) => {
    const p = new CliProcess(
      ["run", "--keepalive", "0.5", "--", "sh", "-c", "echo one; sleep 3; echo two"],
      { url: url },
    );
    await p.until((c) => new TextDecoder().decode(c.stdout).includes("one"));
    // Packets dropped, no FIN, no RST: only a ping notices.
    proxy.freeze();
    await p.until(
      (c) => c.stderr.includes("not even the answer to a ping"),
      30_000,
      "the keepalive",
    );
    // The frozen connection stays frozen; new ones pass.
    proxy.cut();
    proxy.thaw();
    await proxy.restore();
    const r = await p.done();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, "one\ntwo\n");
    assert.match(r.stderr, /reconnected/);
  });
});

Deno.test("cli: the execute reply lost with its connection: the run is found again, and runs once", async () => {
  await withProxy({}, async (server, proxy, url) => {
    const marker = await Deno.makeTempFile();
    const sprung = proxy.cutAtServerText('"status":"started"');
    const p = new CliProcess(
      ["run", "--", "sh", "-c", `echo ran >> ${marker}; sleep 0.5; echo done`],
      { url: url },
    );
    await sprung;
    await proxy.restore();
    const r = await p.done();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, "done\n");
    assert.equal(await Deno.readTextFile(marker), "ran\n", "started once");
    assert.equal(server.registry.list().length, 1);
    await Deno.remove(marker);
  });
});

Deno.test("cli: the connection does not come back: 255 and how to attach, the run left to its detach timeout", async () => {
  await withProxy({}, async (server, proxy, url) => {
    const p = new CliProcess(
      ["run", "--reconnect-timeout", "1", "--", "sh", "-c", "echo ready; sleep 30"],
      { url },
    );
    await p.until((c) => new TextDecoder().decode(c.stdout).includes("ready"));
    proxy.cut();
    const r = await p.done();
    assert.equal(r.code, 255);
    assert.match(r.stderr, /could not reconnect within 1s/);
    assert.match(r.stderr, /cc-executor attach [0-9a-f-]{36} --from 6/);
    // The run waits for its CLI to come back (until reconnect-timeout + 60 s pass).
    const exec = server.registry.running()[0]!;
    assert.equal(exec.detached, true);
    assert.equal(exec.active, true);
    await exec.cancel("canceled");
  });
});

Deno.test("cli: keys come from the environment or a file, never a flag; a wrong key is not retried", async () => {
  const keyFile = await Deno.makeTempFile();
  await Deno.writeTextFile(keyFile, "k-alice\n");
  const server = await startServer(loadConfig({
    args: ["--port", "0", "--ws-ping-interval", "0", "--ephemeral", "--busy-multiplier", "1"],
    getEnv: (name) =>
      name === "PATH"
        ? Deno.env.get("PATH")
        : name === "CC_EXECUTOR_API_KEYS"
        ? "alice:k-alice,bob:k-bob"
        : undefined,
  }));
  try {
    const url = server.wsUrl;
    const none = await cli(url, ["run", "--", "true"]);
    assert.equal(none.code, 255);
    assert.match(none.stderr, /refused the API key \(HTTP 401\)/);
    const wrong = await cli(url, ["run", "--", "true"], { CC_EXECUTOR_API_KEY: "nope" });
    assert.equal(wrong.code, 255);
    const flag = await cli(url, ["run", "--key", "k-alice", "--", "true"]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /visible to everyone in `ps`/);
    const d = await cli(url, ["run", "--key-file", keyFile, "--detach", "--", "sleep", "30"]);
    assert.equal(d.code, 0, d.stderr);
    const id = d.text.trim();
    // Bob neither sees nor reaches alice's run.
    const bob = { CC_EXECUTOR_API_KEY: "k-bob" };
    assert.doesNotMatch((await cli(url, ["ps"], bob)).text, new RegExp(id));
    assert.equal((await cli(url, ["cancel", id], bob)).code, 1);
    assert.equal((await cli(url, ["attach", id], bob)).code, 1);
    const health = await cli(url, ["health", "--json"], { CC_EXECUTOR_API_KEY: "k-alice" });
    assert.equal(health.code, 0, health.stderr);
    assert.equal(JSON.parse(health.text).status, "healthy");
    // The full figures, which need a key.
    assert.equal(typeof JSON.parse(health.text).running_executions, "number");
    const c = await cli(url, ["cancel", id], { CC_EXECUTOR_API_KEY: "k-alice" });
    assert.equal(c.code, 0, c.stderr);
  } finally {
    await server.shutdown();
    await Deno.remove(keyFile);
  }
});

Deno.test("cli: estimate, --json events, usage errors and --help", async () => {
  await withServer({}, async (server) => {
    const e = await cli(server.wsUrl, ["estimate", "--json", "--", "sleep", "1"]);
    assert.equal(e.code, 0, e.stderr);
    const estimate = JSON.parse(e.text);
    assert.equal(typeof estimate.timeout, "number");
    assert.equal(typeof estimate.timeout_source, "string");
    const j = await cli(server.wsUrl, ["run", "--json", "--", "sh", "-c", "echo hi; exit 2"]);
    assert.equal(j.code, 2);
    const events = j.text.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(events.map((x) => x.event), [
      "execute",
      "started",
      "output",
      "completed",
      "exit",
    ]);
    assert.equal(events[2].data, "hi\n");
    assert.equal(events[4].exit, 2);
    assert.equal(j.stderr, "");
    assert.equal((await cli(server.wsUrl, ["run"])).code, 2);
    assert.equal((await cli(server.wsUrl, ["run", "--bogus", "--", "true"])).code, 2);
    assert.equal((await cli(server.wsUrl, ["nope"])).code, 2);
    for (const sub of ["run", "attach", "ps", "logs", "cancel", "signal", "estimate", "health"]) {
      const h = await cli(server.wsUrl, [sub, "--help"]);
      assert.equal(h.code, 0);
      assert.match(h.text, new RegExp(`^Usage: cc-executor ${sub}`));
    }
  });
});

Deno.test("cli: a server refusing the request is 1, with its message", async () => {
  const server = await testServer({ "allowed-commands": "echo" });
  try {
    const r = await cli(server.wsUrl, ["run", "--", "rm", "-rf", "/tmp/x"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refused the request: .*not allowed/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("cli: main.ts (the compiled binary's entry) runs subcommands; `serve` and flags are the server", async () => {
  await withServer({}, async (server) => {
    const main = new URL("../../main.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...CLI_PERMISSIONS, main, "run", "--", "sh", "-c", "echo via-main; exit 6"],
      env: { CC_EXECUTOR_URL: server.wsUrl },
    }).output();
    assert.equal(out.code, 6, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout), "via-main\n");
    const help = await new Deno.Command(Deno.execPath(), {
      args: ["run", main, "serve", "--help"],
    }).output();
    assert.equal(help.code, 0);
    assert.match(new TextDecoder().decode(help.stdout), /Settings:/);
  });
});

Deno.test("cli: a reader slower than the run slows the run; nothing is lost though far more than is retained", async () => {
  // 1 MiB retained and nothing spilled: without flow control most of 24 MB would be gone.
  await withServer({ "output-retention": "1048576", "output-spill": "false" }, async (server) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...CLI_PERMISSIONS,
        CLI_MAIN,
        "run",
        "--",
        "head",
        "-c",
        "24000000",
        "/dev/zero",
      ],
      env: { CC_EXECUTOR_URL: server.wsUrl },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    // Read at about 8 MB/s: the run could write all of it in well under a second.
    let total = 0;
    let zeros = true;
    const t0 = performance.now();
    for await (const chunk of child.stdout) {
      total += chunk.length;
      zeros &&= chunk.every((b) => b === 0);
      const due = t0 + total / 8000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const status = await child.status;
    assert.equal(status.code, 0, await stderr);
    assert.equal(total, 24_000_000);
    assert.ok(zeros);
    assert.doesNotMatch(await stderr, /no longer retained/);
  });
});

Deno.test("cli: --stdin goes on under the server's message rate limit", async () => {
  await withServer({ "msg-rate": "4", "msg-burst": "4" }, async (server) => {
    const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const p = new CliProcess(["run", "--stdin", "--", "sha256sum"], {
      url: server.wsUrl,
      stdin: true,
    });
    const writer = p.child.stdin.getWriter();
    await writer.write(data);
    await writer.close();
    const r = await p.done();
    assert.equal(r.code, 0, r.stderr);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(r.text.split(" ")[0], hex);
  });
});

Deno.test("cli: a viewer's reader going away leaves the run going; shutdown is 255; a missing program 127", async () => {
  await withServer({}, async (server) => {
    const id = await startDetached(server.wsUrl, "while :; do echo x; done");
    const viewer = spawnCli(server.wsUrl, ["attach", id]);
    const reader = viewer.stdout.getReader();
    await reader.read();
    await reader.cancel();
    assert.equal((await viewer.status).code, 141);
    assert.equal(server.registry.get(id)!.active, true, "the run goes on");
    const missing = await cli(server.wsUrl, ["run", "--", "no-such-program-here"]);
    assert.equal(missing.code, 127, missing.stderr);
    const follower = new CliProcess(["run", "--", "sh", "-c", "echo up; exec sleep 30"], {
      url: server.wsUrl,
    });
    await follower.until((c) => new TextDecoder().decode(c.stdout).includes("up"));
    await server.shutdown();
    const r = await follower.done();
    assert.equal(r.code, 255, r.stderr);
    assert.match(r.stderr, /server shut down/);
  });
});

Deno.test("cli: a viewer that does not read holds back neither the run nor its owner", async () => {
  await withServer({}, async (server) => {
    const owner = new CliProcess(
      [
        "run",
        "--",
        "sh",
        "-c",
        "echo go; read x < /dev/null; sleep 0.3; head -c 20000000 /dev/zero",
      ],
      { url: server.wsUrl },
    );
    await owner.until((c) => c.stdoutBytes > 0);
    const id = server.registry.running()[0]!.id;
    // A viewer whose stdout nobody reads.
    const viewer = spawnCli(server.wsUrl, ["attach", id]);
    const r = await owner.done();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 3 + 20_000_000);
    viewer.kill("SIGKILL");
    await viewer.status;
    await viewer.stdout.cancel();
  });
});
