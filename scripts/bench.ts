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
 * @module
 */

const MB = 1e6;
const KiB = 1024;
const MiB = 1024 * KiB;
/** No wait in this script may last longer than this. */
const FIGURE_TIMEOUT_MS = 120_000;
const SERVER_START_TIMEOUT_MS = 60_000;
/** 100 Hz on every Linux we run on; /proc/<pid>/stat counts CPU time in these ticks. */
const CLOCK_TICKS = 100;

const quick = Deno.args.includes("--quick");
/** Figures to run (`--only=a,b`); null for all. */
const only = Deno.args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",") ??
  null;
const SIZES = quick
  ? {
    fileBytes: 8 * MiB,
    rounds: 3,
    latencyRuns: 50,
    warmupRuns: 10,
    sessions: 20,
    slowSeconds: 3,
    stdinCalls: 64,
  }
  : {
    fileBytes: 64 * MiB,
    rounds: 7,
    latencyRuns: 200,
    warmupRuns: 20,
    sessions: 100,
    slowSeconds: 10,
    stdinCalls: 640,
  };
const SESSION_BYTES = 1 * MiB;
const SLOW_RATE = 1 * MiB; // bytes per second: 64 KiB every 62.5 ms
const STDIN_CALL_BYTES = 1 * MiB;
/** `send_input` calls in flight at once in the stdin flood. */
const STDIN_WINDOW = 64;
/** RSS sampling period of the memory figures. */
const RSS_SAMPLE_MS = 20;
const TARGETS = {
  ratio: 0.85,
  p50Ms: 2,
  minimalRatio: 1.25,
  sessionsSeconds: 0.8,
  sessionsPeakMiB: 128,
  slowGrowthMiB: 16,
  stdinGrowthMiB: 64,
  stdinAnswerS: 5,
  cleanupMs: 250,
  stallMaxMs: 50,
  reapSeconds: 5,
};

const root = new URL("..", import.meta.url);
/** `deno task start`'s launcher: the service under the permissions its config needs. */
const startPath = new URL("scripts/start.ts", root).pathname;
const ceilingPath = new URL("scripts/bench_ceiling_server.ts", root).pathname;

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const errorText = (err: unknown) => err instanceof Error ? err.message : String(err);

/**
 * Settles like `promise`, or rejects after `ms`. The original promise keeps a
 * handler, so its late rejection cannot become an unhandled one (which would
 * end this process).
 */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  promise.catch(() => {});
  let handle: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    handle = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(handle));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
  return sorted[i]!;
}

function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Small deterministic PRNG (mulberry32): the same file on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const encoder = new TextEncoder();
const ALPHABET = encoder.encode(
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_=+/()[]{}'\"<>!?#$%&*\t",
);
// 2-, 3- and 4-byte characters, so a cut inside a character would show up as a checksum mismatch.
const MULTIBYTE = ["é", "ß", "€", "→", "日本", "😀"].map((s) => encoder.encode(s));

/**
 * Text of exactly `size` bytes ending in a newline: mostly lines of 0-200
 * bytes (log-like), sometimes 200-4000, and rarely one longer than a
 * message (100-200 KiB, like minified JSON) so the line-splitting path runs.
 * With `multibyte`, about 1 % of characters take 2 to 4 bytes.
 */
function generateText(size: number, seed: number, multibyte = true): Uint8Array {
  const out = new Uint8Array(size);
  const rand = prng(seed);
  let pos = 0;
  while (pos < size - 1) {
    const r = rand();
    const len = r < 0.00002
      ? 100 * KiB + Math.floor(rand() * 100 * KiB)
      : r < 0.02
      ? 200 + Math.floor(rand() * 3800)
      : Math.floor(rand() * 200);
    const end = Math.min(size - 1, pos + len);
    while (pos < end) {
      if (multibyte && rand() < 0.01) {
        const mb = MULTIBYTE[Math.floor(rand() * MULTIBYTE.length)]!;
        if (pos + mb.length > end) break;
        out.set(mb, pos);
        pos += mb.length;
      } else {
        out[pos++] = ALPHABET[Math.floor(rand() * ALPHABET.length)]!;
      }
    }
    // A skipped multi-byte character can leave a gap before `end`: pad with ASCII.
    while (pos < end) out[pos++] = 0x78;
    out[pos++] = 0x0a;
  }
  if (pos < size) out[pos] = 0x0a;
  return out;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

// ---------------------------------------------------------------- /proc

function procStatus(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")) {
    const m = /^(Vm\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) * 1024;
  }
  return out;
}

/** Fields of /proc/<pid>/stat after the command name, which may itself hold spaces. */
function procStatFields(pid: number | "self"): string[] | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** User + system CPU seconds a process has used. */
function cpuSeconds(pid: number | "self"): number {
  const f = procStatFields(pid);
  if (f === null) return NaN;
  // After the name: state(0) ppid(1) pgrp(2) ... utime(11) stime(12).
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

/** Busy and total CPU ticks of the whole machine (first line of /proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.trim().split(/\s+/).slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  // idle and iowait are the 4th and 5th fields.
  return { busy: total - f[3]! - f[4]!, total };
}

/** Share of all CPUs the machine spent busy since `start`, in percent. */
function machineBusyPct(start: { busy: number; total: number }): number {
  const now = machineTicks();
  return Math.round(100 * (now.busy - start.busy) / Math.max(1, now.total - start.total));
}

/** Bytes a process has written (any fd), from /proc/<pid>/io; 0 when unreadable. */
function bytesWritten(pid: number): number {
  try {
    return Number(/wchar:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/io`))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** A process's command name, or "" when it is gone. */
function comm(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

/** Live (not zombie) pids whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const f = procStatFields(Number(entry.name));
    // A zombie has already exited and freed its memory; only its exit status waits to be read.
    if (f !== null && f[2] === String(pgid) && f[0] !== "Z") pids.push(Number(entry.name));
  }
  return pids;
}

// ---------------------------------------------------------------- subprocesses

/** A subprocess whose output is kept (last lines) for error messages. */
class Subprocess {
  readonly child: Deno.ChildProcess;
  readonly name: string;
  readonly #tail: string[] = [];
  #firstLine: PromiseWithResolvers<string> = Promise.withResolvers();
  readonly exited: Promise<Deno.CommandStatus>;
  #exitedNow = false;

  constructor(name: string, args: string[], env: Record<string, string> = {}) {
    this.name = name;
    this.child = new Deno.Command(Deno.execPath(), {
      args,
      env,
      cwd: root.pathname,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.exited = this.child.status;
    void this.exited.then(() => {
      this.#exitedNow = true;
      this.#firstLine.reject(new Error(`${name} exited before it was ready:\n${this.tail}`));
    });
    this.#firstLine.promise.catch(() => {});
    // Both pipes must be read to the end, or a chatty server would block on a full pipe.
    void this.#collect(this.child.stdout, true);
    void this.#collect(this.child.stderr, false);
  }

  /** The process measured: the child, or the one it launched (see {@linkcode measure}). */
  get pid(): number {
    return this.#measured ?? this.child.pid;
  }

  #measured: number | undefined;

  /** Measures `pid` instead of the child (a launcher's service process). */
  measure(pid: number): void {
    this.#measured = pid;
  }

  get alive(): boolean {
    return !this.#exitedNow;
  }

  get tail(): string {
    return this.#tail.join("\n");
  }

  /** The first line the process writes on stdout. */
  firstLine(): Promise<string> {
    return this.#firstLine.promise;
  }

  async #collect(stream: ReadableStream<Uint8Array>, isStdout: boolean): Promise<void> {
    let partial = "";
    try {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        const lines = (partial + text).split("\n");
        partial = lines.pop()!;
        for (const line of lines) {
          if (isStdout) this.#firstLine.resolve(line);
          this.#tail.push(line);
          if (this.#tail.length > 40) this.#tail.shift();
        }
      }
    } catch {
      // The pipe broke because the process was killed: nothing more to keep.
    }
  }

  /** SIGTERM (the server drains gracefully), SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (!this.alive) return;
    try {
      this.child.kill("SIGTERM");
    } catch {
      return;
    }
    const exited = await withTimeout(this.exited, graceMs, `${this.name} shutdown`).then(
      () => true,
      () => false,
    );
    if (!exited) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // exited in between
      }
      await withTimeout(this.exited, 5000, `${this.name} kill`).catch(() => {});
    }
  }
}

const running = new Set<Subprocess>();

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A cc-executor subprocess. */
interface Server {
  proc: Subprocess;
  port: number;
  wsUrl: string;
  httpUrl: string;
}

/**
 * Limits that exist to stop one abusive client, while this script is one
 * client on purpose: 100 connections in a burst, hundreds of requests a
 * second on one. Lifted so the figures measure the service, not its
 * throttles. Given as env vars, not flags: a server that does not know a
 * setting ignores its env var but would refuse an unknown flag. A value the
 * caller set in the environment wins, so a config can be benched as is.
 */
/** The servers' data directory, inside the bench's temp dir once it exists. */
let benchDataDir: string | null = null;

const LOAD_LIMITS: Record<string, string> = {
  // The sessions figure opens up to 100 at once, and closed sessions from
  // earlier runs may still be on their way out. Connection and message
  // limits stay at their defaults: 100 sessions at once is what they promise
  // any client, so the sessions figure checks that too.
  CC_EXECUTOR_MAX_SESSIONS: "1000",
};

/**
 * Starts cc-executor on a free port and waits for `/healthz`. The port is
 * chosen here rather than read from the log, so any `CC_EXECUTOR_LOG_LEVEL`
 * the caller set (which may hide the "listening" line) still works; other
 * `CC_EXECUTOR_*` settings in the environment apply too, to bench a config.
 */
async function startServer(settings: Record<string, string> = {}): Promise<Server> {
  const port = freePort();
  const env: Record<string, string> = { ...settings };
  for (const [name, value] of Object.entries(LOAD_LIMITS)) env[name] = Deno.env.get(name) ?? value;
  // The real embedded store, but in the bench's temp dir rather than the user's.
  if (benchDataDir !== null) {
    env.CC_EXECUTOR_DATA_DIR = Deno.env.get("CC_EXECUTOR_DATA_DIR") ?? benchDataDir;
  }
  // Exactly as `deno task start` runs it: the launcher computes the scoped
  // permissions and runs main.ts under them; the figures measure main.ts.
  const proc = new Subprocess(
    "cc-executor",
    ["run", "--allow-env", "--allow-read", "--allow-run", startPath, "--port", String(port)],
    env,
  );
  running.add(proc);
  const httpUrl = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + SERVER_START_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (!proc.alive) throw new Error(`cc-executor exited at startup:\n${proc.tail}`);
    try {
      const res = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.ok) {
        const health = await fetch(`${httpUrl}/health`).then((r) => r.json());
        proc.measure(health.pid);
        return { proc, port, wsUrl: `ws://127.0.0.1:${port}/ws/mcp`, httpUrl };
      }
    } catch {
      // Not listening yet.
    }
    await sleep(50);
  }
  throw new Error(`cc-executor did not answer /healthz within ${SERVER_START_TIMEOUT_MS} ms`);
}

async function stopProcess(proc: Subprocess): Promise<void> {
  // Still running is the normal case; gone already means it died under a
  // figure, and its last words are what explains that figure's error.
  if (!proc.alive) console.error(`bench: ${proc.name} had exited; its last output:\n${proc.tail}`);
  await proc.stop();
  running.delete(proc);
}

async function startCeiling(file: string): Promise<{ proc: Subprocess; port: number }> {
  const proc = new Subprocess("ceiling server", ["run", "-A", ceilingPath, file]);
  running.add(proc);
  const line = await withTimeout(proc.firstLine(), SERVER_START_TIMEOUT_MS, "ceiling server");
  return { proc, port: JSON.parse(line).port };
}

async function health(server: Server): Promise<Record<string, unknown>> {
  try {
    const res = await fetch(`${server.httpUrl}/health`, { signal: AbortSignal.timeout(5000) });
    return await res.json();
  } catch {
    return {};
  }
}

/** Waits (at most 10 s) until the server reports no open session. */
async function untilSessionsClosed(server: Server): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    if ((await health(server)).active_sessions === 0) return;
    await sleep(RSS_SAMPLE_MS);
  }
}

/** Resets the server's VmHWM to its current RSS (Linux >= 4.0); false when not allowed. */
function resetPeak(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Samples a process's VmRSS every `everyMs`: the peak as seen from outside. */
function rssSampler(pid: number, everyMs = RSS_SAMPLE_MS): { stop(): number; peak(): number } {
  let peak = 0;
  const sample = () => {
    try {
      peak = Math.max(peak, procStatus(pid).VmRSS ?? 0);
    } catch {
      // The process is gone; keep what was seen.
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
    peak: () => peak,
  };
}

// ---------------------------------------------------------------- WebSocket client

/** Opens a browser-style WebSocket; rejects on error or close before open. */
function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    ws.onclose = (e) => reject(new Error(`closed before open: ${e.code} ${e.reason}`));
  });
}

function closeQuietly(ws: WebSocket): void {
  try {
    ws.close();
  } catch {
    // already closed
  }
}

/** What one streaming run received. */
interface StreamResult {
  seconds: number;
  /** Every `data` (or raw frame) in order; measured only after the clock stops. */
  chunks: string[];
  status: string | null;
  stderrChunks: number;
}

/**
 * Sends `execute` on an open socket and collects `process.output` data until
 * `process.completed` (or, for the ceiling's raw mode, until the close). The
 * handler does only what any client must (parse each message, keep the
 * data), so both servers are measured with the same client cost.
 */
function streamRun(ws: WebSocket, command: string, raw = false): Promise<StreamResult> {
  return new Promise((resolve, reject) => {
    const chunks: string[] = [];
    let stderrChunks = 0;
    let t0 = 0;
    const done = (status: string | null) => {
      const seconds = (performance.now() - t0) / 1000;
      ws.onmessage = null;
      ws.onclose = null;
      resolve({ seconds, chunks, status, stderrChunks });
    };
    ws.onclose = (e) => {
      if (raw) done("closed");
      else reject(new Error(`socket closed before process.completed: ${e.code} ${e.reason}`));
    };
    ws.onmessage = raw ? (e) => void chunks.push(e.data) : (e) => {
      const msg = JSON.parse(e.data);
      if (msg.method === "process.output") {
        if (msg.params.type === "stdout") chunks.push(msg.params.data);
        else stderrChunks++;
      } else if (msg.method === "process.completed") {
        done(msg.params.status);
      } else if (msg.error) {
        reject(new Error(`server error ${msg.error.code}: ${msg.error.message}`));
      }
    };
    t0 = performance.now();
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "execute", params: { command } }));
  });
}

/**
 * One buffer reused for every check: encoding a run's 64 MiB into fresh
 * arrays would leave over 100 MiB of garbage per run for the client's GC to
 * collect in the middle of the next timed run.
 */
let scratch = new Uint8Array(0);

/** Byte count, SHA-256 and message sizes of what a run received. */
async function measureChunks(chunks: string[]) {
  const sizes: number[] = [];
  let total = 0;
  for (const c of chunks) {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit; grow (rarely) to fit that.
    if (scratch.length - total < c.length * 3) {
      const grown = new Uint8Array(Math.max(2 * scratch.length, total + c.length * 3, 1 << 20));
      grown.set(scratch.subarray(0, total));
      scratch = grown;
    }
    const n = encoder.encodeInto(c, scratch.subarray(total)).written;
    sizes.push(n);
    total += n;
  }
  return {
    bytes: total,
    sha256: await sha256Hex(scratch.subarray(0, total)),
    messages: sizes.length,
    maxMessage: sizes.length > 0 ? Math.max(...sizes) : 0,
    medianMessage: median(sizes),
  };
}

// ---------------------------------------------------------------- figures

type Figure = Record<string, unknown> & { figure: string; pass: boolean };

const results: Figure[] = [];
let failures = 0;

function report(figure: Figure): void {
  results.push(figure);
  console.log(JSON.stringify(figure));
}

function reportError(figure: string, err: unknown): void {
  failures++;
  report({ figure, quick, error: errorText(err), pass: false });
}

/** One streaming run against a server, with the server's CPU time over it. */
async function timedRun(url: string, command: string, serverPid: number, raw = false) {
  const ws = await withTimeout(openSocket(url), 10_000, "connect");
  try {
    const cpuServer0 = cpuSeconds(serverPid);
    const cpuClient0 = cpuSeconds("self");
    const machine0 = machineTicks();
    const run = await withTimeout(streamRun(ws, command, raw), FIGURE_TIMEOUT_MS, "stream");
    return {
      ...run,
      serverCpu: cpuSeconds(serverPid) - cpuServer0,
      clientCpu: cpuSeconds("self") - cpuClient0,
      machineBusyPct: machineBusyPct(machine0),
    };
  } finally {
    closeQuietly(ws);
  }
}

async function throughputAndCeiling(file: string, fileSha: string, fileBytes: number) {
  const server = await startServer();
  const ceiling = await startCeiling(file);
  try {
    const command = `cat ${shellQuote(file)}`;
    const ceilingUrl = `ws://127.0.0.1:${ceiling.port}/`;
    const ours: number[] = [];
    const theirs: number[] = [];
    const rawRates: number[] = [];
    let lost = 0;
    let received = 0;
    let allMatch = true;
    let ceilingMatch = true;
    let messages = 0;
    let maxMessage = 0;
    let medianMessage = 0;
    // CPU shares are summed over the counted rounds: CPU seconds over wall seconds.
    const cpu = { seconds: 0, server: 0, client: 0, machine: 0, ceilSeconds: 0, ceilServer: 0 };
    let stderr = 0;
    resetPeak(server.proc.pid);
    // Round 0 warms both servers' JIT and the page cache and is not counted;
    // rounds alternate servers so drift (thermal, other load) hits both alike.
    for (let r = 0; r <= SIZES.rounds; r++) {
      const a = await timedRun(server.wsUrl, command, server.proc.pid);
      const b = await timedRun(ceilingUrl, command, ceiling.proc.pid);
      const c = await timedRun(`${ceilingUrl}?mode=raw`, command, ceiling.proc.pid, true);
      const ma = await measureChunks(a.chunks);
      const mb = await measureChunks(b.chunks);
      const mc = await measureChunks(c.chunks);
      if (r === 0) continue;
      ours.push(ma.bytes / MB / a.seconds);
      theirs.push(mb.bytes / MB / b.seconds);
      rawRates.push(mc.bytes / MB / c.seconds);
      received += ma.bytes;
      lost += Math.max(0, fileBytes - ma.bytes);
      allMatch &&= ma.sha256 === fileSha && a.status === "completed";
      ceilingMatch &&= mb.sha256 === fileSha && mc.sha256 === fileSha;
      messages = ma.messages;
      maxMessage = Math.max(maxMessage, ma.maxMessage);
      medianMessage = ma.medianMessage;
      stderr += a.stderrChunks;
      cpu.seconds += a.seconds;
      cpu.server += a.serverCpu;
      cpu.client += a.clientCpu;
      cpu.machine += a.machineBusyPct * a.seconds;
      cpu.ceilSeconds += b.seconds;
      cpu.ceilServer += b.serverCpu;
    }
    const h = await health(server);
    const mine = median(ours);
    const ceil = median(theirs);
    const ratio = mine / ceil;
    const rss = procStatus(server.proc.pid);
    report({
      figure: "throughput",
      quick,
      mb_per_s: round(mine, 1),
      rounds_mb_per_s: ours.map((v) => round(v, 1)),
      bytes_expected: fileBytes * ours.length,
      bytes_received: received,
      bytes_lost: lost,
      sha256_match: allMatch,
      messages_per_run: messages,
      mean_message_bytes: Math.round(fileBytes / messages),
      median_message_bytes: medianMessage,
      max_message_bytes: maxMessage,
      stderr_messages: stderr,
      server_cpu_pct: Math.round(100 * cpu.server / cpu.seconds),
      client_cpu_pct: Math.round(100 * cpu.client / cpu.seconds),
      machine_busy_pct: Math.round(cpu.machine / cpu.seconds),
      server_peak_rss_mb: round((rss.VmHWM ?? 0) / MB, 1),
      backpressure_waits: h.backpressure_waits ?? null,
      peak_queued_bytes: h.peak_queued_bytes ?? null,
      best_mb_per_s: round(Math.max(...ours), 1),
      ratio_to_ceiling: round(ratio, 3),
      target: `>= ${TARGETS.ratio} x ceiling, 0 bytes lost`,
      pass: lost === 0 && allMatch && ratio >= TARGETS.ratio,
    });
    report({
      figure: "ceiling",
      quick,
      mb_per_s: round(ceil, 1),
      rounds_mb_per_s: theirs.map((v) => round(v, 1)),
      best_mb_per_s: round(Math.max(...theirs), 1),
      raw_frames_mb_per_s: round(median(rawRates), 1),
      sha256_match: ceilingMatch,
      server_cpu_pct: Math.round(100 * cpu.ceilServer / cpu.ceilSeconds),
      ratio: round(ratio, 3),
      best_ratio: round(Math.max(...ours) / Math.max(...theirs), 3),
      target: `ratio >= ${TARGETS.ratio}`,
      pass: ratio >= TARGETS.ratio,
    });
  } finally {
    await stopProcess(ceiling.proc);
    await stopProcess(server.proc);
  }
}

/**
 * Run by `deno eval` in a fresh process: median time to `spawn()` `sh -c
 * true` with piped output, as the server does, and wait for it: plainly,
 * through `setsid` (plain spawn, as lib/process/process_group.ts does when it can;
 * null without /usr/bin/setsid) and `detached` (its fallback). A fresh
 * process, because a detached `spawn()` forks, so its cost grows with the
 * spawning process's RSS, and this script's own RSS says nothing about the
 * server's. (`Command.output()` does not show this.)
 */
const SPAWN_PROBE = `
const runs = Number(Deno.args[0]);
async function probe(program, args, detached) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await new Deno.Command(program, {
      args, stdin: "null", stdout: "piped", stderr: "piped", detached,
    }).spawn().output();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
const sh = ["-c", "true"];
let hasSetsid = false;
try {
  hasSetsid = Deno.statSync("/usr/bin/setsid").isFile;
} catch {
  // no setsid: the server spawns detached
}
const plain = await probe("/bin/sh", sh, false);
const setsid = hasSetsid ? await probe("/usr/bin/setsid", ["--", "/bin/sh", ...sh], false) : null;
const detached = await probe("/bin/sh", sh, true);
const rss = Number(/VmRSS:\\s+(\\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))[1]) * 1024;
console.log(JSON.stringify({ plain, setsid, detached, rss }));
`;

/** Spawn cost from Deno, measured by {@linkcode SPAWN_PROBE}; null if the probe failed. */
async function spawnFloor(runs: number) {
  try {
    const out = await withTimeout(
      new Deno.Command(Deno.execPath(), {
        args: ["eval", SPAWN_PROBE, String(runs)],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output(),
      FIGURE_TIMEOUT_MS,
      "spawn probe",
    );
    return JSON.parse(new TextDecoder().decode(out.stdout)) as {
      plain: number;
      setsid: number | null;
      detached: number;
      rss: number;
    };
  } catch {
    return null;
  }
}

/** Whether /usr/bin/setsid exists; undefined until the first minimal run. */
let hasSetsid: boolean | undefined;

/**
 * One run of the least a Deno executor must do for `true`: a new session
 * (setsid, as the server's spawn), both pipes read to the end, the status.
 */
async function minimalRun(): Promise<number> {
  const t0 = performance.now();
  hasSetsid ??= (() => {
    try {
      return Deno.statSync("/usr/bin/setsid").isFile;
    } catch {
      return false; // as the server then does: a detached spawn
    }
  })();
  const child = new Deno.Command(hasSetsid ? "/usr/bin/setsid" : "/bin/sh", {
    args: hasSetsid ? ["/bin/sh", "-c", "true"] : ["-c", "true"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: !hasSetsid,
  }).spawn();
  await Promise.all([
    new Response(child.stdout).arrayBuffer(),
    new Response(child.stderr).arrayBuffer(),
  ]);
  await child.status;
  return performance.now() - t0;
}

/** Runs of a minimal executor interleaved with the latency figure's. */
const MINIMAL_BLOCK = 10;

async function latency() {
  const server = await startServer();
  const ws = await withTimeout(openSocket(server.wsUrl), 10_000, "connect");
  try {
    const total: number[] = [];
    const toResult: number[] = [];
    const minimal: number[] = [];
    let errors = 0;
    let lastError = "";
    let waiter: PromiseWithResolvers<void> | null = null;
    let resultAt = 0;
    let id = 0;
    let pinging = false;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.id === id && msg.error) waiter?.reject(new Error(msg.error.message));
      else if (msg.id === id && msg.result) {
        resultAt = performance.now();
        if (pinging) waiter?.resolve();
      } else if (msg.method === "process.completed") waiter?.resolve();
    };
    ws.onclose = () => waiter?.reject(new Error("socket closed"));
    for (let i = 0; i < SIZES.warmupRuns + SIZES.latencyRuns; i++) {
      // Blocks of 10 ours, 10 minimal: the same load for both, and our runs
      // still back to back (as a client in a loop sends them).
      if (i % MINIMAL_BLOCK === 0 && i > 0) {
        for (let j = 0; j < MINIMAL_BLOCK; j++) {
          const ms = await withTimeout(minimalRun(), 30_000, "minimal executor");
          if (i > SIZES.warmupRuns) minimal.push(ms);
        }
      }
      waiter = Promise.withResolvers();
      id++;
      const t0 = performance.now();
      ws.send(JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "execute",
        params: { command: "true" },
      }));
      try {
        await withTimeout(waiter.promise, 30_000, "execute true");
      } catch (err) {
        // Counted, not fatal: e.g. "A process is already running" would mean
        // the session is not free again by the time its completed arrives.
        errors++;
        lastError = errorText(err);
        continue;
      }
      if (i < SIZES.warmupRuns) continue;
      total.push(performance.now() - t0);
      toResult.push(resultAt - t0);
    }
    total.sort((a, b) => a - b);
    toResult.sort((a, b) => a - b);
    const p50 = percentile(total, 50);
    const minimalP50 = median(minimal);
    const ratio = p50 / minimalP50;
    const serverRss = procStatus(server.proc.pid).VmRSS ?? 0;
    const floor = await spawnFloor(SIZES.latencyRuns);
    // JSON-RPC `ping` on the same connection: the round trip every request
    // pays (client, socket, server dispatch) without any process.
    pinging = true;
    const pings: number[] = [];
    for (let i = 0; i < SIZES.latencyRuns; i++) {
      waiter = Promise.withResolvers();
      id++;
      const t0 = performance.now();
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method: "ping" }));
      await withTimeout(waiter.promise, 30_000, "ping");
      pings.push(performance.now() - t0);
    }
    report({
      figure: "latency",
      quick,
      runs: total.length,
      warmup_runs: SIZES.warmupRuns,
      p50_ms: round(p50, 3),
      p99_ms: round(percentile(total, 99), 3),
      min_ms: round(total[0] ?? NaN, 3),
      max_ms: round(total[total.length - 1] ?? NaN, 3),
      mean_ms: round(total.reduce((s, v) => s + v, 0) / total.length, 3),
      execute_to_result_p50_ms: round(percentile(toResult, 50), 3),
      minimal_executor_p50_ms: round(minimalP50, 3),
      minimal_executor_runs: minimal.length,
      ratio_to_minimal: round(ratio, 3),
      server_rss_mb: round(serverRss / MB, 1),
      spawn_detached_p50_ms: floor && round(floor.detached, 3),
      spawn_setsid_p50_ms: floor && floor.setsid !== null ? round(floor.setsid, 3) : null,
      spawn_plain_p50_ms: floor && round(floor.plain, 3),
      spawn_probe_rss_mb: floor && round(floor.rss / MB, 1),
      ping_rtt_p50_ms: round(median(pings), 3),
      errors,
      ...(errors > 0 ? { last_error: lastError } : {}),
      target: `p50 <= ${TARGETS.p50Ms} ms and <= ${TARGETS.minimalRatio} x a minimal executor`,
      pass: errors === 0 && p50 <= TARGETS.p50Ms && ratio <= TARGETS.minimalRatio,
    });
  } finally {
    closeQuietly(ws);
    await stopProcess(server.proc);
  }
}

/** One session of the burst: connect, execute at once, collect until completed. */
function burstSession(url: string, command: string, sockets: WebSocket[]) {
  type Outcome = { chunks: string[]; opened: number; end: number; error: string | null };
  return new Promise<Outcome>((resolve) => {
    const chunks: string[] = [];
    let opened = NaN;
    const ws = new WebSocket(url);
    sockets.push(ws);
    const finish = (error: string | null) => {
      ws.onmessage = null;
      ws.onclose = null;
      resolve({ chunks, opened, end: performance.now(), error });
    };
    ws.onopen = () => {
      opened = performance.now();
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "execute", params: { command } }));
    };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.method === "process.output") chunks.push(msg.params.data);
      else if (msg.method === "process.completed") finish(null);
      else if (msg.error) finish(`${msg.error.code} ${msg.error.message}`);
    };
    ws.onclose = (e) =>
      finish(
        Number.isNaN(opened)
          ? "refused before the WebSocket opened (HTTP error on the upgrade?)"
          : `closed ${e.code} ${e.reason}`,
      );
  });
}

async function burst(url: string, n: number, command: string) {
  const sockets: WebSocket[] = [];
  const t0 = performance.now();
  try {
    const all = Promise.all(Array.from({ length: n }, () => burstSession(url, command, sockets)));
    const sessions = await withTimeout(all, FIGURE_TIMEOUT_MS, `${n} sessions`);
    const seconds = (Math.max(...sessions.map((s) => s.end)) - t0) / 1000;
    const opened = sessions.map((s) => s.opened).filter((t) => !Number.isNaN(t));
    const connectSeconds = opened.length > 0 ? (Math.max(...opened) - t0) / 1000 : NaN;
    const firstDone = (Math.min(...sessions.map((s) => s.end)) - t0) / 1000;
    return { seconds, connectSeconds, firstDone, sessions };
  } finally {
    for (const ws of sockets) closeQuietly(ws);
  }
}

async function sessions(file: string, fileSha: string) {
  const server = await startServer();
  try {
    const command = `cat ${shellQuote(file)}`;
    // A small burst first, so the figure measures a warm server (JIT, spawn
    // paths), as a server that has been up a while would be.
    await burst(server.wsUrl, 5, command);
    await sleep(500);
    const before = procStatus(server.proc.pid).VmRSS ?? 0;
    const peakReset = resetPeak(server.proc.pid);
    const sampler = rssSampler(server.proc.pid);
    const cpuServer0 = cpuSeconds(server.proc.pid);
    const cpuClient0 = cpuSeconds("self");
    const machine0 = machineTicks();
    // Bytes queued on all sockets together, from /health every 25 ms (cheap
    // for the server): how much of the output sits in the server at once.
    let peakQueued = 0;
    // The server's own account of the output it holds (retained + queued), where it reports one.
    let peakOutputMemory: number | null = null;
    let sampling = true;
    const queueSampler = (async () => {
      while (sampling) {
        const h = await health(server);
        const q = h.queued_bytes;
        if (typeof q === "number") peakQueued = Math.max(peakQueued, q);
        const m = h.output_memory as { retained?: number; queued?: number } | undefined;
        if (typeof m?.retained === "number" && typeof m.queued === "number") {
          peakOutputMemory = Math.max(peakOutputMemory ?? 0, m.retained + m.queued);
        }
        await sleep(25);
      }
    })();
    let sampledPeak = 0;
    let result;
    try {
      result = await burst(server.wsUrl, SIZES.sessions, command);
      // The burst closes its sockets: keep sampling until the server has
      // ended every session, so the disconnect is part of the peak.
      await untilSessionsClosed(server);
    } finally {
      sampledPeak = sampler.stop();
      sampling = false;
      await queueSampler;
    }
    const serverCpu = cpuSeconds(server.proc.pid) - cpuServer0;
    const clientCpu = cpuSeconds("self") - cpuClient0;
    const machinePct = machineBusyPct(machine0);
    const hwm = procStatus(server.proc.pid).VmHWM ?? 0;
    const peak = peakReset ? Math.max(hwm, sampledPeak) : sampledPeak;
    let received = 0;
    let mismatched = 0;
    const errors: string[] = [];
    for (const s of result.sessions) {
      const m = await measureChunks(s.chunks);
      received += m.bytes;
      if (m.sha256 !== fileSha) mismatched++;
      if (s.error !== null) errors.push(s.error);
    }
    const expected = SESSION_BYTES * SIZES.sessions;
    const lost = expected - received;
    report({
      figure: "sessions",
      quick,
      sessions: SIZES.sessions,
      bytes_per_session: SESSION_BYTES,
      wall_s: round(result.seconds, 3),
      all_connected_s: round(result.connectSeconds, 3),
      first_completed_s: round(result.firstDone, 3),
      bytes_expected: expected,
      bytes_received: received,
      bytes_lost: lost,
      sessions_mismatched: mismatched,
      errors: errors.length,
      ...(errors.length > 0 ? { first_error: errors[0] } : {}),
      server_rss_before_mb: round(before / MB, 1),
      server_peak_rss_mb: round(peak / MB, 1),
      sampled_peak_rss_mb: round(sampledPeak / MB, 1),
      peak_source: peakReset
        ? `VmHWM reset via clear_refs + ${RSS_SAMPLE_MS} ms VmRSS samples`
        : `${RSS_SAMPLE_MS} ms VmRSS samples`,
      peak_output_memory_mb: peakOutputMemory === null ? null : round(peakOutputMemory / MB, 1),
      peak_total_queued_mb: round(peakQueued / MB, 1),
      server_cpu_pct: Math.round(100 * serverCpu / result.seconds),
      client_cpu_pct: Math.round(100 * clientCpu / result.seconds),
      machine_busy_pct: machinePct,
      target: `<= ${TARGETS.sessionsSeconds} s, peak RSS <= ${TARGETS.sessionsPeakMiB} MiB, 0 lost`,
      pass: lost === 0 && mismatched === 0 && errors.length === 0 &&
        result.seconds <= TARGETS.sessionsSeconds && peak / MiB <= TARGETS.sessionsPeakMiB,
    });
  } finally {
    await stopProcess(server.proc);
  }
}

// ---------------------------------------------------------------- raw WebSocket client

/**
 * A WebSocket client on a bare TCP socket: it reads only when it chooses to,
 * which is the point, since a browser-style WebSocket always reads as fast
 * as data arrives. Parses server frames (unmasked, 7/16/64-bit lengths) only
 * as far as needed to find the `execute` result.
 */
class RawClient {
  readonly conn: Deno.TcpConn;
  #buf = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  static async connect(port: number, path: string): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const client = new RawClient(conn);
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await client.#writeAll(encoder.encode(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    let end: number;
    while ((end = indexOfCrlf2(client.#buf)) === -1) {
      if (!await client.#fill()) throw new Error("connection closed during the handshake");
    }
    const head = new TextDecoder().decode(client.#buf.subarray(0, end));
    if (!head.startsWith("HTTP/1.1 101")) throw new Error(`handshake refused: ${head}`);
    // Whatever followed the headers is already frame data.
    client.#buf = client.#buf.slice(end + 4);
    return client;
  }

  /** Sends one text frame, masked as RFC 6455 requires of a client. */
  async sendText(text: string): Promise<void> {
    const payload = encoder.encode(text);
    const n = payload.length;
    const header = n < 126 ? [0x81, 0x80 | n] : [0x81, 0x80 | 126, n >> 8, n & 0xff];
    if (n > 0xffff) throw new Error("frame too large for this client");
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const frame = new Uint8Array(header.length + 4 + n);
    frame.set(header);
    frame.set(mask, header.length);
    for (let i = 0; i < n; i++) frame[header.length + 4 + i] = payload[i]! ^ mask[i & 3]!;
    await this.#writeAll(frame);
  }

  /** The next whole text frame (server frames of this protocol are never fragmented). */
  async readText(): Promise<string> {
    for (;;) {
      const frame = this.#parseFrame();
      if (frame !== null) {
        if (frame.opcode === 0x1) return new TextDecoder().decode(frame.payload);
        if (frame.opcode === 0x8) throw new Error("server closed the WebSocket");
        continue; // ping/pong/binary: not needed here
      }
      if (!await this.#fill()) throw new Error("connection closed");
    }
  }

  /** Bytes already read from the socket but not yet consumed. */
  get buffered(): number {
    return this.#buf.length;
  }

  #parseFrame(): { opcode: number; payload: Uint8Array } | null {
    const b = this.#buf;
    if (b.length < 2) return null;
    let len = b[1]! & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = (b[2]! << 8) | b[3]!;
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
      off = 10;
    }
    if (b.length < off + len) return null;
    const payload = b.slice(off, off + len);
    this.#buf = b.slice(off + len);
    return { opcode: b[0]! & 0x0f, payload };
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * KiB);
    const n = await this.conn.read(chunk);
    if (n === null) return false;
    const merged = new Uint8Array(this.#buf.length + n);
    merged.set(this.#buf);
    merged.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = merged;
    return true;
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.conn.write(data.subarray(off));
  }
}

function indexOfCrlf2(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

async function slowReader() {
  const server = await startServer();
  let pgid = 0;
  let client: RawClient | null = null;
  try {
    // One ordinary run of the same command shape first, so what is measured
    // is growth while a reader lags, not the first run's one-off costs (code
    // compiled on first use, heap spaces sized up).
    const warm = await withTimeout(openSocket(server.wsUrl), 10_000, "connect");
    try {
      const command = "head -c 4194304 /dev/zero | tr '\\0' x";
      await withTimeout(streamRun(warm, command), FIGURE_TIMEOUT_MS, "warm-up");
    } finally {
      closeQuietly(warm);
    }
    await sleep(500);
    client = await withTimeout(RawClient.connect(server.port, "/ws/mcp"), 10_000, "handshake");
    const rssBefore = procStatus(server.proc.pid).VmRSS ?? 0;
    await client.sendText(JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "execute",
      params: { command: "cat /dev/zero | tr '\\0' x" },
    }));
    // Read frames properly only until the execute result, which carries the pid.
    let pid = 0;
    const c = client;
    await withTimeout(
      (async () => {
        for (;;) {
          const msg = JSON.parse(await c.readText());
          if (msg.id === 1 && msg.error) throw new Error(`execute failed: ${msg.error.message}`);
          if (msg.id === 1) {
            pid = msg.result.pid;
            pgid = msg.result.pgid;
            return;
          }
        }
      })(),
      10_000,
      "execute result",
    );
    // From here on bytes are drained at SLOW_RATE without parsing; the clock
    // paces total bytes, so short reads do not make the client faster.
    const sampler = rssSampler(server.proc.pid);
    // RSS once a second, to tell a one-off step from steady growth.
    const perSecond: number[] = [];
    const secondTimer = setInterval(() => {
      perSecond.push(round((procStatus(server.proc.pid).VmRSS ?? 0) / MB, 1));
    }, 1000);
    const buf = new Uint8Array(64 * KiB);
    let read = client.buffered;
    const t0 = performance.now();
    const stopAt = t0 + SIZES.slowSeconds * 1000;
    let serverClosed = false;
    // One timer for the whole run: a read still pending when it fires is
    // abandoned, and fails harmlessly once the connection is closed below.
    const timeUp = sleep(SIZES.slowSeconds * 1000).then(() => -1 as const);
    while (performance.now() < stopAt) {
      const n = await Promise.race([client.conn.read(buf).catch(() => null), timeUp]);
      if (n === -1) break;
      if (n === null) {
        serverClosed = true;
        break;
      }
      read += n;
      const due = t0 + read / SLOW_RATE * 1000;
      const wait = Math.min(due, stopAt) - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(secondTimer);
    const rssAfter = procStatus(server.proc.pid).VmRSS ?? 0;
    const peakReading = sampler.peak();
    const h = await health(server);
    const members = groupMembers(pgid);
    // What the command managed to write: with back-pressure working it stays
    // near what the client read plus the socket and pipe buffers.
    const writer = members.find((p) => comm(p) === "tr");
    const childWrote = writer === undefined ? null : bytesWritten(writer);
    // Dropping the connection without a close frame, as a crashed client would.
    const tClose = performance.now();
    client.conn.close();
    client = null;
    let cleanupMs: number | null = null;
    const pollUntil = tClose + 30_000;
    while (performance.now() < pollUntil) {
      if (groupMembers(pgid).length === 0) {
        cleanupMs = performance.now() - tClose;
        break;
      }
      await sleep(2);
    }
    // The peak covers the disconnect too: what the server does with a run
    // whose client is gone (output it can no longer send) counts.
    await untilSessionsClosed(server);
    const peak = sampler.stop();
    const growth = rssAfter - rssBefore;
    const peakGrowth = peak - rssBefore;
    report({
      figure: "slow_reader",
      quick,
      seconds: round(seconds, 2),
      client_bytes_read: read,
      client_mb_per_s: round(read / MB / seconds, 2),
      server_closed_early: serverClosed,
      server_rss_before_mb: round(rssBefore / MB, 1),
      server_rss_after_mb: round(rssAfter / MB, 1),
      server_peak_rss_reading_mb: round(peakReading / MB, 1),
      server_peak_rss_mb: round(peak / MB, 1),
      peak_source: `${RSS_SAMPLE_MS} ms VmRSS samples, through the disconnect`,
      rss_growth_mb: round(growth / MB, 1),
      peak_growth_mb: round(peakGrowth / MB, 1),
      output_memory: h.output_memory ?? null,
      rss_each_second_mb: perSecond,
      child_bytes_written: childWrote,
      queued_bytes: h.queued_bytes ?? null,
      peak_queued_bytes: h.peak_queued_bytes ?? null,
      backpressure_waits: h.backpressure_waits ?? null,
      pid,
      group_pids: members.length,
      cleanup_ms: cleanupMs === null ? null : round(cleanupMs, 1),
      target: `peak growth <= ${TARGETS.slowGrowthMiB} MiB, cleanup <= ${TARGETS.cleanupMs} ms`,
      pass: !serverClosed && peakGrowth / MiB <= TARGETS.slowGrowthMiB && cleanupMs !== null &&
        cleanupMs <= TARGETS.cleanupMs,
    });
  } finally {
    client?.conn.close();
    // Nothing of this run may outlive the bench, even if the server failed to end it.
    if (pgid > 0 && groupMembers(pgid).length > 0) {
      try {
        Deno.kill(-pgid, "SIGKILL");
      } catch {
        // gone in between
      }
    }
    await stopProcess(server.proc);
  }
}

// ---------------------------------------------------------------- MCP client

/**
 * A minimal MCP client over a browser-style WebSocket (subprotocol `mcp`):
 * requests are matched to answers by id. Enough for `tools/call`; the SDK
 * client would add its own costs to what is measured.
 */
class McpClient {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #waiting = new Map<number, (msg: Record<string, unknown>) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (typeof msg.id === "number") {
        this.#waiting.get(msg.id)?.(msg);
        this.#waiting.delete(msg.id);
      }
    };
  }

  static async connect(url: string): Promise<McpClient> {
    const ws = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, "mcp");
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    const client = new McpClient(ws);
    await client.request(JSON.stringify({
      jsonrpc: "2.0",
      id: client.#nextId,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "cc-executor-bench", version: "1" },
      },
    }));
    ws.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
    return client;
  }

  /** The id the next request must carry. */
  get nextId(): number {
    return this.#nextId;
  }

  /** Sends a request already encoded with id {@linkcode nextId}; resolves with its answer. */
  request(text: string): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    const answer = new Promise<Record<string, unknown>>((resolve) =>
      this.#waiting.set(id, resolve)
    );
    this.#ws.send(text);
    return answer;
  }

  /** Calls a tool; resolves with its result (or the JSON-RPC error). */
  async call(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const msg = await this.request(JSON.stringify({
      jsonrpc: "2.0",
      id: this.#nextId,
      method: "tools/call",
      params: { name, arguments: args },
    }));
    if (msg.error) throw new Error(`${name}: ${JSON.stringify(msg.error)}`);
    return msg.result as Record<string, unknown>;
  }

  close(): void {
    closeQuietly(this.#ws);
  }
}

async function stdinFlood() {
  const server = await startServer();
  let client: McpClient | null = null;
  let pgid = 0;
  try {
    client = await withTimeout(McpClient.connect(server.wsUrl), 10_000, "MCP connect");
    const c = client;
    // Warm up the paths the flood takes (tools/call, send_input, a large message).
    const warm = await c.call("start", { args: ["cat"], stdin_open: true });
    const warmId = (warm.structuredContent as Record<string, unknown>).execution_id;
    await c.call("send_input", { execution_id: warmId, input: "x".repeat(64 * KiB) });
    await c.call("control", { type: "CANCEL", execution_id: warmId });
    const started = await c.call("start", { command: "sleep 1000", stdin_open: true });
    const info = started.structuredContent as Record<string, unknown>;
    const execId = String(info.execution_id);
    pgid = Number(info.pgid);
    await sleep(500);
    const before = procStatus(server.proc.pid).VmRSS ?? 0;
    const sampler = rssSampler(server.proc.pid);
    // The request text around the input, so each call costs one concatenation.
    const payload = "x".repeat(STDIN_CALL_BYTES);
    const tail = `,"method":"tools/call","params":{"name":"send_input","arguments":` +
      `{"execution_id":${JSON.stringify(execId)},"input":"${payload}"}}}`;
    let issued = 0;
    let answered = 0;
    let ok = 0;
    let refused = 0;
    let unanswered = 0;
    let slowest = 0;
    let firstError: string | null = null;
    const t0 = performance.now();
    const worker = async () => {
      while (issued < SIZES.stdinCalls && unanswered === 0) {
        issued++;
        const sent = performance.now();
        const answer = await withTimeout(
          c.request(`{"jsonrpc":"2.0","id":${c.nextId}${tail}`),
          10_000,
          "send_input",
        ).catch(() => null);
        if (answer === null) {
          unanswered++;
          return;
        }
        slowest = Math.max(slowest, (performance.now() - sent) / 1000);
        answered++;
        const result = answer.result as { isError?: boolean; content?: { text?: string }[] };
        if (result?.isError !== true && answer.error === undefined) ok++;
        else {
          refused++;
          firstError ??= result?.content?.[0]?.text ?? JSON.stringify(answer.error);
        }
      }
    };
    await Promise.all(Array.from({ length: STDIN_WINDOW }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const h = await health(server);
    const peakFlood = sampler.peak();
    // Cancel inside the sampled window: dropping what was buffered counts too.
    await withTimeout(
      c.call("control", { type: "CANCEL", execution_id: execId }),
      30_000,
      "cancel",
    ).catch(() => {});
    const peak = sampler.stop();
    const growth = peak - before;
    report({
      figure: "stdin_flood",
      quick,
      calls: SIZES.stdinCalls,
      bytes_per_call: STDIN_CALL_BYTES,
      in_flight: STDIN_WINDOW,
      calls_issued: issued,
      calls_answered: answered,
      calls_unanswered: unanswered,
      calls_ok: ok,
      calls_error: refused,
      ...(firstError !== null ? { first_error: String(firstError).slice(0, 300) } : {}),
      seconds: round(seconds, 2),
      slowest_answer_s: round(slowest, 3),
      server_rss_before_mb: round(before / MB, 1),
      server_peak_rss_flood_mb: round(peakFlood / MB, 1),
      server_peak_rss_mb: round(peak / MB, 1),
      peak_source: `${RSS_SAMPLE_MS} ms VmRSS samples, through the cancel`,
      peak_growth_mb: round(growth / MB, 1),
      stdin_pending_bytes: h.stdin_pending_bytes ?? null,
      output_memory: h.output_memory ?? null,
      target: `peak growth <= ${TARGETS.stdinGrowthMiB} MiB, every call answered within ` +
        `${TARGETS.stdinAnswerS} s`,
      pass: unanswered === 0 && answered === SIZES.stdinCalls &&
        slowest <= TARGETS.stdinAnswerS && growth / MiB <= TARGETS.stdinGrowthMiB,
    });
  } finally {
    client?.close();
    if (pgid > 0 && groupMembers(pgid).length > 0) {
      try {
        Deno.kill(-pgid, "SIGKILL");
      } catch {
        // gone in between
      }
    }
    await stopProcess(server.proc);
  }
}

// ---------------------------------------------------------------- stall

/** Polls `/healthz` every 10 ms until stopped: the latency of each answer, and failures. */
function healthzPoller(httpUrl: string) {
  const latencies: number[] = [];
  let failures = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(10_000) });
        await res.body?.cancel();
        if (!res.ok) failures++;
      } catch {
        failures++;
      }
      latencies.push(performance.now() - t0);
      await sleep(10);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { latencies: latencies.sort((a, b) => a - b), failures };
    },
  };
}

/** One connection of the stall figure: its messages, and a wait for one of them. */
async function stallConnection(url: string) {
  const ws = await withTimeout(openSocket(url), 10_000, "connect");
  // deno-lint-ignore no-explicit-any
  const seen: any[] = [];
  let wake = () => {};
  ws.onmessage = (e) => {
    seen.push(JSON.parse(e.data));
    wake();
  };
  // deno-lint-ignore no-explicit-any
  const waitFor = (what: string, pred: (m: any) => boolean) =>
    withTimeout(
      (async () => {
        for (;;) {
          const found = seen.find(pred);
          if (found !== undefined) return found;
          await new Promise<void>((resolve) => wake = resolve);
        }
      })(),
      FIGURE_TIMEOUT_MS,
      what,
    );
  let id = 0;
  return {
    ws,
    waitFor,
    /** Sends a request and returns its result (throws on an error reply). */
    async request(method: string, params: unknown) {
      const myId = ++id;
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: myId, method, params }));
      const reply = await waitFor(method, (m) => m.id === myId);
      if (reply.error) throw new Error(`${method}: ${reply.error.message}`);
      return reply.result;
    },
  };
}

async function stallFigure() {
  const server = await startServer();
  const pgids: number[] = [];
  const conns: Awaited<ReturnType<typeof stallConnection>>[] = [];
  try {
    for (let i = 0; i < 18; i++) conns.push(await stallConnection(server.wsUrl));
    const start = async (i: number, params: Record<string, unknown>) => {
      const result = await conns[i]!.request("execute", params);
      pgids.push(result.pgid);
      return result.execution_id as string;
    };
    // SIGTERM-ignoring members, each saying when its trap is set.
    const stubborn: string[] = [];
    for (let i = 0; i < 6; i++) {
      const command = i < 3
        ? "(trap '' TERM; echo ready; exec sleep 1000) & wait"
        : "trap '' TERM; (trap '' TERM; exec sleep 1000) & echo ready; wait";
      const id = await start(i, { command });
      await conns[i]!.waitFor("ready", (m) => m.method === "process.output");
      stubborn.push(id);
    }
    const plain: string[] = [];
    for (let i = 6; i < 12; i++) plain.push(await start(i, { command: "sleep 1000; true" }));
    const rssBefore = procStatus(server.proc.pid).VmRSS ?? 0;
    const rss = rssSampler(server.proc.pid);
    const poller = healthzPoller(server.httpUrl);
    await sleep(100);
    for (let i = 12; i < 18; i++) await start(i, { command: "sleep 1000; true", timeout: 1 });
    const t0 = performance.now();
    await Promise.all(
      [...stubborn, ...plain].map((execution_id, i) =>
        conns[i]!.request("control", { type: "CANCEL", execution_id })
      ),
    );
    // When each run's process.completed arrives, after the CANCELs were sent.
    const endedAfter = await Promise.all(conns.map(async (c) => {
      const m = await c.waitFor("completed", (x) => x.method === "process.completed");
      return { ms: performance.now() - t0, status: m.params.status as string };
    }));
    await sleep(100);
    const polled = await poller.stop();
    const peak = rss.stop();
    // Only now: a scan of /proc blocks this process, and would show in the polls.
    // (A run's completed comes once nothing of its group lives.)
    const liveGroups = () => {
      const wanted = new Set(pgids);
      const live = new Set<number>();
      for (const entry of Deno.readDirSync("/proc")) {
        const f = /^\d+$/.test(entry.name) ? procStatFields(Number(entry.name)) : null;
        if (f !== null && f[0] !== "Z" && wanted.has(Number(f[2]))) live.add(Number(f[2]));
      }
      return live;
    };
    let left = liveGroups();
    const goneBy = performance.now() + 10_000;
    while (left.size > 0 && performance.now() < goneBy) {
      await sleep(20);
      left = liveGroups();
    }
    const h = await health(server);
    const killMs = endedAfter.slice(0, 6).map((e) => Math.round(e.ms));
    const statuses = endedAfter.map((e) => e.status);
    const expected = [...Array(12).fill("canceled"), ...Array(6).fill("timeout")];
    const statusesOk = statuses.every((st, i) => st === expected[i]);
    const max = polled.latencies.at(-1) ?? NaN;
    report({
      figure: "stall",
      quick,
      groups: 18,
      healthz_polls: polled.latencies.length,
      healthz_failures: polled.failures,
      healthz_max_ms: round(max, 1),
      healthz_p99_ms: round(percentile(polled.latencies, 99), 1),
      healthz_p50_ms: round(percentile(polled.latencies, 50), 1),
      term_ignoring_ended_after_cancel_ms: killMs,
      kill_grace_ms: 5000,
      statuses_ok: statusesOk,
      groups_left: left.size,
      server_event_loop_lag_max_ms: h.event_loop_lag_max_ms ?? null,
      server_rss_before_mb: round(rssBefore / MB, 1),
      server_peak_rss_mb: round(peak / MB, 1),
      target: `/healthz max <= ${TARGETS.stallMaxMs} ms, every group gone`,
      pass: polled.failures === 0 && statusesOk && left.size === 0 &&
        max <= TARGETS.stallMaxMs,
    });
  } finally {
    for (const c of conns) closeQuietly(c.ws);
    // Nothing of this figure may outlive the bench, even if the server failed to end it.
    for (const pgid of pgids) {
      if (groupMembers(pgid).length === 0) continue;
      try {
        Deno.kill(-pgid, "SIGKILL");
      } catch {
        // gone in between
      }
    }
    await stopProcess(server.proc);
  }
}

// ---------------------------------------------------------------- restart reaping

/**
 * The `restart_reaping` figure: 10 running groups (each a shell with a
 * `sleep` grandchild) and 5 paused ones, then SIGKILL to the service; a new
 * server on the same data dir must kill them all: the time from starting it
 * until no process of those groups lives, and what its `/health` reports.
 */
/**
 * The `tenant_lookup` figure: with two principals' keys, bob sends `/mcp`
 * requests naming alice's live session id and naming ids that never existed,
 * alternating, 500 of each (100 with `--quick`), after 50 warm-up pairs:
 * both must be the same 404, and the medians of their latencies must not
 * differ by more than 0.1 ms or 5% of the faster one, whichever is larger
 * (target): an attacker cannot tell a live session of another tenant from
 * an unknown id by its answer or its timing.
 */
async function tenantLookup() {
  const server = await startServer({
    CC_EXECUTOR_API_KEYS: "alice:alice-key,bob:bob-key",
    // Each request with an id that is not the caller's counts as a new
    // connection: lifted, so the figure times the lookup, not the throttle.
    CC_EXECUTOR_CONN_RATE: "100000",
    CC_EXECUTOR_CONN_BURST: "100000",
  });
  try {
    const post = (key: string, body: unknown, sessionId?: string) =>
      fetch(`${server.httpUrl}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${key}`,
          accept: "application/json, text/event-stream",
          "content-type": "application/json",
          "mcp-protocol-version": "2025-11-25",
          ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId }),
        },
        body: JSON.stringify(body),
      });
    const init = await post("alice-key", {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "b", version: "1" },
      },
    });
    const aliceSession = init.headers.get("mcp-session-id");
    await init.body?.cancel();
    if (aliceSession === null) throw new Error(`initialize failed: ${init.status}`);
    const call = {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "list_executions", arguments: {} },
    };
    const timed = async (sessionId: string) => {
      const t0 = performance.now();
      const res = await post("bob-key", call, sessionId);
      const body = await res.text();
      return { ms: performance.now() - t0, answer: `${res.status} ${body}` };
    };
    const n = quick ? 100 : 500;
    const theirs: number[] = [];
    const unknown: number[] = [];
    const answers = new Set<string>();
    for (let i = 0; i < 50 + n; i++) {
      // Alternating which goes first, so neither always follows the other.
      const pair = i % 2 === 0
        ? [await timed(aliceSession), await timed(crypto.randomUUID())]
        : [await timed(crypto.randomUUID()), await timed(aliceSession)].reverse();
      for (const r of pair) answers.add(r.answer);
      if (i < 50) continue;
      theirs.push(pair[0]!.ms);
      unknown.push(pair[1]!.ms);
    }
    theirs.sort((a, b) => a - b);
    unknown.sort((a, b) => a - b);
    const mTheirs = median(theirs);
    const mUnknown = median(unknown);
    const diff = Math.abs(mTheirs - mUnknown);
    const bound = Math.max(0.1, 0.05 * Math.min(mTheirs, mUnknown));
    report({
      figure: "tenant_lookup",
      quick,
      requests_each: n,
      distinct_answers: answers.size,
      answers: [...answers].map((a) => a.slice(0, 120)).slice(0, 3),
      others_session_p50_ms: round(mTheirs, 3),
      unknown_session_p50_ms: round(mUnknown, 3),
      others_session_p90_ms: round(percentile(theirs, 90), 3),
      unknown_session_p90_ms: round(percentile(unknown, 90), 3),
      p50_difference_ms: round(diff, 3),
      target_difference_ms: round(bound, 3),
      pass: answers.size === 1 && diff <= bound,
    });
  } finally {
    await stopProcess(server.proc);
  }
}

async function restartReaping() {
  const first = await startServer();
  const pgids: number[] = [];
  const conns: Awaited<ReturnType<typeof stallConnection>>[] = [];
  let second: Server | null = null;
  const live = () => pgids.filter((pgid) => groupMembers(pgid).length > 0);
  try {
    for (let i = 0; i < 15; i++) {
      const c = await stallConnection(first.wsUrl);
      conns.push(c);
      const result = await c.request("execute", { command: "sleep 1000 & echo ready; wait" });
      pgids.push(result.pgid);
      await c.waitFor("ready", (m) => m.method === "process.output");
      if (i >= 10) await c.request("control", { type: "PAUSE" });
    }
    Deno.kill(first.proc.pid, "SIGKILL");
    await first.proc.exited;
    running.delete(first.proc);
    const survivors = live().length;
    const t0 = performance.now();
    second = await startServer();
    const listening = performance.now() - t0;
    const deadline = performance.now() + 10_000;
    while (live().length > 0 && performance.now() < deadline) await sleep(20);
    const goneS = (performance.now() - t0) / 1000;
    const left = live().length;
    const h = await health(second);
    report({
      figure: "restart_reaping",
      quick,
      groups: pgids.length,
      paused: 5,
      alive_after_kill: survivors,
      server_listening_s: round(listening / 1000, 2),
      all_gone_s: round(goneS, 2),
      groups_left: left,
      reaped_groups: h.reaped_groups ?? null,
      lost_executions: h.lost_executions ?? null,
      target: `every group gone within ${TARGETS.reapSeconds} s of the restart, reported`,
      pass: left === 0 && goneS <= TARGETS.reapSeconds && h.lost_executions === pgids.length,
    });
  } finally {
    for (const c of conns) closeQuietly(c.ws);
    for (const pgid of live()) {
      try {
        Deno.kill(-pgid, "SIGKILL");
      } catch {
        // gone in between
      }
    }
    if (first.proc.alive) await stopProcess(first.proc);
    if (second !== null) await stopProcess(second.proc);
  }
}

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
    benchDataDir = `${tmp}/data`;
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
    ];
    for (const [names, run] of figures) {
      if (only !== null && !names.some((n) => only.includes(n))) continue;
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
  return failures > 0 ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
