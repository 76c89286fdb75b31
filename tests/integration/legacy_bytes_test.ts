/**
 * What the legacy protocol gives clients that need exact bytes (the CLI):
 * `encoding: "base64"` output, live and replayed; `attach` with
 * `tail_bytes`; `input` into a run kept open with `stdin_open`, resent
 * safely by `offset`, its reply waiting for the child without holding a
 * CANCEL back; and a client's own, shorter `detach_timeout`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Msg, TestClient, withServer } from "../_helpers.ts";
import { concat } from "../_cli.ts";

/** Output messages of `executionId` until its `process.completed`. */
async function collect(client: TestClient, executionId: string) {
  const out: Msg[] = [];
  for (;;) {
    const m = await client.next((x) => x.params?.execution_id === executionId);
    if (m.method === "process.output") out.push(m.params);
    if (m.method === "process.completed") return { out, completed: m.params };
  }
}

/** The bytes of base64 output messages, in order. */
function bytesOf(out: Msg[]): Uint8Array {
  return concat(out.map((p) => Uint8Array.fromBase64(p.data)));
}

Deno.test("legacy encoding base64: invalid UTF-8 arrives exactly, live and replayed; tail_bytes", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    // ff fe: not UTF-8; c3 a9: "é"; then a line.
    const reply = await client.request("execute", {
      command: "printf '\\377\\376\\303\\251ok\\n'",
      encoding: "base64",
      detach: true,
    });
    const id = reply.result.execution_id;
    const live = await collect(client, id);
    assert.ok(live.out.every((p) => p.encoding === "base64"));
    const expected = new Uint8Array([0xff, 0xfe, 0xc3, 0xa9, 0x6f, 0x6b, 0x0a]);
    assert.deepEqual(bytesOf(live.out), expected);
    const replay = await client.request("attach", { execution_id: id, encoding: "base64" });
    assert.equal(replay.result.from_seq, 0);
    assert.equal(typeof replay.result.started_at, "string");
    assert.deepEqual(bytesOf((await collect(client, id)).out), expected);
    // tail_bytes: the last 3 bytes ("ok\n").
    const tail = await client.request("attach", { execution_id: id, tail_bytes: 3 });
    assert.equal(tail.result.from_seq, 4);
    const text = (await collect(client, id)).out.map((p) => p.data).join("");
    assert.equal(text, "ok\n", "without encoding, text as before");
    const both = await client.request("attach", { execution_id: id, tail_bytes: 1, from_seq: 0 });
    assert.equal(both.error.code, -32602);
    await client.close();
  });
});

Deno.test("legacy input: bytes to an open stdin, resent by offset without doubling, then closed", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", { args: ["cat"], stdin_open: true });
    const id = r.result.execution_id;
    const first = await client.request("input", { execution_id: id, data: "abc", offset: 0 });
    assert.equal(first.result.accepted, 3);
    // A resend after a lost reply: the overlap is skipped.
    const again = await client.request("input", {
      execution_id: id,
      data_base64: new TextEncoder().encode("abcdef").toBase64(),
      offset: 0,
    });
    assert.equal(again.result.bytes_written, 3);
    assert.equal(again.result.accepted, 6);
    const ahead = await client.request("input", { execution_id: id, data: "x", offset: 10 });
    assert.equal(ahead.error.code, -32602);
    assert.equal(ahead.error.data.accepted, 6);
    const closed = await client.request("input", { execution_id: id, close: true, offset: 6 });
    assert.equal(closed.result.stdin_open, false);
    const { out, completed } = await collect(client, id);
    assert.equal(out.map((p) => p.data).join(""), "abcdef");
    assert.equal(completed.exit_code, 0);
    const late = await client.request("input", { execution_id: id, data: "z" });
    assert.equal(late.error.code, -32002);
    await client.close();
  });
});

Deno.test("legacy input: a child that does not read holds its reply, not a CANCEL after it", async () => {
  await withServer({ "stdin-buffer": "1048576" }, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", { args: ["sleep", "30"], stdin_open: true });
    const id = r.result.execution_id;
    // More than a pipe holds: the reply waits for a reader that never comes.
    client.send({
      jsonrpc: "2.0",
      id: "in",
      method: "input",
      params: { execution_id: id, data: "x".repeat(512 * 1024) },
    });
    const cancel = await client.request("control", { type: "CANCEL", execution_id: id });
    assert.equal(cancel.result.status, "canceled");
    const input = await client.next((m) => m.id === "in");
    assert.equal(input.error.code, -32002, "the run ended before its child took the input");
    await client.next((m) => m.method === "process.completed");
    await client.close();
  });
});

Deno.test("legacy detach_timeout: a run nobody attaches to ends after the client's shorter wait", async () => {
  await withServer({ "detach-timeout": "3600" }, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", {
      args: ["sleep", "30"],
      detach: true,
      detach_timeout: 0.5,
    });
    const exec = server.registry.get(r.result.execution_id)!;
    await client.close();
    const exit = await exec.done;
    assert.equal(exit.status, "canceled");
    assert.match(exit.error ?? "", /detach/i);
  });
});

Deno.test("legacy window and ack: a detached run is held to what the client acknowledges", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", {
      args: ["head", "-c", "2000000", "/dev/zero"],
      detach: true,
      window: 65536,
      hold: true,
    });
    const id = r.result.execution_id;
    let received = 0;
    const take = async () => {
      const m = await client.next((x) => x.params?.execution_id === id);
      if (m.method === "process.output") received += m.params.bytes;
      return m;
    };
    while (received < 65536) await take();
    // Unacknowledged: the run waits on its pipe (at most one read past the window comes).
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const m of client.pending()) {
      if (m.params?.execution_id === id && m.method === "process.output") {
        received += m.params.bytes;
      }
    }
    client.drain();
    assert.ok(received < 65536 + 2 * 65536, `${received} bytes sent past a 64 KiB window`);
    assert.equal(server.registry.get(id)!.active, true);
    // Acknowledging everything as it comes lets it run to the end, every byte there.
    for (;;) {
      client.send({ jsonrpc: "2.0", method: "ack", params: { execution_id: id, seq: received } });
      const m = await take();
      if (m.method === "process.completed") break;
    }
    assert.equal(received, 2_000_000);
    await client.close();
  });
});

Deno.test("legacy execution_id: a client's own id, never one in use", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const id = crypto.randomUUID();
    const r = await client.request("execute", { args: ["sleep", "30"], execution_id: id });
    assert.equal(r.result.execution_id, id);
    // Another connection (one run at a time per legacy session) cannot take it either.
    const other = await TestClient.open(server);
    const again = await other.request("execute", { args: ["true"], execution_id: id });
    assert.equal(again.error.code, -32602);
    assert.equal(again.error.data.field, "execution_id");
    const bad = await other.request("execute", { args: ["true"], execution_id: "mine" });
    assert.equal(bad.error.code, -32602);
    assert.equal(bad.error.data.field, "execution_id");
    await client.request("control", { type: "CANCEL", execution_id: id });
    await other.close();
    await client.close();
  });
});

Deno.test("legacy hold: the run waits for its holder to come back; a window alone holds nothing", async () => {
  await withServer({}, async (server) => {
    const a = await TestClient.open(server);
    const r = await a.request("execute", {
      args: ["head", "-c", "3000000", "/dev/zero"],
      detach: true,
      window: 65536,
      hold: true,
    });
    const id = r.result.execution_id;
    await a.next((m) => m.method === "process.output" && m.params.execution_id === id);
    const exec = server.registry.get(id)!;
    // The holder goes away: the run keeps waiting for it (a pipe's worth read at most).
    a.ws.close();
    await a.closed;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(exec.active, true);
    assert.ok(exec.output.next < 512 * 1024, `${exec.output.next} bytes read while away`);
    // Back, from where it was: the rest, every byte.
    const b = await TestClient.open(server);
    const back = await b.request("attach", {
      execution_id: id,
      from_seq: 0,
      window: 65536,
      hold: true,
    });
    assert.equal(back.result.from_seq, 0);
    let received = 0;
    for (;;) {
      const m = await b.next((x) => x.params?.execution_id === id);
      if (m.method === "process.output") {
        received += m.params.bytes;
        b.send({ jsonrpc: "2.0", method: "ack", params: { execution_id: id, seq: received } });
      }
      if (m.method === "process.completed") break;
    }
    assert.equal(received, 3_000_000);
    // A window without hold: the run is not held, though nothing is acknowledged.
    const c = await b.request("execute", {
      args: ["head", "-c", "3000000", "/dev/zero"],
      detach: true,
      window: 65536,
    });
    const free = server.registry.get(c.result.execution_id)!;
    const exit = await free.done;
    assert.equal(exit.exitCode, 0);
    assert.equal(free.output.next, 3_000_000);
    await b.close();
  });
});

/** Starts a held, detached `yes` whose client never acknowledges; returns its id. */
async function heldRun(client: TestClient, params: Record<string, unknown> = {}) {
  const r = await client.request("execute", {
    args: ["yes"],
    detach: true,
    window: 65536,
    hold: true,
    ...params,
  });
  const id = r.result.execution_id;
  await client.next((m) => m.method === "process.output" && m.params.execution_id === id);
  return id as string;
}

Deno.test("legacy hold: a holder that never acks keeps neither a CANCEL nor a time limit from ending the run", async () => {
  await withServer({ "kill-grace": "1" }, async (server) => {
    const holder = await TestClient.open(server);
    const other = await TestClient.open(server);
    const id = await heldRun(holder);
    const cancel = await other.request("control", { type: "CANCEL", execution_id: id });
    assert.equal(cancel.result.status, "canceled");
    assert.equal((await server.registry.get(id)!.done).status, "canceled");
    const timed = await heldRun(other, { timeout: 0.5 });
    assert.equal((await server.registry.get(timed)!.done).status, "timeout");
    await holder.close();
    await other.close();
  });
});

Deno.test("legacy window: a client that leaves without acking does not keep its run from ending", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", { args: ["yes"], window: 65536 });
    const id = r.result.execution_id;
    await client.next((m) => m.method === "process.output" && m.params.execution_id === id);
    const exec = server.registry.get(id)!;
    client.ws.close();
    await client.closed;
    assert.equal((await exec.done).status, "canceled");
  });
});

Deno.test("legacy hold: a new holder takes over from one still connected that does not ack", async () => {
  await withServer({}, async (server) => {
    const stale = await TestClient.open(server);
    const id = await heldRun(stale);
    const fresh = await TestClient.open(server);
    const a = await fresh.request("attach", {
      execution_id: id,
      tail_bytes: 0,
      window: 65536,
      hold: true,
    });
    let at = a.result.from_seq as number;
    // Acknowledging as it comes, it gets well past what the stale holder let through.
    while (at < a.result.next_seq + 1_000_000) {
      const m = await fresh.next((x) =>
        x.method === "process.output" && x.params.execution_id === id
      );
      at = m.params.seq + m.params.bytes;
      fresh.send({ jsonrpc: "2.0", method: "ack", params: { execution_id: id, seq: at } });
    }
    // The stale one leaves: the run goes on at the fresh one's pace.
    stale.ws.close();
    await stale.closed;
    const target = at + 1_000_000;
    while (at < target) {
      const m = await fresh.next((x) =>
        x.method === "process.output" && x.params.execution_id === id
      );
      at = m.params.seq + m.params.bytes;
      fresh.send({ jsonrpc: "2.0", method: "ack", params: { execution_id: id, seq: at } });
    }
    const bad = await fresh.request("input", { execution_id: id, data_base64: "A" });
    assert.equal(bad.error.code, -32602);
    await fresh.request("control", { type: "CANCEL", execution_id: id });
    await fresh.close();
  });
});
