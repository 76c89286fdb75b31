import assert from "node:assert/strict";
import fc from "fast-check";
import { eventually, type Msg, TestClient, withServer } from "../_helpers.ts";

/** After each bad message the same session must still run a command. */
async function stillWorks(client: TestClient): Promise<void> {
  const run = await client.run({ command: "echo alive" });
  assert.equal(run.stdout, "alive\n");
}

const errorFor = (client: TestClient, id: unknown = null): Promise<Msg> =>
  client.next((m) => "error" in m && m.id === id);

Deno.test("invalid JSON gets -32700 with id null", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    client.send("{not json");
    const e = await errorFor(client);
    assert.equal(e.error.code, -32700);
    assert.equal("result" in e, false);
    await stillWorks(client);
    await client.close();
  });
});

Deno.test("a batch array and non-objects get -32600", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    for (const text of ['[{"jsonrpc":"2.0","method":"ping","id":1}]', "42", '"x"', "null"]) {
      client.send(text);
      const e = await errorFor(client);
      assert.equal(e.error.code, -32600, text);
    }
    client.send({ jsonrpc: "1.0", method: "ping", id: 5 });
    assert.equal((await errorFor(client, 5)).error.code, -32600);
    client.send({ jsonrpc: "2.0", method: 3, id: 6 });
    assert.equal((await errorFor(client, 6)).error.code, -32600);
    client.send({ jsonrpc: "2.0", method: "ping", id: { a: 1 } });
    assert.equal((await errorFor(client)).error.code, -32600);
    await stillWorks(client);
    await client.close();
  });
});

Deno.test("an unknown method gets -32601 naming it", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("launch_missiles", {});
    assert.deepEqual(r.error, {
      code: -32601,
      message: "Unknown method: launch_missiles",
      data: null,
    });
    // Inherited object keys are not methods.
    assert.equal((await client.request("constructor", {})).error.code, -32601);
    assert.equal((await client.request("__proto__", {})).error.code, -32601);
    await stillWorks(client);
    await client.close();
  });
});

Deno.test("wrong param types get -32602 with the field named", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const cases: [unknown, string][] = [
      [{ command: 5 }, "command"],
      [{ command: "true", timeout: "soon" }, "timeout"],
      [{ command: "true", timeout: -1 }, "timeout"],
      [{ command: "true", timeout: 1e12 }, "timeout"],
      [{ command: "true", idle_timeout: [] }, "idle_timeout"],
      [{ command: "true", env: { "BAD NAME": "x" } }, "env.BAD NAME"],
      [{ command: "true", env: { A: 1 } }, "env.A"],
      [{ command: "true", env: { LD_PRELOAD: "/tmp/x.so" } }, "env.LD_PRELOAD"],
      [{ command: "true", framing: "words" }, "framing"],
      [{ command: "true", cwd: "/definitely/not/here" }, "cwd"],
      [{ args: [] }, "args"],
      [{ args: ["echo"], command: "echo" }, "command"],
      [{}, "command"],
      [["echo"], "params"],
    ];
    for (const [params, field] of cases) {
      const r = await client.request("execute", params);
      assert.equal(r.error?.code, -32602, JSON.stringify(params));
      assert.equal(r.error.data.field, field, JSON.stringify(params));
      assert.equal(typeof r.error.data.reason, "string");
    }
    const control = await client.request("control", { type: "pause" });
    assert.equal(control.error.code, -32602);
    assert.equal(control.error.data.field, "type");
    await stillWorks(client);
    await client.close();
  });
});

Deno.test("an empty command gets -32001; control with nothing running gets -32002", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    for (const command of ["", "   ", "\n"]) {
      const r = await client.request("execute", { command });
      assert.deepEqual(r.error, { code: -32001, message: "Command cannot be empty", data: null });
    }
    for (const type of ["PAUSE", "RESUME", "CANCEL"]) {
      const r = await client.request("control", { type });
      assert.deepEqual(r.error, { code: -32002, message: "No process is running", data: null });
    }
    const missing = await client.request("execute", { args: ["/no/such/program"] });
    assert.equal(missing.error.code, -32602);
    await stillWorks(client);
    await client.close();
  });
});

Deno.test("a binary frame gets -32600; the session keeps working", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    client.ws.send(new Uint8Array([1, 2, 3]));
    const e = await errorFor(client);
    assert.equal(e.error.code, -32600);
    assert.match(e.error.message, /Binary/);
    await stillWorks(client);
    await client.close();
  });
});

Deno.test("an oversized frame closes the socket with 1009; the server stays up", async () => {
  await withServer({ "max-message-size": "4096" }, async (server) => {
    const client = await TestClient.open(server);
    client.send({
      jsonrpc: "2.0",
      method: "execute",
      params: { command: "x".repeat(5000) },
      id: 1,
    });
    const closed = await client.closed;
    assert.equal(closed.code, 1009);
    const again = await TestClient.open(server);
    await stillWorks(again);
    await again.close();
  });
});

/** A JSON-RPC-ish message generator: valid shapes, wrong types, junk. */
const anyJson = fc.jsonValue({ maxDepth: 3 });
const messages = fc.oneof(
  fc.string({ maxLength: 200 }),
  anyJson.map((v) => JSON.stringify(v)),
  fc.record({
    jsonrpc: fc.oneof(fc.constant("2.0"), anyJson),
    method: fc.oneof(
      fc.constantFrom("execute", "control", "hook_status", "ping", "pong", "estimate"),
      fc.string({ maxLength: 20 }),
      anyJson,
    ),
    params: fc.oneof(
      anyJson,
      fc.record({
        command: fc.oneof(fc.constantFrom("", " ", "true"), anyJson),
        timeout: fc.oneof(fc.constantFrom(null, "1", -1, 0, 1e300), anyJson),
        type: fc.oneof(fc.constantFrom("PAUSE", "RESUME", "CANCEL"), anyJson),
        args: anyJson,
        env: anyJson,
        cwd: anyJson,
        framing: anyJson,
      }, { requiredKeys: [] }),
    ),
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), anyJson),
  }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  // Mutations of a valid execute: a truncated or byte-flipped copy.
  fc.tuple(fc.nat(80), fc.nat(255)).map(([cut, byte]) => {
    const valid = '{"jsonrpc":"2.0","method":"execute","params":{"command":"true"},"id":1}';
    const chars = [...valid.slice(0, Math.max(1, valid.length - cut))];
    chars[cut % chars.length] = String.fromCharCode(byte);
    return chars.join("");
  }),
);

Deno.test("random and mutated messages never break a session (fast-check)", async () => {
  await withServer({
    "max-executions-per-session": "4",
    "kill-grace": "0.2",
    // Hundreds of messages a second: this test is about bad input, not floods.
    "msg-rate": "100000",
    "msg-burst": "100000",
  }, async (server) => {
    const client = await TestClient.open(server);
    await fc.assert(
      fc.asyncProperty(fc.array(messages, { minLength: 1, maxLength: 20 }), async (batch) => {
        for (const text of batch) client.send(text);
        // A ping with a unique id: the session answers it after all of the batch.
        const marker = `probe-${crypto.randomUUID()}`;
        const pong = await client.request("ping", {}, marker);
        assert.deepEqual(pong.result, {});
        assert.equal(client.ws.readyState, WebSocket.OPEN);
      }),
      { numRuns: 60 },
    );
    // Answers to fuzzed requests may still be queued, with ids the helper's
    // own requests will use next: drop them.
    client.drain();
    // Anything the fuzzing started is ended; then a normal execute works.
    for (;;) {
      const r = await client.request("control", { type: "CANCEL" });
      if (r.error) break;
    }
    await eventually(() => server.registry.runningCount === 0, 10_000, "the fuzzed runs to end");
    await stillWorks(client);
    await client.close();
    assert.equal((await fetch(`${server.httpUrl}/healthz`)).status, 200);
  });
});
