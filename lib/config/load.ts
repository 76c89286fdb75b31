/**
 * Loading the settings: each is a flag `--<name>`, an env var
 * `CC_EXECUTOR_<NAME>`, and for the original service's names an alias env
 * var; precedence is flag, then env, then alias, then the default. Every
 * value is validated with zod at startup and the result frozen.
 *
 * @module
 */
import { z } from "zod";
import type { CgroupPlacement, ExecSpec } from "../types.ts";
import { baseChildEnv } from "./child_env.ts";
import { ConfigError } from "./config_error.ts";
import { describe, type Kind, type SettingSpec } from "./kind.ts";
import { envName, SETTINGS, type SettingValues } from "./settings.ts";

/**
 * The validated, frozen settings: one field per entry of `SETTINGS`, typed
 * from its kind. Times are in seconds unless the setting says otherwise
 * (`flushInterval` is in milliseconds); `dataDir` is resolved, never empty.
 */
export interface Config extends SettingValues {
  /**
   * The environment every child starts from: PATH, HOME, LANG, TERM and the
   * allowlisted names, read once from the server's env, over the fixed
   * `CHILD_ENV_FIXED` (lib/config/child_env.ts). Each command also gets its
   * `PWD` (lib/security/child_env.ts).
   */
  childEnv: Readonly<Record<string, string>>;
  /**
   * Not a setting: where runs' cgroups go, filled in by `startServer` from
   * the containment it set up (lib/process/cgroup.ts); absent: process groups only.
   */
  cgroup?: CgroupPlacement | undefined;
  /**
   * Not a setting: the sandbox and run-as user every command runs under,
   * filled in by `startServer` once they are checked (lib/process/launch.ts).
   */
  confinement?: ExecSpec["confinement"];
}

/** Where configuration text comes from; injectable so tests need no real env. */
export interface ConfigSource {
  /** Command-line arguments (`--name value` or `--name=value`). */
  args?: readonly string[];
  /** Reads one env var; the default reads `Deno.env` name by name, so a scoped
   * `--allow-env` list suffices. */
  getEnv?: (name: string) => string | undefined;
}

const BOOL_WORDS = ["true", "false", "1", "0", "yes", "no"] as const;

function schemaFor(kind: Kind): z.ZodType<unknown> {
  switch (kind.type) {
    case "int":
      return z.string().trim().regex(/^-?\d+$/).transform(Number).pipe(
        z.number().int().min(kind.min).max(kind.max),
      );
    case "number":
      return z.string().trim().regex(/^-?(\d+\.?\d*|\.\d+)$/).transform(Number).pipe(
        z.number().min(kind.min).max(kind.max),
      );
    case "string":
      return kind.pattern ? z.string().trim().regex(kind.pattern) : z.string().trim();
    case "enum":
      // The original accepted LOG_LEVEL=WARNING and WARN; accept any case.
      return z.string().trim().toLowerCase().transform((v) => v === "warn" ? "warning" : v)
        .pipe(z.enum(kind.values));
    case "list":
      return z.string().transform((v) =>
        v.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
      );
    case "bool":
      return z.string().trim().toLowerCase().pipe(z.enum(BOOL_WORDS))
        .transform((v) => v === "true" || v === "1" || v === "yes");
  }
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    // Not granted under a scoped --allow-env: treat as unset.
    return undefined;
  }
}

function isBoolWord(text: string): boolean {
  return BOOL_WORDS.some((word) => word === text);
}

function parseArgs(args: readonly string[]): Map<string, string> {
  const known = new Map(SETTINGS.map((s: SettingSpec) => [s.flag, s]));
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) throw new ConfigError(`Unexpected argument '${arg}'`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = known.get(name);
    if (spec === undefined) {
      throw new ConfigError(`Unknown flag --${name} (run with --help for the list)`);
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (spec.kind.type === "bool") {
      // `--ephemeral` alone means true; `--ephemeral false` is accepted too.
      const next = args[i + 1]?.toLowerCase();
      value = next !== undefined && isBoolWord(next) ? args[++i]! : "true";
    } else value = args[++i];
    if (value === undefined) throw new ConfigError(`Flag --${name} needs a value`);
    out.set(name, value);
  }
  return out;
}

/** The text of one setting and where it came from (for the error message). */
function textOf(
  spec: SettingSpec,
  flags: ReadonlyMap<string, string>,
  getEnv: (name: string) => string | undefined,
): { origin: string; text: string } {
  const flag = flags.get(spec.flag);
  if (flag !== undefined) return { origin: `--${spec.flag}`, text: flag };
  for (const origin of [envName(spec), ...(spec.aliases ?? [])]) {
    const text = getEnv(origin);
    if (text !== undefined) return { origin, text };
  }
  return { origin: `default of ${envName(spec)}`, text: spec.default };
}

/**
 * True once every setting has a value. Each value was parsed by its kind's
 * schema, which yields exactly `KindValue<kind>`; this checks the rest, that
 * none is missing.
 */
function isComplete(values: Record<string, unknown>): values is SettingValues {
  return SETTINGS.every((s: SettingSpec) => values[s.key] !== undefined);
}

/**
 * Reads, validates and freezes the configuration.
 *
 * @throws {ConfigError} naming the variable or flag and the accepted range.
 * @example Flags win over env vars; aliases are honoured
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "./load.ts";
 * const env: Record<string, string> = { MAX_SESSIONS: "7", CC_EXECUTOR_PORT: "9000" };
 * const config = loadConfig({ args: ["--port", "9001"], getEnv: (n) => env[n] });
 * assert.equal(config.port, 9001);
 * assert.equal(config.maxSessions, 7);
 * ```
 */
export function loadConfig(source: ConfigSource = {}): Readonly<Config> {
  const getEnv = source.getEnv ?? readEnv;
  const flags = parseArgs(source.args ?? []);
  const values: Record<string, unknown> = {};
  for (const spec of SETTINGS) {
    const { origin, text } = textOf(spec, flags, getEnv);
    const parsed = schemaFor(spec.kind).safeParse(text);
    if (!parsed.success) {
      throw new ConfigError(
        `Invalid ${origin}=${JSON.stringify(text)}: expected ${describe(spec.kind)}`,
      );
    }
    values[spec.key] = parsed.data;
  }
  if (!isComplete(values)) throw new Error("Unreachable: a setting has no value");
  if (values.lineLimit < values.chunkSize) {
    throw new ConfigError(
      `Invalid CC_EXECUTOR_LINE_LIMIT=${values.lineLimit}: expected at least ` +
        `CC_EXECUTOR_CHUNK_SIZE (${values.chunkSize})`,
    );
  }
  const childEnv = baseChildEnv(getEnv, values.envAllowlist);
  let dataDir = values.dataDir;
  if (dataDir === "") {
    const base = getEnv("XDG_DATA_HOME") ?? `${getEnv("HOME") ?? "."}/.local/share`;
    dataDir = `${base}/cc-executor`;
  }
  return Object.freeze({ ...values, childEnv, dataDir });
}
