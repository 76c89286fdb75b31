/**
 * The error of a bad setting, thrown at startup (and by the modules that
 * check settings further once the config is loaded: cgroups, sandbox, run-as,
 * keys, hooks).
 *
 * @module
 */

/**
 * A setting had a value outside what it accepts; the message names it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError } from "./config_error.ts";
 * assert.equal(new ConfigError("Invalid --port").name, "ConfigError");
 * ```
 */
export class ConfigError extends Error {
  /** Creates a config error. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}
