/**
 * The config's public surface, re-exported from the modules that hold it, so
 * callers import one path: the settings table (settings.ts and its
 * `_settings_*.ts` parts), loading (load.ts), the child-env policy
 * (child_env.ts) and the README table (readme_table.ts).
 *
 * @module
 */
export { baseChildEnv, CHILD_ENV_DEFAULTS, CHILD_ENV_FIXED, isLoaderEnvName } from "./child_env.ts";
export { ConfigError } from "./config_error.ts";
export type { Kind, KindValue, SettingSpec } from "./kind.ts";
export { type Config, type ConfigSource, loadConfig } from "./load.ts";
export { settingsTable } from "./readme_table.ts";
export { configEnvNames, envName, type Setting, SETTINGS, type SettingValues } from "./settings.ts";
