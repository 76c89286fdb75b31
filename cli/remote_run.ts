/**
 * Follows one remote run to its end, as `run` and `attach` do: its output
 * to the local streams (each byte once, in order, by its offset), controls
 * sent (and kept while disconnected), and the connection made again with
 * back-off when it drops, resuming with `attach` from the next byte
 * offset. The run is held to the local reader's pace (`window` and `ack`):
 * a reader slower than the run (`| less`) slows the run, as a local pipe
 * would, and the CLI never holds more than the window of unwritten output.
 *
 * @module
 */
import {
  ConnectionError,
  type Notification,
  RpcClient,
  RpcError,
  whileRateLimited,
} from "./client.ts";
import type { RunEnd } from "./exit_status.ts";
import type { OutputWriter } from "./output_writer.ts";
import type { ProgressLine } from "./progress.ts";

/** Output bytes the server may send ahead of what the CLI has written (its `window`). */
const WINDOW = 4 * 1024 * 1024;
/** The CLI acknowledges what it has written at least this often (in bytes), or when idle. */
const ACK_EVERY = 1024 * 1024;
/** How often the last ack is sent again, in case the server dropped it. */
const REACK_MS = 1000;
/** The first wait before connecting again; it doubles up to {@linkcode MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5000;

/** How a followed run ended for the CLI. */
export type Outcome =
  | { kind: "ended"; end: RunEnd & Record<string, unknown> }
  /** The end was not seen: the connection could not be had back, or the run is gone. */
  | { kind: "failed"; message: string }
  /** The user stopped waiting (a third Ctrl-C). */
  | { kind: "abandoned" }
  /** The output reached the offset {@linkcode RemoteRun.stopAt} asked for. */
  | { kind: "caught-up" }
  /** The local reader went away (`| head`); the run was canceled. */
  | { kind: "broken-pipe" };

/** Options of {@linkcode RemoteRun}. */
export interface RemoteRunOptions {
  url: string;
  key?: string | undefined;
  writer: OutputWriter;
  /** The progress line, when one is shown. */
  progress?: ProgressLine | null;
  /** Write NDJSON events to stdout instead of the output itself. */
  json?: boolean;
  /**
   * When the local reader goes away (EPIPE): cancel the run (`run`: as
   * SIGPIPE ends a local producer), or just stop following it (a viewer).
   */
  cancelOnBrokenPipe?: boolean;
  /**
   * Hold the run to the local reader's pace, also while the connection is
   * down (`run`: its owner); a viewer (`attach`, `logs`) holds nothing.
   */
  hold?: boolean;
  /** Stop trying to connect again after this long without a connection. */
  reconnectTimeoutMs: number;
  /** Ping interval, and how long a ping may go unanswered (default 15 s). */
  keepaliveMs?: number;
}

/** A request to start a run (legacy `execute` params). */
export type ExecuteParams = Record<string, unknown>;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenient = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Output bytes in a JSON event: `data` as text, and `data_base64` too when
 * the bytes are not UTF-8 (the text then has U+FFFD and loses them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsonData } from "./remote_run.ts";
 * assert.deepEqual(jsonData(new TextEncoder().encode("é\n")), { data: "é\n" });
 * assert.deepEqual(jsonData(new Uint8Array([0xff])), { data: "\ufffd", data_base64: "/w==" });
 * ```
 */
export function jsonData(bytes: Uint8Array): { data: string; data_base64?: string } {
  try {
    return { data: strict.decode(bytes) };
  } catch {
    return { data: lenient.decode(bytes), data_base64: bytes.toBase64() };
  }
}

/**
 * One run, followed.
 *
 * @example Against a running server
 * ```ts ignore
 * const writer = new OutputWriter();
 * const run = new RemoteRun({ url: "ws://127.0.0.1:8003/ws/mcp", writer, reconnectTimeoutMs: 60_000 });
 * await run.start({ args: ["echo", "hi"] });
 * const outcome = await run.outcome;
 * ```
 */
export class RemoteRun {
  readonly #options: RemoteRunOptions;
  #client: RpcClient | null = null;
  #id: string | null = null;
  /** The offset of the next byte of output to write. */
  #next = 0;
  #bytes = 0;
  readonly #outcome = Promise.withResolvers<Outcome>();
  #ended = false;
  /** Controls not yet delivered (sent again after a reconnect). */
  readonly #pendingControls: string[] = [];
  /** The offset last acknowledged to the server. */
  #acked = 0;
  /** The end of the output written so far. */
  #writtenEnd = 0;
  /**
   * Acknowledges again now and then: an ack is a notification, and one the
   * server drops (over its message rate) would otherwise leave a full
   * window waiting for ever.
   */
  readonly #reack = setInterval(() => {
    if (this.#writtenEnd > 0 && this.#options.writer.queued === 0) {
      this.#client?.notify("ack", { execution_id: this.#id, seq: this.#writtenEnd });
    }
  }, REACK_MS);
  /** Once reached, the outcome is "caught-up" (`logs`: the output so far, then exit). */
  #stopAt = Infinity;
  /** Set while connecting again, so a second loss does not start a second loop. */
  #reconnecting = false;
  /** Set while {@linkcode start} runs: it finds a lost start again itself. */
  #starting = false;
  /**
   * Notifications that arrived before the reply they follow was handled
   * (several messages can be dispatched in one turn): handled right after it.
   */
  #early: Notification[] | null = null;
  #flushing = false;
  /** Resolves when a connection is open again (for requests made meanwhile). */
  #reconnected = Promise.withResolvers<void>();

  /** A run to follow; call {@linkcode start} or {@linkcode attach}. */
  constructor(options: RemoteRunOptions) {
    this.#options = options;
    void options.writer.brokenPipe.then(() => this.#brokenPipe());
  }

  /** How the run ended for the CLI. */
  get outcome(): Promise<Outcome> {
    return this.#outcome.promise;
  }

  /** The run's id, once known. */
  get id(): string | null {
    return this.#id;
  }

  /** The byte offset of the output written (or queued) so far. */
  get offset(): number {
    return this.#next;
  }

  /**
   * Connects and starts the run.
   *
   * @returns the `execute` result.
   * @throws {ConnectionError} when the server cannot be reached.
   * @throws {RpcError} when it refuses the request.
   */
  async start(params: ExecuteParams): Promise<Record<string, unknown>> {
    // Chosen here, so a start whose reply is lost can be found (or made) again, never twice.
    this.#id = crypto.randomUUID();
    const request = {
      ...params,
      execution_id: this.#id,
      encoding: "base64",
      window: WINDOW,
      ...(this.#options.hold ? { hold: true } : {}),
    };
    this.#starting = true;
    try {
      return await this.#start(request);
    } finally {
      this.#starting = false;
      this.#handleEarly();
    }
  }

  async #start(request: ExecuteParams): Promise<Record<string, unknown>> {
    const deadline = Date.now() + this.#options.reconnectTimeoutMs;
    let wait = FIRST_BACKOFF_MS;
    let client = await this.#connect();
    for (;;) {
      this.#early = [];
      try {
        const result = await client.request("execute", request) as Record<string, unknown>;
        this.#setLimit(result);
        // Before the run's first event: they are written in order, through the same writer.
        if (this.#options.json) this.#event({ event: "execute", ...result });
        return result;
      } catch (err) {
        this.#early = null;
        if (!(err instanceof ConnectionError) || !err.retry) {
          client.close();
          throw err;
        }
      }
      // The reply was lost: the run may or may not have started. Find out, then go on.
      for (;;) {
        if (Date.now() >= deadline) {
          throw new ConnectionError(
            `lost the connection while starting the run; it may have started: ` +
              `cc-executor attach ${this.#id}`,
            { retry: false },
          );
        }
        await delay(wait);
        wait = Math.min(MAX_BACKOFF_MS, wait * 2);
        try {
          client = await this.#connect();
        } catch (err) {
          if (err instanceof ConnectionError && err.retry) continue;
          throw err;
        }
        try {
          const attached = await this.#attachOn(client, 0);
          return { status: "started", ...attached };
        } catch (err) {
          if (err instanceof ConnectionError) continue;
          // Unknown: it never started; start it (the same id) again.
          if (err instanceof RpcError) break;
          throw err;
        }
      }
    }
  }

  /**
   * Connects and attaches to run `id` from byte offset `from` (default: the
   * oldest retained).
   *
   * @returns the `attach` result.
   */
  async attach(id: string, from?: number, tail?: number): Promise<Record<string, unknown>> {
    this.#id = id;
    const client = await this.#connect();
    try {
      return await this.#attachOn(client, from, tail, true);
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** Ends following once the output reaches `offset` (`logs`). */
  stopAt(offset: number): void {
    this.#stopAt = offset;
    if (this.#next >= offset) this.#finish({ kind: "caught-up" });
  }

  /** Lets the connection go (after `start` with `detach`, or once the run ended). */
  close(): void {
    clearInterval(this.#reack);
    this.#client?.close();
  }

  /**
   * Sends a control (`INTERRUPT`, `CANCEL`) to the run; while disconnected,
   * it is sent once the connection is back.
   */
  control(type: string): void {
    if (this.#ended) return;
    this.#pendingControls.push(type);
    void this.#flushControls();
  }

  /** Stops waiting: the outcome is "abandoned". */
  abandon(): void {
    this.#finish({ kind: "abandoned" });
  }

  /**
   * A request on the current connection; while there is none, it waits for
   * the next one and is sent then.
   *
   * @throws {RpcError} for an error reply.
   */
  async request(method: string, params: Record<string, unknown>): Promise<unknown> {
    while (!this.#ended) {
      const client = this.#client;
      if (client === null || !client.open) {
        await Promise.race([this.#reconnected.promise, this.#outcome.promise]);
        continue;
      }
      try {
        return await client.request(method, params);
      } catch (err) {
        if (!(err instanceof ConnectionError)) throw err;
      }
    }
    throw new ConnectionError("the run has ended", { retry: false });
  }

  /** Tells the user, on stderr (or as an event in `--json`). */
  say(message: string, event?: Record<string, unknown>): void {
    if (this.#options.json) {
      this.#event({ event: "notice", message, ...event });
      return;
    }
    // At once, not behind output a stalled reader has not taken yet.
    const progress = this.#options.progress;
    progress?.beforeWrite("stderr");
    const line = new TextEncoder().encode(`[cc-executor] ${message}\n`);
    try {
      let off = 0;
      while (off < line.length) off += Deno.stderr.writeSync(line.subarray(off));
    } catch {
      // No stderr to say it on.
    }
    progress?.afterWrite("stderr", line);
  }

  async #connect(): Promise<RpcClient> {
    const client = await RpcClient.connect({
      url: this.#options.url,
      key: this.#options.key,
      ...(this.#options.keepaliveMs !== undefined
        ? { keepaliveMs: this.#options.keepaliveMs }
        : {}),
      onNotification: (n) => this.#notified(n),
      onClose: (reason) => void this.#lost(reason),
    });
    // One connection at a time: a stale one left open would hold a window of its own.
    if (this.#client !== null && this.#client !== client) this.#client.close();
    this.#client = client;
    this.#reconnected.resolve();
    this.#reconnected = Promise.withResolvers<void>();
    return client;
  }

  async #attachOn(
    client: RpcClient,
    from?: number,
    tail?: number,
    announce = false,
  ): Promise<Record<string, unknown>> {
    this.#early = [];
    try {
      return await this.#attachRequest(client, from, tail, announce);
    } finally {
      this.#handleEarly();
    }
  }

  /** Handles what {@linkcode #notified} put aside while a reply was awaited. */
  #handleEarly(): void {
    const early = this.#early;
    this.#early = null;
    for (const n of early ?? []) this.#notified(n);
  }

  async #attachRequest(
    client: RpcClient,
    from: number | undefined,
    tail: number | undefined,
    announce: boolean,
  ): Promise<Record<string, unknown>> {
    const result = await client.request("attach", {
      execution_id: this.#id,
      encoding: "base64",
      window: WINDOW,
      ...(this.#options.hold ? { hold: true } : {}),
      ...(from !== undefined ? { from_seq: from } : {}),
      ...(tail !== undefined ? { tail_bytes: tail } : {}),
    }) as Record<string, unknown>;
    // The server counts unacknowledged output from here on this connection.
    this.#acked = this.#next;
    // Where the replay starts: the offset asked for, or where the server put
    // it (the oldest retained, or the start of the character it fell in).
    if (typeof result.from_seq === "number") this.#next = Math.max(this.#next, result.from_seq);
    this.#setLimit(result);
    const p = this.#options.progress;
    if (p && typeof result.started_at === "string") {
      p.state.startedAt = Date.parse(result.started_at);
    }
    if (announce && this.#options.json) this.#event({ event: "attach", ...result });
    void this.#flushControls();
    return result;
  }

  #setLimit(result: Record<string, unknown>): void {
    const p = this.#options.progress;
    if (!p) return;
    if (typeof result.timeout === "number") p.state.timeout = result.timeout;
    if (typeof result.timeout_source === "string") p.state.timeoutSource = result.timeout_source;
  }

  #notified(n: Notification): void {
    if (this.#early !== null) {
      this.#early.push(n);
      return;
    }
    const params = n.params;
    if (this.#ended || params.execution_id !== this.#id) return;
    const progress = this.#options.progress;
    switch (n.method) {
      case "process.started":
        if (progress) progress.state.startedAt ??= Date.now();
        if (this.#options.json) this.#event({ event: "started", ...params });
        return;
      case "process.output":
        this.#output(params);
        return;
      case "process.gap": {
        const to = Number(params.to);
        if (to > this.#next) this.#missing(this.#next, to);
        return;
      }
      case "process.paused":
      case "process.resumed":
      case "process.canceled": {
        const what = n.method.slice("process.".length);
        if (progress) progress.state.status = what === "paused" ? "paused" : null;
        if (this.#options.json) this.#event({ event: what, ...params });
        return;
      }
      case "process.completed":
        if (this.#options.json) this.#event({ event: "completed", ...params });
        this.#finish({ kind: "ended", end: params as RunEnd & Record<string, unknown> });
        return;
      default:
        if (this.#options.json && n.method.startsWith("hook.")) {
          this.#event({ event: n.method, ...params });
        }
    }
  }

  #output(params: Record<string, unknown>): void {
    const seq = Number(params.seq);
    let bytes: Uint8Array = Uint8Array.fromBase64(String(params.data ?? ""));
    // Bytes before `next` were written already (a replay after a reconnect overlaps).
    if (seq + bytes.length <= this.#next) return;
    if (seq > this.#next) this.#missing(this.#next, seq);
    if (seq < this.#next) bytes = bytes.subarray(this.#next - seq);
    this.#next = seq + Number(params.bytes ?? bytes.length);
    this.#bytes += bytes.length;
    const stream = params.type === "stderr" ? "stderr" : "stdout";
    if (this.#options.progress) this.#options.progress.state.bytes = this.#bytes;
    const end = this.#next;
    const written = () => this.#written(end);
    if (this.#options.json) {
      this.#event({
        event: "output",
        stream,
        seq: end - bytes.length,
        bytes: bytes.length,
        ...jsonData(bytes),
      }, written);
    } else {
      this.#options.writer.write(stream, bytes, written);
    }
  }

  /** Output up to `end` is written: the server hears of it, and may send more. */
  #written(end: number): void {
    this.#writtenEnd = Math.max(this.#writtenEnd, end);
    if (end >= this.#stopAt) this.#finish({ kind: "caught-up" });
    if (end - this.#acked < ACK_EVERY && this.#options.writer.queued > 0) return;
    this.#acked = end;
    this.#client?.notify("ack", { execution_id: this.#id, seq: end });
  }

  /** Output between `from` and `to` is gone from the server: said, never silently skipped. */
  #missing(from: number, to: number): void {
    this.say(`${to - from} bytes of output (offsets ${from} to ${to}) are no longer retained`, {
      event: "gap",
      from,
      to,
    });
    this.#next = to;
    if (to >= this.#stopAt) this.#finish({ kind: "caught-up" });
  }

  #event(event: Record<string, unknown>, written?: () => void): void {
    const line = new TextEncoder().encode(JSON.stringify(event) + "\n");
    this.#options.writer.write("stdout", line, written);
  }

  /** The connection dropped: connect again, with back-off, until the bound. */
  async #lost(reason: string): Promise<void> {
    if (this.#ended || this.#reconnecting || this.#starting) return;
    this.#client = null;
    this.say(`${reason}; reconnecting`, { event: "reconnecting" });
    await this.#reconnect(reason);
  }

  async #reconnect(reason: string | null): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    try {
      await this.#reconnectLoop(reason);
    } finally {
      this.#reconnecting = false;
    }
  }

  async #reconnectLoop(reason: string | null): Promise<void> {
    const progress = this.#options.progress;
    if (progress && reason !== null) progress.state.status = "reconnecting";
    const deadline = Date.now() + this.#options.reconnectTimeoutMs;
    let wait = reason === null ? 0 : FIRST_BACKOFF_MS;
    let last = reason ?? "";
    for (let attempt = 1; !this.#ended; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      // Jittered, so many clients of a restarted server do not come back at once.
      await delay(Math.min(left, wait * (0.75 + Math.random() / 2)));
      wait = Math.min(MAX_BACKOFF_MS, Math.max(FIRST_BACKOFF_MS, wait * 2));
      if (this.#ended) return;
      let client: RpcClient;
      try {
        client = await this.#connect();
      } catch (err) {
        if (err instanceof ConnectionError && err.retry) {
          last = err.message;
          continue;
        }
        this.#finish({ kind: "failed", message: (err as Error).message });
        return;
      }
      try {
        await this.#attachOn(client, this.#next);
      } catch (err) {
        if (err instanceof ConnectionError) continue;
        const gone = err instanceof RpcError
          ? `the run is gone from the server (${err.message}): was the server restarted?`
          : String(err);
        this.#finish({ kind: "failed", message: gone });
        client.close();
        return;
      }
      if (progress) progress.state.status = null;
      if (reason !== null) {
        this.say(`reconnected (attempt ${attempt}); resuming at byte ${this.#next}`, {
          event: "reconnected",
          from_seq: this.#next,
        });
      }
      return;
    }
    if (this.#ended) return;
    const s = Math.round(this.#options.reconnectTimeoutMs / 1000);
    this.#finish({
      kind: "failed",
      message: `could not reconnect within ${s}s (${last}); the run may still be going: ` +
        `cc-executor attach ${this.#id} --from ${this.#next}`,
    });
  }

  async #flushControls(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      await this.#sendControls();
    } finally {
      this.#flushing = false;
    }
  }

  async #sendControls(): Promise<void> {
    while (this.#pendingControls.length > 0 && !this.#ended) {
      // The current connection each time: a reconnect may have replaced it meanwhile.
      const client = this.#client;
      if (client === null || !client.open) return;
      const type = this.#pendingControls[0]!;
      try {
        await whileRateLimited(() => client.request("control", { type, execution_id: this.#id }));
      } catch (err) {
        // Lost on the way: kept for the next connection (whose attach flushes again).
        if (err instanceof ConnectionError) continue;
        // Refused (the run has just ended, say): nothing more to do about it.
      }
      this.#pendingControls.shift();
    }
  }

  async #brokenPipe(): Promise<void> {
    if (this.#ended) return;
    if (this.#options.cancelOnBrokenPipe) {
      // As a local producer would die of SIGPIPE, the remote run is ended.
      this.control("CANCEL");
      await Promise.race([this.#outcome.promise, delay(5000)]);
    }
    // A viewer's reader left: the run goes on for whoever else follows it.
    this.#finish({ kind: "broken-pipe" });
  }

  #finish(outcome: Outcome): void {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#reack);
    this.#client?.close();
    this.#outcome.resolve(outcome);
  }
}
