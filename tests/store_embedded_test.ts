import assert from "node:assert/strict";
import { EmbeddedStore } from "../lib/store/embedded.ts";
import { createStore, StoreUnavailableError } from "../lib/store/store.ts";
import { record, run, storeContract } from "./store_contract.ts";

Deno.test("EmbeddedStore meets the store contract in memory", (t) =>
  storeContract(t, (bounds) => EmbeddedStore.open({ ...bounds, path: ":memory:" })));

Deno.test("EmbeddedStore meets the store contract on disk", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "cc_store_" });
  let n = 0;
  try {
    await storeContract(t, (bounds) => EmbeddedStore.open({ ...bounds, path: `${dir}/${++n}.kv` }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EmbeddedStore.open() keeps history and records across a reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_store_" });
  // A directory that does not exist yet: open() creates it.
  const path = `${dir}/data/store.kv`;
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

Deno.test("EmbeddedStore.open() fails with StoreUnavailableError for an unusable path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_store_" });
  try {
    // A regular file where the data directory should be.
    await Deno.writeTextFile(`${dir}/file`, "");
    await assert.rejects(
      EmbeddedStore.open({ path: `${dir}/file/store.kv` }),
      StoreUnavailableError,
    );
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
