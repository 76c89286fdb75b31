/**
 * Principals against a real server with two tenants' keys and an admin's:
 * nothing of one tenant's (MCP HTTP session, its runs, their output and
 * stdin, legacy executions, history) is reachable with the other's key,
 * and another's id answers exactly as an unknown one does.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Msg, spawnServer, TestClient, withServer } from "../_helpers.ts";
import {
  call,
  Client,
  INIT,
  mcpRequest,
  postMcp,
  readToEnd,
  StreamableHTTPClientTransport,
  WebSocketClientTransport,
} from "../_mcp.ts";
import type { ServerHandle } from "../../main.ts";
import { loadKeyring, reloadKeyring } from "../../lib/security/access.ts";
import { ApiKeyring } from "../../lib/security/auth.ts";
import { ConfigError } from "../../lib/config/config.ts";

const KEYS = "alice:alice-key,bob:bob-key,ops:ops-key:admin";

/** An SDK client over Streamable HTTP with `key`. */
async function httpClient(server: ServerHandle, key: string) {
  const client = new Client({ name: "tenant", version: "1" });
  const transport = new StreamableHTTPClientTransport(new URL(`${server.httpUrl}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

/** An SDK client over the WebSocket (subprotocol `mcp`) with `key`. */
async function wsClient(server: ServerHandle, key: string): Promise<Client> {
  const client = new Client({ name: "tenant", version: "1" });
  await client.connect(new WebSocketClientTransport(new URL(`${server.wsUrl}?token=${key}`)));
  return client;
}

/** A legacy client with `key`. */
async function legacyClient(server: ServerHandle, key: string): Promise<TestClient> {
  const client = await TestClient.connect(server.wsUrl, undefined, {
    authorization: `Bearer ${key}`,
  });
  const first = await client.next();
  assert.equal(first.method, "connected");
  return client;
}

/** A raw `/mcp` request with `key` and a session id; status and body text. */
async function rawMcp(
  server: ServerHandle,
  key: string,
  sessionId: string,
  method: "GET" | "POST" | "DELETE",
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const res = await mcpRequest(server.httpUrl, method, {
    authorization: `Bearer ${key}`,
    "mcp-session-id": sessionId,
    "mcp-protocol-version": "2025-11-25",
  }, body);
  return { status: res.status, text: await res.text() };
}

const toolCall = (name: string, args: Record<string, unknown>) => ({
  jsonrpc: "2.0",
  id: 7,
  method: "tools/call",
  params: { name, arguments: args },
});

Deno.test("principals: another tenant's MCP HTTP session id is an unknown one, for every method", async () => {
  await withServer({ "api-keys": KEYS }, async (server) => {
    const alice = await httpClient(server, "alice-key");
    const sid = alice.transport.sessionId!;
    const started = await call(alice.client, "start", {
      command: "cat; echo cat-ended",
      stdin_open: true,
    });
    const execId = started.s.execution_id as string;
    assert.ok(execId);

    const unknown = crypto.randomUUID();
    for (
      const [method, body] of [
        ["POST", toolCall("list_executions", {})],
        ["POST", toolCall("read_output", { execution_id: execId })],
        ["POST", toolCall("send_input", { execution_id: execId, input: "from bob\n" })],
        ["POST", toolCall("control", { execution_id: execId, type: "PAUSE" })],
        ["GET", undefined],
        ["DELETE", undefined],
      ] as const
    ) {
      const theirs = await rawMcp(server, "bob-key", sid, method, body);
      const none = await rawMcp(server, "bob-key", unknown, method, body);
      assert.equal(theirs.status, 404, `${method} ${JSON.stringify(body)}`);
      // Byte for byte what an unknown id gets: nothing tells the two apart.
      assert.equal(theirs.text, none.text);
      // An admin does not take over sessions either: it has its own.
      assert.equal((await rawMcp(server, "ops-key", sid, method, body)).status, 404);
    }

    // Alice's run is untouched: running, not paused, no input from bob.
    const exec = server.registry.get(execId)!;
    assert.equal(exec.active, true);
    assert.equal(exec.state, "running");
    await call(alice.client, "send_input", {
      execution_id: execId,
      input: "from alice\n",
      close_stdin: true,
    });
    const out = await readToEnd(alice.client, execId);
    assert.equal(out.stdout, "from alice\ncat-ended\n");
    assert.equal((await exec.done).status, "completed");
    const listed = await call(alice.client, "list_executions", {});
    assert.deepEqual(listed.s.executions.map((e: Msg) => e.execution_id), [execId]);
    await alice.transport.terminateSession();
    await alice.client.close();
  });
});

Deno.test("principals: over the WebSocket, another tenant's execution id is an unknown one", async () => {
  await withServer({ "api-keys": KEYS }, async (server) => {
    const alice = await wsClient(server, "alice-key");
    const bob = await wsClient(server, "bob-key");
    const ops = await wsClient(server, "ops-key");
    try {
      const execId = (await call(alice, "start", { command: "sleep 30" })).s.execution_id;
      const unknown = crypto.randomUUID();
      for (
        const [name, extra] of [
          ["read_output", {}],
          ["send_input", { input: "x" }],
          ["control", { type: "CANCEL" }],
        ] as const
      ) {
        const theirs = await call(bob, name, { execution_id: execId, ...extra });
        const none = await call(bob, name, { execution_id: unknown, ...extra });
        assert.equal(theirs.result.isError, true, name);
        assert.equal(theirs.text.replaceAll(execId, "ID"), none.text.replaceAll(unknown, "ID"));
      }
      assert.deepEqual((await call(bob, "list_executions", {})).s.executions, []);
      assert.equal(server.registry.get(execId)!.active, true);
      // The admin sees and controls everyone's.
      const all = (await call(ops, "list_executions", {})).s.executions.map((e: Msg) =>
        e.execution_id
      );
      assert.deepEqual(all, [execId]);
      const canceled = await call(ops, "control", { execution_id: execId, type: "CANCEL" });
      assert.notEqual(canceled.result.isError, true, canceled.text);
      assert.equal((await server.registry.get(execId)!.done).status, "canceled");
    } finally {
      await Promise.all([alice.close(), bob.close(), ops.close()]);
    }
  });
});

Deno.test("principals: legacy control of another tenant's run is -32002 as for an unknown id; history is one's own", async () => {
  await withServer({ "api-keys": KEYS }, async (server) => {
    const alice = await legacyClient(server, "alice-key");
    const bob = await legacyClient(server, "bob-key");
    const ops = await legacyClient(server, "ops-key");
    try {
      const secret = await alice.run({ command: "echo deploy --password=hunter2" });
      assert.equal(secret.completed.status, "completed");
      await bob.run({ command: "echo bob-was-here" });
      const running = await alice.request("execute", { command: "sleep 30" });
      const execId = running.result.execution_id;
      const unknown = crypto.randomUUID();
      for (const type of ["PAUSE", "RESUME", "CANCEL"]) {
        const theirs = await bob.request("control", { type, execution_id: execId });
        const none = await bob.request("control", { type, execution_id: unknown });
        assert.equal(theirs.error?.code, -32002, type);
        assert.equal(
          theirs.error.message.replace(execId, "ID"),
          none.error.message.replace(unknown, "ID"),
        );
      }
      // Without an id, "the session's latest" is bob's own, of which there is none.
      assert.equal((await bob.request("control", { type: "CANCEL" })).error?.code, -32002);
      assert.equal(server.registry.get(execId)!.state, "running");

      const commands = async (c: TestClient) => {
        // Records are written just after completion: wait until they are there.
        for (;;) {
          const r = await c.request("history", { limit: 100 });
          const list = r.result.records.map((x: Msg) => x.command as string);
          if (list.length > 0) return list;
        }
      };
      const bobs = await commands(bob);
      assert.deepEqual(bobs, ["echo bob-was-here"]);
      assert.ok(!JSON.stringify(bobs).includes("hunter2"));
      assert.deepEqual(await commands(alice), ["echo deploy --password=hunter2"]);
      const all = await commands(ops);
      assert.deepEqual(all.sort(), ["echo bob-was-here", "echo deploy --password=hunter2"]);

      // The admin controls alice's run by id.
      const paused = await ops.request("control", { type: "PAUSE", execution_id: execId });
      assert.deepEqual(paused.result, { status: "paused" });
      await ops.request("control", { type: "CANCEL", execution_id: execId });
      assert.equal((await alice.event("completed", execId)).params.status, "canceled");
    } finally {
      await Promise.all([alice.close(), bob.close(), ops.close()]);
    }
  });
});

Deno.test("principals: a principal's keys share its rate-limit bucket; another principal has its own", async () => {
  const keys = "alice:a1,alice:a2,bob:b1";
  await withServer(
    { "api-keys": keys, "conn-burst": "2", "conn-rate": "0.01" },
    async (server) => {
      const initialize = (key: string) =>
        postMcp(server.httpUrl, INIT, { authorization: `Bearer ${key}` });
      const statuses: number[] = [];
      for (const key of ["a1", "a2", "a1", "b1"]) {
        const res = await initialize(key);
        await res.body?.cancel();
        statuses.push(res.status);
      }
      // alice's third connection is over her burst of 2, whichever key; bob's first is not.
      assert.deepEqual(statuses, [200, 200, 429, 200]);
    },
  );
});

Deno.test("principals: logs name the principal, never the key", async () => {
  const server = await spawnServer({ "api-keys": "carol:carol-secret-key", "log-level": "debug" });
  try {
    const client = await TestClient.connect(server.wsUrl, undefined, {
      authorization: "Bearer carol-secret-key",
    });
    await client.next();
    await client.run({ command: "echo logged" });
    await client.close();
  } finally {
    await server.stop();
    const out = server.output();
    assert.match(out, /carol/);
    assert.ok(!out.includes("carol-secret-key"), "the key appeared in the log");
  }
});

Deno.test("principals: a bad key entry stops the start, named by its place, never its text", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_keys_" });
  try {
    const file = `${dir}/keys`;
    await Deno.writeTextFile(file, "# team\nalice:alice-key\n\nsecret part:rest\n");
    const config = { apiKeys: ["fine-key"], apiKeysFile: file };
    await assert.rejects(
      () => loadKeyring(config),
      (e: Error) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, new RegExp(`line 4 of ${file}`));
        assert.ok(!e.message.includes("secret"), e.message);
        return true;
      },
    );
    await Deno.writeTextFile(file, "ops:k1:admin\nops:k2\n");
    await assert.rejects(() => loadKeyring(config), /'ops' is given both with and without :admin/);
    await Deno.writeTextFile(file, "ops:k1:admin\nbob:k2\n");
    const keyring = await loadKeyring(config);
    assert.deepEqual(await keyring.verify("k1"), { id: "ops", admin: true });
    assert.equal((await keyring.verify("fine-key"))?.id.startsWith("key-"), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("principals: one key given to two principals, or to one with two roles, is refused", () => {
  assert.throws(() => new ApiKeyring(["alice:same", "ops:same:admin"]), /'alice' and 'ops'/);
  assert.throws(() => new ApiKeyring(["same", "alice:same"]), /both/);
  // The same entry twice is harmless.
  assert.equal(new ApiKeyring(["alice:same", "alice:same"]).hasKeys, true);
});

Deno.test("principals: a reload that finds no key keeps the old keys", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_keys_" });
  try {
    const file = `${dir}/keys`;
    await Deno.writeTextFile(file, "alice:alice-key\n");
    const config = { apiKeys: [], apiKeysFile: file };
    const keyring = await loadKeyring(config);
    for (const emptied of ["", "# all keys moved\n\n"]) {
      await Deno.writeTextFile(file, emptied);
      await assert.rejects(() => reloadKeyring(keyring, config), /turn authentication off/);
      assert.deepEqual(await keyring.verify("alice-key"), { id: "alice", admin: false });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("principals: SIGHUP ends the sessions of revoked keys and of principals whose role changed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_keys_" });
  const file = `${dir}/keys`;
  await Deno.writeTextFile(file, "alice:a1\nbob:b1\nops:o1:admin\n");
  const server = await spawnServer({ "api-keys-file": file });
  const connect = async (key: string) => {
    const c = await TestClient.connect(server.wsUrl, undefined, { authorization: `Bearer ${key}` });
    assert.equal((await c.next()).method, "connected");
    return c;
  };
  try {
    const alice = await connect("a1");
    const bob = await connect("b1");
    const ops = await connect("o1");
    const run = await alice.request("execute", { command: "sleep 60" });
    assert.equal(run.result.status, "started");
    // alice's key goes, ops is no longer an admin, bob is untouched.
    await Deno.writeTextFile(file, "bob:b1\nops:o1\n");
    Deno.kill(server.pid, "SIGHUP");
    const completed = await alice.event("completed", run.result.execution_id);
    assert.equal(completed.params.status, "canceled");
    assert.equal((await alice.closed).code, 1008);
    assert.equal((await ops.closed).code, 1008);
    assert.deepEqual((await bob.request("ping", {})).result, {});
    // A new connection with the removed key is refused; ops reconnects as a plain principal.
    const refused = await fetch(`${server.httpUrl}/health`, {
      headers: { authorization: "Bearer a1" },
    });
    assert.deepEqual(Object.keys(await refused.json()), ["status"]);
    const ops2 = await connect("o1");
    assert.equal((await ops2.request("history", {})).result.records.length, 0);
    await Promise.all([bob.close(), ops2.close()]);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("principals: max-sessions-per-principal keeps one tenant from taking every session", async () => {
  await withServer(
    { "api-keys": KEYS, "max-sessions": "4", "max-sessions-per-principal": "2" },
    async (server) => {
      const open = async (key: string) => {
        const c = await TestClient.connect(server.wsUrl, undefined, {
          authorization: `Bearer ${key}`,
        });
        return { c, first: await c.next() };
      };
      const a1 = await open("alice-key");
      const a2 = await open("alice-key");
      const a3 = await open("alice-key");
      assert.equal(a1.first.method, "connected");
      assert.equal(a2.first.method, "connected");
      assert.equal(a3.first.error?.code, -32003);
      assert.equal((await a3.c.closed).code, 1008);
      const b1 = await open("bob-key");
      assert.equal(b1.first.method, "connected");
      await Promise.all([a1.c.close(), a2.c.close(), b1.c.close()]);
    },
  );
});

Deno.test("principals: /health answers a flood of guessed keys with 429, right key or wrong", async () => {
  await withServer({ "api-keys": KEYS, "conn-burst": "3", "conn-rate": "0.01" }, async (server) => {
    const get = (key: string) =>
      fetch(`${server.httpUrl}/health`, { headers: { authorization: `Bearer ${key}` } });
    const statuses: number[] = [];
    for (const key of ["guess-1", "guess-2", "guess-3", "guess-4", "alice-key"]) {
      const res = await get(key);
      await res.body?.cancel();
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    // Without a key: the status only, never limited.
    const open = await fetch(`${server.httpUrl}/health`);
    assert.deepEqual(Object.keys(await open.json()), ["status"]);
  });
});
