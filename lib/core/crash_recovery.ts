/**
 * Nothing left running after a crash. Every process group the server starts
 * is recorded in its crash journal (lib/core/group_journal.ts) before the client
 * hears `process.started`, and forgotten once nothing of it is left. When a
 * server starts, it reaps the journals of dead instances (ones whose lock
 * nobody holds): each recorded group whose leader is still the process the
 * dead server started (same boot, same pid, same start time: never a reused
 * pid) is killed, paused groups included, and every recorded execution goes
 * into the history with status `lost`.
 *
 * How a recorded group is ended is a {@linkcode GroupReaper}
 * (lib/core/group_reaper.ts); the default signals the process group. A
 * reaper for per-execution cgroups wraps it ({@linkcode withCgroups}) and is
 * passed as `reaper` to {@linkcode CrashRecovery.start}.
 *
 * `setpriv --pdeathsig KILL` is not used, though it does fire from Deno's
 * spawn here (the direct child dies within milliseconds of a SIGKILL to the
 * server, and lives on while the server runs): it would kill the leader
 * alone, leaving its group leaderless, and a leaderless group cannot be
 * proven the dead server's at the restart that would otherwise kill it all.
 *
 * @module
 */
import { DeadJournal, journalFiles } from "./dead_journal.ts";
import { GroupJournal, type GroupRecord, type JournalHealth } from "./group_journal.ts";
import {
  type GroupReaper,
  ProcessGroupReaper,
  type ReaperFactory,
  type ReapOutcome,
} from "./group_reaper.ts";
import type { Execution } from "./execution.ts";
import type { GroupTracker } from "./execution_registry.ts";
import { logger, runFields } from "../log.ts";
import { bootId, StartClock } from "../process/proc_stat.ts";
import { type ExecutionRecord, type Store, StoreUnavailableError } from "../store/store.ts";
import { classify, type CommandLine } from "../timing/classify.ts";

export {
  type GroupReaper,
  ProcessGroupReaper,
  type ReaperFactory,
  type ReapOutcome,
  withCgroups,
} from "./group_reaper.ts";

const log = logger("crash-recovery");

/** Crash recovery's part of `/health`. */
export interface RecoveryHealth {
  /** Groups of dead instances killed since start. */
  reapedGroups: number;
  /** Executions of dead instances recorded as `lost` since start. */
  lostExecutions: number;
  /** This instance's journal; null when start times cannot be read. */
  journal: JournalHealth | null;
  /** Why recovery cannot work, when it cannot (then nothing is recorded). */
  failure?: string;
}

/** Options for {@linkcode CrashRecovery.start}. */
export interface CrashRecoveryOptions {
  /** Where the journals live, e.g. `<data dir>/running`. */
  dir: string;
  /** Where `lost` records go. */
  store: Store;
  /** While a write fails, how often to try again, ms. */
  retryMs: number;
  /** How recorded groups are ended (default {@linkcode ProcessGroupReaper}). */
  reaper?: ReaperFactory;
}

const defaultReaper: ReaperFactory = (records, boot) =>
  ProcessGroupReaper.forRecords(records, boot);

/**
 * This instance's crash recovery: reaps dead instances at start, then
 * records every group the registry spawns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CrashRecovery } from "./crash_recovery.ts";
 * import { createStore } from "../store/store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await createStore({ ephemeral: true });
 * const recovery = await CrashRecovery.start({ dir, store, retryMs: 1000 });
 * assert.equal(recovery.health().reapedGroups, 0);
 * assert.equal(recovery.health().journal?.ok, true);
 * recovery.close();
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class CrashRecovery implements GroupTracker {
  /** This server instance's id, new at every start. */
  readonly instance: string = crypto.randomUUID();
  readonly #options: CrashRecoveryOptions;
  #journal: GroupJournal | null = null;
  #clock: StartClock | null = null;
  #bootId = "";
  #failure: string | undefined;
  #reaped = 0;
  #lost = 0;
  /** Dead journals whose `lost` records the store would not take yet, held locked. */
  readonly #pending = new Set<{ journal: DeadJournal; records: ExecutionRecord[] }>();
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  private constructor(options: CrashRecoveryOptions) {
    this.#options = options;
  }

  /**
   * Opens this instance's journal and reaps the journals of dead instances.
   * Never fails: when start times cannot be read, recovery is off and its
   * health says why.
   */
  static async start(options: CrashRecoveryOptions): Promise<CrashRecovery> {
    const recovery = new CrashRecovery(options);
    try {
      recovery.#clock = await StartClock.calibrate();
      recovery.#bootId = await bootId();
    } catch (e) {
      recovery.#failure = `cannot read process start times: ${e instanceof Error ? e.message : e}`;
      log.error("Crash recovery off: {reason}", { reason: recovery.#failure });
      return recovery;
    }
    recovery.#journal = GroupJournal.open({
      dir: options.dir,
      instance: recovery.instance,
      retryMs: options.retryMs,
    });
    await recovery.reapDead();
    return recovery;
  }

  /** Records the group of `exec`, spawned between `before` and `after` (`performance.now()`). */
  spawned(exec: Execution, before: number, after: number): void {
    const journal = this.#journal;
    if (journal === null) return;
    try {
      this.#add(journal, exec, before, after);
    } catch (e) {
      // Never at the cost of the run, which has started.
      log.error("Run {execution_id} not journaled: {error}", {
        ...runFields(exec),
        error: String(e),
      });
    }
  }

  #add(journal: GroupJournal, exec: Execution, before: number, after: number): void {
    const window = this.#clock!.window(before, after, exec.pid);
    const line = exec.spec.line;
    journal.add({
      executionId: exec.id,
      pgid: exec.pgid,
      pid: exec.pid,
      startLo: window.lo,
      startHi: window.hi,
      bootId: this.#bootId,
      cgroup: exec.cgroups[0] ?? null,
      startedAt: exec.startedAt,
      command: exec.spec.display,
      limitClass: exec.spec.limitClass ?? null,
      line: line === undefined || line === exec.spec.display ? null : JSON.stringify(line),
      timeoutS: exec.spec.timeout,
      timeoutSource: exec.spec.timeoutSource,
      principal: exec.principal,
    });
  }

  /** Forgets the group of `exec`: nothing of it is left. */
  gone(exec: Execution): void {
    this.#journal?.remove(exec.id);
  }

  /** Figures and journal state for `/health`. */
  health(): RecoveryHealth {
    return {
      reapedGroups: this.#reaped,
      lostExecutions: this.#lost,
      journal: this.#journal?.health() ?? null,
      ...(this.#failure === undefined ? {} : { failure: this.#failure }),
    };
  }

  /**
   * Reaps every journal in the directory whose instance is dead: kills the
   * groups that are provably its own and records its executions as `lost`.
   * Run at start; safe to run again (a journal being reaped is locked).
   */
  async reapDead(): Promise<void> {
    const started = performance.now();
    const reaper = this.#options.reaper ?? defaultReaper;
    for (const path of journalFiles(this.#options.dir, this.instance)) {
      let dead: DeadJournal | null;
      try {
        dead = DeadJournal.claim(path);
      } catch (e) {
        log.warning("Crash journal {path} not read: {error}", { path, error: String(e) });
        continue;
      }
      if (dead === null) continue; // its server is alive
      let r: GroupReaper;
      try {
        r = await reaper(dead.records, this.#bootId);
      } catch (e) {
        log.error("Crash journal {path} not reaped: {error}", { path, error: String(e) });
        dead.release();
        continue;
      }
      const now = Date.now();
      const lost: ExecutionRecord[] = [];
      let killed = 0;
      for (const record of dead.records) {
        const outcome = await r.kill(record).catch((e): ReapOutcome => ({
          result: "not_ours",
          why: `reaper failed: ${e instanceof Error ? e.message : e}`,
        }));
        if (outcome.result === "killed") killed++;
        if (outcome.result === "not_ours") {
          log.warning("Left group {pgid} of lost run {execution_id} alone: {why}", {
            ...runFields({ id: record.executionId, principal: record.principal }),
            pgid: record.pgid,
            why: outcome.why,
          });
        }
        lost.push(lostRecord(record, now, outcome));
      }
      this.#reaped += killed;
      log.warning(
        "Instance {instance} (pid {pid}) died with {count} runs: {killed} groups killed, " +
          "all recorded as lost",
        { instance: dead.info.instance, pid: dead.info.pid, count: lost.length, killed },
      );
      await this.#record({ journal: dead, records: lost });
    }
    log.debug("Crash recovery scan took {ms} ms", {
      ms: Math.round((performance.now() - started) * 100) / 100,
    });
  }

  /** Closes the journal (removing it if nothing runs); pending dead journals stay for later. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#journal?.close();
    for (const p of this.#pending) p.journal.release();
    this.#pending.clear();
  }

  /** Writes a dead journal's `lost` records, then deletes it; keeps it locked to retry when the store fails. */
  async #record(p: { journal: DeadJournal; records: ExecutionRecord[] }): Promise<void> {
    while (p.records.length > 0) {
      try {
        await this.#options.store.appendRecord(p.records[0]!);
      } catch (e) {
        if (this.#closed) return;
        if (!(e instanceof StoreUnavailableError)) {
          // Not the store's fault: retrying would not help.
          log.error("Lost run {execution_id} not recorded: {error}", {
            ...runFields({ id: p.records[0]!.execution_id, principal: p.records[0]!.principal }),
            error: String(e),
          });
          p.records.shift();
          continue;
        }
        if (!this.#pending.has(p)) {
          log.warning("Lost runs not recorded yet (retrying): {error}", { error: String(e) });
          this.#pending.add(p);
        }
        this.#armRetry();
        return;
      }
      p.records.shift();
      this.#lost++;
    }
    this.#pending.delete(p);
    try {
      p.journal.finish();
    } catch (e) {
      log.warning("Crash journal {path} not removed: {error}", {
        path: p.journal.path,
        error: String(e),
      });
    }
  }

  #armRetry(): void {
    if (this.#retryTimer !== undefined) return;
    this.#retryTimer = setTimeout(async () => {
      this.#retryTimer = undefined;
      for (const p of [...this.#pending]) await this.#record(p);
    }, this.#options.retryMs);
    Deno.unrefTimer(this.#retryTimer);
  }
}

/** The history record of a run its server lost. */
function lostRecord(record: GroupRecord, now: number, outcome: ReapOutcome): ExecutionRecord {
  let line: CommandLine = record.command;
  if (record.line !== null) {
    try {
      line = JSON.parse(record.line);
    } catch {
      // Classified by the command instead.
    }
  }
  return {
    execution_id: record.executionId,
    command: record.command,
    class: record.limitClass ?? classify(line).class,
    started_at: record.startedAt,
    // Until it was found: when it ended in between is not known.
    duration_s: Math.max(0, Math.round(now - record.startedAt) / 1000),
    status: "lost",
    exit_code: null,
    signal: outcome.result === "killed" ? "SIGKILL" : null,
    timeout_s: record.timeoutS,
    timeout_source: record.timeoutSource,
    bytes_out: 0,
    bytes_err: 0,
    principal: record.principal,
  };
}
