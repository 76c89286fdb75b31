/**
 * Logging through logtape. Categories are scoped under `cc-executor`, and
 * loggers carry ids (`session`, `exec`, `pid`) as properties via `.with()`.
 *
 * @module
 */
import {
  configure,
  getConsoleSink,
  getLogger,
  type Logger,
  reset,
  type Sink,
} from "@logtape/logtape";
import type { Config } from "./config/config.ts";

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

/**
 * Sets up the console sink at the configured level. Idempotent, so tests that
 * start several servers in one process can call it freely.
 */
export async function setupLogging(level: Config["logLevel"]): Promise<void> {
  if (configured) await reset();
  await configure({
    sinks: { console: deferredSink(getConsoleSink()) },
    loggers: [
      { category: ["cc-executor"], lowestLevel: level, sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
  configured = true;
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
