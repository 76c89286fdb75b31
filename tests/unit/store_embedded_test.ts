import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { EmbeddedStore } from "../../lib/store/embedded.ts";
import { createStore, StoreUnavailableError } from "../../lib/store/store.ts";
import { record, run, storeContract } from "../store_contract.ts";
import { canBreakDisks, chattr, fillDisk, mountTmpfs, umount } from "../_disk.ts";
import { eventually } from "../_helpers.ts";

Deno.test("EmbeddedStore meets the store contract in memory", (t) =>
  storeContract(t, (bounds) => EmbeddedStore.open({ ...bounds, path: ":memory:" })));

Deno.test("EmbeddedStore meets the store contract on disk", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "cc_store_" });
  let n = 0;
  try {
    await storeContract(t, (bounds) => EmbeddedStore.open({ ...bounds, path: `${dir}/${++n}.db` }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EmbeddedStore.open() keeps history and records across a reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_store_" });
  // A directory that does not exist yet: open() creates it.
  const path = `${dir}/data/store.db`;
  try {
    const first = await EmbeddedStore.open({ path, maxRuns: 3 });
    for (let i = 1; i <= 4; i++) await first.appendRun("cmd:make", run(i));
    await first.appendRecord(record({ execution_id: "kept" }));
    await first.close();

    const second = await EmbeddedStore.open({ path, maxRuns: 3 });
    try {
      assert.deepEqual((await second.history("cmd:make")).map((r) => r.duration_s), [4, 3, 2]);
      assert.deepEqual(await second.classes(), ["cmd:make"]);
      assert.deepEqual((await second.records()).map((r) => r.execution_id), ["kept"]);
      // Numbering carries on after the reopen, so the bound still holds.
      await second.appendRun("cmd:make", run(5));
      assert.deepEqual((await second.history("cmd:make")).map((r) => r.duration_s), [5, 4, 3]);
    } finally {
      await second.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EmbeddedStore.open() of a database written before principals: its records are local's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_store_old_" });
  try {
    // The records table as the previous version created it, with one record.
    const old = new DatabaseSync(`${dir}/store.db`);
    old.exec(
      "CREATE TABLE records (seq INTEGER PRIMARY KEY, class TEXT NOT NULL, " +
        "started_at INTEGER NOT NULL, body TEXT NOT NULL)",
    );
    const { principal: _, ...legacy } = record({ execution_id: "before" });
    old.prepare("INSERT INTO records (class, started_at, body) VALUES (?, ?, ?)")
      .run(legacy.class, legacy.started_at, JSON.stringify(legacy));
    old.close();
    const store = await EmbeddedStore.open({ path: `${dir}/store.db` });
    try {
      await store.appendRecord(record({ execution_id: "after", principal: "alice" }));
      const ids = async (principal: string) =>
        (await store.records({ principal })).map((r) => r.execution_id);
      assert.deepEqual(await ids("local"), ["before"]);
      assert.deepEqual(await ids("alice"), ["after"]);
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EmbeddedStore.open() of an unusable path gives a degraded store that fails fast", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_store_" });
  try {
    // A regular file where the data directory should be.
    await Deno.writeTextFile(`${dir}/file`, "");
    const store = await EmbeddedStore.open({ path: `${dir}/file/store.db` });
    try {
      const health = store.health();
      assert.equal(health.ok, false);
      assert.match(health.reason ?? "", /cannot open .*file\/store\.db/);
      await assert.rejects(store.appendRun("cmd:ls", run(1)), StoreUnavailableError);
      await assert.rejects(store.records(), StoreUnavailableError);
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EmbeddedStore.open() rejects invalid bounds with RangeError", async () => {
  await assert.rejects(EmbeddedStore.open({ path: ":memory:", maxRuns: 0 }), RangeError);
  await assert.rejects(EmbeddedStore.open({ path: ":memory:", ttlS: -1 }), RangeError);
});

Deno.test("createStore() opens the embedded store without a Redis URL", async () => {
  const store = await createStore({ ephemeral: true });
  try {
    assert.equal(store.backend, "embedded");
    assert.deepEqual(store.health(), { backend: "embedded", ok: true });
  } finally {
    await store.close();
  }
  await assert.rejects(createStore({}), TypeError);
});

/** The files of the database at `path` that exist now. */
async function dbFiles(path: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of [path, `${path}-wal`]) {
    if (await Deno.stat(p).then(() => true, () => false)) out.push(p);
  }
  return out;
}

Deno.test({
  name: "EmbeddedStore: an immutable data dir degrades writes, and the next write recovers",
  ignore: !canBreakDisks,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cc_store_" });
    const path = `${dir}/store.db`;
    const store = await EmbeddedStore.open({ path, retryMs: 3_600_000 });
    const frozen = [dir, ...await dbFiles(path)];
    try {
      await store.appendRecord(record({ execution_id: "before" }));
      await chattr("+i", ...frozen);
      const failed = await store.appendRecord(record({ execution_id: "during" })).then(
        () => null,
        (e) => e,
      );
      assert.ok(failed instanceof StoreUnavailableError, String(failed));
      const health = store.health();
      assert.equal(health.ok, false);
      assert.match(health.reason ?? "", /SQLITE_IOERR|SQLITE_READONLY|SQLITE_CANTOPEN/);
      // Reads still answer from what was written.
      assert.deepEqual((await store.records()).map((r) => r.execution_id), ["before"]);
      await chattr("-i", ...frozen);
      await store.appendRecord(record({ execution_id: "after" }));
      assert.deepEqual(store.health(), { backend: "embedded", ok: true });
      assert.deepEqual((await store.records()).map((r) => r.execution_id), ["after", "before"]);
    } finally {
      await chattr("-i", ...frozen).catch(() => {});
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "EmbeddedStore: a full disk degrades writes, and the probe recovers once there is room",
  ignore: !canBreakDisks,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cc_store_" });
    await mountTmpfs(dir, "256k");
    let store: EmbeddedStore | undefined;
    try {
      store = await EmbeddedStore.open({ path: `${dir}/store.db`, retryMs: 20 });
      await store.appendRun("cmd:make", run(1));
      await fillDisk(`${dir}/fill`);
      // Big records fill the WAL's last free pages too.
      const big = record({ command: "x".repeat(8000) });
      let failure: unknown = null;
      for (let i = 0; i < 100 && failure === null; i++) {
        failure = await store.appendRecord({ ...big, execution_id: `big${i}` }).then(
          () => null,
          (e) => e,
        );
      }
      assert.ok(failure instanceof StoreUnavailableError, String(failure));
      assert.match(store.health().reason ?? "", /SQLITE_FULL/);
      await Deno.remove(`${dir}/fill`);
      // Nothing is written: the probe notices the room by itself.
      await eventually(() => store!.health().ok, 10_000, "the probe to recover");
      assert.deepEqual((await store.history("cmd:make")).map((r) => r.duration_s), [1]);
    } finally {
      await store?.close();
      await umount(dir);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("EmbeddedStore: a second store on the same file runs degraded until the first closes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_store_" });
  const path = `${dir}/store.db`;
  const first = await EmbeddedStore.open({ path });
  const second = await EmbeddedStore.open({ path, retryMs: 20 });
  try {
    await first.appendRun("cmd:make", run(7));
    assert.equal(second.health().ok, false);
    assert.match(second.health().reason ?? "", /database is locked/);
    await assert.rejects(second.history("cmd:make"), StoreUnavailableError);
    await first.close();
    await eventually(() => second.health().ok, 10_000, "the second store to take over");
    assert.deepEqual((await second.history("cmd:make")).map((r) => r.duration_s), [7]);
  } finally {
    await first.close();
    await second.close();
    await Deno.remove(dir, { recursive: true });
  }
});
