/**
 * Test helpers for the command-line client: the CLI run as a user runs it
 * (its own process, `deno task cli`'s permissions), its output collected
 * as bytes, and a TCP proxy the test can cut and restore.
 *
 * @module
 */
import { withServer } from "./_helpers.ts";
import type { ServerHandle } from "../main.ts";

/** The CLI's entry point. */
export const CLI_MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

/** The permissions of `deno task cli` (deno.json). */
export const CLI_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-env=CC_EXECUTOR_URL,CC_EXECUTOR_API_KEY",
];

/** A CLI process, its output collected as it comes. */
export class CliProcess {
  readonly child: Deno.ChildProcess;
  #stdout: Uint8Array[] = [];
  #stderr: Uint8Array[] = [];
  #waiters: (() => void)[] = [];
  readonly #pumps: Promise<void>;

  /** Starts the CLI with `args`, `url` as its server and `env` added. */
  constructor(
    args: string[],
    options: { url: string; env?: Record<string, string>; stdin?: boolean } = { url: "" },
  ) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...CLI_PERMISSIONS, CLI_MAIN, ...args],
      env: { CC_EXECUTOR_URL: options.url, NO_COLOR: "1", ...options.env },
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pumps = Promise.all([
      this.#collect(this.child.stdout, this.#stdout),
      this.#collect(this.child.stderr, this.#stderr),
    ]).then(() => {});
  }

  async #collect(stream: ReadableStream<Uint8Array>, into: Uint8Array[]): Promise<void> {
    for await (const chunk of stream) {
      into.push(chunk);
      for (const w of this.#waiters.splice(0)) w();
    }
  }

  /** Everything on stdout so far. */
  get stdout(): Uint8Array {
    return concat(this.#stdout);
  }

  /** Everything on stderr so far, as text. */
  get stderr(): string {
    return new TextDecoder().decode(concat(this.#stderr));
  }

  /** Bytes on stdout so far. */
  get stdoutBytes(): number {
    return this.#stdout.reduce((n, c) => n + c.length, 0);
  }

  /** Resolves once `check` holds of the output (checked on every chunk), or throws after `ms`. */
  async until(check: (p: CliProcess) => boolean, ms = 30_000, what = "output"): Promise<void> {
    const deadline = performance.now() + ms;
    while (!check(this)) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; stderr: ${this.stderr}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        new Promise<void>((resolve) => timer = setTimeout(resolve, Math.min(left, 1000))),
      ]);
      clearTimeout(timer);
    }
  }

  /** Waits for the exit; returns the code and all output. */
  async done(): Promise<{ code: number; stdout: Uint8Array; stderr: string; text: string }> {
    const status = await this.child.status;
    await this.#pumps;
    const stdout = this.stdout;
    return {
      code: status.code,
      stdout,
      stderr: this.stderr,
      text: new TextDecoder().decode(stdout),
    };
  }
}

/** `chunks` end to end. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** The CLI as a bare child whose stdout the test reads (or not) itself. */
export function spawnCli(
  url: string,
  args: string[],
  stderr: "piped" | "null" = "null",
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...CLI_PERMISSIONS, CLI_MAIN, ...args],
    env: { CC_EXECUTOR_URL: url },
    stdout: "piped",
    stderr,
  }).spawn();
}

/** `run --detach --shell script`: the new run's id. */
export async function startDetached(url: string, script: string): Promise<string> {
  const r = await cli(url, ["run", "--detach", "--shell", script]);
  if (r.code !== 0) throw new Error(`run --detach exited ${r.code}: ${r.stderr}`);
  return r.text.trim();
}

/** Runs the CLI to its end. */
export function cli(
  url: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: Uint8Array; stderr: string; text: string }> {
  return new CliProcess(args, { url, env }).done();
}

/**
 * A TCP proxy from a port of its own to `target`, which the test can cut
 * (every connection dropped, nothing listening) and restore on the same port.
 */
export class TcpProxy {
  readonly port: number;
  readonly #target: number;
  #listener: Deno.TcpListener | null = null;
  readonly #conns = new Set<Deno.Conn>();
  /** Connections accepted since the start. */
  accepted = 0;

  private constructor(port: number, target: number) {
    this.port = port;
    this.#target = target;
  }

  /** A proxy to `target` on a free port, listening. */
  static async start(target: number): Promise<TcpProxy> {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const proxy = new TcpProxy(port, target);
    await proxy.restore();
    return proxy;
  }

  /** Listens again on the same port. */
  async restore(): Promise<void> {
    let listener: Deno.TcpListener;
    for (let tries = 0;; tries++) {
      try {
        listener = Deno.listen({ hostname: "127.0.0.1", port: this.port });
        break;
      } catch (err) {
        // A listener closed this turn lets its port go once its pending accept is dropped.
        if (!(err instanceof Deno.errors.AddrInUse) || tries > 200) throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    this.#listener = listener;
    void (async () => {
      for await (const conn of listener) {
        this.accepted++;
        void this.#pipe(conn);
      }
    })().catch(() => {});
  }

  async #pipe(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client);
    this.#conns.add(upstream);
    const close = () => {
      for (const c of [client, upstream]) {
        this.#conns.delete(c);
        try {
          c.close();
        } catch {
          // closed already
        }
      }
    };
    await Promise.race([this.#copy(client, upstream), this.#copy(upstream, client, true)]);
    close();
  }

  /** Copies `from` to `to`, holding each chunk while the proxy is frozen. */
  async #copy(from: Deno.Conn, to: Deno.Conn, fromServer = false): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) return;
        await this.#thawed;
        const trap = this.#trap;
        if (
          fromServer && trap !== null && new TextDecoder().decode(buf.subarray(0, n)).includes(trap)
        ) {
          // Server frames are not masked: the one the test named never reaches the client.
          this.#trap = null;
          this.cut();
          this.#sprung?.();
          return;
        }
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch {
      // cut
    }
  }

  #thawed: Promise<void> = Promise.resolve();
  #trap: string | null = null;

  /**
   * The next chunk from the server that contains `text` is dropped, and
   * every connection with it (a reply lost with its connection).
   */
  cutAtServerText(text: string): Promise<void> {
    this.#trap = text;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#sprung = resolve;
    return promise;
  }

  #sprung: (() => void) | null = null;

  #thaw: (() => void) | null = null;

  /**
   * Stops passing bytes on, both ways, while keeping every connection open:
   * a network that drops packets without a reset.
   */
  freeze(): void {
    if (this.#thaw !== null) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#thawed = promise;
    this.#thaw = resolve;
  }

  /** Passes bytes on again. */
  thaw(): void {
    this.#thaw?.();
    this.#thaw = null;
    this.#thawed = Promise.resolve();
  }

  /** Drops every connection abruptly and stops listening. */
  cut(): void {
    this.#listener?.close();
    this.#listener = null;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // closed already
      }
    }
    this.#conns.clear();
  }

  /** Drops every connection and stops listening for good. */
  close(): void {
    this.thaw();
    this.cut();
  }
}

/**
 * Runs `fn` against a fresh server (`flags`) behind a {@linkcode TcpProxy},
 * whose URL it is given; the proxy's port is in the Host header, so the
 * server accepts any host.
 */
export async function withProxy(
  flags: Record<string, string>,
  fn: (server: ServerHandle, proxy: TcpProxy, url: string) => Promise<void>,
): Promise<void> {
  await withServer({ "allowed-hosts": "*", ...flags }, async (server) => {
    const proxy = await TcpProxy.start(server.port);
    try {
      await fn(server, proxy, `ws://127.0.0.1:${proxy.port}/ws/mcp`);
    } finally {
      proxy.close();
    }
  });
}
