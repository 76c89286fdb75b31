/**
 * Attacks on a running server, one per finding of the security reviews:
 * missing auth, cross-site WebSocket hijacking, shell injection, secrets in
 * the child env, cwd escapes, floods, and secrets in logs.
 */
import { INIT, postMcp } from "../_mcp.ts";
import assert from "node:assert/strict";
import { RawWebSocket } from "../_raw_ws.ts";
import {
  cancelStubbornGroup,
  eventually,
  spawnServer,
  TestClient,
  testServer,
  withServer,
} from "../_helpers.ts";

const upgradeHeaders = (extra: Record<string, string> = {}) => ({
  Upgrade: "websocket",
  Connection: "Upgrade",
  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
  "Sec-WebSocket-Version": "13",
  ...extra,
});

/** Status of an upgrade attempt, without keeping the socket. */
async function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(url.replace("ws://", "http://"), { headers: upgradeHeaders(headers) });
  await res.body?.cancel();
  return res.status;
}

Deno.test("auth: no key or a wrong key gets 401 before any upgrade", async () => {
  await withServer({ "api-keys": "key-one,key-two" }, async (server) => {
    assert.equal(await upgradeStatus(server.wsUrl), 401);
    assert.equal(await upgradeStatus(server.wsUrl, { Authorization: "Bearer nope" }), 401);
    assert.equal(await upgradeStatus(server.wsUrl, { "X-API-Key": "key-one " + "x" }), 401);
    assert.equal(await upgradeStatus(`${server.wsUrl}?token=key-on`), 401);
    assert.equal(await upgradeStatus(server.wsUrl.replace("/ws/mcp", "/ws")), 401);
    // A real client is refused too, and no session was ever opened.
    await assert.rejects(TestClient.connect(server.wsUrl));
    assert.equal(server.metrics.sessionsOpened, 0);
  });
});

Deno.test("auth: a key works as Bearer, X-API-Key or ?token=, any configured key", async () => {
  await withServer({ "api-keys": "key-one,key-two" }, async (server) => {
    for (
      const [url, headers] of [
        [server.wsUrl, { Authorization: "Bearer key-two" }],
        [server.wsUrl, { Authorization: "bearer key-one" }],
        [server.wsUrl, { "X-API-Key": "key-one" }],
        [`${server.wsUrl}?token=key-two`, undefined],
      ] as const
    ) {
      const client = await TestClient.connect(url, undefined, headers);
      assert.equal((await client.next()).method, "connected");
      const run = await client.run({ command: "echo in" });
      assert.equal(run.stdout, "in\n");
      await client.close();
    }
  });
});

Deno.test("auth: /healthz stays open; /health shows only status without a key", async () => {
  await withServer({ "api-keys": "k" }, async (server) => {
    assert.equal((await fetch(`${server.httpUrl}/healthz`).then((r) => r.json())).status, "ok");
    const anonymous = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    assert.deepEqual(anonymous, { status: "healthy" });
    const full = await fetch(`${server.httpUrl}/health`, { headers: { "X-API-Key": "k" } })
      .then((r) => r.json());
    assert.equal(full.service, "cc_executor_mcp");
    assert.equal(full.auth, "api_key");
  });
});

Deno.test("auth: SIGHUP re-reads the keys file; a bad file keeps the old keys", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/keys`;
  await Deno.writeTextFile(file, "# operators\nold-key\n");
  const server = await spawnServer({ "api-keys-file": file });
  try {
    const headers = (k: string) => ({ Authorization: `Bearer ${k}` });
    assert.equal(await upgradeStatus(server.wsUrl, headers("old-key")), 101);
    await Deno.writeTextFile(file, "new-key\n");
    server.child.kill("SIGHUP");
    await eventually(async () => await upgradeStatus(server.wsUrl, headers("new-key")) === 101);
    assert.equal(await upgradeStatus(server.wsUrl, headers("old-key")), 401);
    await Deno.remove(file);
    server.child.kill("SIGHUP");
    await eventually(() => server.output().includes("keys not reloaded"));
    assert.equal(await upgradeStatus(server.wsUrl, headers("new-key")), 101);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth: beyond loopback, no keys refuses to start unless --insecure-no-auth", async () => {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const run = (args: string[], env: Record<string, string> = {}) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "--host", "0.0.0.0", "--port", "0", ...args],
      env: { NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  const refused = await run([]).output();
  assert.equal(refused.code, 2);
  assert.match(new TextDecoder().decode(refused.stderr), /Refusing to listen on 0.0.0.0/);
  const allowed: [string[], Record<string, string>][] = [
    [["--insecure-no-auth"], {}],
    [[], { CC_EXECUTOR_API_KEYS: "k" }],
  ];
  for (const [args, env] of allowed) {
    const child = run(args, env);
    let text = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!text.includes("listening on")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    child.kill("SIGTERM");
    await reader.cancel();
    const warnings = await new Response(child.stderr).text();
    assert.equal((await child.status).code, 0);
    assert.match(text, /listening on/);
    if (args.length > 0) assert.match(warnings, /INSECURE/);
  }
});

Deno.test("origin: a browser page from another origin gets 403; allowed and absent pass", async () => {
  await withServer({ "allowed-origins": "https://app.example" }, async (server) => {
    assert.equal(await upgradeStatus(server.wsUrl, { Origin: "https://evil.example" }), 403);
    assert.equal(await upgradeStatus(server.wsUrl, { Origin: "null" }), 403);
    assert.equal(await upgradeStatus(server.wsUrl, { Origin: "http://app.example" }), 403);
    assert.equal(await upgradeStatus(server.wsUrl, { Origin: "https://app.example" }), 101);
    assert.equal(await upgradeStatus(server.wsUrl, { Origin: "https://APP.example:443" }), 101);
    assert.equal(await upgradeStatus(server.wsUrl), 101); // non-browser client
  });
  // With no list at all, every browser origin is refused (a localhost executor
  // must not be drivable by whatever page the user has open).
  await withServer({}, async (server) => {
    assert.equal(await upgradeStatus(server.wsUrl, { Origin: "http://localhost:3000" }), 403);
  });
});

Deno.test("policy: injection payloads never run when ALLOWED_COMMANDS is set", async () => {
  const dir = await Deno.makeTempDir();
  const x = `${dir}/pwned`;
  try {
    await withServer({ "allowed-commands": "echo,ls,cat" }, async (server) => {
      const client = await TestClient.open(server);
      const payloads = [
        `echo ok; touch ${x}`,
        `echo $(touch ${x})`,
        `echo \`touch ${x}\``,
        `echo ok && touch ${x}`,
        `echo ok || touch ${x}`,
        `echo ok | touch ${x}`,
        `echo ok\ntouch ${x}`,
        `echo ok > ${x}`,
        `echo ok >> ${x}`,
        `cat < ${x}`,
        `echo ok & touch ${x}`,
        `echo "$(touch ${x})"`,
        `echo "\`touch ${x}\`"`,
        `echo \${IFS}; touch ${x}`,
        `echo ok;touch ${x}`,
        `"echo" ok; "touch" ${x}`,
        `touch ${x}`,
        `/usr/bin/touch ${x}`,
        `echo 'unterminated; touch ${x}`,
      ];
      for (const command of payloads) {
        const r = await client.request("execute", { command });
        assert.ok(r.error, `ran: ${command}`);
        assert.equal(r.error.code, -32001, command);
        assert.ok(r.error.message.length > 10, "the refusal says why");
      }
      const argv = await client.request("execute", { args: ["touch", x] });
      assert.equal(argv.error.code, -32001);
      assert.equal(argv.error.message, "Command 'touch' is not allowed");
      // Quoted and escaped operators are literal text, passed to echo as such.
      const literal = await client.run({ command: `echo '$(touch ${x})' "a;b" c\\;d` });
      assert.equal(literal.stdout, `$(touch ${x}) a;b c;d\n`);
      await client.close();
    });
    await assert.rejects(Deno.stat(x), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("child env: the server's secrets never reach a child", async () => {
  const server = await spawnServer({ "api-keys": "flag-secret-key" }, {
    CC_EXECUTOR_API_KEYS: "env-secret-key",
    REDIS_URL: "redis://:redis-password@127.0.0.1:6379",
    AWS_SECRET_ACCESS_KEY: "aws-secret",
    LD_PRELOAD: "/tmp/evil.so",
  });
  try {
    const client = await TestClient.connect(server.wsUrl, undefined, {
      Authorization: "Bearer flag-secret-key",
    });
    await client.next();
    for (const params of [{ args: ["env"] }, { command: "env; cat /proc/self/environ" }]) {
      const run = await client.run(params);
      for (const secret of ["secret-key", "redis-password", "aws-secret", "evil.so"]) {
        assert.ok(!run.stdout.includes(secret), `${secret} leaked to a child`);
      }
      assert.match(run.stdout, /^PATH=/m);
    }
    await client.close();
  } finally {
    await server.stop();
  }
});

Deno.test("workspace: cwd must resolve inside a root; .. and symlinks cannot escape", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const root = `${base}/root`;
  const outside = `${base}/outside`;
  await Deno.mkdir(`${root}/sub`, { recursive: true });
  await Deno.mkdir(outside);
  await Deno.symlink(outside, `${root}/link-out`);
  try {
    await withServer({ "workspace-roots": root }, async (server) => {
      const client = await TestClient.open(server);
      assert.equal((await client.run({ command: "pwd" })).stdout, `${root}\n`);
      assert.equal(
        (await client.run({ command: "pwd", cwd: `${root}/sub` })).stdout,
        `${root}/sub\n`,
      );
      for (
        const cwd of [`${root}/..`, `${root}/sub/../../outside`, `${root}/link-out`, outside, "/"]
      ) {
        const r = await client.request("execute", { command: "pwd", cwd });
        assert.equal(r.error?.code, -32602, cwd);
        assert.equal(r.error.data.field, "cwd");
        assert.match(r.error.data.reason, /outside the workspace roots/);
      }
      await client.close();
    });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("limits: too many connections from one client get 429 with Retry-After", async () => {
  await withServer({ "conn-burst": "3", "conn-rate": "0.1" }, async (server) => {
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push(await upgradeStatus(server.wsUrl));
    assert.deepEqual(statuses, [101, 101, 101, 429, 429]);
    const res = await fetch(server.wsUrl.replace("ws://", "http://"), {
      headers: upgradeHeaders(),
    });
    await res.body?.cancel();
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
  });
});

Deno.test("limits: command, env and stdin sizes are bounded", async () => {
  await withServer({
    "max-command-length": "100",
    "max-env-bytes": "64",
    "max-stdin-bytes": "10",
  }, async (server) => {
    const client = await TestClient.open(server);
    const cases: [Record<string, unknown>, string][] = [
      [{ command: "echo " + "x".repeat(200) }, "command"],
      [{ command: "echo " + "é".repeat(60) }, "command"], // 120 bytes, 65 characters
      [{ args: ["echo", "y".repeat(200)] }, "args"],
      [{ command: "true", env: { BIG: "v".repeat(100) } }, "env"],
      [{ command: "cat", stdin: "0123456789a" }, "stdin"],
    ];
    for (const [params, field] of cases) {
      const r = await client.request("execute", params);
      assert.equal(r.error?.code, -32602, JSON.stringify(params).slice(0, 80));
      assert.equal(r.error.data.field, field);
    }
    assert.equal((await client.run({ command: "cat", stdin: "0123456789" })).stdout, "0123456789");
    await client.close();
  });
});

Deno.test("permissions: under the scoped flags of deno task start, runs and cancels work", async () => {
  const server = await spawnServer(
    {
      "allowed-commands": "sleep,echo",
      "kill-grace": "0.5",
      ephemeral: "true",
    },
    {},
    {
      script: "scripts/start.ts",
    },
  );
  try {
    const health = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    assert.equal(health.permissions.run.state, "scoped");
    // nvidia-smi is listed too, but Deno grants no program it cannot find.
    for (const p of ["sleep", "echo", "kill"]) assert.ok(health.permissions.run.scope.includes(p));
    assert.ok(!health.permissions.run.scope.includes("sh"));
    assert.equal(health.permissions.net.state, "scoped");
    assert.equal(health.permissions.write.state, "none");
    assert.equal(health.permissions.ffi.state, "none");
    // Deno grants /proc only with --allow-all: the monitor still measures CPU.
    await eventually(async () =>
      typeof (await fetch(`${server.httpUrl}/health`).then((r) => r.json())).resources
        .cpu_percent === "number"
    );
    const client = await TestClient.open({ wsUrl: server.wsUrl } as never);
    assert.equal((await client.run({ command: "echo scoped" })).stdout, "scoped\n");
    const r = await client.request("execute", { command: "sleep 1000" });
    await client.event("started");
    await client.request("control", { type: "CANCEL" });
    const done = await client.event("completed");
    assert.equal(done.params.status, "canceled");
    await eventually(async () => {
      try {
        await Deno.stat(`/proc/${r.result.pid}`);
        return false;
      } catch {
        return true;
      }
    });
    await client.close();
  } finally {
    await server.stop();
  }
});

Deno.test("logs: keys and tokens never appear; previews are cut on a character boundary", async () => {
  const server = await spawnServer({ "api-keys": "log-secret-key", "log-level": "debug" });
  try {
    assert.equal(await upgradeStatus(`${server.wsUrl}?token=log-secret-key`), 101);
    assert.equal(await upgradeStatus(`${server.wsUrl}?token=guessed-secret`), 401);
    const client = await TestClient.connect(server.wsUrl, undefined, {
      "X-API-Key": "log-secret-key",
    });
    await client.next();
    await client.run({ command: `echo ${"😀".repeat(300)}`, env: { TOKEN_VALUE: "env-secret" } });
    await client.close();
    await eventually(() => server.output().includes("Ended"));
    const out = server.output();
    for (const secret of ["log-secret-key", "guessed-secret", "env-secret"]) {
      assert.ok(!out.includes(secret), `${secret} was logged`);
    }
    assert.match(out, /token=\*\*\*/);
    assert.ok(out.includes("😀😀…"), "the command preview is truncated");
    assert.ok(!out.includes("\uFFFD"), "no character was cut in half");
  } finally {
    await server.stop();
  }
});

Deno.test("an unauthenticated raw client cannot get a session by skipping the handshake checks", async () => {
  const server = await testServer({ "api-keys": "k" });
  try {
    await assert.rejects(RawWebSocket.connect(server.wsUrl), /handshake refused: HTTP\/1.1 401/);
    assert.equal(server.sessions.size, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("limits: a message flood on a WebSocket gets -32029 and the excess is dropped", async () => {
  await withServer({ "msg-burst": "5", "msg-rate": "0.5" }, async (server) => {
    const client = await TestClient.open(server);
    for (let i = 0; i < 12; i++) client.send({ jsonrpc: "2.0", method: "ping", id: i });
    const replies = [];
    for (let i = 0; i < 12; i++) replies.push(await client.next((m) => m.id === i));
    const ok = replies.filter((r) => "result" in r).length;
    const limited = replies.filter((r) => r.error?.code === -32029);
    assert.equal(ok, 5, "the burst is served");
    assert.equal(limited.length, 7, "the rest are refused");
    assert.equal(limited[0].error.message, "Rate limit exceeded");
    assert.ok(limited[0].error.data.retry_after_ms > 0);
    // A flood of notifications is dropped silently (no reply to a notification).
    client.send({ jsonrpc: "2.0", method: "execute", params: { command: "echo flood" } });
    // Messages are handled in order: once a later ping is answered (refused too), the
    // notification was handled, and an accepted execute would have been spawned.
    await client.request("ping"); // answered or refused, either way after the notification
    assert.equal(server.registry.list().length, 0, "nothing was spawned");
    assert.equal(client.pending().filter((m) => m.method === "process.started").length, 0);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    await client.close();
  });
});

Deno.test("limits: an MCP HTTP session's messages count as messages, not connections", async () => {
  // Each MCP message is a POST; with a connection burst of 2, only the
  // session-opening request may count against it.
  await withServer({ "conn-burst": "2", "conn-rate": "0.01" }, async (server) => {
    const { connectHttp, closeHttp } = await import("../_mcp.ts");
    const http = await connectHttp(server);
    for (let i = 0; i < 10; i++) await http.client.ping();
    const tools = await http.client.listTools();
    assert.ok(tools.tools.length > 0);
    await closeHttp(http);
  });
  await withServer({ "msg-burst": "3", "msg-rate": "0.01" }, async (server) => {
    const { connectHttp } = await import("../_mcp.ts");
    const http = await connectHttp(server); // initialize opens; initialized is message 1
    let refused: unknown;
    try {
      for (let i = 0; i < 5; i++) await http.client.ping();
    } catch (err) {
      refused = err;
    }
    assert.match(String(refused), /-32029.*Rate limit exceeded/);
    await http.client.close();
  });
});

Deno.test("permissions: under deno task start, a group ignoring SIGTERM is still killed", async () => {
  // Without --allow-all Deno refuses /proc: termination must do without it.
  const server = await spawnServer({ "kill-grace": "0.3", ephemeral: "true" }, {}, {
    script: "scripts/start.ts",
  });
  try {
    const health = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    assert.equal(health.permissions.read.state, "scoped");
    assert.equal(health.permissions.run.state, "all");
    const client = await TestClient.open({ wsUrl: server.wsUrl } as never);
    await cancelStubbornGroup(client);
    await client.close();
  } finally {
    await server.stop();
  }
});

Deno.test("auth: on /mcp a missing key (401) and a foreign Origin (403) are JSON-RPC errors", async () => {
  await withServer({ "api-keys": "k" }, async (server) => {
    const post = (headers: Record<string, string>) => postMcp(server.httpUrl, INIT, headers);
    const noKey = await post({});
    assert.equal(noKey.status, 401);
    assert.equal(noKey.headers.get("www-authenticate"), 'Bearer realm="cc-executor"');
    assert.deepEqual(await noKey.json(), {
      jsonrpc: "2.0",
      error: { code: -32000, message: "Unauthorized" },
      id: null,
    });
    const foreign = await post({ authorization: "Bearer k", origin: "https://evil.example" });
    assert.equal(foreign.status, 403);
    assert.deepEqual(await foreign.json(), {
      jsonrpc: "2.0",
      error: { code: -32000, message: "Origin not allowed" },
      id: null,
    });
  });
});
