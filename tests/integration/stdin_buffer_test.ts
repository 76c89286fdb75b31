/**
 * `send_input` to a process that does not read its stdin: every call is
 * answered, input beyond the per-execution buffer is refused rather than
 * queued, and what was accepted is written in order once the process reads.
 */
import assert from "node:assert/strict";
import { type Msg, withServer } from "../_helpers.ts";
import { call, connectWs, readToEnd } from "../_mcp.ts";

const KiB = 1024;

async function health(httpUrl: string): Promise<Msg> {
  return await (await fetch(`${httpUrl}/health`)).json();
}

Deno.test("send_input to a process that does not read: prompt answers, a bounded buffer, refusals", async () => {
  const buffer = 256 * KiB;
  await withServer({ "stdin-buffer": String(buffer) }, async (server) => {
    const { client } = await connectWs(server);
    const started = await call(client, "start", { command: "sleep 1000", stdin_open: true });
    const id = started.s.execution_id;
    const input = "x".repeat(100 * KiB);
    let accepted = 0;
    let refused: Awaited<ReturnType<typeof call>> | null = null;
    let pendingBefore = 0;
    // The pipe takes what it holds, then nothing: sooner or later the buffer is full.
    for (let i = 0; i < 40 && refused === null; i++) {
      const r = await call(client, "send_input", { execution_id: id, input, wait_seconds: 0 });
      assert.equal(r.result.isError, true, "never written whole to a process that does not read");
      if (r.s.error.data.reason === "stdin_full") {
        refused = r;
        break;
      }
      assert.equal(r.s.error.code, -32602);
      assert.match(r.text, /not reading its stdin/);
      assert.match(r.text, /do not send it again/);
      assert.ok(r.s.bytes_pending <= buffer, `${r.s.bytes_pending} bytes pending`);
      pendingBefore = r.s.bytes_pending;
      accepted++;
    }
    assert.ok(refused !== null, "input beyond the buffer is refused");
    assert.ok(accepted >= 2, `${accepted} inputs accepted first`);
    assert.equal(refused.s.error.code, -32602);
    assert.equal(
      refused.s.error.data.bytes_pending,
      pendingBefore,
      "the refused input was not kept",
    );
    assert.match(refused.text, /not reading its stdin.*refused and nothing of it was written/);
    const h = await health(server.httpUrl);
    assert.equal(h.stdin_pending_bytes, pendingBefore);
    assert.ok(h.stdin_pending_bytes <= buffer);
    // An input larger than the buffer is refused whatever is pending.
    const huge = await call(client, "send_input", {
      execution_id: id,
      input: "y".repeat(buffer + 1),
    });
    assert.equal(huge.s.error.data.reason, "stdin_input_too_large");
    // Ending the run drops what was pending.
    await call(client, "control", { type: "CANCEL", execution_id: id });
    assert.equal((await health(server.httpUrl)).stdin_pending_bytes, 0);
    await client.close();
  });
});

Deno.test("send_input: input buffered while the process did not read is written in order once it does", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/go`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success);
    await withServer({ "output-retention": String(1024 * KiB) }, async (server) => {
      const { client } = await connectWs(server);
      // Reads its stdin only once the test opens the fifo.
      const started = await call(client, "start", {
        command: `cat ${fifo} >/dev/null; cat`,
        stdin_open: true,
      });
      const id = started.s.execution_id;
      const parts = ["a", "b", "c"].map((c) => c.repeat(200 * KiB));
      for (const input of parts) {
        const r = await call(client, "send_input", { execution_id: id, input, wait_seconds: 0 });
        assert.equal(r.result.isError, true);
        assert.equal(r.s.error.data.reason, "stdin_not_read");
      }
      // Let it read: what was accepted goes through, in order, then the close.
      const go = await Deno.open(fifo, { write: true });
      go.close();
      const last = await call(client, "send_input", {
        execution_id: id,
        input: "end\n",
        close_stdin: true,
        wait_seconds: 30,
      });
      assert.equal(last.result.isError, undefined, last.text);
      assert.equal(last.s.bytes_written, 4);
      assert.equal(last.s.bytes_pending, 0);
      assert.equal(last.s.stdin_open, false);
      const all = await readToEnd(client, id);
      assert.equal(all.stdout.length, parts.join("").length + 4);
      assert.ok(all.stdout === parts.join("") + "end\n", "every byte, in order");
      await client.close();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
