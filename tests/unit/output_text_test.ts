import assert from "node:assert/strict";
import { OutputLog } from "../../lib/output/output_log.ts";
import { readOutput, tailOutput } from "../../lib/output/text.ts";
import { utf8Length } from "../../lib/utf8.ts";
import type { StreamName } from "../../lib/types.ts";

const enc = new TextEncoder();

/** A log holding `parts` in order, as an execution would append them. */
function logOf(parts: [StreamName, string][], limit = 1 << 20): OutputLog {
  const log = new OutputLog(limit);
  let seq = 0;
  for (const [stream, text] of parts) {
    const data = enc.encode(text);
    const bytes = data.length;
    log.append({ stream, seq, bytes, truncated: false, chunkIndex: null, totalChunks: null }, data);
    seq += bytes;
  }
  return log;
}

Deno.test("utf8Length() matches TextEncoder, lone surrogates included", () => {
  for (const s of ["", "abc", "é", "€", "😀", "a😀b", "\ud800", "x\udc00y", "\ud800\ud800"]) {
    assert.equal(utf8Length(s), enc.encode(s).length, JSON.stringify(s));
  }
});

Deno.test("readOutput() pages through both streams in order and reports what is left", () => {
  const log = logOf([["stdout", "one\n"], ["stderr", "err\n"], ["stdout", "two\n"]]);
  const all = readOutput(log, 0, 1000);
  assert.deepEqual(
    { stdout: all.stdout, stderr: all.stderr, next: all.next, remaining: all.remaining },
    { stdout: "one\ntwo\n", stderr: "err\n", next: 12, remaining: 0 },
  );
  const first = readOutput(log, 0, 6);
  assert.equal(first.stdout, "one\n");
  assert.equal(first.stderr, "er");
  assert.equal(first.next, 6);
  assert.equal(first.remaining, 6);
  const second = readOutput(log, first.next, 6);
  assert.equal(second.stderr, "r\n");
  assert.equal(second.stdout, "two\n");
  assert.equal(second.remaining, 0);
  // Past the end: nothing, and the offset is the end.
  const past = readOutput(log, 99, 10);
  assert.deepEqual([past.stdout, past.stderr, past.next], ["", "", 12]);
});

Deno.test("readOutput() never splits a character, and resumes past one cut across", () => {
  const log = logOf([["stdout", "a€b😀c"]]); // 1 + 3 + 1 + 4 + 1 bytes
  const p1 = readOutput(log, 0, 3);
  assert.equal(p1.stdout, "a", "€ does not fit in the 2 bytes left");
  assert.equal(p1.next, 1);
  const p2 = readOutput(log, p1.next, 5);
  assert.equal(p2.stdout, "€b");
  const p3 = readOutput(log, p2.next, 4);
  assert.equal(p3.stdout, "😀");
  // An offset inside a character starts after it, and the page says where its text starts.
  const odd = readOutput(log, 2, 100);
  assert.equal(odd.stdout, "b😀c");
  assert.equal(odd.start, 4);
});

Deno.test("readOutput() from among stray bytes keeps them: they are text of their own", () => {
  const bytes = new Uint8Array([0x61, 0x82, 0xac, 0x62]); // a, two continuation bytes with no lead, b
  const log = new OutputLog(1024);
  log.append({
    stream: "stdout",
    seq: 0,
    bytes: 4,
    truncated: false,
    chunkIndex: null,
    totalChunks: null,
  }, bytes);
  const page = readOutput(log, 1, 100);
  assert.equal(page.start, 1);
  assert.equal(page.stdout, "\ufffd\ufffdb");
});

Deno.test("readOutput() counts bytes no longer retained as skipped", () => {
  const log = logOf([["stdout", "0123456789"], ["stdout", "abcdefghij"]], 10);
  const page = readOutput(log, 0, 100);
  assert.equal(page.skipped, 10);
  assert.equal(page.start, 10);
  assert.equal(page.stdout, "abcdefghij");
});

Deno.test("tailOutput() keeps the newest bytes of each stream, whole characters only", () => {
  const log = logOf([
    ["stdout", "first line\n"],
    ["stderr", "warning\n"],
    ["stdout", "second é\n"],
  ]);
  const tail = tailOutput(log, 8);
  assert.equal(tail.stdout, "cond é\n");
  assert.equal(tail.kept.stdout, 8);
  assert.equal(tail.stderr, "warning\n");
  assert.equal(tail.kept.stderr, 8);
  assert.equal(tail.next, log.next);
  // Cutting at 2 bytes of "é\n" (3 bytes) cannot keep half the é.
  const tiny = tailOutput(logOf([["stdout", "é\n"]]), 2);
  assert.equal(tiny.stdout, "\n");
  assert.equal(tiny.kept.stdout, 1);
  const whole = tailOutput(log, 1000);
  assert.equal(whole.stdout, "first line\nsecond é\n");
});

Deno.test("readOutput() pages of any size reassemble the output byte for byte", () => {
  // Characters of 1 to 4 bytes, a BOM, and chunks of both streams cut between characters.
  const out = "\ufeffa€b😀c".repeat(40) + "ß\n";
  const err = "日本語😀".repeat(30);
  const parts: [StreamName, string][] = [];
  for (let i = 0; i < out.length;) {
    const n = 1 + (i % 7);
    // Never cut a surrogate pair: a chunk holds whole characters.
    const end = Math.min(
      out.length,
      i + n + (/[\ud800-\udbff]/.test(out[i + n - 1] ?? "") ? 1 : 0),
    );
    parts.push(["stdout", out.slice(i, end)]);
    if (parts.length % 5 === 0) parts.push(["stderr", err.slice(0, 12)]);
    i = end;
  }
  const log = logOf(parts);
  const stderr = parts.filter(([s]) => s === "stderr").map(([, t]) => t).join("");
  for (const size of [4, 5, 7, 13, 256]) {
    let offset = 0;
    let o = "";
    let e = "";
    for (;;) {
      const page = readOutput(log, offset, size);
      assert.ok(page.next > offset || page.remaining === 0, "every page makes progress");
      o += page.stdout;
      e += page.stderr;
      offset = page.next;
      if (page.remaining === 0) break;
    }
    assert.equal(o, out, `stdout with pages of ${size}`);
    assert.equal(e, stderr, `stderr with pages of ${size}`);
  }
});
