/**
 * Logging through logtape. Categories are scoped under `cc-executor`, and
 * loggers carry ids (`session`, `exec`, `pid`) as properties via `.with()`.
 *
 * @module
 */
import { configure, getConsoleSink, getLogger, type Logger, reset } from "@logtape/logtape";
import type { Config } from "./config.ts";

let configured = false;

/**
 * Sets up the console sink at the configured level. Idempotent, so tests that
 * start several servers in one process can call it freely.
 */
export async function setupLogging(level: Config["logLevel"]): Promise<void> {
  if (configured) await reset();
  await configure({
    sinks: { console: getConsoleSink() },
    loggers: [
      { category: ["cc-executor"], lowestLevel: level, sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
  configured = true;
}

/**
 * A logger for one part of the service, e.g. `logger("session")`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logger } from "./log.ts";
 * const log = logger("session").with({ session: "abc" });
 * assert.equal(typeof log.info, "function");
 * ```
 */
export function logger(...category: string[]): Logger {
  return getLogger(["cc-executor", ...category]);
}
