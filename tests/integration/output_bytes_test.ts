/**
 * Retained output is kept as bytes and decoded only when read: against a
 * real server, `read_output` pages of any size reassemble a large output
 * with multi-byte characters exactly, however the chunks and pages fall.
 */
import assert from "node:assert/strict";
import { withServer } from "../_helpers.ts";
import { call, connectWs } from "../_mcp.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { ignoreBOM: true });

/** Text of about `size` bytes: lines of varied length (some far over 256 bytes) of 1- to 4-byte characters. */
function text(size: number, seed: number): string {
  const words = ["a", "bc", "é", "€uro", "😀", "日本語", "ß", "x".repeat(40), "\ufeff"];
  let out = "";
  let n = seed;
  while (enc.encode(out).length < size) {
    n = (n * 1103515245 + 12345) % 2147483648;
    const len = n % 97 === 0 ? 900 : n % 80;
    let line = "";
    for (let i = 0; i < len; i++) line += words[(n + i * 31) % words.length];
    out += line + "\n";
  }
  return out;
}

/** Reads everything from `offset` with pages of `maxBytes`, checking each page's bounds. */
async function readAll(
  client: Awaited<ReturnType<typeof connectWs>>["client"],
  id: string,
  maxBytes: number,
  offset = 0,
) {
  let stdout = "";
  let stderr = "";
  let first: { offset: number; skipped: number } | null = null;
  for (;;) {
    const { s } = await call(client, "read_output", {
      execution_id: id,
      offset,
      max_bytes: maxBytes,
    });
    first ??= { offset: s.offset, skipped: s.skipped_bytes };
    const bytes = enc.encode(s.stdout).length + enc.encode(s.stderr).length;
    assert.ok(bytes <= maxBytes, `a page of ${bytes} bytes over ${maxBytes}`);
    assert.equal(s.next_offset - s.offset, bytes, "the page's offsets count its bytes exactly");
    stdout += s.stdout;
    stderr += s.stderr;
    offset = s.next_offset;
    if (s.remaining_bytes === 0) return { stdout, stderr, first: first! };
  }
}

Deno.test("read_output pages reassemble a large multi-byte output byte for byte", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = text(300_000, 1);
    const err = text(40_000, 2);
    await Deno.writeTextFile(`${dir}/out.txt`, out);
    await Deno.writeTextFile(`${dir}/err.txt`, err);
    // Small chunks and lines split at 256 bytes: many chunks, cut between characters.
    const flags = {
      "chunk-size": "256",
      "line-limit": "256",
      "output-retention": "1048576",
      // Thousands of small pages: not what the message rate limit is for.
      "msg-rate": "100000",
      "msg-burst": "100000",
    };
    await withServer(flags, async (server) => {
      const { client } = await connectWs(server);
      const run = await call(client, "execute", {
        command: `cat out.txt; cat err.txt >&2; printf 'end €'`,
        cwd: dir,
      });
      assert.equal(run.s.status, "completed");
      const id = run.s.execution_id;
      const total = enc.encode(out).length + enc.encode(err).length + enc.encode("end €").length;
      assert.equal(run.s.next_offset, total);
      // The execute result's tail is the exact end of each stream.
      assert.ok((out + "end €").endsWith(run.s.stdout));
      assert.ok(err.endsWith(run.s.stderr));
      for (const size of [256, 1000, 4099, 32768]) {
        const all = await readAll(client, id, size);
        assert.equal(all.first.skipped, 0);
        assert.equal(all.stdout, out + "end €", `stdout in pages of ${size}`);
        assert.equal(all.stderr, err, `stderr in pages of ${size}`);
      }
      // An offset inside a character starts at the next one, and says so.
      const bytes = enc.encode(out);
      const euro = bytes.indexOf(0xe2);
      const odd = await call(client, "read_output", {
        execution_id: id,
        offset: euro + 1,
        max_bytes: 256,
      });
      assert.equal(odd.s.offset, euro + 3);
      assert.ok(odd.s.stdout.length > 0);
      assert.ok(dec.decode(bytes.subarray(euro + 3)).startsWith(odd.s.stdout));
      await client.close();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("output-retention keeps the newest bytes of a run, exactly, and counts the rest as skipped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = text(200_000, 3);
    await Deno.writeTextFile(`${dir}/out.txt`, out);
    const bytes = enc.encode(out);
    await withServer(
      { "output-retention": "65536", "chunk-size": "4096", "line-limit": "4096" },
      async (server) => {
        const { client } = await connectWs(server);
        const run = await call(client, "execute", { args: ["cat", "out.txt"], cwd: dir });
        const all = await readAll(client, run.s.execution_id, 8192);
        const kept = bytes.length - all.first.skipped;
        assert.ok(kept <= 65536 && kept > 0, `kept ${kept} bytes`);
        assert.equal(all.first.offset, all.first.skipped);
        // Dropping is by whole chunks, which end between characters: the rest decodes exactly.
        assert.equal(all.stdout, dec.decode(bytes.subarray(all.first.skipped)));
        await client.close();
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
