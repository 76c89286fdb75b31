/**
 * Output spill against a real server: a run longer than memory keeps reads
 * back from offset 0 byte-exact, while output memory stays in its budget.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Msg, spawnServer, withServer } from "../_helpers.ts";
import { call, connectWs } from "../_mcp.ts";
import type { ServerHandle } from "../../main.ts";
import { canBreakDisks, mountTmpfs, umount } from "../_disk.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** What `seq 1 n` prints. */
function seqText(n: number): string {
  const lines: string[] = [];
  for (let i = 1; i <= n; i++) lines.push(`${i}\n`);
  return lines.join("");
}

/** The `/health` document. */
async function health(httpUrl: string): Promise<Msg> {
  return await (await fetch(`${httpUrl}/health`)).json();
}

/** Every page of `read_output` from offset 0 to the end, as one string, and the page count. */
async function readAll(client: Parameters<typeof call>[0], id: string, onPage: () => void) {
  const parts: string[] = [];
  let offset = 0;
  let pages = 0;
  for (;;) {
    const { s } = await call(client, "read_output", {
      execution_id: id,
      offset,
      wait_seconds: 5,
    });
    assert.equal(s.skipped_bytes, 0, `nothing before ${offset} was lost`);
    parts.push(s.stdout);
    offset = s.next_offset;
    pages++;
    onPage();
    if (!s.running && s.remaining_bytes === 0) return { text: parts.join(""), pages, last: s };
  }
}

Deno.test("a 39 MB run reads back from offset 0 byte-exact, its output spilled to disk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "output_spill_it_" });
  // A dead instance's spill, left by a crash: removed at startup.
  await Deno.mkdir(`${dir}/spill/999999999-deadbeef/x.1`, { recursive: true });
  const n = 5_000_000;
  const expected = seqText(n);
  const flags = { ephemeral: "false", "data-dir": dir, "mcp-output-limit": String(256 * KiB) };
  try {
    await withServer(flags, async (server) => {
      const names = [...Deno.readDirSync(`${dir}/spill`)].map((e) => e.name);
      assert.equal(names.length, 2, "this instance's directory and lock");
      assert.ok(!names.some((n) => n.startsWith("999999999")), "the dead instance's spill is gone");
      const memory = server.metrics.outputMemory;
      let peak = 0;
      const sample = () => void (peak = Math.max(peak, memory.retained));
      const { client } = await connectWs(server);
      const started = await call(client, "start", { command: `seq 1 ${n}` });
      const id = started.s.execution_id;
      // Read while it runs, then again once it has ended: all from offset 0.
      const live = await readAll(client, id, sample);
      assert.equal(live.last.status, "completed");
      assert.ok(live.text === expected, `live read: ${live.text.length} of ${expected.length}`);
      const again = await readAll(client, id, sample);
      assert.ok(again.text === expected, `replay: ${again.text.length} of ${expected.length}`);
      assert.ok(again.pages >= expected.length / (256 * KiB));
      assert.ok(peak <= memory.budget, `output memory peaked at ${peak} of ${memory.budget}`);
      const retention = 8 * MiB;
      assert.ok(memory.retained <= retention + 256 * KiB, `${memory.retained} held after`);
      const h = await health(server.httpUrl);
      assert.ok(
        h.output_spill.bytes >= expected.length - retention,
        `${h.output_spill.bytes} on disk`,
      );
      assert.equal(h.output_spill.runs, 1);
      assert.equal(h.output_spill.open, true);
      assert.equal(h.output_spill.failed_runs, 0);
      assert.equal(h.output_memory.retained, memory.retained);
      await client.close();
    });
    assert.deepEqual([...Deno.readDirSync(`${dir}/spill`)], [], "shutdown removed the spill");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with output-spill false nothing spills: early output of a long run is a gap", async () => {
  const dir = await Deno.makeTempDir({ prefix: "output_spill_it_" });
  const flags = {
    ephemeral: "false",
    "data-dir": dir,
    "output-spill": "false",
    "output-retention": String(64 * KiB),
  };
  try {
    await withServer(flags, async (server) => {
      assert.equal(server.metrics.outputMemory.spill, null);
      const { client } = await connectWs(server);
      const r = await call(client, "execute", { command: "seq 1 100000" });
      const page = await call(client, "read_output", { execution_id: r.s.execution_id });
      assert.ok(page.s.skipped_bytes > 0, "the oldest output is gone");
      assert.equal((await health(server.httpUrl)).output_spill, null);
      await client.close();
    });
    assert.equal([...Deno.readDirSync(dir)].some((e) => e.name === "spill"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("output spills under the permissions deno task start grants, and SIGTERM removes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "output_spill_it_" });
  try {
    const server = await spawnServer({ "data-dir": dir }, {}, { script: "scripts/start.ts" });
    try {
      const { client } = await connectWs({ wsUrl: server.wsUrl } as ServerHandle);
      const r = await call(client, "execute", { command: "seq 1 2000000" });
      assert.equal(r.s.status, "completed");
      const page = await call(client, "read_output", { execution_id: r.s.execution_id });
      assert.equal(page.s.skipped_bytes, 0, "read from offset 0 after 15 MB");
      assert.ok(page.s.stdout.startsWith("1\n2\n3\n"));
      const h = await health(server.httpUrl);
      assert.equal(h.output_spill.open, true, server.output());
      assert.ok(h.output_spill.bytes > 4 * MiB, `${h.output_spill.bytes} on disk`);
      await client.close();
    } finally {
      await server.stop();
    }
    assert.deepEqual([...Deno.readDirSync(`${dir}/spill`)], [], server.output());
    assert.doesNotMatch(server.output(), /spill/i, "no spill warnings");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a full spill disk costs a run its oldest output, never the run or the server",
  ignore: !canBreakDisks,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "output_spill_it_" });
    await Deno.mkdir(`${dir}/spill`);
    await mountTmpfs(`${dir}/spill`, "1m");
    try {
      const n = 3_000_000;
      const expected = seqText(n);
      const flags = { ephemeral: "false", "data-dir": dir, "mcp-output-limit": String(256 * KiB) };
      await withServer(flags, async (server) => {
        const { client } = await connectWs(server);
        const r = await call(client, "execute", { command: `seq 1 ${n}` });
        assert.equal(r.s.status, "completed", "the run went on to its end");
        const parts: string[] = [];
        let offset = 0;
        let skipped = 0;
        for (;;) {
          const { s } = await call(client, "read_output", {
            execution_id: r.s.execution_id,
            offset,
          });
          skipped += s.skipped_bytes;
          parts.push(s.stdout);
          offset = s.next_offset;
          if (s.remaining_bytes === 0) break;
        }
        const text = parts.join("");
        assert.ok(skipped > 0, "what only the disk held is a gap");
        assert.equal(skipped + text.length, expected.length);
        assert.ok(expected.endsWith(text), "the rest reads back exact");
        const h = await health(server.httpUrl);
        assert.equal(h.status, "healthy");
        assert.equal(h.output_spill.failed_runs, 1);
        assert.equal(h.output_spill.bytes, 0);
        // The next run spills again as far as the disk lets it, and still completes.
        const again = await call(client, "execute", { command: "seq 1 2000000" });
        assert.equal(again.s.status, "completed");
        await client.close();
      });
    } finally {
      await umount(`${dir}/spill`);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
