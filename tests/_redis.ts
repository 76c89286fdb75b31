/**
 * A real redis-server for tests: started on a free port without persistence,
 * stopped (or frozen) on demand.
 *
 * @module
 */

/** A real redis-server on `port`, without persistence. */
export class RedisServer {
  readonly port: number;
  #child: Deno.ChildProcess;

  private constructor(port: number, child: Deno.ChildProcess) {
    this.port = port;
    this.#child = child;
  }

  static async start(port: number): Promise<RedisServer> {
    const child = new Deno.Command("redis-server", {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const server = new RedisServer(port, child);
    // Wait until it accepts connections; give up (and fail) after ~10 s.
    for (let i = 0;; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return server;
      } catch (e) {
        if (i >= 200) {
          await server.stop();
          throw e;
        }
        await delay(50);
      }
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Kills the server abruptly, as a crash would, and waits for it to be gone. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.#child.status;
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server: connected but silent. */
  freeze(frozen: boolean): void {
    this.#child.kill(frozen ? "SIGSTOP" : "SIGCONT");
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Whether `redis-server` can be run here (tests skip, visibly, without it). */
export async function hasRedisServer(): Promise<boolean> {
  try {
    const out = await new Deno.Command("redis-server", { args: ["--version"], stdout: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}
