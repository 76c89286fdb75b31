/**
 * The one place settings come from. Each setting is a flag `--<name>`, an env
 * var `CC_EXECUTOR_<NAME>`, and for the original service's names an alias env
 * var; precedence is flag, then env, then alias, then the default. Everything
 * is validated with zod at startup and frozen.
 *
 * @module
 */
import { z } from "zod";

/** How a setting's text is turned into a value and what range it accepts. */
type Kind =
  | { type: "int"; min: number; max: number; unit?: string }
  | { type: "number"; min: number; max: number; unit?: string }
  | { type: "string"; pattern?: RegExp; hint?: string }
  | { type: "enum"; values: readonly string[] }
  | { type: "list" };

/** One documented setting. */
export interface SettingSpec {
  /** Field name in {@linkcode Config}. */
  key: keyof Config;
  /** Flag name, without the leading `--`; the env var is derived from it. */
  flag: string;
  /** Names the Python original used, still accepted. */
  aliases?: readonly string[];
  /** Default, as text (what the README shows). */
  default: string;
  /** One line for the README table. */
  doc: string;
  kind: Kind;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** Every setting, in README order. */
export const SETTINGS: readonly SettingSpec[] = [
  {
    key: "port",
    flag: "port",
    aliases: ["DEFAULT_PORT"],
    default: "8003",
    doc: "TCP port to listen on (0 picks a free port)",
    kind: { type: "int", min: 0, max: 65535 },
  },
  {
    key: "host",
    flag: "host",
    default: "127.0.0.1",
    doc: "Address to listen on",
    kind: { type: "string", pattern: /^[\w.:\-\[\]]+$/, hint: "a hostname or IP address" },
  },
  {
    key: "maxSessions",
    flag: "max-sessions",
    aliases: ["MAX_SESSIONS"],
    default: "100",
    doc: "Concurrent WebSocket sessions; one more is refused with -32003 and close 1008",
    kind: { type: "int", min: 1, max: 100_000 },
  },
  {
    key: "sessionTimeout",
    flag: "session-timeout",
    aliases: ["SESSION_TIMEOUT"],
    default: "3600",
    doc: "Seconds a session may stay idle (no message, nothing running) before it is closed",
    kind: { type: "number", min: 1, max: 7 * 86400, unit: "s" },
  },
  {
    key: "maxExecutionsPerSession",
    flag: "max-executions-per-session",
    default: "1",
    doc: "Executions one session may run at once (1 keeps the original's " +
      "`A process is already running`)",
    kind: { type: "int", min: 1, max: 1000 },
  },
  {
    key: "defaultTimeout",
    flag: "default-timeout",
    default: "600",
    doc: "Time limit in seconds for an `execute` that gives none",
    kind: { type: "number", min: 0.1, max: 7 * 86400, unit: "s" },
  },
  {
    key: "maxTimeout",
    flag: "max-timeout",
    default: "86400",
    doc: "Largest `timeout`/`idle_timeout` a request may ask for, in seconds",
    kind: { type: "number", min: 1, max: 30 * 86400, unit: "s" },
  },
  {
    key: "killGrace",
    flag: "kill-grace",
    default: "5",
    doc: "Seconds between SIGTERM and SIGKILL when a run is canceled, timed out or shut down",
    kind: { type: "number", min: 0.05, max: 300, unit: "s" },
  },
  {
    key: "orphanGrace",
    flag: "orphan-grace",
    default: "1",
    doc: "Seconds processes left behind by a command that has exited may keep its output " +
      "open before they are terminated",
    kind: { type: "number", min: 0, max: 300, unit: "s" },
  },
  {
    key: "chunkSize",
    flag: "chunk-size",
    default: String(64 * KiB),
    doc: "Largest output message in bytes when lines are coalesced (framing `chunk`)",
    kind: { type: "int", min: 256, max: 160 * KiB, unit: "bytes" },
  },
  {
    key: "lineLimit",
    flag: "line-limit",
    default: String(64 * KiB),
    doc: "Longest line in bytes sent whole; longer lines are split (`truncated: true`). " +
      "At least `chunk-size`",
    kind: { type: "int", min: 256, max: 160 * KiB, unit: "bytes" },
  },
  {
    key: "flushInterval",
    flag: "flush-interval",
    default: "5",
    doc: "Milliseconds a partial line (a prompt with no newline) waits before it is sent",
    kind: { type: "number", min: 1, max: 1000, unit: "ms" },
  },
  {
    key: "highWaterMark",
    flag: "high-water-mark",
    default: String(2 * MiB),
    doc: "Bytes queued on a socket above which the server stops reading the child's output",
    kind: { type: "int", min: 64 * KiB, max: 256 * MiB, unit: "bytes" },
  },
  {
    key: "maxMessageSize",
    flag: "max-message-size",
    aliases: ["WS_MAX_SIZE"],
    default: String(10 * MiB),
    doc: "Largest incoming WebSocket message in bytes; larger closes the socket with 1009",
    kind: { type: "int", min: 1 * KiB, max: 64 * MiB, unit: "bytes" },
  },
  {
    key: "wsPingInterval",
    flag: "ws-ping-interval",
    aliases: ["WS_PING_INTERVAL"],
    default: "20",
    doc: "Seconds between JSON-RPC `ping` notifications to each client (0: none); " +
      "a client that never answers is not disconnected for it",
    kind: { type: "number", min: 0, max: 3600, unit: "s" },
  },
  {
    key: "wsPingTimeout",
    flag: "ws-ping-timeout",
    aliases: ["WS_PING_TIMEOUT"],
    default: "60",
    doc: "Seconds a silent connection may go without answering a protocol-level ping frame " +
      "(answered by every WebSocket library) before it is closed (0: never)",
    kind: { type: "number", min: 0, max: 3600, unit: "s" },
  },
  {
    key: "outputRetention",
    flag: "output-retention",
    default: String(1 * MiB),
    doc: "Bytes of each execution's most recent output kept for replay and reads",
    kind: { type: "int", min: 0, max: 256 * MiB, unit: "bytes" },
  },
  {
    key: "executionRetention",
    flag: "execution-retention",
    default: "600",
    doc: "Seconds a finished execution stays in the registry",
    kind: { type: "number", min: 0, max: 7 * 86400, unit: "s" },
  },
  {
    key: "maxRetainedExecutions",
    flag: "max-retained-executions",
    default: "1000",
    doc: "Finished executions kept in the registry at most (oldest dropped first)",
    kind: { type: "int", min: 0, max: 1_000_000 },
  },
  {
    key: "shutdownTimeout",
    flag: "shutdown-timeout",
    default: "15",
    doc: "Seconds graceful shutdown waits for process groups to end before exiting anyway",
    kind: { type: "number", min: 1, max: 600, unit: "s" },
  },
  {
    key: "shell",
    flag: "shell",
    default: "/bin/sh",
    doc: "Shell that runs `command` strings (`<shell> -c <command>`)",
    kind: { type: "string", pattern: /^\/\S+$/, hint: "an absolute path" },
  },
  {
    key: "envAllowlist",
    flag: "env-allowlist",
    default: "",
    doc: "Comma list of server env vars passed on to children, besides PATH, HOME, LANG, TERM",
    kind: { type: "list" },
  },
  {
    key: "logLevel",
    flag: "log-level",
    aliases: ["LOG_LEVEL"],
    default: "info",
    doc: "debug, info, warning, error or fatal",
    kind: { type: "enum", values: ["trace", "debug", "info", "warning", "error", "fatal"] },
  },
];

/** The validated, frozen settings. Times are in seconds unless named otherwise. */
export interface Config {
  port: number;
  host: string;
  maxSessions: number;
  sessionTimeout: number;
  maxExecutionsPerSession: number;
  defaultTimeout: number;
  maxTimeout: number;
  killGrace: number;
  orphanGrace: number;
  chunkSize: number;
  lineLimit: number;
  /** Milliseconds. */
  flushInterval: number;
  highWaterMark: number;
  maxMessageSize: number;
  wsPingInterval: number;
  wsPingTimeout: number;
  outputRetention: number;
  executionRetention: number;
  maxRetainedExecutions: number;
  shutdownTimeout: number;
  shell: string;
  envAllowlist: readonly string[];
  logLevel: "trace" | "debug" | "info" | "warning" | "error" | "fatal";
  /**
   * The environment every child starts from: PATH, HOME, LANG, TERM and the
   * allowlisted names, read once from the server's env. Never the whole env,
   * so the server's secrets cannot reach a child.
   */
  childEnv: Readonly<Record<string, string>>;
}

/** A setting had a value outside what it accepts; the message names it. */
export class ConfigError extends Error {
  /** Creates a config error. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** The env var name of a setting: `--max-sessions` -> `CC_EXECUTOR_MAX_SESSIONS`. */
export function envName(spec: SettingSpec): string {
  return "CC_EXECUTOR_" + spec.flag.toUpperCase().replaceAll("-", "_");
}

function describe(kind: Kind): string {
  switch (kind.type) {
    case "int":
      return `an integer from ${kind.min} to ${kind.max}${kind.unit ? ` (${kind.unit})` : ""}`;
    case "number":
      return `a number from ${kind.min} to ${kind.max}${kind.unit ? ` (${kind.unit})` : ""}`;
    case "string":
      return kind.hint ?? "a string";
    case "enum":
      return `one of ${kind.values.join(", ")}`;
    case "list":
      return "a comma-separated list";
  }
}

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
        .pipe(z.enum(kind.values as [string, ...string[]]));
    case "list":
      return z.string().transform((v) =>
        v.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
      );
  }
}

/** Where configuration text comes from; injectable so tests need no real env. */
export interface ConfigSource {
  /** Command-line arguments (`--name value` or `--name=value`). */
  args?: readonly string[];
  /** Reads one env var; the default reads `Deno.env` name by name, so a scoped
   * `--allow-env` list suffices. */
  getEnv?: (name: string) => string | undefined;
}

/** Server env vars every child gets, with the value used when the server has none. */
export const CHILD_ENV_DEFAULTS: Readonly<Record<string, string>> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/",
  LANG: "C.UTF-8",
  TERM: "dumb",
};

/** Names a child env may never hold: they make the dynamic loader run foreign code. */
export function isLoaderEnvName(name: string): boolean {
  return name.startsWith("LD_") || name.startsWith("DYLD_");
}

/** Every env var name the config reads, for `--allow-env` and the README. */
export function configEnvNames(): string[] {
  return SETTINGS.flatMap((s) => [envName(s), ...(s.aliases ?? [])]);
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    // Not granted under a scoped --allow-env: treat as unset.
    return undefined;
  }
}

function parseArgs(args: readonly string[]): Map<string, string> {
  const known = new Map(SETTINGS.map((s) => [s.flag, s]));
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) throw new ConfigError(`Unexpected argument '${arg}'`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (!known.has(name)) {
      throw new ConfigError(`Unknown flag --${name} (run with --help for the list)`);
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else value = args[++i];
    if (value === undefined) throw new ConfigError(`Flag --${name} needs a value`);
    out.set(name, value);
  }
  return out;
}

/**
 * Reads, validates and freezes the configuration.
 *
 * @throws {ConfigError} naming the variable or flag and the accepted range.
 * @example Flags win over env vars; aliases are honoured
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "./config.ts";
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
    let origin = `--${spec.flag}`;
    let text = flags.get(spec.flag);
    if (text === undefined) {
      origin = envName(spec);
      text = getEnv(origin);
    }
    for (const alias of spec.aliases ?? []) {
      if (text !== undefined) break;
      origin = alias;
      text = getEnv(alias);
    }
    if (text === undefined) {
      origin = `default of ${envName(spec)}`;
      text = spec.default;
    }
    const parsed = schemaFor(spec.kind).safeParse(text);
    if (!parsed.success) {
      throw new ConfigError(
        `Invalid ${origin}=${JSON.stringify(text)}: expected ${describe(spec.kind)}`,
      );
    }
    values[spec.key] = parsed.data;
  }
  const config = values as unknown as Config;
  if (config.lineLimit < config.chunkSize) {
    throw new ConfigError(
      `Invalid CC_EXECUTOR_LINE_LIMIT=${config.lineLimit}: expected at least ` +
        `CC_EXECUTOR_CHUNK_SIZE (${config.chunkSize})`,
    );
  }
  const childEnv: Record<string, string> = {};
  for (const name of [...Object.keys(CHILD_ENV_DEFAULTS), ...config.envAllowlist]) {
    if (isLoaderEnvName(name)) {
      throw new ConfigError(`Invalid CC_EXECUTOR_ENV_ALLOWLIST: ${name} may not be passed on`);
    }
    const value = getEnv(name) ?? CHILD_ENV_DEFAULTS[name];
    if (value !== undefined) childEnv[name] = value;
  }
  config.childEnv = Object.freeze(childEnv);
  return Object.freeze(config);
}

/** The README's configuration table, generated so it cannot drift. */
export function settingsTable(): string {
  const rows = SETTINGS.map((s) => {
    const alias = s.aliases?.length
      ? ` (alias ${s.aliases.map((a) => `\`${a}\``).join(", ")})`
      : "";
    return `| \`${envName(s)}\`${alias} | \`--${s.flag}\` | \`${s.default || '""'}\` | ` +
      `${s.doc}; ${describe(s.kind)} |`;
  });
  return ["| env var | flag | default | what |", "|---|---|---|---|", ...rows].join("\n");
}
