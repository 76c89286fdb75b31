/**
 * The settings table: every setting's flag, alias env vars, default, README
 * line and kind of value, in README order. `Config` (config.ts) is derived
 * from it, so adding a setting is one entry in one of the `_settings_*.ts`
 * parts.
 *
 * @module
 */
import { ACCESS_SETTINGS } from "./_settings_access.ts";
import { OUTPUT_SETTINGS } from "./_settings_output.ts";
import { RUN_SETTINGS } from "./_settings_runs.ts";
import { STORE_SETTINGS } from "./_settings_store.ts";
import type { KindValue, SettingSpec } from "./kind.ts";

export type { Kind, SettingSpec } from "./kind.ts";

/** Every setting, in README order. */
export const SETTINGS = [
  ...RUN_SETTINGS,
  ...OUTPUT_SETTINGS,
  ...ACCESS_SETTINGS,
  ...STORE_SETTINGS,
] as const satisfies readonly SettingSpec[];

/** One entry of {@linkcode SETTINGS}. */
export type Setting = typeof SETTINGS[number];

/**
 * The loaded value of every setting, by key, typed from each setting's kind.
 *
 * @example
 * ```ts
 * import type { SettingValues } from "./settings.ts";
 * const port: SettingValues["port"] = 8003;
 * const level: SettingValues["logLevel"] = "info";
 * void port, level;
 * ```
 */
export type SettingValues = { [S in Setting as S["key"]]: KindValue<S["kind"]> };

/**
 * The env var name of a setting: `--max-sessions` -> `CC_EXECUTOR_MAX_SESSIONS`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { envName } from "./settings.ts";
 * assert.equal(envName({ flag: "max-sessions" }), "CC_EXECUTOR_MAX_SESSIONS");
 * ```
 */
export function envName(spec: Pick<SettingSpec, "flag">): string {
  return "CC_EXECUTOR_" + spec.flag.toUpperCase().replaceAll("-", "_");
}

/**
 * Every env var name the config reads, for `--allow-env` and the README.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configEnvNames } from "./settings.ts";
 * assert.ok(configEnvNames().includes("DEFAULT_PORT"));
 * ```
 */
export function configEnvNames(): string[] {
  return SETTINGS.flatMap((s: SettingSpec) => [envName(s), ...(s.aliases ?? [])]);
}
