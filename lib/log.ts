/**
 * Logging through logtape. Categories are scoped under `cc-executor`, and
 * loggers carry ids as properties via `.with()`, named alike everywhere
 * (`runFields`, `sessionFields`): `execution_id`, `session`, `principal`.
 * The `text` format prints time, level, category and message; `json` one object per
 * line with every property and the `node` (`setLogNode`).
 *
 * @module
 */
import {
  configure,
  getConsoleSink,
  getJsonLinesFormatter,
  getLogger,
  type Logger,
  type LogRecord,
  reset,
  type Sink,
  type TextFormatter,
} from "@logtape/logtape";
import type { Config } from "./config/config.ts";

export type { Logger };

/** How records are written: `text` for people, `json` (JSON Lines) for collectors. */
export type LogFormat = Config["logFormat"];

let configured = false;

/** Records held at most before a deferred sink writes them at once. */
const MAX_DEFERRED = 1000;

/**
 * A sink that passes records on to `sink` in a later turn of the event loop,
 * all of one turn together, in order. Formatting and writing a line costs
 * tens of microseconds, and Deno sends nothing on a socket until the current
 * turn is over: written at once, the "Ended" line would hold back the
 * `process.completed` it follows. Whatever is held is written at exit
 * (`unload`, which `Deno.exit` fires too) and on dispose.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deferredSink } from "./log.ts";
 * const written: unknown[] = [];
 * const sink = deferredSink((record) => void written.push(record.message));
 * sink({ category: ["x"], level: "info", message: ["hi"], rawMessage: "hi",
 *   timestamp: Date.now(), properties: {} });
 * assert.deepEqual(written, []);
 * await new Promise((resolve) => setTimeout(resolve, 0));
 * assert.deepEqual(written, [["hi"]]);
 * sink[Symbol.dispose]();
 * ```
 */
export function deferredSink(sink: Sink): Sink & Disposable {
  let held: Parameters<Sink>[0][] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const records = held;
    held = [];
    for (const record of records) {
      try {
        sink(record);
      } catch {
        // Nowhere left to say it (stdout gone): drop the line, keep the service.
      }
    }
  };
  addEventListener("unload", flush);
  const deferred = (record: Parameters<Sink>[0]) => {
    held.push(record);
    if (held.length >= MAX_DEFERRED) flush();
    else timer ??= setTimeout(flush, 0);
  };
  return Object.assign(deferred, {
    [Symbol.dispose]() {
      removeEventListener("unload", flush);
      flush();
    },
  });
}

/** The node every json line names (see {@linkcode setLogNode}). */
let node: string | undefined;

/**
 * Names the node on every json line logged from now on, e.g. the bound
 * `host:port` once the listener is up (before, with `--port 0`, only the
 * asked-for one is known). `undefined` leaves `node` out.
 *
 * @example
 * ```ts
 * import { setLogNode } from "./log.ts";
 * setLogNode("127.0.0.1:8003");
 * setLogNode(undefined);
 * ```
 */
export function setLogNode(id: string | undefined): void {
  node = id;
}

/**
 * `sink` with `node` added to every record's properties, first, as it is
 * logged: a record written later (deferred) still names the node of its time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LogRecord } from "@logtape/logtape";
 * import { withNode } from "./log.ts";
 * const seen: LogRecord[] = [];
 * const sink = withNode((record) => void seen.push(record), () => "127.0.0.1:8003");
 * sink({ category: ["x"], level: "info", message: ["hi"], rawMessage: "hi",
 *   timestamp: 0, properties: { session: "s1" } });
 * assert.deepEqual(seen[0]!.properties, { node: "127.0.0.1:8003", session: "s1" });
 * ```
 */
export function withNode<S extends Sink>(sink: S, nodeId: () => string | undefined): S {
  const stamped = (record: LogRecord) => {
    const id = nodeId();
    sink(id === undefined ? record : { ...record, properties: { node: id, ...record.properties } });
  };
  // Keeps what the sink is besides a function: Disposable, for logtape's reset.
  return Object.assign(stamped, sink);
}

const flatJsonLines = getJsonLinesFormatter({ properties: "flatten" });

/**
 * The json format: logtape's JSON Lines formatter with the properties at the
 * top level. An error in the message is rendered as `Name: message` (JSON
 * would make it `{}`); its stack stays in the property.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsonLineFormatter } from "./log.ts";
 * const line = jsonLineFormatter({
 *   category: ["cc-executor", "session"], level: "info", timestamp: 0,
 *   message: ["Ended ", "e1", ""], rawMessage: "Ended {execution_id}",
 *   properties: { node: "127.0.0.1:8003", execution_id: "e1", session: "s1", principal: "local" },
 * });
 * assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"));
 * assert.deepEqual(JSON.parse(line), {
 *   "@timestamp": "1970-01-01T00:00:00.000Z", level: "INFO", message: 'Ended "e1"',
 *   logger: "cc-executor.session", node: "127.0.0.1:8003",
 *   execution_id: "e1", session: "s1", principal: "local",
 * });
 * ```
 */
export const jsonLineFormatter: TextFormatter = (record: LogRecord) => {
  if (!record.message.some((part) => part instanceof Error)) return flatJsonLines(record);
  const message = record.message.map((part) => part instanceof Error ? String(part) : part);
  return flatJsonLines({ ...record, message });
};

/**
 * Sets up the console sink at the configured level and format: json goes to
 * the same streams as text (console.info/debug to stdout, warn/error to
 * stderr) and names `options.node` on every line until {@linkcode setLogNode}
 * changes it. Idempotent, so tests that start several servers in one process
 * can call it freely.
 *
 * @example
 * ```ts
 * import { logger, setupLogging } from "./log.ts";
 * import { reset } from "@logtape/logtape";
 * await setupLogging("warning", { format: "json", node: "127.0.0.1:8003" });
 * logger("doc").info("below the level: nothing is written");
 * await reset();
 * ```
 */
export async function setupLogging(
  level: Config["logLevel"],
  options: { format?: LogFormat; node?: string } = {},
): Promise<void> {
  if (configured) await reset();
  setLogNode(options.node);
  // Text prints the message only, so it needs no node.
  const console = options.format === "json"
    ? withNode(deferredSink(getConsoleSink({ formatter: jsonLineFormatter })), () => node)
    : deferredSink(getConsoleSink());
  await configure({
    sinks: { console },
    loggers: [
      { category: ["cc-executor"], lowestLevel: level, sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
  configured = true;
}

/**
 * The properties that name a session on a log line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sessionFields } from "./log.ts";
 * assert.deepEqual(sessionFields({ id: "s1", principal: { id: "alice" } }),
 *   { session: "s1", principal: "alice" });
 * ```
 */
export function sessionFields(
  session: { id: string; principal: { id: string } },
): { session: string; principal: string } {
  // The principal's name, never its key.
  return { session: session.id, principal: session.principal.id };
}

/**
 * The properties that name a run on a log line: `session` only while the
 * run has one (a run found again after a crash has none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFields } from "./log.ts";
 * assert.deepEqual(runFields({ id: "e1", sessionId: "s1", principal: "alice" }),
 *   { execution_id: "e1", session: "s1", principal: "alice" });
 * assert.deepEqual(runFields({ id: "e2", sessionId: null, principal: "alice" }),
 *   { execution_id: "e2", principal: "alice" });
 * ```
 */
export function runFields(
  exec: { id: string; sessionId?: string | null; principal?: string | undefined },
): { execution_id: string; session?: string; principal?: string } {
  return {
    execution_id: exec.id,
    ...(exec.sessionId ? { session: exec.sessionId } : {}),
    ...(exec.principal !== undefined ? { principal: exec.principal } : {}),
  };
}

/**
 * A logger for one part of the service, e.g. `logger("session")`, under the
 * `cc-executor` category, so `setupLogging` sets its level.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configure, type LogRecord, reset } from "@logtape/logtape";
 * import { logger } from "./log.ts";
 * const records: LogRecord[] = [];
 * await configure({
 *   sinks: { memory: (record) => void records.push(record) },
 *   loggers: [
 *     { category: ["cc-executor"], lowestLevel: "info", sinks: ["memory"] },
 *     { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["memory"] },
 *   ],
 * });
 * const log = logger("session").with({ session: "abc" });
 * log.debug("below the level");
 * log.info("Opened by {principal}", { principal: "local" });
 * await reset();
 * assert.equal(records.length, 1);
 * assert.deepEqual(records[0]!.category, ["cc-executor", "session"]);
 * assert.deepEqual(records[0]!.properties, { session: "abc", principal: "local" });
 * assert.deepEqual(records[0]!.message, ["Opened by ", "local", ""]);
 * ```
 */
export function logger(...category: string[]): Logger {
  return getLogger(["cc-executor", ...category]);
}
