/**
 * Test helpers: a real server on an ephemeral port and a real WebSocket
 * client that queues what it receives.
 *
 * @module
 */
import { loadConfig } from "../lib/config/config.ts";
import { HookRunner } from "../lib/ops/hooks.ts";
import { createStore } from "../lib/store/store.ts";
import { DEFAULT_TIMEOUTS_S } from "../lib/timing/estimate.ts";
import { TimeLimits } from "../lib/timing/time_limits.ts";
import { groupPids } from "../lib/process/process_group.ts";
import { type ServerHandle, startServer } from "../main.ts";

// deno-lint-ignore no-explicit-any
export type Msg = any;

/** Starts a server with `flags` (e.g. `{ "max-sessions": "2" }`) on a free port. */
export function testServer(flags: Record<string, string> = {}): Promise<ServerHandle> {
  // --ephemeral: tests never write the store under $HOME. --busy-multiplier 1:
  // limits do not depend on how busy the machine running the tests is.
  const args = ["--port", "0", "--ws-ping-interval", "0", "--ephemeral", "--busy-multiplier", "1"];
  for (const [k, v] of Object.entries(flags)) args.push(`--${k}`, v);
  return startServer(
    loadConfig({ args, getEnv: (name) => name === "PATH" ? Deno.env.get("PATH") : undefined }),
  );
}

/** Runs `fn` against a fresh server, then shuts it down. */
export async function withServer(
  flags: Record<string, string>,
  fn: (server: ServerHandle) => Promise<void>,
): Promise<void> {
  const server = await testServer(flags);
  try {
    await fn(server);
  } finally {
    await server.shutdown();
  }
}

const DEFAULT_WAIT_MS = 20_000;

/** A WebSocket client whose incoming JSON messages are queued for the test. */
export class TestClient {
  readonly ws: WebSocket;
  readonly closed: Promise<CloseEvent>;
  /** Raw text of every message received, in order. */
  readonly received: string[] = [];
  #queue: Msg[] = [];
  #waiters: (() => void)[] = [];
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve(e)));
    ws.addEventListener("message", (e) => {
      const text = String(e.data);
      this.received.push(text);
      this.#queue.push(JSON.parse(text));
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed.then(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Connects and waits for the socket to open. */
  static async connect(
    url: string,
    protocols?: string | string[],
    headers?: HeadersInit,
  ): Promise<TestClient> {
    const ws = headers === undefined
      ? new WebSocket(url, protocols)
      : new WebSocket(url, { protocols, headers });
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), {
        once: true,
      });
    });
    return client;
  }

  /** Connects and consumes the `connected` notification. */
  static async open(server: ServerHandle): Promise<TestClient> {
    const client = await TestClient.connect(server.wsUrl);
    const first = await client.next();
    if (first.method !== "connected") throw new Error(`expected connected, got ${first.method}`);
    return client;
  }

  /** Sends a JSON value (or raw text). */
  send(msg: unknown): void {
    this.ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  /** Removes and returns the first queued message matching `pred`, waiting for it. */
  async next(pred: (m: Msg) => boolean = () => true, ms = DEFAULT_WAIT_MS): Promise<Msg> {
    const deadline = performance.now() + ms;
    for (;;) {
      const i = this.#queue.findIndex(pred);
      if (i !== -1) return this.#queue.splice(i, 1)[0];
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("socket closed while waiting");
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(`timed out; queued: ${JSON.stringify(this.#queue).slice(0, 500)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Drops every queued message (e.g. answers to fuzzed requests whose ids may come again). */
  drain(): void {
    this.#queue.length = 0;
  }

  /** Messages queued now, without waiting. */
  pending(): Msg[] {
    return [...this.#queue];
  }

  /** Sends a request and returns its response (result or error). */
  async request(method: string, params?: unknown, id: string | number = this.#nextId++) {
    this.send({ jsonrpc: "2.0", method, params, id });
    return await this.next((m) => m.id === id && ("result" in m || "error" in m));
  }

  /** Waits for a `process.<name>` notification of `executionId`. */
  event(name: string, executionId?: string, ms?: number): Promise<Msg> {
    return this.next(
      (m) =>
        m.method === `process.${name}` &&
        (executionId === undefined || m.params.execution_id === executionId),
      ms,
    );
  }

  /**
   * Runs `params` with `execute` and collects everything up to and including
   * `process.completed`.
   */
  async run(params: Record<string, unknown>, ms = DEFAULT_WAIT_MS) {
    const response = await this.request("execute", params);
    if (response.error) throw new Error(`execute failed: ${JSON.stringify(response.error)}`);
    const id = response.result.execution_id;
    const events: Msg[] = [];
    for (;;) {
      const m = await this.next((x) => x.params?.execution_id === id, ms);
      events.push(m);
      if (m.method === "process.completed") break;
    }
    const output = (stream: string) =>
      events.filter((e) => e.method === "process.output" && e.params.type === stream)
        .map((e) => e.params.data).join("");
    return {
      result: response.result,
      events,
      completed: events.at(-1)!.params,
      stdout: output("stdout"),
      stderr: output("stderr"),
    };
  }

  /** Closes the socket and waits for the close to finish. */
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }
}

/** Polls `check` until it returns true (or throws after `ms`). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until no live process of group `pgid` remains; throws listing them otherwise. */
export async function assertGroupGone(pgid: number, ms = 10_000): Promise<void> {
  let left: number[] = [];
  try {
    await eventually(async () => (left = await groupPids(pgid)).length === 0, ms);
  } catch {
    throw new Error(`process group ${pgid} still has pids ${left.join(", ")}`);
  }
}

/**
 * Waits until group `pgid` has at least `count` live processes named `name`
 * (as in /proc/<pid>/comm): e.g. the shell has forked and its children have
 * exec'd, so the signal dispositions they inherited are in place.
 */
export async function groupHas(pgid: number, name: string, count = 1, ms = 10_000): Promise<void> {
  const named = async () => {
    let n = 0;
    for (const pid of await groupPids(pgid)) {
      try {
        if ((await Deno.readTextFile(`/proc/${pid}/comm`)).trim() === name) n++;
      } catch {
        // gone meanwhile
      }
    }
    return n;
  };
  await eventually(async () => (await named()) >= count, ms, `${count} ${name} in group ${pgid}`);
}

/** Pids of live processes whose command line contains `marker`. */
export async function pidsWithMarker(marker: string): Promise<number[]> {
  const found: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (cmd.includes(marker) && state !== "Z") found.push(Number(e.name));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** A server running as its own process (`main.ts`), for signal and memory tests. */
export interface ServerProcess {
  child: Deno.ChildProcess;
  pid: number;
  port: number;
  wsUrl: string;
  httpUrl: string;
  /** Everything the server printed so far. */
  output: () => string;
  /** Sends SIGTERM and waits for exit. */
  stop: () => Promise<Deno.CommandStatus>;
}

/**
 * Starts `main.ts` (or `options.script`) with `flags` on a free port and
 * waits until it listens. With `options.shell`, from a `/bin/sh` that stays
 * its parent, as a user's shell would (passing SIGTERM on).
 */
export async function spawnServer(
  flags: Record<string, string> = {},
  env: Record<string, string> = {},
  options: { script?: string; shell?: boolean } = {},
): Promise<ServerProcess> {
  const script = new URL(`../${options.script ?? "main.ts"}`, import.meta.url).pathname;
  const args = ["run", "-A", script, "--port", "0"];
  for (const [k, v] of Object.entries(flags)) args.push(`--${k}`, v);
  const viaShell = ["-c", `trap 'kill -TERM $p' TERM; "$@" & p=$!; wait $p; wait $p`, "sh"];
  const child = new Deno.Command(options.shell ? "/bin/sh" : Deno.execPath(), {
    args: options.shell ? [...viaShell, Deno.execPath(), ...args] : args,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const pumping = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let port = 0;
  await eventually(
    () => {
      const m = text.match(/listening on "?ws:\/\/[^:]+:(\d+)/);
      if (m) port = Number(m[1]);
      return port !== 0;
    },
    30_000,
    "server to listen",
  );
  let status: Promise<Deno.CommandStatus> | undefined;
  return {
    child,
    pid: child.pid,
    port,
    wsUrl: `ws://127.0.0.1:${port}/ws/mcp`,
    httpUrl: `http://127.0.0.1:${port}`,
    output: () => text,
    stop: () => {
      status ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch {
          // already exited
        }
        const s = await child.status;
        await pumping;
        return s;
      })();
      return status;
    },
  };
}

/** Resident set size of `pid` in bytes (VmRSS), or the peak (VmHWM). */
export async function rssOf(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = status.match(new RegExp(`${field}:\\s+(\\d+) kB`));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * What a Session needs besides the registry: a real in-memory store behind
 * the estimates, and no hooks. Create it once per test file, at top level.
 */
export async function sessionServices(): Promise<{ timeLimits: TimeLimits; hooks: HookRunner }> {
  const store = await createStore({ ephemeral: true });
  return {
    timeLimits: new TimeLimits(store, { multiplier: () => 1 }, { ...DEFAULT_TIMEOUTS_S }),
    hooks: HookRunner.none(),
  };
}

/**
 * Starts a group whose shell and grandchild both ignore SIGTERM, cancels it,
 * and checks that SIGKILL ended it and no process of it remains.
 */
export async function cancelStubbornGroup(client: TestClient): Promise<void> {
  const r = await client.request("execute", {
    command: "trap '' TERM; (trap '' TERM; sleep 1000) & echo ready; wait",
  });
  await client.event("output");
  await client.request("control", { type: "CANCEL" });
  const done = await client.event("completed");
  if (done.params.status !== "canceled" || done.params.signal !== "SIGKILL") {
    throw new Error(`expected canceled by SIGKILL, got ${JSON.stringify(done.params)}`);
  }
  await assertGroupGone(r.result.pgid);
}

/** A python3 that runs without pyenv shims (the child env has HOME=/), or null. */
async function findPython(): Promise<string | null> {
  for (const path of ["/usr/bin/python3", "/usr/local/bin/python3"]) {
    try {
      const out = await new Deno.Command(path, { args: ["-c", ""], stderr: "null" }).output();
      if (out.success) return path;
    } catch {
      // not there
    }
  }
  return null;
}

/** The path of python3 for tests that run it (skip them when null). */
export const python3: string | null = await findPython();
