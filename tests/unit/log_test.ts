/**
 * lib/log.ts: the json format writes one object per line, with the record's
 * ids flattened and the node on every line, on the streams the text format
 * uses; the text format is what it was.
 */
import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { jsonLineFormatter, runFields, sessionFields, withNode } from "../../lib/log.ts";

function record(over: Partial<LogRecord> = {}): LogRecord {
  return {
    category: ["cc-executor", "session"],
    level: "info",
    timestamp: Date.UTC(2026, 11, 1, 14, 5, 54, 243),
    message: ["Ended ", "e1", ": ", "exited", ""],
    rawMessage: "Ended {execution_id}: {status}",
    properties: {
      ...runFields({ id: "e1", sessionId: "s1", principal: "alice" }),
      status: "exited",
    },
    ...over,
  };
}

Deno.test("jsonLineFormatter() writes one object per line with the ids and node flattened", () => {
  const line = jsonLineFormatter(
    record({ properties: { node: "127.0.0.1:8003", ...record().properties } }),
  );
  assert.equal(line.indexOf("\n"), line.length - 1);
  assert.deepEqual(JSON.parse(line), {
    "@timestamp": "2026-12-01T14:05:54.243Z",
    level: "INFO",
    message: 'Ended "e1": "exited"',
    logger: "cc-executor.session",
    node: "127.0.0.1:8003",
    execution_id: "e1",
    session: "s1",
    principal: "alice",
    status: "exited",
  });
});

Deno.test("jsonLineFormatter() keeps a multi-line message on one line", () => {
  const line = jsonLineFormatter(record({
    message: ["Unexpected error: ", "a\nb\r\nc", ""],
    properties: { error: "a\nb\r\nc" },
  }));
  assert.equal(line.split("\n").length, 2);
  assert.equal(JSON.parse(line).message, 'Unexpected error: "a\\nb\\r\\nc"');
});

Deno.test("jsonLineFormatter() renders an error in the message by name and message, its stack in the property", () => {
  const error = new TypeError("bad thing");
  const parsed = JSON.parse(
    jsonLineFormatter(record({
      level: "error",
      message: ["Unexpected error in ", "execute", ": ", error, ""],
      properties: { method: "execute", error },
    })),
  );
  assert.equal(parsed.level, "ERROR");
  assert.equal(parsed.message, 'Unexpected error in "execute": "TypeError: bad thing"');
  assert.equal(parsed.error.name, "TypeError");
  assert.match(parsed.error.stack, /bad thing/);
});

Deno.test("withNode() stamps the node of the time a record is logged, none while there is none", () => {
  let node: string | undefined;
  const seen: LogRecord[] = [];
  const sink = withNode((r: LogRecord) => void seen.push(r), () => node);
  sink(record());
  node = "[::1]:9000";
  sink(record());
  node = "[::1]:9001";
  assert.ok(!("node" in seen[0]!.properties));
  assert.equal(seen[1]!.properties.node, "[::1]:9000");
  assert.equal(JSON.parse(jsonLineFormatter(seen[1]!)).node, "[::1]:9000");
});

Deno.test("withNode() keeps the sink disposable", () => {
  let disposed = false;
  const sink = withNode(
    Object.assign((_: LogRecord) => {}, {
      [Symbol.dispose]: () => void (disposed = true),
    }),
    () => "n",
  );
  sink[Symbol.dispose]();
  assert.ok(disposed);
});

Deno.test("sessionFields() and runFields() name a session and a run the same way", () => {
  assert.deepEqual(sessionFields({ id: "s1", principal: { id: "alice" } }), {
    session: "s1",
    principal: "alice",
  });
  assert.deepEqual(runFields({ id: "e1", sessionId: "s1", principal: "alice" }), {
    execution_id: "e1",
    ...sessionFields({ id: "s1", principal: { id: "alice" } }),
  });
});

/** Runs `code` (which may use `setupLogging`, `logger`) in a fresh Deno and returns its streams. */
async function logIn(code: string): Promise<{ stdout: string; stderr: string }> {
  const log = new URL("../../lib/log.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { logger, setupLogging } from "${log}";\n${code}`],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.ok(out.success, decode(out.stderr));
  return { stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

const LINES = `
const log = logger("session").with({ session: "s1", principal: "alice" });
log.debug("hidden below the level");
log.info("Started {execution_id}", { execution_id: "e1" });
log.warning("Slow {execution_id}\\nsecond line", { execution_id: "e1" });
log.error("Failed {execution_id}: {error}", { execution_id: "e1", error: new Error("boom") });
`;

Deno.test("setupLogging() json: every line is an object with the node, on text's streams", async () => {
  const [json, text] = await Promise.all([
    logIn(`await setupLogging("info", { format: "json", node: "127.0.0.1:8003" });${LINES}`),
    logIn(`await setupLogging("info");${LINES}`),
  ]);
  const parse = (s: string) => s.trimEnd().split("\n").map((l) => JSON.parse(l));
  const out = parse(json.stdout);
  const err = parse(json.stderr);
  // Same streams as text: info on stdout, warning and error on stderr.
  assert.equal(text.stdout.trimEnd().split("\n").length, out.length);
  assert.equal(
    text.stderr.trimEnd().split("\n").filter((l) => /^\d\d:/.test(l)).length,
    err.length,
  );
  assert.deepEqual(out.map((o) => o.level), ["INFO"]);
  assert.deepEqual(err.map((o) => o.level), ["WARN", "ERROR"]);
  for (const line of [...out, ...err]) {
    assert.equal(line.node, "127.0.0.1:8003");
    assert.equal(line.execution_id, "e1");
    assert.equal(line.session, "s1");
    assert.equal(line.principal, "alice");
    assert.equal(line.logger, "cc-executor.session");
    assert.equal(typeof line["@timestamp"], "string");
  }
  assert.equal(err[1].message, 'Failed "e1": "Error: boom"');
});

Deno.test("setupLogging() text: a line of time, level, category and message, no properties", async () => {
  const { stdout } = await logIn(`await setupLogging("info");${LINES}`);
  assert.match(stdout, /^\d\d:\d\d:\d\d\.\d{3} INF cc-executor·session Started "e1"\n$/);
});
