import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import {
  LARGE_AFTER,
  LARGE_BUFFER_BYTES,
  type RunSpill,
  SpillStore,
  WRITE_QUEUE,
} from "../../lib/output/spill.ts";
import type { RetainedChunk } from "../../lib/output/output_log.ts";
import { canBreakDisks, chattr, dirAndFiles, fillDisk, mountTmpfs, umount } from "../_disk.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

const plain = { truncated: false, chunkIndex: null, totalChunks: null };

/** Bytes whose value at offset i is a function of i, so any range can be checked. */
function pattern(from: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = ((from + i) * 2654435761) >>> 24;
  return out;
}

/** Appends `n` pattern bytes at the spill's end as one chunk. */
function add(spill: RunSpill, n: number, extra: Partial<RetainedChunk> = {}): RetainedChunk {
  const chunk: RetainedChunk = { stream: "stdout", seq: spill.next, bytes: n, ...plain, ...extra };
  const data = pattern(chunk.seq, n);
  spill.append(chunk, (target, at) => target.set(data, at));
  return chunk;
}

function assertBytes(actual: Uint8Array, expected: Uint8Array, message = "bytes"): void {
  assert.equal(actual.length, expected.length, `${message}: length`);
  const at = actual.findIndex((b, i) => b !== expected[i]);
  assert.equal(at, -1, `${message} differ at ${at}`);
}

/** A store in a fresh temporary directory, removed with it. */
function tempStore(options: Partial<Parameters<typeof SpillStore.open>[0]> = {}) {
  const dir = Deno.makeTempDirSync({ prefix: "spill_test_" });
  const store = SpillStore.open({ dir, perRun: 64 * MiB, total: 256 * MiB, ...options });
  return {
    dir,
    store,
    [Symbol.dispose]() {
      store.close();
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** Log records of the `spill` category while `fn` runs. */
async function captureWarnings(fn: () => Promise<void> | void): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (record) => void records.push(record) },
    loggers: [
      { category: ["cc-executor", "spill"], lowestLevel: "warning", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["memory"] },
    ],
  });
  try {
    await fn();
  } finally {
    await reset();
  }
  return records;
}

Deno.test("RunSpill gives chunks back framed exactly as they were written", () => {
  using t = tempStore();
  const spill = t.store.run("framing", 100)!;
  const written = [
    add(spill, 0),
    add(spill, 5, { stream: "stderr", truncated: true, chunkIndex: 0 }),
    add(spill, 7, { stream: "stderr", chunkIndex: 1, totalChunks: 2 }),
    add(spill, 3 * WRITE_BUFFER, { chunkIndex: 70_000, totalChunks: 70_001 }), // larger than the buffer
    add(spill, 1, { stream: "stderr" }),
  ];
  assert.equal(spill.first, 100);
  assert.equal(spill.next, 100 + 12 + 3 * WRITE_BUFFER + 1);
  assert.deepEqual([...spill.chunksFrom(0)], written);
  assert.deepEqual([...spill.chunksBackward()], written.toReversed());
  assertBytes(spill.read(0, spill.next), pattern(100, spill.bytes));
  assert.equal(spill.byteAt(104), pattern(104, 1)[0]);
  assert.ok(spill.diskBytes > spill.bytes, "headers are counted on disk");
  assert.equal(t.store.bytes, spill.diskBytes);
});

const WRITE_BUFFER = 64 * KiB;

Deno.test("RunSpill reads from any offset across segments and index entries", () => {
  using t = tempStore({ segmentBytes: 256 * KiB, indexEvery: 4 * KiB });
  const spill = t.store.run("offsets", 0)!;
  const chunks: RetainedChunk[] = [];
  let seed = 7;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  while (spill.next < 3 * MiB) chunks.push(add(spill, 1 + random(20_000)));
  for (let i = 0; i < 200; i++) {
    const offset = random(spill.next);
    const from = [...spill.chunksFrom(offset)];
    const expected = chunks.filter((c) => c.seq + c.bytes > offset);
    assert.deepEqual(from[0], expected[0], `first chunk from ${offset}`);
    assert.equal(from.length, expected.length);
    const len = random(100_000);
    assertBytes(
      spill.read(offset, offset + len),
      pattern(offset, Math.min(len, spill.next - offset)),
    );
    assert.equal(spill.byteAt(offset), pattern(offset, 1)[0]);
  }
  // Written and read at once: the write buffer is flushed before each read.
  add(spill, 10);
  assertBytes(spill.read(spill.next - 10, spill.next), pattern(spill.next - 10, 10));
});

Deno.test("RunSpill drops its oldest segments past the per-run cap, and first moves", () => {
  using t = tempStore({ perRun: 1 * MiB, segmentBytes: 256 * KiB });
  const spill = t.store.run("capped", 0)!;
  const starts = new Set<number>();
  while (spill.next < 4 * MiB) starts.add(add(spill, 10_000).seq);
  assert.ok(spill.diskBytes <= 1 * MiB + 256 * KiB, `${spill.diskBytes} on disk`);
  assert.ok(spill.first > 2 * MiB, `first moved to ${spill.first}`);
  assert.ok(starts.has(spill.first), "first is a chunk's start");
  assert.equal([...spill.chunksFrom(0)][0]!.seq, spill.first);
  assertBytes(spill.read(0, spill.next), pattern(spill.first, spill.bytes));
  assert.throws(() => spill.byteAt(0), RangeError);
  const files = [...Deno.readDirSync(`${t.store.dir}/capped.1`)];
  assert.ok(files.length <= 5, `${files.length} segment files`);
});

Deno.test("SpillStore past its total cap deletes the oldest finished runs' spill, then a run stops growing", () => {
  using t = tempStore({ perRun: 4 * MiB, total: 2 * MiB, segmentBytes: 128 * KiB });
  const old = t.store.run("old", 0)!;
  const older = t.store.run("older", 0)!;
  while (older.next < 600 * KiB) add(older, 10_000);
  while (old.next < 600 * KiB) add(old, 10_000);
  older.finish();
  old.finish();
  const live = t.store.run("live", 0)!;
  while (live.next < 900 * KiB) add(live, 10_000);
  assert.equal(older.bytes, 0, "the first run to finish went first");
  assert.ok(old.bytes > 0, "the next one is kept while there is room");
  while (live.next < 5 * MiB) add(live, 10_000);
  assert.equal(old.bytes, 0);
  assert.ok(t.store.bytes <= 2 * MiB, `${t.store.bytes} on disk`);
  assert.ok(live.first > 3 * MiB, "the running run dropped its own oldest output");
  assertBytes(live.read(0, live.next), pattern(live.first, live.bytes));
  assert.ok(t.store.droppedBytes > 0);
  assert.deepEqual([...Deno.readDirSync(t.store.dir)].map((e) => e.name), ["live.3"]);
});

Deno.test("SpillStore.open removes what gone instances left, keeps live ones; close() removes its own", () => {
  const dir = Deno.makeTempDirSync({ prefix: "spill_test_" });
  Deno.mkdirSync(`${dir}/4242-0000abcd/x.1`, { recursive: true });
  Deno.writeTextFileSync(`${dir}/4242-0000abcd/x.1/000001.seg`, "old");
  Deno.writeTextFileSync(`${dir}/4242-0000abcd.lock`, ""); // its lock, no longer held
  Deno.mkdirSync(`${dir}/stray`);
  const names = () => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  const live = SpillStore.open({ dir, perRun: MiB, total: MiB });
  const liveName = live.dir.slice(dir.length + 1);
  assert.deepEqual(names(), [liveName, `${liveName}.lock`]);
  add(live.run("a", 0)!, 100);
  // A second server on the same data directory keeps the first one's spill.
  const store = SpillStore.open({ dir, perRun: MiB, total: MiB });
  const own = store.dir.slice(dir.length + 1);
  assert.deepEqual(names(), [liveName, `${liveName}.lock`, own, `${own}.lock`].sort());
  assert.equal(live.run("b", 0)!.next, 0);
  store.close();
  assert.deepEqual(names(), [liveName, `${liveName}.lock`]);
  assert.equal(store.run("b", 0), null, "a closed store spills nothing");
  live.close();
  assert.deepEqual(names(), []);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("RunSpill of a run that spills a lot writes off the main thread; reads stay byte-exact meanwhile", async () => {
  using t = tempStore({ segmentBytes: 1 * MiB });
  const spill = t.store.run("big", 0)!;
  const chunks: RetainedChunk[] = [];
  let large = false;
  for (let i = 0; spill.next < LARGE_AFTER + 4 * MiB; i++) {
    chunks.push(add(spill, 40_000));
    large ||= spill.held >= LARGE_BUFFER_BYTES;
    assert.ok(spill.held <= (WRITE_QUEUE + 1) * LARGE_BUFFER_BYTES, `${spill.held} held`);
    if (i % 7 === 0) {
      // Bytes still in a buffer, queued or under way, read back all the same.
      const from = Math.max(0, spill.next - 300_000);
      assertBytes(spill.read(from, spill.next), pattern(from, spill.next - from), "while writing");
    }
    if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.ok(large, "past LARGE_AFTER it writes through large buffers");
  assertBytes(spill.read(0, spill.next), pattern(0, spill.next), "all of it, while writing");
  spill.finish();
  await spill.settled();
  assert.equal(spill.held, 0, "its buffers are freed once written");
  assertBytes(spill.read(0, spill.next), pattern(0, spill.next), "all of it, written");
  assert.deepEqual(
    [...spill.chunksFrom(0)].map((c) => [c.seq, c.bytes]),
    chunks.map((c) => [c.seq, c.bytes]),
  );
});

Deno.test({
  name:
    "RunSpill whose write off the main thread fails is discarded, says so once, and never throws",
  ignore: !canBreakDisks,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "spill_full_" });
    await mountTmpfs(dir, "6m");
    try {
      const store = SpillStore.open({ dir, perRun: 64 * MiB, total: 64 * MiB });
      let spill: RunSpill | null = null;
      const warnings = await captureWarnings(async () => {
        spill = store.run("full", 0)!;
        for (let i = 0; i < 250; i++) {
          add(spill, 40_000);
          if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
        }
        await spill.settled();
      });
      const s = spill! as RunSpill;
      assert.equal(s.discarded, true);
      assert.equal(s.bytes, 0);
      assert.equal(s.held, 0);
      assert.equal(warnings.length, 1, "one warning");
      assert.match(String(warnings[0]!.properties.error), /No space|ENOSPC|os error 28/i);
      assert.equal(store.bytes, 0);
      assert.deepEqual([...Deno.readDirSync(store.dir)], [], "its files were deleted");
      store.close();
    } finally {
      await umount(dir);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "RunSpill on a full disk is discarded, says so once, and never throws",
  ignore: !canBreakDisks,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "spill_full_" });
    await mountTmpfs(dir, "512k");
    try {
      const store = SpillStore.open({ dir, perRun: 64 * MiB, total: 64 * MiB });
      let spill: RunSpill | null = null;
      const warnings = await captureWarnings(() => {
        spill = store.run("full", 0)!;
        for (let i = 0; i < 200; i++) add(spill, 10_000);
      });
      const s = spill! as RunSpill;
      assert.equal(s.discarded, true);
      assert.equal(s.bytes, 0);
      assert.equal(s.first, s.next);
      assert.equal(warnings.length, 1, "one warning");
      assert.match(String(warnings[0]!.properties.error), /No space|ENOSPC|os error 28/i);
      assert.equal(store.bytes, 0);
      assert.deepEqual([...Deno.readDirSync(store.dir)], [], "its files were deleted");
      // Filled by someone else: a new run fails too, the same way.
      await fillDisk(`${dir}/filler`);
      const again = store.run("again", 0)!;
      const more = await captureWarnings(() => {
        add(again, 100_000);
        again.finish(); // written out at the latest when the run ends
      });
      assert.equal(again.discarded, true);
      assert.deepEqual(more, [], "the same failure again is not said again");
      assert.equal(store.failedRuns, 2);
      store.close();
    } finally {
      await umount(dir);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "RunSpill in an immutable directory is discarded, and a removed file turns into a gap",
  ignore: !canBreakDisks,
  async fn() {
    using t = tempStore({ segmentBytes: 64 * KiB });
    const early = t.store.run("early", 0)!;
    add(early, 1000);
    early.flush();
    const files = await dirAndFiles(`${t.store.dir}/early.1`);
    await chattr("+i", t.store.dir, ...files);
    try {
      const late = t.store.run("late", 0)!;
      const warnings = await captureWarnings(() => {
        add(late, 1000);
        for (let i = 0; i < 10; i++) add(early, 1000);
        early.flush();
      });
      assert.equal(late.discarded, true, "its directory could not be made");
      assert.equal(early.discarded, true, "its file could not be written");
      // Each says so, unless it failed the same way as the one before.
      assert.ok(warnings.length >= 1 && warnings.length <= 2, `${warnings.length} warnings`);
      assert.equal(t.store.failedRuns, 2);
    } finally {
      await chattr("-i", t.store.dir, ...files);
    }
    // Files removed under a run: the read fails once, then the output is a gap.
    const gone = t.store.run("gone", 0)!;
    for (let i = 0; i < 100; i++) add(gone, 1000);
    gone.flush();
    for (const f of Deno.readDirSync(`${t.store.dir}/gone.3`)) {
      Deno.removeSync(`${t.store.dir}/gone.3/${f.name}`);
    }
    await captureWarnings(() => {
      assert.throws(() => gone.read(0, 100), RangeError);
    });
    assert.equal(gone.discarded, true);
    assert.equal(gone.bytes, 0);
    assert.deepEqual(gone.read(0, 100), new Uint8Array(0));
    add(gone, 10); // taken without a throw, and not kept
    assert.equal(gone.bytes, 0);
  },
});

Deno.test({
  name: "SpillStore.open on a directory it cannot write spills nothing, and says so once",
  ignore: !canBreakDisks,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "spill_test_" });
    await chattr("+i", dir);
    try {
      let store: SpillStore | null = null;
      const warnings = await captureWarnings(() => {
        store = SpillStore.open({ dir, perRun: MiB, total: MiB });
      });
      const s = store! as SpillStore;
      assert.equal(s.open, false);
      assert.equal(s.run("a", 0), null);
      assert.equal(warnings.length, 1);
      s.close();
    } finally {
      await chattr("-i", dir);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
