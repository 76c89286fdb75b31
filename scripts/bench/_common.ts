/**
 * What the bench's figures share: settings from the command line, /proc
 * readings, subprocesses (the server started exactly as `deno task start`
 * does), a browser-style WebSocket client and the report.
 *
 * @module
 */
import { TICKS_PER_SECOND } from "../../lib/process/proc_stat.ts";
export const MB = 1e6;
export const KiB = 1024;
export const MiB = 1024 * KiB;
/** No wait in this script may last longer than this. */
export const FIGURE_TIMEOUT_MS = 120_000;
export const SERVER_START_TIMEOUT_MS = 60_000;

export const quick = Deno.args.includes("--quick");
/** Figures to run (`--only=a,b`); null for all. */
export const only =
  Deno.args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",") ??
    null;
export const SIZES = quick
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
export const SESSION_BYTES = 1 * MiB;
export const SLOW_RATE = 1 * MiB; // bytes per second: 64 KiB every 62.5 ms
export const STDIN_CALL_BYTES = 1 * MiB;
/** `send_input` calls in flight at once in the stdin flood. */
export const STDIN_WINDOW = 64;
/** RSS sampling period of the memory figures. */
export const RSS_SAMPLE_MS = 20;
export const TARGETS = {
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

export const root = new URL("../..", import.meta.url);
/** `deno task start`'s launcher: the service under the permissions its config needs. */
export const startPath = new URL("scripts/start.ts", root).pathname;
export const ceilingPath = new URL("scripts/bench_ceiling_server.ts", root).pathname;

// ---------------------------------------------------------------- helpers

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
export const errorText = (err: unknown) => err instanceof Error ? err.message : String(err);

/**
 * Settles like `promise`, or rejects after `ms`. The original promise keeps a
 * handler, so its late rejection cannot become an unhandled one (which would
 * end this process).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  promise.catch(() => {});
  let handle: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    handle = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(handle));
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Small deterministic PRNG (mulberry32): the same file on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const encoder = new TextEncoder();
export const ALPHABET = encoder.encode(
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_=+/()[]{}'\"<>!?#$%&*\t",
);
// 2-, 3- and 4-byte characters, so a cut inside a character would show up as a checksum mismatch.
export const MULTIBYTE = ["é", "ß", "€", "→", "日本", "😀"].map((s) => encoder.encode(s));

/**
 * Text of exactly `size` bytes ending in a newline: mostly lines of 0-200
 * bytes (log-like), sometimes 200-4000, and rarely one longer than a
 * message (100-200 KiB, like minified JSON) so the line-splitting path runs.
 * With `multibyte`, about 1 % of characters take 2 to 4 bytes.
 */
export function generateText(size: number, seed: number, multibyte = true): Uint8Array {
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

export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

// ---------------------------------------------------------------- /proc

export function procStatus(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")) {
    const m = /^(Vm\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) * 1024;
  }
  return out;
}

/** Fields of /proc/<pid>/stat after the command name, which may itself hold spaces. */
export function procStatFields(pid: number | "self"): string[] | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** User + system CPU seconds a process has used. */
export function cpuSeconds(pid: number | "self"): number {
  const f = procStatFields(pid);
  if (f === null) return NaN;
  // After the name: state(0) ppid(1) pgrp(2) ... utime(11) stime(12).
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
}

/** Busy and total CPU ticks of the whole machine (first line of /proc/stat). */
export function machineTicks(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.trim().split(/\s+/).slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  // idle and iowait are the 4th and 5th fields.
  return { busy: total - f[3]! - f[4]!, total };
}

/** Share of all CPUs the machine spent busy since `start`, in percent. */
export function machineBusyPct(start: { busy: number; total: number }): number {
  const now = machineTicks();
  return Math.round(100 * (now.busy - start.busy) / Math.max(1, now.total - start.total));
}

/** Bytes a process has written (any fd), from /proc/<pid>/io; 0 when unreadable. */
export function bytesWritten(pid: number): number {
  try {
    return Number(/wchar:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/io`))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** A process's command name, or "" when it is gone. */
export function comm(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------- subprocesses

/** A subprocess whose output is kept (last lines) for error messages. */
export class Subprocess {
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

export const running = new Set<Subprocess>();

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A cc-executor subprocess. */
export interface Server {
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

/** Sets where the servers keep their data (the bench's temp dir). */
export function setBenchDataDir(dir: string): void {
  benchDataDir = dir;
}

export const LOAD_LIMITS: Record<string, string> = {
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
export async function startServer(settings: Record<string, string> = {}): Promise<Server> {
  const port = freePort();
  const env: Record<string, string> = { ...settings };
  for (const [name, value] of Object.entries(LOAD_LIMITS)) env[name] = Deno.env.get(name) ?? value;
  // The real embedded store, but in the bench's temp dir rather than the user's.
  if (benchDataDir !== null) {
    env.CC_EXECUTOR_DATA_DIR = settings.CC_EXECUTOR_DATA_DIR ??
      Deno.env.get("CC_EXECUTOR_DATA_DIR") ??
      benchDataDir;
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

export async function stopProcess(proc: Subprocess): Promise<void> {
  // Still running is the normal case; gone already means it died under a
  // figure, and its last words are what explains that figure's error.
  if (!proc.alive) console.error(`bench: ${proc.name} had exited; its last output:\n${proc.tail}`);
  await proc.stop();
  running.delete(proc);
}

export async function startCeiling(file: string): Promise<{ proc: Subprocess; port: number }> {
  const proc = new Subprocess("ceiling server", ["run", "-A", ceilingPath, file]);
  running.add(proc);
  const line = await withTimeout(proc.firstLine(), SERVER_START_TIMEOUT_MS, "ceiling server");
  return { proc, port: JSON.parse(line).port };
}

export async function health(server: Server): Promise<Record<string, unknown>> {
  try {
    const res = await fetch(`${server.httpUrl}/health`, { signal: AbortSignal.timeout(5000) });
    return await res.json();
  } catch {
    return {};
  }
}

/** Waits (at most 10 s) until the server reports no open session. */
export async function untilSessionsClosed(server: Server): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    if ((await health(server)).active_sessions === 0) return;
    await sleep(RSS_SAMPLE_MS);
  }
}

/** Resets the server's VmHWM to its current RSS (Linux >= 4.0); false when not allowed. */
export function resetPeak(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Samples a process's VmRSS every `everyMs`: the peak as seen from outside. */
export function rssSampler(
  pid: number,
  everyMs = RSS_SAMPLE_MS,
): { stop(): number; peak(): number } {
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
export function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    ws.onclose = (e) => reject(new Error(`closed before open: ${e.code} ${e.reason}`));
  });
}

export function closeQuietly(ws: WebSocket): void {
  try {
    ws.close();
  } catch {
    // already closed
  }
}

/** What one streaming run received. */
export interface StreamResult {
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
export function streamRun(ws: WebSocket, command: string, raw = false): Promise<StreamResult> {
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
export async function measureChunks(chunks: string[]) {
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

export type Figure = Record<string, unknown> & { figure: string; pass: boolean };

export const results: Figure[] = [];
let failures = 0;

/** Figures that could not be measured at all. */
export function failureCount(): number {
  return failures;
}

export function report(figure: Figure): void {
  results.push(figure);
  console.log(JSON.stringify(figure));
}

export function reportError(figure: string, err: unknown): void {
  failures++;
  report({ figure, quick, error: errorText(err), pass: false });
}
