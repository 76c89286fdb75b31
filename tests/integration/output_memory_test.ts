import assert from "node:assert/strict";
import { type Msg, withServer } from "../_helpers.ts";
import { call, connectWs } from "../_mcp.ts";
import { OutputMemory } from "../../lib/output/memory.ts";
import { OutputLog } from "../../lib/output/output_log.ts";

const KiB = 1024;

/** Appends `n` zero bytes to `log` as one chunk. */
function chunk(log: OutputLog, n: number): void {
  log.append({
    stream: "stdout",
    seq: log.next,
    bytes: n,
    truncated: false,
    chunkIndex: null,
    totalChunks: null,
  }, new Uint8Array(n));
}

Deno.test("OutputMemory drops finished output oldest first, then trims running runs to their minimum", () => {
  const memory = new OutputMemory({ budget: 100 * KiB, pageSize: KiB, runMinimum: 8 * KiB });
  const finished = [new OutputLog(1 << 20, memory), new OutputLog(1 << 20, memory)];
  for (const log of finished) {
    chunk(log, 30 * KiB);
    log.finish();
  }
  const a = new OutputLog(1 << 20, memory);
  const b = new OutputLog(1 << 20, memory);
  for (let i = 0; i < 30; i++) chunk(a, KiB);
  // 60 KiB finished + 30 KiB running: within the budget.
  assert.deepEqual(finished.map((l) => l.bytes), [30 * KiB, 30 * KiB]);
  for (let i = 0; i < 30; i++) chunk(b, KiB);
  assert.deepEqual(
    finished.map((l) => l.bytes),
    [0, 30 * KiB],
    "the oldest finished run went first",
  );
  for (let i = 0; i < 40; i++) chunk(b, KiB);
  assert.deepEqual(finished.map((l) => l.bytes), [0, 0]);
  assert.ok(a.bytes <= 8 * KiB, `the other running run was trimmed to its minimum (${a.bytes})`);
  assert.ok(b.bytes > 8 * KiB, "the run that needed the room keeps what fits");
  assert.ok(memory.retained <= memory.budget, `${memory.retained} retained`);
  assert.equal(memory.droppedBytes, 60 * KiB);
  assert.ok(memory.trimmedBytes >= 22 * KiB);
  // Past even that, the run that writes keeps only its minimum too.
  const queue = { queued: 200 * KiB };
  memory.addQueue(queue);
  assert.equal(memory.exhausted, true, "the send queues alone exceed the budget");
  chunk(b, KiB);
  assert.ok(b.bytes <= 8 * KiB, `the writer fell back to its minimum (${b.bytes})`);
  memory.removeQueue(queue);
  assert.equal(memory.exhausted, false);
});

Deno.test("OutputMemory accounts every byte a log holds and pools freed pages", () => {
  const memory = new OutputMemory({ budget: 1 << 20, pageSize: KiB });
  const log = new OutputLog(4 * KiB, memory);
  for (let i = 0; i < 100; i++) chunk(log, 300);
  assert.equal(memory.retained, log.held);
  assert.ok(log.held <= 6 * KiB + 32 * 16, "a full ring reuses the pages its oldest output freed");
  log.finish();
  assert.equal(memory.retained, log.held, "finished: what it kept and its metadata");
  assert.equal(memory.retainedFinished, log.held);
  log.clear();
  assert.equal(memory.retained, 0);
  assert.equal(memory.retainedFinished, 0);
  assert.ok(memory.pooled >= 4 * KiB, "its pages wait for the next run");
});

/** The `/health` figures of the output budget. */
async function outputMemory(httpUrl: string): Promise<Msg> {
  return (await (await fetch(`${httpUrl}/health`)).json()).output_memory;
}

Deno.test("the output budget drops finished runs' output first, and /health reports it", async () => {
  const budget = 320 * KiB;
  const flags = {
    "output-memory-budget": String(budget),
    "output-retention": String(128 * KiB),
  };
  await withServer(flags, async (server) => {
    const { client } = await connectWs(server);
    const fill = (letter: string, bytes: number) =>
      call(client, "execute", { command: `head -c ${bytes} /dev/zero | tr '\\0' ${letter}` });
    const a = await fill("a", 100 * KiB);
    const b = await fill("b", 100 * KiB);
    let figures = await outputMemory(server.httpUrl);
    assert.equal(figures.budget, budget);
    assert.equal(figures.dropped_bytes, 0, "two finished runs fit");
    assert.ok(figures.retained_finished >= 200 * KiB);
    // A run that needs 128 KiB while 200 KiB are held: the oldest finished output goes.
    const c = await fill("c", 400 * KiB);
    figures = await outputMemory(server.httpUrl);
    assert.equal(figures.dropped_bytes, 100 * KiB);
    assert.ok(figures.retained <= budget, `${figures.retained} retained`);
    assert.equal(figures.trimmed_bytes, 0, "no running run had to give up output");
    const read = (r: { s: Msg }) => call(client, "read_output", { execution_id: r.s.execution_id });
    const readA = await read(a);
    assert.equal(readA.s.skipped_bytes, 100 * KiB, "the oldest finished run lost its output");
    assert.equal(readA.s.stdout, "");
    assert.equal(readA.s.status, "completed", "its record stays");
    const readB = await read(b);
    assert.equal(readB.s.skipped_bytes, 0, "the newer finished run kept all of it");
    assert.equal(readB.s.stdout, "b".repeat(readB.s.next_offset));
    const readC = await read(c);
    assert.ok(400 * KiB - readC.s.skipped_bytes <= 128 * KiB, "output-retention still applies");
    await client.close();
  });
});
