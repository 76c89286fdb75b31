/**
 * Background sampling of machine load, so time limits can be stretched while
 * the machine is busy. Readers never wait for a sample: {@linkcode
 * ResourceMonitor.snapshot} returns the latest one at once. (The original
 * blocked its server for a one-second CPU sample on every request.)
 *
 * Linux sources: `/proc/stat` (CPU busy % from the delta between two
 * samples), `/proc/loadavg`, `/proc/meminfo`, and `nvidia-smi` for GPU
 * utilisation when it is installed.
 *
 * @module
 */
import { cpus } from "node:os";

/** What the monitor last saw. */
export interface ResourceSnapshot {
  /** CPU busy % over the last interval; null before two samples or off Linux. */
  cpu_percent: number | null;
  /** Busiest GPU's utilisation %; null without a working `nvidia-smi`. */
  gpu_percent: number | null;
  /** 1, 5 and 15 minute load averages. */
  load_avg: [number, number, number] | null;
  memory: { total_bytes: number; available_bytes: number; used_percent: number } | null;
  /** CPU or GPU busy % above the threshold. */
  busy: boolean;
  /** What time limits are multiplied by now. */
  multiplier: number;
  threshold_percent: number;
  /** When the last sample was taken, Unix epoch ms; null before the first. */
  sampled_at: number | null;
}

/** Options of {@linkcode ResourceMonitor}; every one has a default. */
export interface ResourceMonitorOptions {
  /** Sampling interval, ms (default 1000). */
  intervalMs?: number | undefined;
  /** Busy % above which limits are multiplied (default 14). */
  thresholdPercent?: number | undefined;
  /** Multiplier while busy (default 3). */
  multiplier?: number | undefined;
  /** Default `/proc/stat`. */
  statPath?: string | undefined;
  /** Default `/proc/loadavg`. */
  loadavgPath?: string | undefined;
  /** Default `/proc/meminfo`. */
  meminfoPath?: string | undefined;
  /** GPU query program (default `nvidia-smi`); null never queries a GPU. */
  nvidiaSmi?: string | null | undefined;
  /** Least time between GPU queries, ms (default 5000): a query costs a process. */
  gpuIntervalMs?: number | undefined;
  /** Wait after `nvidia-smi` is missing or fails before trying again, ms (default 10 min). */
  gpuRetryMs?: number | undefined;
  /** `nvidia-smi` is killed after this long, ms (default 5000). */
  gpuTimeoutMs?: number | undefined;
}

interface CpuTimes {
  total: number;
  idle: number;
}

/**
 * Samples CPU, load, memory and GPU in the background and says by how much
 * time limits should be multiplied.
 *
 * @example Feed it two `/proc/stat` readings
 * ```ts
 * import assert from "node:assert/strict";
 * import { ResourceMonitor } from "./monitor.ts";
 * const dir = await Deno.makeTempDir();
 * const stat = `${dir}/stat`;
 * const monitor = new ResourceMonitor({ statPath: stat, nvidiaSmi: null });
 * await Deno.writeTextFile(stat, "cpu  100 0 100 800 0 0 0 0 0 0\n");
 * await monitor.sample();
 * await Deno.writeTextFile(stat, "cpu  200 0 150 850 0 0 0 0 0 0\n");
 * await monitor.sample();
 * assert.equal(monitor.snapshot().cpu_percent, 75);
 * assert.equal(monitor.multiplier(), 3);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ResourceMonitor {
  readonly #intervalMs: number;
  readonly #threshold: number;
  readonly #busyMultiplier: number;
  readonly #statPath: string;
  readonly #loadavgPath: string;
  readonly #meminfoPath: string;
  readonly #nvidiaSmi: string | null;
  readonly #gpuIntervalMs: number;
  readonly #gpuRetryMs: number;
  readonly #gpuTimeoutMs: number;

  #prevCpu: CpuTimes | null = null;
  #cpu: number | null = null;
  #gpu: number | null = null;
  #gpuNextAt = 0;
  #gpuProbes = 0;
  #load: [number, number, number] | null = null;
  #memory: ResourceSnapshot["memory"] = null;
  #sampledAt: number | null = null;

  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inflight: Promise<ResourceSnapshot> | null = null;

  /** Creates a monitor; nothing is sampled until {@linkcode start} or {@linkcode sample}. */
  constructor(options: ResourceMonitorOptions = {}) {
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#threshold = options.thresholdPercent ?? 14;
    this.#busyMultiplier = options.multiplier ?? 3;
    this.#statPath = options.statPath ?? "/proc/stat";
    this.#loadavgPath = options.loadavgPath ?? "/proc/loadavg";
    this.#meminfoPath = options.meminfoPath ?? "/proc/meminfo";
    this.#nvidiaSmi = options.nvidiaSmi === undefined ? "nvidia-smi" : options.nvidiaSmi;
    this.#gpuIntervalMs = options.gpuIntervalMs ?? 5000;
    this.#gpuRetryMs = options.gpuRetryMs ?? 600_000;
    this.#gpuTimeoutMs = options.gpuTimeoutMs ?? 5000;
    if (!(this.#intervalMs > 0)) throw new RangeError("intervalMs must be positive");
    if (!(this.#busyMultiplier >= 1)) throw new RangeError("multiplier must be at least 1");
  }

  /** Starts sampling every `intervalMs` (the first sample at once). Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#tick();
  }

  /** Stops sampling and waits for a sample in progress. Clears every timer. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inflight;
  }

  /** Takes a sample now (joining one in progress) and returns the new snapshot. Never rejects. */
  sample(): Promise<ResourceSnapshot> {
    this.#inflight ??= this.#sample().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  /** The latest readings, without waiting. */
  snapshot(): ResourceSnapshot {
    const busy = (this.#cpu ?? 0) > this.#threshold || (this.#gpu ?? 0) > this.#threshold;
    return {
      cpu_percent: this.#cpu,
      gpu_percent: this.#gpu,
      load_avg: this.#load,
      memory: this.#memory,
      busy,
      multiplier: busy ? this.#busyMultiplier : 1,
      threshold_percent: this.#threshold,
      sampled_at: this.#sampledAt,
    };
  }

  /** The configured multiplier while CPU or GPU busy % is above the threshold, else 1. */
  multiplier(): number {
    return this.snapshot().multiplier;
  }

  /** How many times `nvidia-smi` has been started (shows the back-off works). */
  get gpuProbes(): number {
    return this.#gpuProbes;
  }

  async #tick(): Promise<void> {
    await this.sample();
    if (!this.#running) return;
    const timer = setTimeout(() => void this.#tick(), this.#intervalMs);
    // Sampling alone must not keep the process alive.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  async #sample(): Promise<ResourceSnapshot> {
    const [cpu, load, memory] = await Promise.all([
      readCpuTimes(this.#statPath),
      readLoadavg(this.#loadavgPath),
      readMemory(this.#meminfoPath),
      this.#sampleGpu(),
    ]);
    if (cpu === null) {
      this.#cpu = null;
    } else if (this.#prevCpu !== null) {
      const total = cpu.total - this.#prevCpu.total;
      const idle = cpu.idle - this.#prevCpu.idle;
      // No ticks elapsed (two reads too close together): keep the last figure.
      if (total > 0) this.#cpu = Math.round(((total - idle) / total) * 1000) / 10;
    }
    this.#prevCpu = cpu;
    this.#load = load;
    this.#memory = memory;
    this.#sampledAt = Date.now();
    return this.snapshot();
  }

  async #sampleGpu(): Promise<void> {
    if (this.#nvidiaSmi === null || Date.now() < this.#gpuNextAt) return;
    this.#gpuProbes++;
    const gpu = await queryGpu(this.#nvidiaSmi, this.#gpuTimeoutMs);
    this.#gpu = gpu;
    // Missing or broken: do not spawn it again every interval.
    this.#gpuNextAt = Date.now() + (gpu === null ? this.#gpuRetryMs : this.#gpuIntervalMs);
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

/**
 * Aggregate CPU times from `/proc/stat`'s first line; where that cannot be
 * read (Deno grants /proc only with --allow-all), from `os.cpus()`
 * (--allow-sys=cpus), the same counters summed over the CPUs.
 */
async function readCpuTimes(path: string): Promise<CpuTimes | null> {
  const text = await readText(path);
  if (text === null) return cpuTimesFromOs();
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) return null;
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 4 || f.some((n) => !Number.isFinite(n))) return null;
  const total = f.reduce((a, b) => a + b, 0);
  return { total, idle: f[3]! + (f[4] ?? 0) };
}

function cpuTimesFromOs(): CpuTimes | null {
  try {
    let total = 0;
    let idle = 0;
    for (const { times } of cpus()) {
      total += times.user + times.nice + times.sys + times.idle + times.irq;
      idle += times.idle;
    }
    return total > 0 ? { total, idle } : null;
  } catch {
    return null;
  }
}

async function readLoadavg(path: string): Promise<[number, number, number] | null> {
  const text = await readText(path);
  if (text !== null) {
    const [a, b, c] = text.trim().split(/\s+/).map(Number);
    if ([a, b, c].every((n) => Number.isFinite(n))) return [a!, b!, c!];
    return null;
  }
  try {
    const [a = 0, b = 0, c = 0] = Deno.loadavg();
    return [a, b, c];
  } catch {
    return null;
  }
}

async function readMemory(path: string): Promise<ResourceSnapshot["memory"]> {
  let total: number | undefined;
  let available: number | undefined;
  const text = await readText(path);
  if (text !== null) {
    const kb = (name: string) => {
      const m = new RegExp(`^${name}:\\s+(\\d+)\\s*kB`, "m").exec(text);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    total = kb("MemTotal");
    available = kb("MemAvailable");
  } else {
    try {
      ({ total, available } = Deno.systemMemoryInfo());
    } catch {
      return null;
    }
  }
  if (!total || available === undefined) return null;
  return {
    total_bytes: total,
    available_bytes: available,
    used_percent: Math.round(((total - available) / total) * 1000) / 10,
  };
}

/** Busiest GPU's utilisation %, or null when `nvidia-smi` is missing, fails or hangs. */
async function queryGpu(program: string, timeoutMs: number): Promise<number | null> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const out = await new Deno.Command(program, {
      args: ["--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: abort.signal,
    }).output();
    if (!out.success) return null;
    const values = new TextDecoder().decode(out.stdout).split("\n")
      .map((l) => l.trim()).filter((l) => l !== "").map(Number);
    if (values.length === 0 || values.some((n) => !Number.isFinite(n))) return null;
    return Math.max(...values);
  } catch {
    // Not installed (NotFound), not permitted, or killed on timeout.
    return null;
  } finally {
    clearTimeout(timer);
  }
}
