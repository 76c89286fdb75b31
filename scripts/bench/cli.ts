/**
 * The command-line client's figure (12 in scripts/bench.ts), `cli`: the
 * CLI run as `deno task cli` runs it (its own process, its permissions),
 * `run --quiet -- cat` of a 64 MiB random binary file (8 MiB with
 * `--quick`; every byte value, so invalid UTF-8 throughout) with its stdout
 * piped to the bench.
 *
 * - MB/s from spawning the CLI to its exit (Deno's start included), bytes
 *   lost and SHA-256 against the file; median of 3 rounds (1 with
 *   `--quick`), after a warm-up.
 * - The same rounds by a bare client in the bench asking for the same
 *   base64 output (no process start, nothing written anywhere): `ratio` is
 *   the CLI over it (target >= 0.6): what being a separate program that
 *   writes its output costs.
 * - A reader slower than the run: the bench reads the CLI's stdout at
 *   16 MiB/s. The CLI's peak RSS (VmRSS every 20 ms) against 128 MB: it holds
 *   at most 8 MiB of unwritten output and takes up the rest from the server
 *   once the reader has caught up. Byte-exact too.
 *
 * @module
 */
import * as common from "./_common.ts";

const FILE_BYTES = common.quick ? 8 * common.MiB : 64 * common.MiB;
const ROUNDS = common.quick ? 1 : 3;
const SLOW_READ_BYTES_PER_S = 16 * common.MiB;
const RATIO_TARGET = 0.6;
const SLOW_RSS_TARGET_MB = 128;

const CLI = new URL("cli/main.ts", common.root).pathname;
/** The permissions of `deno task cli` (deno.json). */
const CLI_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-env=CC_EXECUTOR_URL,CC_EXECUTOR_API_KEY",
];

/** Random bytes, every value present. */
function randomBytes(n: number): Uint8Array {
  const data = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(data.subarray(off, Math.min(n, off + 65536)));
  }
  return data;
}

/** Reads `stream` to the end, at most `rate` bytes per second when given. */
async function readAll(stream: ReadableStream<Uint8Array>, rate?: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const t0 = performance.now();
  for await (const chunk of stream) {
    chunks.push(chunk);
    total += chunk.length;
    if (rate !== undefined) {
      const due = t0 + (total / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await common.sleep(wait);
    }
  }
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return all;
}

/** One CLI run of `cat file`: seconds, bytes, sha, exit code, and its peak RSS. */
async function cliRound(wsUrl: string, file: string, rate?: number) {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...CLI_PERMISSIONS, CLI, "run", "--quiet", "--", "cat", file],
    env: { CC_EXECUTOR_URL: wsUrl },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, common.procStatus(child.pid).VmRSS ?? 0);
    } catch {
      // exited
    }
  }, 20);
  const [out, err, status] = await Promise.all([
    readAll(child.stdout, rate),
    readAll(child.stderr),
    child.status,
  ]);
  clearInterval(sampler);
  const seconds = (performance.now() - t0) / 1000;
  return {
    seconds,
    bytes: out.length,
    sha: await common.sha256Hex(out),
    code: status.code,
    stderr: new TextDecoder().decode(err).slice(0, 500),
    peakRss: peak,
  };
}

/** The same run by a bare client asking for base64 output; seconds and bytes. */
async function directRound(wsUrl: string, file: string) {
  const ws = await common.openSocket(wsUrl);
  const chunks: string[] = [];
  const t0 = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      ws.onmessage = (e) => {
        const msg = JSON.parse(e.data);
        if (msg.method === "process.output") chunks.push(msg.params.data);
        else if (msg.method === "process.completed") resolve();
        else if (msg.id === 1 && msg.error) reject(new Error(msg.error.message));
      };
      ws.onclose = (e) => reject(new Error(`closed: ${e.code} ${e.reason}`));
      ws.send(JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "execute",
        params: { args: ["cat", file], encoding: "base64", timeout: 600 },
      }));
    });
    // Decoded, as the CLI must, inside the clock.
    let bytes = 0;
    for (const c of chunks) bytes += Uint8Array.fromBase64(c).length;
    return { seconds: (performance.now() - t0) / 1000, bytes };
  } finally {
    ws.onmessage = null;
    ws.onclose = null;
    common.closeQuietly(ws);
  }
}

/** Figure 12: the CLI's throughput against a bare client, and its memory with a slow reader. */
export async function cliFigure(dir: string): Promise<void> {
  const file = `${dir}/cli.bin`;
  const data = randomBytes(FILE_BYTES);
  await Deno.writeFile(file, data);
  const sha = await common.sha256Hex(data);
  const server = await common.startServer();
  try {
    await cliRound(server.wsUrl, file);
    await directRound(server.wsUrl, file);
    const cli: number[] = [];
    const direct: number[] = [];
    let lost = 0;
    let matches = true;
    let codes = 0;
    let stderr = "";
    for (let i = 0; i < ROUNDS; i++) {
      const c = await cliRound(server.wsUrl, file);
      cli.push(c.bytes / common.MB / c.seconds);
      lost += FILE_BYTES - c.bytes;
      matches &&= c.sha === sha;
      codes += c.code;
      stderr ||= c.stderr;
      const d = await directRound(server.wsUrl, file);
      direct.push(d.bytes / common.MB / d.seconds);
      lost += FILE_BYTES - d.bytes;
    }
    const slow = await cliRound(server.wsUrl, file, SLOW_READ_BYTES_PER_S);
    const ratio = common.median(cli) / common.median(direct);
    const slowMb = slow.peakRss / common.MB;
    common.report({
      figure: "cli",
      quick: common.quick,
      bytes: FILE_BYTES,
      mb_per_s: common.round(common.median(cli), 1),
      best_mb_per_s: common.round(Math.max(...cli), 1),
      direct_mb_per_s: common.round(common.median(direct), 1),
      ratio: common.round(ratio, 2),
      bytes_lost: lost,
      sha256_match: matches,
      exit_codes_nonzero: codes,
      ...(stderr ? { stderr } : {}),
      slow_reader_mb_per_s: common.round(SLOW_READ_BYTES_PER_S / common.MB, 1),
      slow_reader_seconds: common.round(slow.seconds, 2),
      slow_reader_peak_rss_mb: common.round(slowMb, 1),
      slow_reader_bytes_lost: FILE_BYTES - slow.bytes,
      slow_reader_sha256_match: slow.sha === sha,
      target: `ratio >= ${RATIO_TARGET}, slow reader peak RSS <= ${SLOW_RSS_TARGET_MB} MB, ` +
        "0 bytes lost",
      pass: ratio >= RATIO_TARGET && slowMb <= SLOW_RSS_TARGET_MB && lost === 0 && matches &&
        codes === 0 && slow.sha === sha,
    });
  } finally {
    await common.stopProcess(server.proc);
  }
}
