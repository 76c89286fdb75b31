import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DeadJournal, journalFiles } from "../../lib/core/dead_journal.ts";
import { GroupJournal, type GroupRecord } from "../../lib/core/group_journal.ts";
import { canBreakDisks, chattr, dirAndFiles } from "../_disk.ts";
import { eventually } from "../_helpers.ts";

function record(executionId: string, extra: Partial<GroupRecord> = {}): GroupRecord {
  return {
    executionId,
    pgid: 4242,
    pid: 4242,
    startLo: 100,
    startHi: 102,
    bootId: "boot",
    cgroup: null,
    startedAt: 1_700_000_000_000,
    command: "sleep 60",
    limitClass: null,
    line: null,
    timeoutS: 60,
    timeoutSource: "request",
    principal: "local",
    ...extra,
  };
}

Deno.test("GroupJournal keeps records on disk for a later instance; the live one's file is locked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_journal_" });
  try {
    const journal = GroupJournal.open({ dir, instance: "a", retryMs: 1000 });
    journal.add(record("e1"));
    journal.add(record("e2", { cgroup: "/sys/fs/cgroup/x", line: '["sleep","60"]' }));
    journal.add(record("e3"));
    journal.remove("e3");
    // Another instance sees the file, but may not have it while "a" runs.
    assert.deepEqual(journalFiles(dir, "b"), [`${dir}/a.db`]);
    assert.deepEqual(journalFiles(dir, "a"), []);
    assert.equal(DeadJournal.claim(`${dir}/a.db`), null);
    // "a" dies with two groups recorded (close keeps a non-empty journal).
    journal.close();
    const dead = DeadJournal.claim(`${dir}/a.db`);
    assert.ok(dead !== null);
    assert.equal(dead.info.instance, "a");
    assert.equal(dead.info.pid, Deno.pid);
    assert.deepEqual(
      dead.records.sort((x, y) => x.executionId.localeCompare(y.executionId)),
      [record("e1"), record("e2", { cgroup: "/sys/fs/cgroup/x", line: '["sleep","60"]' })],
    );
    // While one instance reaps it, nobody else can.
    assert.equal(DeadJournal.claim(`${dir}/a.db`), null);
    dead.finish();
    assert.deepEqual(journalFiles(dir, "b"), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DeadJournal.claim() reads a journal written before principals: its runs are local's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_journal_" });
  try {
    const old = new DatabaseSync(`${dir}/old.db`);
    old.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
      CREATE TABLE groups (
      execution_id TEXT PRIMARY KEY, pgid INTEGER NOT NULL, pid INTEGER NOT NULL,
      start_lo INTEGER NOT NULL, start_hi INTEGER NOT NULL, boot_id TEXT NOT NULL,
      cgroup TEXT, started_at INTEGER NOT NULL, command TEXT NOT NULL, limit_class TEXT,
      line TEXT, timeout_s REAL, timeout_source TEXT NOT NULL) WITHOUT ROWID;`);
    old.prepare(
      "INSERT INTO groups VALUES ('e1', 4242, 4242, 100, 102, 'boot', NULL, 1700000000000, " +
        "'sleep 60', NULL, NULL, 60, 'request')",
    ).run();
    old.close();
    const dead = DeadJournal.claim(`${dir}/old.db`);
    assert.ok(dead !== null);
    assert.deepEqual(dead.records, [record("e1")]);
    dead.finish();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GroupJournal.close() with nothing running removes the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cc_journal_" });
  try {
    const journal = GroupJournal.open({ dir, instance: "a", retryMs: 1000 });
    journal.add(record("e1"));
    journal.remove("e1");
    journal.close();
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GroupJournal in a directory that cannot be created keeps records in memory, degraded", () => {
  const journal = GroupJournal.open({ dir: "/proc/cc-no-such", instance: "a", retryMs: 60_000 });
  try {
    journal.add(record("e1"));
    const health = journal.health();
    assert.equal(health.ok, false);
    assert.equal(health.tracked, 1);
    assert.match(health.reason ?? "", /unable to open|cannot open|No such file/i);
  } finally {
    journal.close();
  }
});

Deno.test({
  name: "GroupJournal: while its disk is immutable records stay in memory, then are all written",
  ignore: !canBreakDisks,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cc_journal_" });
    const journal = GroupJournal.open({ dir, instance: "a", retryMs: 20 });
    let frozen: string[] = [];
    try {
      journal.add(record("before"));
      frozen = await dirAndFiles(dir);
      await chattr("+i", ...frozen);
      journal.add(record("during"));
      journal.remove("before");
      assert.equal(journal.health().ok, false);
      assert.match(journal.health().reason ?? "", /disk I\/O error|readonly|not permitted/i);
      await chattr("-i", ...frozen);
      frozen = [];
      // The retry writes what is running now.
      await eventually(() => journal.health().ok, 10_000, "the journal to recover");
      journal.close();
      const dead = DeadJournal.claim(`${dir}/a.db`);
      assert.deepEqual(dead?.records.map((r) => r.executionId), ["during"]);
      dead?.release();
    } finally {
      if (frozen.length > 0) await chattr("-i", ...frozen);
      journal.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
