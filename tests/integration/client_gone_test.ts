/**
 * Output nobody will receive costs nothing: a run whose client has gone
 * neither encodes nor decodes its output, and leaves its child blocked on
 * the pipe while it is being ended; output that only goes to the retained
 * bytes is never decoded.
 */
import assert from "node:assert/strict";
import { eventually, type Msg, TestClient, withServer } from "../_helpers.ts";
import { call, connectWs } from "../_mcp.ts";

async function health(httpUrl: string): Promise<Msg> {
  return await (await fetch(`${httpUrl}/health`)).json();
}

Deno.test("a legacy run whose client has gone encodes, decodes and reads no more output", async () => {
  // The command ignores SIGTERM, so it lives on for the kill grace after the disconnect.
  await withServer({ "kill-grace": "1" }, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", { command: "trap '' TERM; yes" });
    const id = r.result.execution_id;
    await client.event("output", id);
    await client.close();
    // The server has noticed: the session is gone, its socket writer closed.
    await eventually(async () => (await health(server.httpUrl)).active_sessions === 0);
    const gone = await health(server.httpUrl);
    const exec = server.registry.get(id)!;
    const exit = await exec.done;
    assert.equal(exit.signal, "SIGKILL", "yes ignored SIGTERM for the whole grace");
    const after = await health(server.httpUrl);
    assert.equal(
      after.messages_sent,
      gone.messages_sent,
      "nothing encoded or sent after the close",
    );
    assert.equal(after.output_decoded_bytes, gone.output_decoded_bytes, "nothing decoded");
    assert.ok(after.messages_dropped >= 1, "process.completed was dropped unencoded");
    // The child was left blocked on its pipe: only what the pipe held was read.
    const read = after.bytes_streamed - gone.bytes_streamed;
    assert.ok(read <= 1024 * 1024, `${read} bytes read after the disconnect`);
  });
});

Deno.test("output that only goes to the retained bytes is never decoded", async () => {
  await withServer({}, async (server) => {
    const { client } = await connectWs(server);
    const started = await call(client, "start", {
      command: "head -c 2000000 /dev/zero | tr '\\0' x",
    });
    const id = started.s.execution_id;
    const end = await call(client, "read_output", {
      execution_id: id,
      offset: 2_000_000,
      wait_seconds: 30,
    });
    assert.equal(end.s.running, false);
    const h = await health(server.httpUrl);
    assert.equal(h.bytes_streamed, 2_000_000);
    assert.equal(h.output_decoded_bytes, 0, "no live event was decoded");
    // Reading decodes what it returns, and only that.
    const page = await call(client, "read_output", { execution_id: id, offset: 1_999_990 });
    assert.equal(page.s.stdout, "x".repeat(10));
    await client.close();
  });
});
