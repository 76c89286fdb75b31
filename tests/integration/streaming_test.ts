import assert from "node:assert/strict";
import { RawWebSocket } from "../_raw_ws.ts";
import {
  eventually,
  pidsWithMarker,
  rssOf,
  spawnServer,
  TestClient,
  withServer,
} from "../_helpers.ts";

const MiB = 1024 * 1024;

/**
 * Writes a valid UTF-8 text file of about `bytes` bytes: lines of varied
 * length with multi-byte characters. An odd-sized block is repeated, so
 * character boundaries fall at every offset relative to pipe reads.
 */
async function makeTextFile(path: string, bytes: number): Promise<Uint8Array> {
  const words = ["alpha", "βeta", "gamma€", "😀delta", "epsilon", "ж", "\t"];
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < 1_000_003; i++) {
    const parts = [`${i}:`];
    for (let w = 0; w < (i * 7919) % 40; w++) parts.push(words[(i + w) % words.length]!);
    const line = parts.join(" ") + "\n";
    lines.push(line);
    size += line.length;
  }
  const block = new TextEncoder().encode(lines.join(""));
  const count = Math.ceil(bytes / block.length);
  const out = new Uint8Array(block.length * count);
  for (let i = 0; i < count; i++) out.set(block, i * block.length);
  await Deno.writeFile(path, out);
  return out;
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Collects one stream's data as UTF-8 bytes. */
function collector() {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let size = 0;
  return {
    add(data: string) {
      const b = enc.encode(data);
      parts.push(b);
      size += b.length;
    },
    bytes(): Uint8Array<ArrayBuffer> {
      const out = new Uint8Array(size);
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    },
  };
}

Deno.test("64 MiB on stdout and 8 MiB on stderr at once arrive whole (sha256)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const big = await makeTextFile(`${dir}/big.txt`, 64 * MiB);
    const small = await makeTextFile(`${dir}/small.txt`, 8 * MiB);
    await withServer({}, async (server) => {
      const client = await TestClient.open(server);
      const out = collector();
      const err = collector();
      let seqOk = true;
      let nextSeq = 0;
      let maxFrame = 0;
      client.ws.addEventListener("message", (e) => {
        const text = String(e.data);
        maxFrame = Math.max(maxFrame, text.length);
        if (!text.includes('"process.output"')) return;
        const m = JSON.parse(text);
        (m.params.type === "stdout" ? out : err).add(m.params.data);
        if (m.params.seq !== nextSeq) seqOk = false;
        nextSeq = m.params.seq + new TextEncoder().encode(m.params.data).length;
      });
      const r = await client.request("execute", {
        command: `cat '${dir}/big.txt' & cat '${dir}/small.txt' >&2 & wait`,
      });
      const done = await client.event("completed", r.result.execution_id, 120_000);
      assert.equal(done.params.status, "completed");
      const gotOut = out.bytes();
      const gotErr = err.bytes();
      assert.equal(gotOut.length, big.length, "stdout bytes lost");
      assert.equal(gotErr.length, small.length, "stderr bytes lost");
      assert.equal(await sha256(gotOut), await sha256(big.slice()));
      assert.equal(await sha256(gotErr), await sha256(small.slice()));
      assert.ok(seqOk, "seq is the running byte offset across both streams");
      assert.ok(maxFrame <= MiB, `a frame of ${maxFrame} chars exceeds 1 MiB`);
      // The received messages were dropped by the test; free them before the next test.
      client.received.length = 0;
      await client.close();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a silent stdout never blocks a flooding stderr (no 64 KiB pipe deadlock)", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const run = await client.run({
      command: "head -c 4000000 /dev/zero | tr '\\0' e >&2; echo done",
      timeout: 30,
    });
    assert.equal(run.completed.status, "completed");
    assert.equal(run.stderr.length, 4_000_000);
    assert.equal(run.stdout, "done\n");
    await client.close();
  });
});

Deno.test("a character split across writes survives; invalid bytes become U+FFFD", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const split = await client.run({
      command: "printf '\\342\\202'; sleep 0.2; printf '\\254\\n'",
    });
    assert.equal(split.stdout, "€\n");
    const invalid = await client.run({ command: "printf 'a\\377b\\n\\300'" });
    assert.equal(invalid.stdout, "a\uFFFDb\n\uFFFD");
    await client.close();
  });
});

Deno.test("a prompt without a newline is flushed promptly, not held for the newline", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const r = await client.request("execute", { command: "printf 'Password: '; sleep 1000" });
    const prompt = await client.event("output", r.result.execution_id, 5000);
    assert.equal(prompt.params.data, "Password: ");
    await client.request("control", { type: "CANCEL" });
    await client.event("completed");
    await client.close();
  });
});

Deno.test("a slow reader blocks the child, not the server's memory", async () => {
  const server = await spawnServer({ "high-water-mark": String(1 * MiB) });
  const marker = `slowreader${Date.now()}`;
  try {
    const raw = await RawWebSocket.connect(server.wsUrl);
    assert.match(await raw.readText(), /"connected"/);
    await raw.sendText(JSON.stringify({
      jsonrpc: "2.0",
      method: "execute",
      params: { command: `yes ${marker}${"x".repeat(100)}` },
      id: 1,
    }));
    assert.match(await raw.readText(), /"started"/);
    // Measure from the steady state: the socket's queue has filled and back-pressure holds `yes`.
    await eventually(
      async () => {
        const h = await (await fetch(`${server.httpUrl}/health`)).json();
        return h.backpressure_waits > 0;
      },
      10_000,
      "back-pressure",
    );
    const before = await rssOf(server.pid);
    // Read ~1 MB/s for 4 s while `yes` could write gigabytes.
    let read = 0;
    for (let i = 0; i < 64; i++) {
      read += await raw.drain(64 * 1024);
      // The slow reader is what is tested: it reads at a set rate, not on an event.
      await new Promise((r) => setTimeout(r, 62));
    }
    const after = await rssOf(server.pid);
    const health = await (await fetch(`${server.httpUrl}/health`)).json();
    assert.ok(read >= 4 * MiB, `read ${read}`);
    assert.ok(health.backpressure_waits > 0, "back-pressure engaged");
    assert.ok(health.bytes_streamed < read + 16 * MiB, `streamed ${health.bytes_streamed}`);
    assert.ok(
      after - before < 48 * MiB,
      `server RSS grew ${((after - before) / MiB).toFixed(1)} MiB while the client read slowly`,
    );
    // Disconnecting ends the run: the writer is gone.
    assert.ok((await pidsWithMarker(marker)).length >= 1);
    raw.close();
    await eventually(async () => (await pidsWithMarker(marker)).length === 0, 10_000, "yes gone");
  } finally {
    await server.stop();
  }
});
