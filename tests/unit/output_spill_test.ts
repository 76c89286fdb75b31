import assert from "node:assert/strict";
import { configure, reset } from "@logtape/logtape";
import { OutputMemory } from "../../lib/output/memory.ts";
import { OutputLog } from "../../lib/output/output_log.ts";
import { LARGE_BUFFER_BYTES, SpillStore, WRITE_QUEUE } from "../../lib/output/spill.ts";
import { readOutput, tailOutput } from "../../lib/output/text.ts";
import { canBreakDisks, chattr } from "../_disk.ts";
import { appendChunk as add } from "../_output.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const enc = new TextEncoder();

/** A budget whose logs spill into a fresh temporary directory. */
function spilling(budget = 64 * MiB, options: { perRun?: number; total?: number } = {}) {
  const dir = Deno.makeTempDirSync({ prefix: "output_spill_test_" });
  const memory = new OutputMemory({ budget });
  const store = SpillStore.open({
    dir,
    perRun: options.perRun ?? 256 * MiB,
    total: options.total ?? 2048 * MiB,
  });
  memory.spill = store;
  return {
    memory,
    store,
    [Symbol.dispose]() {
      store.close();
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** `seq 1 n`-like output cut into chunks of at most `size` bytes (on line ends). */
function* seqChunks(totalBytes: number, size = 64 * KiB): Generator<Uint8Array> {
  let i = 1;
  let made = 0;
  while (made < totalBytes) {
    let text = "";
    while (text.length < size - 12) text += `${i++}\n`;
    const bytes = enc.encode(text);
    made += bytes.length;
    yield bytes;
  }
}

function assertBytes(actual: Uint8Array, expected: Uint8Array, message = "bytes"): void {
  assert.equal(actual.length, expected.length, `${message}: length`);
  const at = actual.findIndex((b, i) => b !== expected[i]);
  assert.equal(at, -1, `${message} differ at ${at}`);
}

/** Drops the service's warnings until `reset()`: the tests below provoke them on purpose. */
async function silenceLogs(): Promise<void> {
  await configure({
    sinks: { none: () => {} },
    loggers: [
      { category: ["cc-executor"], lowestLevel: "warning", sinks: ["none"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["none"] },
    ],
  });
}

Deno.test("OutputLog with 8 MiB retention reads a 64 MiB output back byte-exact from 0", () => {
  using s = spilling();
  const log = new OutputLog(8 * MiB, s.memory, "big");
  const chunks: Uint8Array[] = [];
  const t0 = performance.now();
  for (const data of seqChunks(64 * MiB)) {
    chunks.push(data);
    add(log, data);
  }
  const t1 = performance.now();
  log.finish();
  assert.equal(log.first, 0, "all of it is replayable");
  assert.ok(log.bytes <= 8 * MiB, `${log.bytes} in memory`);
  assert.equal(log.spilled + log.bytes, log.next);
  // Memory, and the spill's (large, past 4 MiB) write buffers: one being filled, the rest queued.
  const buffers = (WRITE_QUEUE + 1) * LARGE_BUFFER_BYTES;
  assert.ok(s.memory.retained <= 8 * MiB + buffers, `${s.memory.retained} held`);
  assert.ok(s.store.bytes > log.spilled, "disk bytes are counted on disk only");
  // Page through it as read_output does, and compare with what was written.
  const expected = new Uint8Array(log.next);
  let at = 0;
  for (const c of chunks) {
    expected.set(c, at);
    at += c.length;
  }
  const t2 = performance.now();
  let offset = 0;
  let pages = 0;
  const got = new Uint8Array(log.next);
  while (offset < log.next) {
    const page = readOutput(log, offset, 1 * MiB);
    assert.equal(page.skipped, 0);
    assert.equal(page.start, offset);
    got.set(enc.encode(page.stdout), offset);
    offset = page.next;
    pages++;
  }
  const t3 = performance.now();
  assertBytes(got, expected, "read back");
  assert.equal(pages, Math.ceil(log.next / MiB));
  const mbps = (ms: number) => (log.next / MiB / (ms / 1000)).toFixed(0);
  console.log(
    `64 MiB: appended (56 MiB spilled) at ${mbps(t1 - t0)} MiB/s, ` +
      `read back with readOutput at ${mbps(t3 - t2)} MiB/s`,
  );
  // The tail still comes from memory; raw reads span disk and memory.
  assert.ok(tailOutput(log, 100).stdout.endsWith("\n"));
  const mid = log.first + log.spilled - 10;
  assertBytes(log.read(mid, mid + 20), expected.subarray(mid, mid + 20), "across the seam");
  assert.equal(log.byteAt(5), expected[5]);
});

Deno.test("OutputLog's since() and chunksFrom() cover spilled chunks with their framing", () => {
  using s = spilling();
  const log = new OutputLog(10, s.memory, "small");
  add(log, enc.encode("aaaa"));
  add(log, enc.encode("bb"), { stream: "stderr", truncated: true, chunkIndex: 0 });
  add(log, enc.encode("cc\n"), { stream: "stderr", chunkIndex: 1, totalChunks: 2 });
  add(log, enc.encode("dddddd"));
  assert.equal(log.first, 0);
  assert.equal(log.bytes, 9, "two chunks in memory");
  assert.equal(log.spilled, 6);
  const slice = log.since(1);
  assert.equal(slice.skipped, 0);
  assert.deepEqual(
    slice.chunks.map((c) => [c.seq, c.bytes, c.stream, c.chunkIndex, c.totalChunks]),
    [
      [0, 4, "stdout", null, null],
      [4, 2, "stderr", 0, null],
      [6, 3, "stderr", 1, 2],
      [9, 6, "stdout", null, null],
    ],
  );
  assert.equal(new TextDecoder().decode(log.read(0, log.next)), "aaaabbcc\ndddddd");
  const page = readOutput(log, 2, 100);
  assert.deepEqual([page.stdout, page.stderr, page.start], ["aadddddd", "bbcc\n", 2]);
  // Newest first, from memory into the spill.
  assert.equal(tailOutput(log, 100).stderr, "bbcc\n");
});

Deno.test("OutputLog.evict() moves a finished run's output to disk; clear() forgets it, files too", () => {
  using s = spilling();
  const log = new OutputLog(1 * MiB, s.memory, "evicted");
  for (const data of seqChunks(512 * KiB, 4 * KiB)) add(log, data);
  log.finish();
  const before = log.read(0, log.next);
  assert.equal(log.spilled, 0, "nothing spilled while it fit");
  assert.equal(log.evict(), before.length);
  assert.equal(log.bytes, 0);
  assert.equal(log.held, 0, "no memory held");
  assert.equal(s.memory.retained, 0);
  assert.equal(log.first, 0);
  assertBytes(log.read(0, log.next), before, "readable from disk");
  assert.equal(s.store.runs, 1);
  log.clear();
  assert.equal(log.first, log.next);
  assert.equal(s.store.runs, 0);
  assert.equal(s.store.bytes, 0);
  assert.deepEqual([...Deno.readDirSync(s.store.dir)], [], "its files were deleted");
});

Deno.test("OutputMemory under pressure evicts finished runs to disk, where they stay readable", () => {
  using s = spilling(1 * MiB);
  const old = new OutputLog(1 * MiB, s.memory, "old");
  for (const data of seqChunks(600 * KiB, 8 * KiB)) add(old, data);
  old.finish();
  const expected = old.read(0, old.next);
  const live = new OutputLog(8 * MiB, s.memory, "live");
  for (const data of seqChunks(4 * MiB, 8 * KiB)) add(live, data);
  assert.equal(old.bytes, 0, "the finished run left memory");
  assertBytes(old.read(0, old.next), expected, "and reads back from disk");
  assert.ok(s.memory.retained <= s.memory.budget, `${s.memory.retained} retained`);
  assert.equal(live.first, 0, "the running run's trimmed output is on disk too");
  assert.ok(live.bytes < 1 * MiB);
  let held = 0;
  for (const l of [old, live]) held += l.held;
  assert.equal(s.memory.retained, held, "every byte held is accounted, disk bytes are not");
  live.finish();
  assert.equal(s.memory.retained, old.held + live.held);
});

Deno.test({
  name: "OutputLog whose spill fails takes output on without a throw; the disk part becomes a gap",
  ignore: !canBreakDisks,
  async fn() {
    using s = spilling();
    const log = new OutputLog(64 * KiB, s.memory, "failing");
    for (const data of seqChunks(1 * MiB, 4 * KiB)) add(log, data);
    assert.equal(log.first, 0);
    await log.settled(); // the oldest bytes are in the file, no longer in a write buffer
    await chattr("+i", s.store.dir);
    await silenceLogs();
    try {
      // Removing the directory fails too: the run's spill is discarded all the same.
      const other = new OutputLog(4 * KiB, s.memory, "other");
      for (const data of seqChunks(64 * KiB, 4 * KiB)) add(other, data);
      assert.equal(other.first, other.next - other.bytes, "no spill: first is memory's");
    } finally {
      await reset();
      await chattr("-i", s.store.dir);
    }
    const dir = [...Deno.readDirSync(s.store.dir)].find((e) => e.name.startsWith("failing"))!;
    for (const f of Deno.readDirSync(`${s.store.dir}/${dir.name}`)) {
      Deno.removeSync(`${s.store.dir}/${dir.name}/${f.name}`);
    }
    await silenceLogs();
    try {
      assert.throws(() => readOutput(log, 0, 1000), RangeError, "the read that finds it gone");
      for (const data of seqChunks(64 * KiB, 4 * KiB)) add(log, data);
    } finally {
      await reset();
    }
    assert.equal(log.first, log.next - log.bytes, "first moved past the gap");
    const page = readOutput(log, 0, 1000);
    assert.equal(page.start, log.first);
    assert.equal(page.skipped, log.first);
  },
});

Deno.test("OutputLog.chunksFrom() read while output goes on stays contiguous across disk and memory", () => {
  using s = spilling();
  const log = new OutputLog(16 * KiB, s.memory, "reader");
  const more = seqChunks(4 * MiB, 1000);
  for (let i = 0; i < 100; i++) add(log, more.next().value!);
  const reader = log.chunksFrom(0);
  let expectedSeq = 0;
  let read = 0;
  for (let step = 0;; step++) {
    const { value, done } = reader.next();
    if (done) break;
    assert.equal(value.seq, expectedSeq, `chunk ${read} starts where the last ended`);
    expectedSeq = value.seq + value.bytes;
    read++;
    // A reader that waits between chunks (a replay on a slow socket) sees output move to disk.
    if (step < 300) add(log, more.next().value!);
  }
  assert.equal(expectedSeq, log.next, "read to the end");
  assert.equal(read, 400);
});

Deno.test("OutputLog that spilled while running, then is evicted when finished, reads back whole", async () => {
  using s = spilling();
  const log = new OutputLog(64 * KiB, s.memory, "twice");
  const chunks = [...seqChunks(1 * MiB, 3000)];
  for (const data of chunks) add(log, data);
  log.finish();
  assert.ok(log.spilled > 0 && log.bytes > 0, "on disk and in memory");
  log.evict();
  await log.settled(); // a write under way when the run ended holds its buffer until it is done
  assert.equal(log.held, 0);
  assert.equal(s.memory.retained, 0, "the write buffer was freed again");
  const expected = new Uint8Array(log.next);
  let at = 0;
  for (const c of chunks) {
    expected.set(c, at);
    at += c.length;
  }
  assertBytes(log.read(0, log.next), expected, "all of it, from disk");
  assert.equal(log.first, 0);
});
