/**
 * The behaviour every {@linkcode Store} backend must show, as test steps.
 * `tests/unit/store_embedded_test.ts` and `tests/unit/store_redis_test.ts` run it.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ExecutionRecord, Store, StoreBounds, TimingRun } from "../lib/store/store.ts";
import { StoreUnavailableError } from "../lib/store/store.ts";

/** Opens a fresh, empty store with the given bounds. */
export type StoreFactory = (bounds: StoreBounds) => Promise<Store>;

const DAY_MS = 24 * 3600 * 1000;

/** A successful run of `duration_s` seconds that finished `agoMs` ago. */
export function run(duration_s: number, agoMs = 0, extra: Partial<TimingRun> = {}): TimingRun {
  return {
    duration_s,
    exit_code: 0,
    status: "completed",
    timed_out: false,
    at: Date.now() - agoMs,
    ...extra,
  };
}

let nextId = 0;

/** A record of a successful run that started `agoMs` ago. */
export function record(extra: Partial<ExecutionRecord> = {}, agoMs = 0): ExecutionRecord {
  return {
    execution_id: `exec-${++nextId}`,
    command: "echo hi",
    class: "cmd:echo",
    started_at: Date.now() - agoMs,
    duration_s: 0.01,
    status: "completed",
    exit_code: 0,
    signal: null,
    timeout_s: 15,
    timeout_source: "default",
    bytes_out: 3,
    bytes_err: 0,
    ...extra,
  };
}

async function withStore(
  factory: StoreFactory,
  bounds: StoreBounds,
  fn: (store: Store) => Promise<void>,
): Promise<void> {
  const store = await factory(bounds);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

/** Runs the contract as steps of the test `t`, opening a fresh store per step. */
export async function storeContract(t: Deno.TestContext, factory: StoreFactory): Promise<void> {
  await t.step("history() returns appended runs newest first", async () => {
    await withStore(factory, {}, async (store) => {
      await store.appendRun("cmd:make", run(1, 3000));
      await store.appendRun("cmd:make", run(2, 2000));
      await store.appendRun("cmd:make", run(3, 1000, { status: "failed", exit_code: 2 }));
      const runs = await store.history("cmd:make");
      assert.deepEqual(runs.map((r) => r.duration_s), [3, 2, 1]);
      assert.equal(runs[0]?.status, "failed");
      assert.equal(runs[0]?.exit_code, 2);
    });
  });

  await t.step("history() of an unknown class is empty", async () => {
    await withStore(factory, {}, async (store) => {
      assert.deepEqual(await store.history("cmd:never"), []);
    });
  });

  await t.step("history() keeps classes apart", async () => {
    await withStore(factory, {}, async (store) => {
      await store.appendRun("cmd:git:clone", run(40));
      await store.appendRun("cmd:git:status", run(0.1));
      assert.deepEqual((await store.history("cmd:git:clone")).map((r) => r.duration_s), [40]);
      assert.deepEqual((await store.history("cmd:git:status")).map((r) => r.duration_s), [0.1]);
    });
  });

  await t.step("history() keeps only the last maxRuns runs", async () => {
    await withStore(factory, { maxRuns: 5 }, async (store) => {
      for (let i = 1; i <= 8; i++) await store.appendRun("cmd:pytest", run(i));
      const runs = await store.history("cmd:pytest");
      assert.deepEqual(runs.map((r) => r.duration_s), [8, 7, 6, 5, 4]);
    });
  });

  await t.step("history() drops runs older than the TTL", async () => {
    await withStore(factory, { ttlS: 7 * 24 * 3600 }, async (store) => {
      await store.appendRun("cmd:cargo:build", run(100, 8 * DAY_MS));
      await store.appendRun("cmd:cargo:build", run(50, 6 * DAY_MS));
      const runs = await store.history("cmd:cargo:build");
      assert.deepEqual(runs.map((r) => r.duration_s), [50]);
    });
  });

  await t.step("classes() lists every class with runs", async () => {
    await withStore(factory, {}, async (store) => {
      assert.deepEqual(await store.classes(), []);
      await store.appendRun("cmd:npm:test", run(5));
      await store.appendRun("cmd:npm:test", run(6));
      await store.appendRun("claude:code:low", run(30));
      assert.deepEqual((await store.classes()).sort(), ["claude:code:low", "cmd:npm:test"]);
    });
  });

  await t.step("appendRun() rejects an invalid run with TypeError", async () => {
    await withStore(factory, {}, async (store) => {
      await assert.rejects(store.appendRun("cmd:x", run(-1)), TypeError);
      await assert.rejects(store.appendRun("", run(1)), TypeError);
      assert.deepEqual(await store.history("cmd:x"), []);
    });
  });

  await t.step("records() returns records newest first, limited", async () => {
    await withStore(factory, {}, async (store) => {
      for (let i = 1; i <= 4; i++) {
        await store.appendRecord(record({ execution_id: `e${i}`, duration_s: i }));
      }
      const all = await store.records();
      assert.deepEqual(all.map((r) => r.execution_id), ["e4", "e3", "e2", "e1"]);
      assert.deepEqual(all[0], record({ ...all[0], execution_id: "e4", duration_s: 4 }));
      const two = await store.records({ limit: 2 });
      assert.deepEqual(two.map((r) => r.execution_id), ["e4", "e3"]);
    });
  });

  await t.step("records() filters by class", async () => {
    await withStore(factory, {}, async (store) => {
      await store.appendRecord(record({ execution_id: "a", class: "cmd:ls" }));
      await store.appendRecord(record({ execution_id: "b", class: "cmd:make" }));
      await store.appendRecord(record({ execution_id: "c", class: "cmd:ls" }));
      const ls = await store.records({ class: "cmd:ls" });
      assert.deepEqual(ls.map((r) => r.execution_id), ["c", "a"]);
      const one = await store.records({ class: "cmd:ls", limit: 1 });
      assert.deepEqual(one.map((r) => r.execution_id), ["c"]);
      assert.deepEqual(await store.records({ class: "cmd:none" }), []);
    });
  });

  await t.step("records() filters by principal (a record without one is local's)", async () => {
    await withStore(factory, {}, async (store) => {
      const { principal: _, ...legacy } = record({ execution_id: "old" });
      await store.appendRecord(legacy);
      await store.appendRecord(record({ execution_id: "a1", principal: "alice" }));
      await store.appendRecord(record({ execution_id: "b1", principal: "bob", class: "cmd:ls" }));
      await store.appendRecord(record({ execution_id: "a2", principal: "alice", class: "cmd:ls" }));
      const ids = async (q: Parameters<Store["records"]>[0]) =>
        (await store.records(q)).map((r) => r.execution_id);
      assert.deepEqual(await ids({ principal: "alice" }), ["a2", "a1"]);
      assert.deepEqual(await ids({ principal: "alice", class: "cmd:ls" }), ["a2"]);
      assert.deepEqual(await ids({ principal: "bob", limit: 1 }), ["b1"]);
      assert.deepEqual(await ids({ principal: "local" }), ["old"]);
      assert.deepEqual(await ids({ principal: "carol" }), []);
      assert.deepEqual(await ids({}), ["a2", "b1", "a1", "old"]);
      assert.equal((await store.records({ principal: "bob" }))[0]?.principal, "bob");
    });
  });

  await t.step("records() keeps only the last maxRecords records", async () => {
    await withStore(factory, { maxRecords: 3 }, async (store) => {
      for (let i = 1; i <= 5; i++) await store.appendRecord(record({ execution_id: `r${i}` }));
      const kept = await store.records({ limit: 100 });
      assert.deepEqual(kept.map((r) => r.execution_id), ["r5", "r4", "r3"]);
    });
  });

  await t.step("records() drops records older than the TTL", async () => {
    await withStore(factory, { ttlS: 3600 }, async (store) => {
      await store.appendRecord(record({ execution_id: "old" }, 2 * 3600 * 1000));
      await store.appendRecord(record({ execution_id: "new" }));
      assert.deepEqual((await store.records()).map((r) => r.execution_id), ["new"]);
    });
  });

  await t.step("appendRecord() keeps every field and cuts an over-long command", async () => {
    await withStore(factory, {}, async (store) => {
      const r = record({
        command: "x".repeat(20_000),
        status: "timeout",
        exit_code: null,
        signal: "SIGKILL",
        timeout_s: 90,
        timeout_source: "history",
        bytes_out: 1234,
        bytes_err: 56,
      });
      await store.appendRecord(r);
      const [back] = await store.records();
      assert.ok(back);
      assert.ok(back.command.length < r.command.length);
      assert.ok(back.command.startsWith("xxxx"));
      assert.deepEqual({ ...back, command: r.command }, r);
      await assert.rejects(store.appendRecord({ ...r, bytes_out: -1 }), TypeError);
    });
  });

  await t.step("appendRecord() keeps a record of a lost run", async () => {
    await withStore(factory, {}, async (store) => {
      const lost = record({ status: "lost", exit_code: null, signal: "SIGKILL", bytes_out: 0 });
      await store.appendRecord(lost);
      assert.deepEqual(await store.records(), [lost]);
      // A timing run has no such status: lost runs never feed the estimates.
      await assert.rejects(
        store.appendRun("cmd:x", run(1, 0, { status: "lost" as never })),
        TypeError,
      );
    });
  });

  await t.step("ping() and health() report a working store", async () => {
    await withStore(factory, {}, async (store) => {
      await store.ping();
      const health = store.health();
      assert.equal(health.ok, true);
      assert.equal(health.backend, store.backend);
      assert.equal(health.reason, undefined);
    });
  });

  await t.step("close() makes calls fail with StoreUnavailableError", async () => {
    const store = await factory({});
    await store.close();
    await store.close();
    await assert.rejects(store.history("cmd:ls"), StoreUnavailableError);
    await assert.rejects(store.appendRun("cmd:ls", run(1)), StoreUnavailableError);
    await assert.rejects(store.ping(), StoreUnavailableError);
    const health = store.health();
    assert.equal(health.ok, false);
    assert.equal(health.reason, "store is closed");
  });
}
