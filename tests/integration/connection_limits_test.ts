/**
 * Connection and message limits against a real server: the defaults admit
 * what existing clients do (the original's client opens one connection per
 * command; the benchmark opens `max-sessions` at once), a flood past small
 * limits is still refused, and within an MCP HTTP session only the
 * `initialize` counts as a connection. Refill rates are set so low in the
 * refusal tests that no token comes back while they run: counts are exact.
 *
 * @module
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config/config.ts";
import { type Msg, TestClient, testServer, withServer } from "../_helpers.ts";
import { call, closeHttp, connectHttp, INIT } from "../_mcp.ts";

/** The slowest refill allowed: one token per 100 s, none during a test. */
const NO_REFILL = "0.01";

/** An upgrade attempt by plain `fetch`: its status, `Retry-After` and body. */
async function upgrade(wsUrl: string, path = "/ws/mcp") {
  const url = new URL(wsUrl.replace("ws://", "http://"));
  url.pathname = path;
  const res = await fetch(url, {
    headers: {
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version": "13",
    },
  });
  let body: Msg = null;
  if (res.status === 101) await res.body?.cancel();
  else body = await res.json();
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body };
}

/** A raw request to `/mcp`, within `session` when given. */
function mcp(httpUrl: string, method: string, body?: unknown, session?: string) {
  const headers: Record<string, string> = {
    accept: method === "GET" ? "text/event-stream" : "application/json, text/event-stream",
  };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (session !== undefined) {
    headers["mcp-session-id"] = session;
    headers["mcp-protocol-version"] = "2025-11-25";
  }
  return fetch(`${httpUrl}/mcp`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** Opens an MCP HTTP session with a raw `initialize`; returns its id. */
async function initialize(httpUrl: string): Promise<string> {
  const res = await mcp(httpUrl, "POST", INIT);
  assert.equal(res.status, 200);
  await res.text();
  const id = res.headers.get("mcp-session-id");
  assert.ok(id !== null, "initialize hands out a session id");
  return id;
}

/** Asserts `res` is the `/mcp` rate-limit refusal: 429, Retry-After, JSON-RPC -32029. */
async function assertMcpRateLimited(res: Response): Promise<void> {
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers.get("retry-after")) >= 1, "Retry-After in whole seconds");
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const body: Msg = await res.json();
  assert.deepEqual(Object.keys(body).sort(), ["error", "id", "jsonrpc"]);
  assert.equal(body.jsonrpc, "2.0");
  assert.equal(body.id, null);
  assert.equal(body.error.code, -32029);
  assert.equal(body.error.message, "Rate limit exceeded");
  assert.ok(body.error.data.retry_after_ms > 0);
}

Deno.test("default limits admit twice max-sessions connections at once and 100 a second", () => {
  const config = loadConfig({ getEnv: () => undefined });
  assert.ok(config.connBurst >= 2 * config.maxSessions, "two full max-sessions bursts pass");
  assert.ok(config.connRate >= 100);
  // Every one of a full burst of sessions may make an MCP handshake and a
  // call (initialized, GET, tools/list, tools/call, DELETE) at once.
  assert.ok(config.msgBurst >= 5 * config.connBurst);
  assert.ok(config.msgRate >= 5 * config.connRate);
});

Deno.test("default limits: 40 sequential and 30 concurrent WebSocket connections all get connected", async () => {
  await withServer({}, async (server) => {
    for (let i = 0; i < 40; i++) {
      const client = await TestClient.open(server);
      await client.close();
    }
    const clients = await Promise.all(Array.from({ length: 30 }, () => TestClient.open(server)));
    await Promise.all(clients.map((c) => c.close()));
    // Then, at once, a full max-sessions burst on top (the original's client
    // opens one connection per command, so parallel work looks like this).
    const burst = await Promise.all(Array.from({ length: 100 }, () => TestClient.open(server)));
    await Promise.all(burst.map((c) => c.close()));
  });
});

Deno.test("default limits: max-sessions WebSocket sessions at once each connect and run a command", async () => {
  await withServer({}, async (server) => {
    const n = loadConfig({ getEnv: () => undefined }).maxSessions;
    const clients = await Promise.all(Array.from({ length: n }, () => TestClient.open(server)));
    const runs = await Promise.all(clients.map((c, i) => c.run({ command: `echo ${i}` })));
    runs.forEach((r, i) => assert.equal(r.stdout, `${i}\n`));
    await Promise.all(clients.map((c) => c.close()));
  });
});

Deno.test("default limits: max-sessions MCP HTTP sessions at once each initialize, call and end", async () => {
  await withServer({}, async (server) => {
    const n = loadConfig({ getEnv: () => undefined }).maxSessions;
    const sessions = await Promise.all(Array.from({ length: n }, () => connectHttp(server)));
    const runs = await Promise.all(
      sessions.map((c, i) => call(c.client, "execute", { command: `echo ${i}` })),
    );
    runs.forEach((r, i) => assert.equal(r.s.stdout, `${i}\n`));
    await Promise.all(sessions.map(closeHttp));
    // Closing aborts a GET stream the SDK client may still be opening: its own abort, not ours.
    const errors = sessions.flatMap((c) => c.errors).map(String)
      .filter((e) => !/SSE stream disconnected: AbortError/.test(e));
    assert.deepEqual(errors, []);
  });
});

Deno.test("past conn-burst, upgrades get 429 with Retry-After and a JSON body", async () => {
  await withServer({ "conn-burst": "4", "conn-rate": NO_REFILL }, async (server) => {
    // `/ws` and `/ws/mcp` each spend one token (the guard runs once per request).
    const paths = ["/ws", "/ws/mcp", "/ws", "/ws/mcp", "/ws", "/ws/mcp"];
    const results = [];
    for (const path of paths) results.push(await upgrade(server.wsUrl, path));
    assert.deepEqual(results.map((r) => r.status), [101, 101, 101, 101, 429, 429]);
    for (const refused of results.slice(4)) {
      assert.ok(Number(refused.retryAfter) >= 1);
      assert.equal(refused.body.error, "Too many connections");
      assert.ok(refused.body.retry_after_ms > 0);
    }
    // A real client is refused too.
    await assert.rejects(TestClient.connect(server.wsUrl));
  });
});

Deno.test("past conn-burst, a concurrent flood gets exactly the burst through", async () => {
  await withServer({ "conn-burst": "10", "conn-rate": NO_REFILL }, async (server) => {
    const results = await Promise.all(Array.from({ length: 25 }, () => upgrade(server.wsUrl)));
    assert.equal(results.filter((r) => r.status === 101).length, 10);
    assert.equal(results.filter((r) => r.status === 429).length, 15);
  });
});

Deno.test("MCP HTTP: a session's requests, more than conn-burst, are not new connections", async () => {
  await withServer({ "conn-burst": "1", "conn-rate": NO_REFILL }, async (server) => {
    // initialize spends the only connection token; the rest are messages.
    const c = await connectHttp(server);
    for (let i = 0; i < 20; i++) await c.client.ping();
    assert.ok((await c.client.listTools()).tools.length > 0);
    const r = await call(c.client, "execute", { command: "echo within" });
    assert.equal(r.s.stdout, "within\n");
    await closeHttp(c);
    assert.deepEqual(c.errors.map(String), []);
    // A second session is a second connection: refused with a JSON-RPC body,
    // which the SDK client reports as the error of its initialize.
    await assert.rejects(connectHttp(server), /-32029.*Rate limit exceeded/);
    await assertMcpRateLimited(await mcp(server.httpUrl, "POST", INIT));
  });
});

Deno.test("MCP HTTP: GET and DELETE of a live session are messages; an unknown id is a connection", async () => {
  await withServer({ "conn-burst": "1", "conn-rate": NO_REFILL }, async (server) => {
    const id = await initialize(server.httpUrl);
    const note = { jsonrpc: "2.0", method: "notifications/initialized" };
    const posted = await mcp(server.httpUrl, "POST", note, id);
    assert.equal(posted.status, 202);
    await posted.body?.cancel();
    const stream = await mcp(server.httpUrl, "GET", undefined, id);
    assert.equal(stream.status, 200);
    await stream.body?.cancel();
    const deleted = await mcp(server.httpUrl, "DELETE", undefined, id);
    assert.equal(deleted.status, 200);
    await deleted.body?.cancel();
    // The id is gone now: naming it no longer spares the connection limit.
    await assertMcpRateLimited(await mcp(server.httpUrl, "POST", note, id));
  });
  await withServer({ "conn-burst": "2", "conn-rate": NO_REFILL }, async (server) => {
    // Made-up session ids cannot be used to get around the connection limit.
    const ping = { jsonrpc: "2.0", id: 2, method: "ping" };
    for (let i = 0; i < 2; i++) {
      const res = await mcp(server.httpUrl, "POST", ping, crypto.randomUUID());
      assert.equal(res.status, 404);
      await res.body?.cancel();
    }
    await assertMcpRateLimited(await mcp(server.httpUrl, "POST", ping, crypto.randomUUID()));
    await assertMcpRateLimited(await mcp(server.httpUrl, "POST", INIT));
  });
});

Deno.test("MCP HTTP: past msg-burst, a request within a session gets 429 with a JSON-RPC -32029 body", async () => {
  await withServer({ "msg-burst": "2", "msg-rate": NO_REFILL }, async (server) => {
    const id = await initialize(server.httpUrl);
    const ping = (n: number) =>
      mcp(server.httpUrl, "POST", { jsonrpc: "2.0", id: n, method: "ping" }, id);
    for (let i = 0; i < 2; i++) {
      const res = await ping(i);
      assert.equal(res.status, 200);
      await res.text();
    }
    await assertMcpRateLimited(await ping(2));
    // The session itself survives the refusal.
    assert.ok(server.sessions.get(id) !== undefined);
  });
});

Deno.test("the connection limit counts API-key clients by key, and unverified requests by address", async () => {
  const server = await testServer({
    "api-keys": "k1,k2",
    "conn-burst": "2",
    "conn-rate": NO_REFILL,
  });
  try {
    const withKey = (key: string) => `${server.wsUrl}?token=${key}`;
    assert.equal((await upgrade(withKey("k1"))).status, 101);
    assert.equal((await upgrade(withKey("k1"))).status, 101);
    assert.equal((await upgrade(withKey("k1"))).status, 429);
    assert.equal((await upgrade(withKey("k2"))).status, 101, "another key has its own bucket");
    // Unverified requests spend the address's tokens, named session or not.
    assert.equal((await upgrade(withKey("bad"))).status, 401);
    const guess = await mcp(server.httpUrl, "POST", INIT, crypto.randomUUID());
    assert.equal(guess.status, 401);
    await guess.body?.cancel();
    await assertMcpRateLimited(await mcp(server.httpUrl, "POST", INIT));
  } finally {
    await server.shutdown();
  }
});
