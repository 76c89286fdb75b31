/**
 * A failing disk under the embedded store, against a server running as its
 * own process (a SIGBUS only shows in a real one): commands keep running and
 * complete, /health says degraded and names the error, then healthy once the
 * disk is writable again. Needs root (chattr, mount); skipped otherwise.
 *
 * @module
 */
import assert from "node:assert/strict";
import { eventually, type Msg, type ServerProcess, spawnServer, TestClient } from "../_helpers.ts";
import { canBreakDisks, chattr, dirAndFiles, fillDisk, mountTmpfs, umount } from "../_disk.ts";

async function health(server: ServerProcess): Promise<Msg> {
  return await (await fetch(`${server.httpUrl}/health`)).json();
}

/** A command that runs until `marker` exists, then prints `finished`. */
function untilMarker(marker: string): string {
  return `while [ ! -e ${marker} ]; do sleep 0.02; done; echo finished`;
}

/** The ids of the server's execution records, newest first. */
async function historyIds(client: TestClient): Promise<string[]> {
  const r = await client.request("history", { limit: 100 });
  return r.result.records.map((x: Msg) => x.execution_id);
}

/** Whether the server process has exited (it must not: no SIGBUS). */
async function exited(server: ServerProcess): Promise<boolean> {
  const timer = new Promise<false>((r) => setTimeout(() => r(false), 0));
  return await Promise.race([server.child.status.then(() => true), timer]);
}

/**
 * Starts a server on `data`, runs one command so the store has its files,
 * breaks the disk with `breakDisk`, and checks that a run spanning the
 * failure and one started during it both complete, that /health is degraded
 * with a reason matching `reason`, and that it is healthy again after `mend`.
 */
async function survivesDiskFailure(options: {
  script: "main.ts" | "scripts/start.ts";
  data: string;
  marker: string;
  breakDisk: () => Promise<void>;
  mend: () => Promise<void>;
  reason: RegExp;
  /** The crash journal's disk fails too. */
  journalFails?: boolean;
}): Promise<void> {
  const server = await spawnServer(
    { "data-dir": options.data, "store-retry": "0.1", "max-executions-per-session": "4" },
    {},
    { script: options.script },
  );
  let broken = false;
  try {
    const client = await TestClient.open({ wsUrl: server.wsUrl } as never);
    const warm = await client.run({ command: "echo warm" });
    await eventually(async () => (await historyIds(client)).includes(warm.result.execution_id));
    assert.equal((await health(server)).status, "healthy");

    // Started before the failure, ends after it.
    const spanning = await client.request("execute", { command: untilMarker(options.marker) });
    await client.event("started", spanning.result.execution_id);
    await options.breakDisk();
    broken = true;
    // Runs started during it complete. A full disk may still take a record
    // or two into the WAL's free pages: long commands make records big.
    const padding = "x".repeat(6000);
    const storeFailed = async () => (await health(server)).store.ok === false;
    for (let i = 0; !await storeFailed(); i++) {
      assert.ok(i < 50, "the store never reported the failure");
      const during = await client.run({ command: `echo during # ${padding}` });
      assert.equal(during.completed.status, "completed");
      assert.equal(during.stdout, "during\n");
      await eventually(
        async () => {
          const ids = await historyIds(client).catch((): string[] => []);
          return await storeFailed() || ids.includes(during.result.execution_id);
        },
        10_000,
        "the record or the failure",
      );
    }
    const h = await health(server);
    assert.equal(h.status, "degraded");
    assert.match(h.store.reason, options.reason);
    assert.match(h.degraded_reason, /^store: /);
    assert.match(server.output(), /Embedded store failing/);
    if (options.journalFails) {
      // The run spanning the failure is still recorded, in memory meanwhile.
      assert.equal(h.crash_journal.ok, false);
      assert.match(h.degraded_reason, /; crash journal: /);
      assert.ok(h.crash_journal.tracked >= 1);
    }

    await Deno.writeTextFile(options.marker, "");
    const done = await client.event("completed", spanning.result.execution_id);
    assert.equal(done.params.status, "completed");
    assert.ok(!await exited(server), "the server must survive the failure");

    await options.mend();
    broken = false;
    // The probe notices by itself, without a write of ours.
    await eventually(async () => (await health(server)).status === "healthy", 10_000, "healthy");
    assert.equal((await health(server)).crash_journal.ok, true);
    const after = await client.run({ command: "echo after" });
    try {
      await eventually(async () => (await historyIds(client)).includes(after.result.execution_id));
    } catch (err) {
      // Say what the server saw, so a failure here can be told apart from a slow machine.
      const h = await health(server).catch(() => ({}));
      const ids = await historyIds(client).catch((e) => [`history failed: ${e}`]);
      throw new Error(
        `the record of ${after.result.execution_id} never came: ${err}; history ` +
          `${JSON.stringify(ids.slice(0, 5))}; store ${JSON.stringify(h.store)}; journal ` +
          `${JSON.stringify(h.crash_journal)}; server output:\n${server.output().slice(-3000)}`,
      );
    }
    const ids = await historyIds(client);
    assert.ok(ids.includes(warm.result.execution_id));
    await client.close();
  } finally {
    if (broken) await options.mend().catch(() => {});
    const status = await server.stop();
    assert.equal(status.signal, null, `the server died of ${status.signal}: ${server.output()}`);
  }
}

Deno.test({
  name: "store failure: an immutable data dir under deno task start degrades, never kills",
  ignore: !canBreakDisks,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cc_fail_" });
    const data = `${dir}/data`;
    let frozen: string[] = [];
    try {
      await survivesDiskFailure({
        script: "scripts/start.ts",
        data,
        marker: `${dir}/go`,
        // The store's files and the crash journal's.
        breakDisk: async () => {
          frozen = [...await dirAndFiles(data), ...await dirAndFiles(`${data}/running`)];
          await chattr("+i", ...frozen);
        },
        mend: () => chattr("-i", ...frozen),
        reason: /SQLITE_IOERR|SQLITE_READONLY|SQLITE_CANTOPEN/,
        journalFails: true,
      });
    } finally {
      if (frozen.length > 0) await chattr("-i", ...frozen).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "store failure: an immutable WAL alone turns /health degraded (main.ts -A)",
  ignore: !canBreakDisks,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cc_fail_" });
    const data = `${dir}/data`;
    const wal = `${data}/store.db-wal`;
    try {
      await survivesDiskFailure({
        script: "main.ts",
        data,
        marker: `${dir}/go`,
        breakDisk: () => chattr("+i", wal),
        mend: () => chattr("-i", wal),
        reason: /SQLITE_IOERR/,
      });
    } finally {
      await chattr("-i", wal).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "store failure: a full disk under deno task start degrades, never kills",
  ignore: !canBreakDisks,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cc_fail_" });
    const data = `${dir}/data`;
    await Deno.mkdir(data);
    // Room for the store, the crash journal and the spill's lock (about 150 KiB) and for their
    // WALs to grow again once the disk is mended: at 256 KiB the first record after the mend
    // could find the disk full once more (SQLITE_FULL), and was dropped.
    await mountTmpfs(data, "512k");
    try {
      await survivesDiskFailure({
        script: "scripts/start.ts",
        data,
        marker: `${dir}/go`,
        breakDisk: () => fillDisk(`${data}/fill`),
        mend: () => Deno.remove(`${data}/fill`),
        reason: /SQLITE_FULL/,
      });
    } finally {
      await umount(data);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
