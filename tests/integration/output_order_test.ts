/**
 * Output flags and order against a running server (PROTOCOL.md part 3,
 * "Output order and framing details"): a partial line flushed after quiet is
 * not a split, a long line still is, and stdout and stderr are sent in the
 * order they were read.
 */
import assert from "node:assert/strict";
import { type Msg, python3, TestClient, withServer } from "../_helpers.ts";

const python = python3;

const flags = (m: Msg) => [m.params.truncated, m.params.chunk_index, m.params.total_chunks];

Deno.test("a partial line sent after quiet has truncated:false and chunk_index:null", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withServer({}, async (server) => {
      const client = await TestClient.open(server);
      // The child goes on only once the test has seen the prompt: no race on timing.
      const go = `${dir}/go`;
      const r = await client.request("execute", {
        command: `printf 'prompt> '; while [ ! -e '${go}' ]; do sleep 0.01; done; echo done`,
      });
      const id = r.result.execution_id;
      const prompt = await client.event("output", id);
      assert.equal(prompt.params.data, "prompt> ");
      assert.deepEqual(flags(prompt), [false, null, null]);
      await Deno.writeTextFile(go, "");
      const rest = await client.event("output", id);
      assert.equal(rest.params.data, "done\n");
      assert.deepEqual(flags(rest), [false, null, null]);
      assert.equal((await client.event("completed", id)).params.status, "completed");
      await client.close();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a line longer than line-limit is still split into flagged, counted pieces", async () => {
  await withServer({ "chunk-size": "256", "line-limit": "256" }, async (server) => {
    const client = await TestClient.open(server);
    // One write of 1001 bytes (below PIPE_BUF, so one read): 1000 digits and a newline.
    const run = await client.run({ command: "printf '%01000d\\n' 0" });
    const pieces = run.events.filter((e) => e.method === "process.output");
    assert.equal(pieces.map((p) => p.params.data).join(""), "0".repeat(1000) + "\n");
    assert.ok(pieces.length >= 4, `expected at least 4 pieces, got ${pieces.length}`);
    pieces.forEach((p, i) => {
      const last = i === pieces.length - 1;
      assert.deepEqual(flags(p), [!last, i, last ? pieces.length : null], `piece ${i}`);
    });
    assert.equal(pieces[0].params.data.length, 256);
    await client.close();
  });
});

Deno.test({
  name: "stdout and stderr are sent in the order they were read, partial lines included",
  ignore: python === null,
  fn: async () => {
    // Each write waits until the server has read it off the pipe (FIONREAD
    // reports an empty pipe), so the order of the reads is known. A long
    // flush-interval keeps partial lines held back unless the other stream
    // forces them out.
    const script = `
import fcntl, os, struct, termios, time
def put(fd, text):
    os.write(fd, text.encode())
    while struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\\0" * 4))[0] > 0:
        time.sleep(0.002)
    time.sleep(0.02)
put(1, "a"); put(2, "b"); put(1, "c"); put(2, "d\\n"); put(1, "e\\n")
`;
    await withServer({ "flush-interval": "1000" }, async (server) => {
      const client = await TestClient.open(server);
      const run = await client.run({ args: [python!, "-c", script] });
      assert.equal(run.completed.status, "completed", run.stderr);
      const sent = run.events.filter((e) => e.method === "process.output")
        .map((e) => [e.params.type, e.params.data]);
      assert.deepEqual(sent, [
        ["stdout", "a"],
        ["stderr", "b"],
        ["stdout", "c"],
        ["stderr", "d\n"],
        ["stdout", "e\n"],
      ]);
      for (const e of run.events.filter((x) => x.method === "process.output")) {
        assert.deepEqual(flags(e), [false, null, null]);
      }
      await client.close();
    });
  },
});
