/**
 * The cluster's parts on a real redis-server: placement, the stream entries,
 * liveness and fencing with short timings, the publisher's pacing and its
 * refusal once fenced, and a log that joins a run late.
 */
import assert from "node:assert/strict";
import { ClusterBus } from "../../lib/cluster/bus.ts";
import { placeAmong } from "../../lib/cluster/cluster.ts";
import { NodeRegistry } from "../../lib/cluster/node_registry.ts";
import { decodeOutputEntry, encodeEvent, flatten } from "../../lib/cluster/relay_entry.ts";
import { RELAY_LAG_ENTRIES, RelayPublisher } from "../../lib/cluster/relay_publisher.ts";
import { ABANDON, ACCEPT, PLACE } from "../../lib/cluster/scripts.ts";
import { OutputLog } from "../../lib/output/output_log.ts";
import { SharedRateLimit } from "../../lib/cluster/shared_rate_limit.ts";
import type { StreamEntry } from "../../lib/cluster/bus.ts";
import { eventually } from "../_helpers.ts";
import { freePort, hasRedisServer, RedisServer } from "../_redis.ts";

const redisAvailable = await hasRedisServer();

/** Runs `fn` with a real redis-server and two buses on it (two nodes'), then stops them all. */
async function withBuses(
  fn: (one: ClusterBus, two: ClusterBus, redis: RedisServer) => Promise<void>,
): Promise<void> {
  const redis = await RedisServer.start(freePort());
  const open = () => ClusterBus.open({ url: redis.url, prefix: "t:" });
  const [one, two] = [await open(), await open()];
  try {
    await fn(one, two, redis);
  } finally {
    await one.close();
    await two.close();
    await redis.stop();
  }
}

/** A publisher of run `id` at `epoch`, counting refusals in `fenced.count`. */
function publisherOf(bus: ClusterBus, id: string, epoch: number, fenced: { count: number }) {
  return new RelayPublisher({
    bus,
    executionId: id,
    epoch,
    currentEpoch: () => epoch,
    retentionMs: 60_000,
    hash: () => ({}),
    fenced: () => fenced.count++,
  });
}

const node = (id: string, labels: string[], running: number) => ({
  id,
  labels,
  running,
  started_at: 0,
});

Deno.test("placeAmong(): by node, by every label, least loaded, this node among equals", () => {
  const live = [node("a", ["a"], 2), node("b", ["b", "gpu"], 1), node("c", ["b"], 1)];
  assert.equal(placeAmong(live, "a", { node: "c" })?.id, "c");
  assert.equal(placeAmong(live, "a", { node: "c", labels: ["gpu"] }), null);
  assert.equal(placeAmong(live, "a", { labels: ["b", "gpu"] })?.id, "b");
  assert.equal(placeAmong(live, "a", { labels: ["b"] })?.id, "b", "the first of equals");
  assert.equal(placeAmong(live, "c", { labels: ["b"] })?.id, "c", "this node among equals");
  assert.equal(placeAmong(live, "a", { labels: ["tpu"] }), null);
  assert.equal(placeAmong(live, "a", { node: "z" }), null);
});

Deno.test("relay entries: output bytes round-trip exactly, invalid UTF-8 and offsets included", () => {
  const bytes = new Uint8Array([0xff, 0x00, 0x0a, 0xc3]);
  const fields = encodeEvent({
    type: "output",
    executionId: "e1",
    chunk: {
      stream: "stderr",
      seq: 4096,
      bytes: 4,
      data: "\ufffd\0\n\ufffd",
      truncated: true,
      chunkIndex: 2,
      totalChunks: null,
      raw: () => bytes,
    },
  })!;
  const entry: StreamEntry = { id: "1-0", fields: {} };
  const flat = flatten(fields);
  for (let i = 0; i < flat.length; i += 2) {
    const v = flat[i + 1]!;
    entry.fields[flat[i] as string] = typeof v === "string" ? new TextEncoder().encode(v) : v;
  }
  const decoded = decodeOutputEntry(entry);
  assert.deepEqual(decoded, {
    t: "out",
    out: { stream: "stderr", seq: 4096, bytes, truncated: true, chunkIndex: 2, totalChunks: null },
  });
  assert.equal(encodeEvent({ type: "gap", executionId: "e1", from: 0, to: 1 }), null);
  assert.equal(
    decodeOutputEntry({ id: "2-0", fields: { t: new TextEncoder().encode("end") } }),
    null,
    "an end without its exit is skipped, never half-read",
  );
});

Deno.test("OutputLog.skipTo(): a log that joins a run late starts at its offset", () => {
  const log = new OutputLog(1024);
  log.skipTo(500);
  assert.deepEqual([log.first, log.next], [500, 500]);
  const data = new TextEncoder().encode("late\n");
  log.append({
    stream: "stdout",
    seq: 500,
    bytes: 5,
    truncated: false,
    chunkIndex: null,
    totalChunks: null,
  }, data);
  assert.equal(new TextDecoder().decode(log.read(500, 505)), "late\n");
  log.skipTo(600);
  assert.deepEqual(
    [log.first, log.next],
    [600, 600],
    "what it held is forgotten: one run of bytes",
  );
  assert.throws(() => log.skipTo(10), RangeError);
});

Deno.test({
  name: "liveness: an expired node is declared dead once, its runs lost; it finds itself fenced",
  ignore: !redisAvailable,
  fn: () =>
    withBuses(async (busA, busB) => {
      const lost: string[] = [];
      let fenced = 0;
      const liveness = { heartbeatMs: 100, ttlMs: 300 };
      const a = new NodeRegistry({
        bus: busA,
        id: "a",
        labels: [],
        running: () => 0,
        owned: () => [],
        fenced: () => {},
        lost: (id) => lost.push(id),
        retentionMs: 60_000,
        liveness,
      });
      const b = new NodeRegistry({
        bus: busB,
        id: "b",
        labels: ["gpu"],
        running: () => 1,
        owned: () => ["run-1"],
        fenced: () => fenced++,
        lost: () => {},
        retentionMs: 60_000,
        liveness,
      });
      try {
        await a.beat();
        await b.beat();
        const k = busA.keys;
        await busA.client.hSet(k.exec("run-1"), { state: "running", epoch: String(b.epoch) });
        await a.beat();
        assert.deepEqual((await a.live()).map((n) => [n.id, n.running]), [["a", 0], ["b", 1]]);
        // b goes silent: its key expires, and a's sweep declares it dead.
        await eventually(
          async () => {
            await a.beat();
            return lost.length > 0;
          },
          5000,
          "b declared dead",
        );
        assert.deepEqual(lost, ["run-1"]);
        assert.equal(await busA.client.hGet(k.exec("run-1"), "ended"), "lost");
        const stream = await busA.client.xRange(k.output("run-1"), "-", "+");
        assert.deepEqual(stream?.map((e) => e.message.t), ["end", "fin"]);
        await a.beat();
        assert.equal(lost.length, 1, "once");
        // b comes back: its epoch was raised, so it ends what it holds and rejoins anew.
        const before = b.epoch!;
        await b.beat();
        assert.equal(fenced, 1);
        assert.ok(b.epoch! > before + 1);
        assert.deepEqual((await a.live()).map((n) => n.id), ["a", "b"]);
      } finally {
        await a.stop();
        await b.stop();
      }
    }),
});

Deno.test({
  name: "jobs: taken once, or abandoned so that nobody takes them later",
  ignore: !redisAvailable,
  fn: () =>
    withBuses(async (bus) => {
      const k = bus.keys;
      await bus.client.hSet(k.exec("j1"), "state", "placed");
      assert.equal(await bus.eval(ACCEPT, [k.exec("j1")], ["b", "1"]), 1);
      assert.equal(await bus.eval(ACCEPT, [k.exec("j1")], ["c", "1"]), 0, "never twice");
      assert.equal(await bus.eval(ABANDON, [k.exec("j1")], []), 0, "taken: not abandoned");
      await bus.client.hSet(k.exec("j2"), "state", "placed");
      assert.equal(await bus.eval(ABANDON, [k.exec("j2")], []), 1);
      assert.equal(await bus.eval(ACCEPT, [k.exec("j2")], ["b", "1"]), 0, "abandoned: never run");
      // Placed with a 1 ms window, taken later: too late, never run.
      assert.equal(await bus.eval(PLACE, [k.exec("j3")], ["alice", "a", "b", "1", "60000"]), 1);
      assert.equal(await bus.eval(PLACE, [k.exec("j3")], ["bob", "a", "c", "1", "60000"]), 0);
      await new Promise((r) => setTimeout(r, 10));
      assert.equal(await bus.eval(ACCEPT, [k.exec("j3")], ["b", "1"]), 0, "past its deadline");
    }),
});

Deno.test({
  name: "publisher: paces by the reader's acks, and stops at once when its run was fenced",
  ignore: !redisAvailable,
  fn: () =>
    withBuses(async (bus) => {
      const fenced = { count: 0 };
      const k = bus.keys;
      await bus.client.hSet(k.exec("p1"), { state: "running", epoch: "3" });
      const p = publisherOf(bus, "p1", 3, fenced);
      for (let i = 0; i <= RELAY_LAG_ENTRIES; i++) {
        p.emit({ type: "paused", executionId: "p1", pid: 1, pgid: 1 });
      }
      await eventually(async () => await bus.client.xLen(k.output("p1")) > RELAY_LAG_ENTRIES);
      let ready = false;
      const waiting = p.ready().then(() => ready = true);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(ready, false, "more unread than the lag allows: the run waits");
      p.ack(10);
      await waiting;
      // Declared lost elsewhere: the next write is refused and the run told.
      await bus.client.hSet(k.exec("p1"), "ended", "lost");
      p.emit({ type: "resumed", executionId: "p1", pid: 1, pgid: 1 });
      await eventually(() => fenced.count === 1, 5000, "the refusal");
      assert.equal(await bus.client.xLen(k.output("p1")), RELAY_LAG_ENTRIES + 1);
      p.close();
    }),
});

Deno.test({
  name: "shared rate limit: connections spread over two nodes spend one budget",
  ignore: !redisAvailable,
  fn: () =>
    withBuses(async (one, two, redis) => {
      const a = new SharedRateLimit(one, "conn", { ratePerSec: 0.5, burst: 3 });
      const b = new SharedRateLimit(two, "conn", { ratePerSec: 0.5, burst: 3 });
      const takes = [
        await a.take("addr:x"),
        await b.take("addr:x"),
        await a.take("addr:x"),
        await b.take("addr:x"),
      ];
      assert.deepEqual(takes.slice(0, 3), [{ ok: true }, { ok: true }, { ok: true }]);
      assert.equal(takes[3]?.ok, false);
      assert.ok(takes[3]?.ok === false && takes[3].retryAfterMs > 0);
      assert.deepEqual(await a.take("addr:y"), { ok: true }, "another client has its own");
      await redis.stop();
      assert.equal(await a.take("addr:x"), null, "Redis away: the node's own limit applies");
    }),
});

Deno.test({
  name: "publisher: hook outcomes and fin follow the end, and the run's keys then expire",
  ignore: !redisAvailable,
  fn: () =>
    withBuses(async (bus) => {
      const fenced = { count: 0 };
      const k = bus.keys;
      await bus.client.hSet(k.exec("p2"), { state: "running", epoch: "1" });
      const p = publisherOf(bus, "p2", 1, fenced);
      const exit = {
        status: "completed" as const,
        exitCode: 0,
        signal: null,
        error: null,
        executionTime: 0.1,
      };
      p.emit({ type: "completed", executionId: "p2", pid: 1, pgid: 1, exit });
      // Written in a batch of its own, as a post_execute hook's outcome comes later.
      await eventually(async () => await bus.client.xLen(k.output("p2")) === 1);
      p.emit({
        type: "hook",
        executionId: "p2",
        outcome: {
          kind: "post_execute",
          name: "h",
          ok: true,
          status: "completed",
          exitCode: 0,
          duration: 0,
          required: false,
          error: null,
          output: "",
        },
      });
      p.finish();
      await p.finished;
      const stream = await bus.client.xRange(k.output("p2"), "-", "+");
      assert.deepEqual(stream?.map((e) => e.message.t), ["end", "hook", "fin"]);
      assert.equal(fenced.count, 0, "its own end fences nothing");
      assert.ok(await bus.client.pTTL(k.exec("p2")) > 0);
      assert.ok(await bus.client.pTTL(k.output("p2")) > 0);
    }),
});
