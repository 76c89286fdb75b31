/**
 * `deno task bench`: the figures of issue 2 item 10, measured against real
 * cc-executor servers started as subprocesses exactly as `deno task start`
 * starts them (scripts/start.ts: main.ts under the scoped permissions its
 * config needs), so the service's memory can be read from
 * `/proc/<pid>/status` (its pid comes from `/health`) and client and server
 * are separate processes, as in production.
 *
 * Prints one JSON line per figure on stdout, each with its target and a
 * `pass` boolean, then a summary table on stderr. Targets are reported, not
 * asserted: the exit code is 0 whatever the figures, and 1 only when a figure
 * could not be measured at all (its line then has an `error`).
 *
 * Figures, in order:
 * 1. `throughput`: one WebSocket client runs `cat` of a generated text file
 *    (64 MiB, lines of varied length with some multi-byte characters and a
 *    few lines longer than a message) and receives until `process.completed`.
 *    MB/s is the UTF-8 size of every `process.output` `data` over the time
 *    from sending `execute` to receiving `process.completed`; the bytes are
 *    checked by count and SHA-256 against the file. Median of 7 rounds (3
 *    with `--quick`), after a warm-up round that is not counted; the best
 *    round is reported too, since other load on the machine can only slow a
 *    round down.
 * 2. `ceiling`: the same client against `scripts/bench_ceiling_server.ts`, a
 *    bare Deno WebSocket server sending the same file in 64 KiB frames in the
 *    same JSON-RPC envelope, in the same run, rounds interleaved with ours;
 *    `ratio` is ours over it (target >= 0.85). Also reports the same server
 *    sending bare text frames, to show what the envelope costs.
 * 3. `latency`: `execute` of `true` to its `process.completed`, sequentially
 *    on one connection (p50/p99 over 200 runs, after 20 warm-up runs). Also
 *    reports how long a fresh Deno process takes to spawn and reap
 *    `sh -c true` (plainly; through `setsid`, as the server does under an
 *    unscoped --allow-run; and detached, as it does otherwise), and the round
 *    trip of a JSON-RPC `ping` on the same connection: together, roughly the
 *    floor for this figure. The same number of runs of a minimal executor in
 *    this process (spawn `setsid sh -c true` with piped stdout and stderr,
 *    read both to the end, await the status), in alternating blocks of 10 with
 *    ours so both see the same load: its p50, and ours over it (target <= 1.25).
 * 4. `sessions`: 100 WebSocket connections at once, each running `cat` of a
 *    1 MiB ASCII text file: wall time from the first connect to the last
 *    `process.completed`, bytes lost, and the server's peak RSS (VmHWM, reset
 *    through `/proc/<pid>/clear_refs` after a warm-up burst of 5, and
 *    cross-checked by sampling VmRSS every 20 ms until every socket is closed).
 * 5. `slow_reader`: a raw-TCP WebSocket client (handshake by hand, so it can
 *    read at its own pace, which a browser-style WebSocket cannot) runs
 *    `cat /dev/zero | tr '\0' x` and reads the socket at 1 MiB/s for 10 s,
 *    then drops the connection: the server's peak RSS (VmRSS every 20 ms)
 *    from the start of the run until no live process of the run's group is
 *    left, over its RSS before (after one ordinary warm-up run), and the time
 *    from dropping the TCP connection until the group is gone.
 * 6. `stdin_flood`: an MCP client over the WebSocket `start`s `sleep 1000`
 *    with `stdin_open`, then sends 640 `send_input` calls of 1 MiB each (64
 *    in flight at a time) to a process that never reads them: the server's
 *    peak RSS (VmRSS every 20 ms) over its RSS before, and the slowest
 *    answer, measured from sending the call. A call unanswered after 10 s
 *    stops the flood and fails the figure.
 * 7. `stall`: 18 connections, each with one run: 6 shell groups with a member
 *    that ignores SIGTERM (in 3 the leader ignores it too) and 6 plain
 *    `sleep 1000; true` shells are canceled at once while 6 more with
 *    `timeout: 1` time out, all under the default `kill-grace` (5 s), while
 *    `/healthz` is polled every 10 ms from before the cancels until every
 *    group is gone: max and p99 latency of those polls (target max <= 50 ms),
 *    when the SIGTERM-ignoring runs ended after their CANCEL (SIGKILL is due
 *    `kill-grace` after it), the server's peak RSS, and its own
 *    `event_loop_lag_max_ms`.
 *
 * 8. `restart_reaping`: see its function.
 * 9. `tenant_lookup`: with two principals' keys, `/mcp` requests with another
 *    tenant's live session id and with unknown ids, alternating: the same
 *    404 for both, and their median latencies within 0.1 ms or 5%.
 * 10. `replay`: a detached 64 MiB run replayed from offset 0 by a new
 *    connection after it ended: MB/s, bytes lost (target 0).
 * 11. `detached_memory`: 100 detached runs of 1 MiB each with no one
 *    attached: the server's peak RSS (target <= 128 MiB), and replays of 5
 *    of them byte-exact (see scripts/bench/durable.ts).
 * 12. `cli`: the command-line client's `run -- cat` of a 64 MiB random
 *    binary file, MB/s against a bare client of the same protocol (target
 *    ratio >= 0.6), and its peak RSS with a reader at 16 MiB/s (target
 *    <= 128 MB), byte-exact (see scripts/bench/cli.ts).
 * 13. `cluster`: three nodes on one redis-server: a 64 MiB `cat` relayed
 *    from another node against the same run on the client's node (ratio
 *    >= 0.5, 0 bytes lost), the p50 latency a remote `true` adds (<= 25 ms),
 *    and the time from SIGKILL of a node to `lost` at its client (<= 15 s)
 *    (see scripts/bench/cluster.ts).
 *
 * Each figure group gets a fresh server, so one figure's heap does not show
 * up in another's memory. Units: MB = 10^6 bytes, for rates and memory alike;
 * `*_cpu_pct` is CPU time over wall time in percent of one core (threads
 * included), `machine_busy_pct` is of all cores. Client and servers share the
 * machine, so anything else running on it shows in the figures: the load
 * average is printed on stderr before and after.
 * `--quick`: 8 MiB, 50 runs, 20 sessions, 3 s, 64 calls, for a fast check.
 * `--only=<figure>,...`: just those figures (e.g. `--only=sessions,stdin_flood`).
 *
 * Each figure lives in scripts/bench/<figure>.ts, what they share in
 * scripts/bench/_common.ts; this file runs them and prints the summary.
 *
 * @module
 */

import {
  failureCount,
  type Figure,
  FIGURE_TIMEOUT_MS,
  generateText,
  MiB,
  only,
  quick,
  reportError,
  results,
  running,
  SESSION_BYTES,
  setBenchDataDir,
  sha256Hex,
  SIZES,
  stopProcess,
  withTimeout,
} from "./bench/_common.ts";
import { throughputAndCeiling } from "./bench/throughput.ts";
import { latency } from "./bench/latency.ts";
import { sessions } from "./bench/sessions.ts";
import { slowReader } from "./bench/slow_reader.ts";
import { stdinFlood } from "./bench/stdin_flood.ts";
import { stallFigure } from "./bench/stall.ts";
import { restartReaping } from "./bench/restart_reaping.ts";
import { tenantLookup } from "./bench/tenant_lookup.ts";
import { detachedMemoryFigure, replayFigure } from "./bench/durable.ts";
import { cliFigure } from "./bench/cli.ts";
import { clusterFigure } from "./bench/cluster.ts";

// ---------------------------------------------------------------- main

function summary(): void {
  const rows: [string, string, string, string][] = [];
  const get = (name: string) => results.find((r) => r.figure === name);
  const fmt = (f: Figure | undefined, text: (f: Figure) => string) =>
    f === undefined ? "-" : f.error ? `error: ${f.error}` : text(f);
  const add = (name: string, text: (f: Figure) => string) => {
    const f = get(name);
    if (f === undefined && only !== null) return;
    rows.push([name, fmt(f, text), String(f?.target ?? ""), f ? (f.pass ? "pass" : "FAIL") : "-"]);
  };
  add("throughput", (f) => `${f.mb_per_s} MB/s, ${f.bytes_lost} B lost, sha ${f.sha256_match}`);
  add(
    "ceiling",
    (f) => `${f.mb_per_s} MB/s (raw frames ${f.raw_frames_mb_per_s}), ratio ${f.ratio}`,
  );
  add(
    "latency",
    (f) =>
      `p50 ${f.p50_ms} ms, p99 ${f.p99_ms} ms; minimal ${f.minimal_executor_p50_ms} ms, ` +
      `ratio ${f.ratio_to_minimal}`,
  );
  add(
    "sessions",
    (f) =>
      `${f.sessions} in ${f.wall_s} s, ${f.bytes_lost} B lost, peak RSS ${f.server_peak_rss_mb} MB`,
  );
  add(
    "slow_reader",
    (f) => `peak RSS +${f.peak_growth_mb} MB, cleanup ${f.cleanup_ms} ms`,
  );
  add(
    "stdin_flood",
    (f) =>
      `${f.calls_answered}/${f.calls} answered, slowest ${f.slowest_answer_s} s, ` +
      `peak RSS +${f.peak_growth_mb} MB`,
  );
  add(
    "restart_reaping",
    (f) =>
      `${f.groups} groups (${f.paused} paused) gone ${f.all_gone_s} s after restart, ` +
      `${f.lost_executions} recorded lost`,
  );
  add(
    "tenant_lookup",
    (f) =>
      `another tenant's session ${f.others_session_p50_ms} ms vs unknown ` +
      `${f.unknown_session_p50_ms} ms (p50), ${f.distinct_answers} distinct answer(s)`,
  );
  add(
    "replay",
    (f) => `${f.mb_per_s} MB/s from 0, ${f.bytes_lost} B lost, ${f.gaps} gaps`,
  );
  add(
    "detached_memory",
    (f) =>
      `${f.runs} runs: peak RSS ${f.server_peak_rss_mib} MiB; replays ${f.replay_bytes_lost} B ` +
      `lost`,
  );
  add(
    "cli",
    (f) =>
      `${f.mb_per_s} MB/s vs bare client ${f.direct_mb_per_s} (ratio ${f.ratio}); slow reader ` +
      `peak RSS ${f.slow_reader_peak_rss_mb} MB; ${f.bytes_lost} B lost`,
  );
  add(
    "cluster",
    (f) =>
      `relay ${f.relay_mb_per_s} MB/s vs local ${f.local_mb_per_s} (ratio ${f.ratio}), ` +
      `${f.bytes_lost} B lost; remote true +${f.extra_latency_p50_ms} ms p50; ` +
      `kill to lost ${f.kill_to_lost_s} s`,
  );
  add(
    "stall",
    (f) =>
      `/healthz max ${f.healthz_max_ms} ms, p99 ${f.healthz_p99_ms} ms; ` +
      `SIGTERM-ignoring runs ended ${
        Math.min(...(f.term_ignoring_ended_after_cancel_ms as number[]))
      }-` +
      `${Math.max(...(f.term_ignoring_ended_after_cancel_ms as number[]))} ms after CANCEL`,
  );
  const widths = [0, 1, 2, 3].map((i) =>
    Math.max(...rows.map((r) => r[i]!.length), ["figure", "measured", "target", ""][i]!.length)
  );
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.error(`\ncc-executor bench${quick ? " (--quick)" : ""}`);
  console.error(line(["figure", "measured", "target", ""]));
  for (const r of rows) console.error(line(r));
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

async function cleanup(tmp: string | null): Promise<void> {
  await Promise.all([...running].map((p) => stopProcess(p)));
  if (tmp !== null) await Deno.remove(tmp, { recursive: true }).catch(() => {});
}

async function main(): Promise<number> {
  let tmp: string | null = null;
  // Ctrl-C must not leave servers (and their children) behind.
  const onInterrupt = () => {
    console.error("bench: interrupted, stopping servers");
    void cleanup(tmp).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    tmp = await Deno.makeTempDir({ prefix: "cc-executor-bench-" });
    setBenchDataDir(`${tmp}/data`);
    const file = `${tmp}/throughput.txt`;
    const sessionFile = `${tmp}/session.txt`;
    // The large file only when a figure that reads it runs.
    const needFile = only === null || only.includes("throughput") || only.includes("ceiling");
    const text = needFile ? generateText(SIZES.fileBytes, 1) : new Uint8Array(0);
    await Deno.writeFile(file, text);
    const fileSha = await sha256Hex(text);
    // ASCII, like the spec's `tr` example and most command output: a V8 string
    // holding one character above U+00FF takes two bytes per character, which
    // would make the memory figure about typical text pessimistic.
    const sessionText = generateText(SESSION_BYTES, 2, false);
    await Deno.writeFile(sessionFile, sessionText);
    const sessionSha = await sha256Hex(sessionText);
    console.error(
      `bench: ${SIZES.fileBytes / MiB} MiB text file, ${navigator.hardwareConcurrency} CPUs, ` +
        `Deno ${Deno.version.deno}${quick ? ", --quick" : ""}, load average ${loadAverage()}`,
    );

    const figures: [string[], () => Promise<void>][] = [
      [["throughput", "ceiling"], () => throughputAndCeiling(file, fileSha, SIZES.fileBytes)],
      [["latency"], latency],
      [["sessions"], () => sessions(sessionFile, sessionSha)],
      [["slow_reader"], slowReader],
      [["stdin_flood"], stdinFlood],
      [["stall"], stallFigure],
      [["restart_reaping"], restartReaping],
      [["tenant_lookup"], tenantLookup],
      [["replay"], () => replayFigure(tmp!)],
      [["detached_memory"], () => detachedMemoryFigure(tmp!)],
      [["cli"], () => cliFigure(tmp!)],
      [["cluster"], () => clusterFigure(tmp!)],
    ];
    for (const [names, run] of figures) {
      const wanted = only;
      if (wanted !== null && !names.some((n) => wanted.includes(n))) continue;
      try {
        await withTimeout(run(), FIGURE_TIMEOUT_MS * 2, names.join("+"));
      } catch (err) {
        for (const name of names) {
          if (!results.some((r) => r.figure === name)) reportError(name, err);
        }
        // A figure cut off by its timeout may have left its server running.
        await Promise.all([...running].map((p) => stopProcess(p)));
      }
    }
    summary();
    console.error(`load average ${loadAverage()}`);
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    await cleanup(tmp);
  }
  return failureCount() > 0 ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
