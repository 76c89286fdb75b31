/**
 * `--log-format json`, as a user runs it: the service started by the very
 * command `deno task start` runs (scripts/start.ts and its narrow
 * permissions), a command run over the WebSocket, then every line the
 * service printed, on stdout and stderr, is one JSON object, and the lines
 * about the run name it, its session, its principal and the node.
 */
import assert from "node:assert/strict";
import { TestClient } from "../_helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const KEY = "json-log-secret-key";

/** `deno task start`'s command line, from deno.json, with this Deno. */
async function startCommand(): Promise<string[]> {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;
  const [deno, ...args] = (tasks.start as string).split(" ");
  assert.equal(deno, "deno");
  return args;
}

// deno-lint-ignore no-explicit-any
type Line = { stream: "stdout" | "stderr"; text: string; json?: any; error?: string };

/** Every line a child prints, as it comes, parsed as JSON where it parses. */
class LogLines {
  readonly lines: Line[] = [];
  readonly done: Promise<void>;
  #wake: (() => void)[] = [];

  constructor(child: Deno.ChildProcess) {
    this.done = Promise.all([
      this.#pump(child.stdout, "stdout"),
      this.#pump(child.stderr, "stderr"),
    ]).then(() => this.#notify());
  }

  async #pump(stream: ReadableStream<Uint8Array>, name: Line["stream"]): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const text of parts) this.#add(name, text);
    }
    // A last line without its newline is a line too (and not a JSON Lines one).
    if (rest !== "") this.#add(name, rest);
  }

  #add(stream: Line["stream"], text: string): void {
    const line: Line = { stream, text };
    try {
      line.json = JSON.parse(text);
    } catch (err) {
      line.error = String(err);
    }
    this.lines.push(line);
    this.#notify();
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }

  /** The first line whose JSON satisfies `pred`, waiting for it as lines arrive. */
  // deno-lint-ignore no-explicit-any
  async waitFor(what: string, pred: (json: any) => boolean, ms = 30_000): Promise<any> {
    let ended = false;
    void this.done.then(() => ended = true);
    const deadline = performance.now() + ms;
    for (let seen = 0;;) {
      for (; seen < this.lines.length; seen++) {
        const json = this.lines[seen]!.json;
        if (json !== undefined && pred(json)) return json;
      }
      const left = deadline - performance.now();
      if (ended || left <= 0) {
        throw new Error(`no log line ${what}; got:\n${this.text()}`);
      }
      // Woken by the next line or the end of output; the timer only bounds the wait.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  text(): string {
    return this.lines.map((l) => `${l.stream}: ${l.text}`).join("\n");
  }
}

Deno.test("--log-format json: every line is JSON; the run's lines name the run, session, principal and node", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...await startCommand(),
      "--port",
      "0",
      "--ephemeral",
      "true",
      "--ws-ping-interval",
      "0",
      "--log-format",
      "json",
      "--log-level",
      "debug",
      "--api-keys",
      `alice:${KEY}`,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs = new LogLines(child);
  let stopped = false;
  const stop = async () => {
    if (!stopped) child.kill("SIGTERM");
    stopped = true;
    const status = await child.status;
    await logs.done;
    return status;
  };
  try {
    const listening = await logs.waitFor(
      "saying where it listens",
      (j) => /listening on/.test(j.message),
    );
    const url = new URL(listening.url);
    const node = url.host;
    assert.equal(listening.node, node);

    const client = await TestClient.connect(listening.url, undefined, { "X-API-Key": KEY });
    const connected = await client.next();
    assert.equal(connected.method, "connected");
    const session = connected.params.session_id as string;
    const run = await client.run({ command: "echo logged", env: { TOKEN_VALUE: "env-secret" } });
    assert.equal(run.stdout, "logged\n");
    const id = run.result.execution_id as string;
    await logs.waitFor(
      "about the end of the run",
      (j) => j.execution_id === id && j.message.startsWith("Ended"),
    );
    await client.close();
    await logs.waitFor(
      "about the session closing",
      (j) => j.session === session && /closed/.test(j.message),
    );
    const status = await stop();
    assert.equal(status.code, 0, logs.text());

    const bad = logs.lines.filter((l) => l.json === undefined || typeof l.json !== "object");
    assert.deepEqual(bad, [], "every line is one JSON object");
    // Lines logged before the listener was bound name the asked-for port, 0.
    const bound = logs.lines.findIndex((l) => /^Host check/.test(l.json.message));
    assert.ok(bound !== -1, logs.text());
    for (const [i, { json }] of logs.lines.entries()) {
      const want = i < bound && json.node === `${url.hostname}:0` ? json.node : node;
      assert.equal(json.node, want, `node on ${JSON.stringify(json)}`);
      for (const field of ["@timestamp", "level", "logger", "message"]) {
        assert.equal(typeof json[field], "string", `${field} on ${JSON.stringify(json)}`);
      }
    }
    const about = logs.lines.map((l) => l.json).filter((j) => j.execution_id === id);
    assert.deepEqual(about.map((j) => j.message.split(" ")[0]), ["Started", "Ended"]);
    for (const json of about) {
      assert.equal(json.session, session);
      assert.equal(json.principal, "alice");
      assert.equal(json.logger, "cc-executor.session");
      assert.ok(!("exec" in json), "the id is execution_id, not exec");
    }
    const sessionLines = logs.lines.map((l) => l.json).filter((j) => j.session === session);
    assert.ok(sessionLines.every((j) => j.principal === "alice"));
    assert.ok(sessionLines.some((j) => /opened/.test(j.message)));
    // Every property is written in json, not only those the message names: still no secret.
    for (const secret of [KEY, "env-secret"]) {
      assert.ok(!logs.text().includes(secret), `${secret} was logged`);
    }
  } finally {
    await stop();
  }
});
