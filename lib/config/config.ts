/**
 * The one place settings come from. Each setting is a flag `--<name>`, an env
 * var `CC_EXECUTOR_<NAME>`, and for the original service's names an alias env
 * var; precedence is flag, then env, then alias, then the default. Everything
 * is validated with zod at startup and frozen.
 *
 * @module
 */
import { z } from "zod";
import {
  COMPLEXITIES,
  DEFAULT_MIN_AUTO_TIMEOUT_S,
  DEFAULT_TIMEOUTS_S,
} from "../timing/complexity.ts";
import type { CgroupPlacement } from "../types.ts";
import type { ChildConfinement } from "../process/launch.ts";

/** How a setting's text is turned into a value and what range it accepts. */
type Kind =
  | { type: "int"; min: number; max: number; unit?: string }
  | { type: "number"; min: number; max: number; unit?: string }
  | { type: "string"; pattern?: RegExp; hint?: string }
  | { type: "enum"; values: readonly string[] }
  | { type: "list" }
  | { type: "bool" };

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
    key: "maxSessionsPerPrincipal",
    flag: "max-sessions-per-principal",
    default: "0",
    doc: "Concurrent sessions (WebSocket and MCP HTTP) one principal may hold, so one tenant " +
      "cannot take every session; 0: only `max-sessions` applies",
    kind: { type: "int", min: 0, max: 100_000 },
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
    key: "maxTimeout",
    flag: "max-timeout",
    default: "86400",
    doc: "Largest `timeout`/`idle_timeout` a request may ask for, in seconds; also the cap " +
      "of automatic limits and the limit of `timeout: 0`",
    kind: { type: "number", min: 1, max: 30 * 86400, unit: "s" },
  },
  {
    key: "minAutoTimeout",
    flag: "min-auto-timeout",
    default: String(DEFAULT_MIN_AUTO_TIMEOUT_S),
    doc: "Seconds no automatic (learned or default) time limit is ever below; automatic " +
      "limits are also never below twice the longest successful run of the command's class",
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
    default: String(256 * KiB),
    doc: "Bytes of each execution's most recent output kept for replay and reads",
    kind: { type: "int", min: 0, max: 256 * MiB, unit: "bytes" },
  },
  {
    key: "retainedOutputTotal",
    flag: "retained-output-total",
    default: String(32 * MiB),
    doc: "Output bytes kept by all finished executions together (oldest cleared first)",
    kind: { type: "int", min: 0, max: 4096 * MiB, unit: "bytes" },
  },
  {
    key: "outputMemoryBudget",
    flag: "output-memory-budget",
    default: String(64 * MiB),
    doc: "Bytes of output the server holds at once, retained by all executions and queued " +
      "on all sockets together; past it finished runs' output is dropped (oldest first), " +
      "then running runs keep only their newest 64 KiB, then sockets are paused at 64 KiB " +
      "queued",
    kind: { type: "int", min: 256 * KiB, max: 64 * 1024 * MiB, unit: "bytes" },
  },
  {
    key: "stdinBuffer",
    flag: "stdin-buffer",
    default: String(1 * MiB),
    doc: "Bytes of `send_input` one execution holds while its process does not read them; " +
      "input that does not fit with what is still waiting is refused (-32602), not queued",
    kind: { type: "int", min: 1 * KiB, max: 64 * MiB, unit: "bytes" },
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
    key: "cgroupRoot",
    flag: "cgroup-root",
    default: "auto",
    doc:
      "cgroup v2 directory that runs get cgroups in (`<root>/<instance>/<execution id>`): what " +
      "leaves a run's group ends with it. `auto`: `cc-executor` in the server's own cgroup; " +
      "`off`: none",
    kind: { type: "string", pattern: /^(auto|off|\/\S*)$/, hint: "auto, off or an absolute path" },
  },
  {
    key: "memoryMax",
    flag: "memory-max",
    default: "0",
    doc: "Bytes of memory, swap included, one run may use (0: no limit); a request may ask for " +
      "less (`memory_max`). Needs a memory cgroup controller",
    kind: { type: "int", min: 0, max: 2 ** 50, unit: "bytes" },
  },
  {
    key: "pidsMax",
    flag: "pids-max",
    default: "0",
    doc: "Processes and threads one run may have at once (0: no limit); a request may ask for " +
      "fewer (`pids_max`). Needs a pids cgroup controller",
    kind: { type: "int", min: 0, max: 4_194_304 },
  },
  {
    key: "sandbox",
    flag: "sandbox",
    default: "none",
    doc: "`bwrap`: every command runs under bubblewrap: the root filesystem read-only, the " +
      "workspace roots writable, a private /tmp, its own PID namespace, no capabilities, and " +
      "the keys file, data directory and hooks config hidden (see Security); needs bwrap and " +
      "namespaces, checked at startup",
    kind: { type: "enum", values: ["none", "bwrap"] },
  },
  {
    key: "sandboxNetwork",
    flag: "sandbox-network",
    default: "host",
    doc: "With `sandbox: bwrap`: `host` shares the machine's network (loopback included); " +
      "`none` gives commands a network namespace of their own, with nothing but its own loopback",
    kind: { type: "enum", values: ["none", "host"] },
  },
  {
    key: "runAs",
    flag: "run-as",
    default: "",
    doc: "`user` or `user:group`: a service started as root runs every command as that user " +
      "(`setpriv`), with the user's groups, or with that group alone; the workspace roots must " +
      "be writable by it. Empty: commands run as the service's user",
    kind: {
      type: "string",
      pattern: /^([\w][\w.-]*(:[\w][\w.-]*)?)?$/,
      hint: "user or user:group (names or numbers)",
    },
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
    doc:
      "Comma list of server env vars passed on to children, besides PATH, HOME, LANG, TERM (a listed name also replaces its fixed default, e.g. PAGER)",
    kind: { type: "list" },
  },
  {
    key: "apiKeys",
    flag: "api-keys",
    default: "",
    doc: "Comma list of API keys, each `key`, `name:key` or `name:key:admin` (see Security: " +
      "Principals); clients present one as `Authorization: Bearer`, `X-API-Key` or `?token=`. " +
      "Never logged (but a flag value shows in `ps`: prefer the env var or the keys file)",
    kind: { type: "list" },
  },
  {
    key: "apiKeysFile",
    flag: "api-keys-file",
    default: "",
    doc: "File of API keys, one `key`, `name:key` or `name:key:admin` per line (`#` comments); " +
      "re-read on SIGHUP",
    kind: { type: "string" },
  },
  {
    key: "insecureNoAuth",
    flag: "insecure-no-auth",
    default: "false",
    doc: "Allow listening on a non-loopback address with no API keys (refused otherwise)",
    kind: { type: "bool" },
  },
  {
    key: "allowedOrigins",
    flag: "allowed-origins",
    default: "",
    doc: "Comma list of browser origins allowed to connect (`https://app.example:8443`, " +
      "or `*`) besides the server's own; requests without an Origin header always pass",
    kind: { type: "list" },
  },
  {
    key: "allowedHosts",
    flag: "allowed-hosts",
    default: "",
    doc: "Comma list of names the `Host` header may carry besides the listen address (and " +
      "loopback names on loopback; with `0.0.0.0`/`::` also the machine's addresses and " +
      "hostname), each `host` (any port) or `host:port`, or `*` (no check); any other Host " +
      "gets 403 (DNS rebinding)",
    kind: { type: "list" },
  },
  {
    key: "allowedCommands",
    flag: "allowed-commands",
    aliases: ["ALLOWED_COMMANDS"],
    default: "",
    doc: "Comma list of programs that may run; when set, commands run without a shell " +
      "and shell operators are refused. Prefer full paths (`/usr/bin/git`): a bare name " +
      "also matches that name in any directory",
    kind: { type: "list" },
  },
  {
    key: "workspaceRoots",
    flag: "workspace-roots",
    default: "",
    doc: "Comma list of directories `cwd` must resolve inside (symlinks followed); " +
      "the first is the default `cwd`",
    kind: { type: "list" },
  },
  // Limits meant to stop a flood, never an existing client. The original's
  // client opens one connection per command, so a client may open twice
  // `max-sessions` (200) at once and 100 a second. The message budget is 5
  // for each of those (an MCP HTTP session's initialized, GET, tools/list,
  // tools/call and DELETE), so a burst of new sessions can all start work.
  {
    key: "connRate",
    flag: "conn-rate",
    default: "100",
    doc: "New connections per second per client (API key, else address): WebSocket upgrades " +
      "and `/mcp` requests outside a live session; over it: HTTP 429, `Retry-After`",
    kind: { type: "number", min: 0.01, max: 100_000 },
  },
  {
    key: "connBurst",
    flag: "conn-burst",
    default: "200",
    doc: "Connections a client may open at once before `conn-rate` applies (the default " +
      "is twice the default `max-sessions`; raise both together)",
    kind: { type: "int", min: 1, max: 100_000 },
  },
  {
    key: "msgRate",
    flag: "msg-rate",
    default: "500",
    doc: "Messages per second per client (WebSocket messages, requests within an MCP HTTP " +
      "session); over it: error -32029 and the message is dropped (on `/mcp`: HTTP 429)",
    kind: { type: "number", min: 0.01, max: 1_000_000 },
  },
  {
    key: "msgBurst",
    flag: "msg-burst",
    default: "1000",
    doc: "Messages a client may send at once before `msg-rate` applies",
    kind: { type: "int", min: 1, max: 1_000_000 },
  },
  {
    key: "maxClients",
    flag: "max-clients",
    default: "10000",
    doc: "Clients tracked by the rate limiters at most (idle ones pruned, then least recent)",
    kind: { type: "int", min: 10, max: 10_000_000 },
  },
  {
    key: "maxCommandLength",
    flag: "max-command-length",
    default: String(64 * KiB),
    doc: "Longest `command` (or `args` joined) in bytes",
    kind: { type: "int", min: 64, max: 8 * MiB, unit: "bytes" },
  },
  {
    key: "maxEnvBytes",
    flag: "max-env-bytes",
    default: String(64 * KiB),
    doc: "Largest request `env` (names and values) in bytes",
    kind: { type: "int", min: 0, max: 8 * MiB, unit: "bytes" },
  },
  {
    key: "maxStdinBytes",
    flag: "max-stdin-bytes",
    default: String(1 * MiB),
    doc: "Largest request `stdin` in bytes",
    kind: { type: "int", min: 0, max: 64 * MiB, unit: "bytes" },
  },
  {
    key: "redisUrl",
    flag: "redis-url",
    aliases: ["REDIS_URL"],
    default: "",
    doc: "Redis URL (`redis://[:password@]host:6379/0`) for timing history and execution " +
      "records; empty: the embedded store",
    kind: { type: "string" },
  },
  {
    key: "redisPrefix",
    flag: "redis-prefix",
    default: "cc_executor:",
    doc: "Prefix of every Redis key",
    kind: { type: "string", pattern: /^[\w:.\-]*$/, hint: "letters, digits, _ : . -" },
  },
  {
    key: "dataDir",
    flag: "data-dir",
    default: "",
    doc: "Directory of the embedded store; empty: `$XDG_DATA_HOME/cc-executor` or " +
      "`~/.local/share/cc-executor`",
    kind: { type: "string" },
  },
  {
    key: "ephemeral",
    flag: "ephemeral",
    default: "false",
    doc: "Keep history and records in memory only (nothing written to disk)",
    kind: { type: "bool" },
  },
  {
    key: "storeRetry",
    flag: "store-retry",
    default: "5",
    doc: "Seconds between attempts to write the embedded store and the crash journal again " +
      "after a write failed (a full or read-only disk)",
    kind: { type: "number", min: 0.05, max: 3600, unit: "s" },
  },
  {
    key: "historyRuns",
    flag: "history-runs",
    default: "100",
    doc: "Runs kept per command class for estimates",
    kind: { type: "int", min: 3, max: 100_000 },
  },
  {
    key: "historyTtl",
    flag: "history-ttl",
    default: String(7 * 86400),
    doc: "Seconds timing history and execution records are kept",
    kind: { type: "number", min: 60, max: 365 * 86400, unit: "s" },
  },
  {
    key: "recordsMax",
    flag: "records-max",
    default: "10000",
    doc: "Execution records kept at most (`history` method)",
    kind: { type: "int", min: 10, max: 10_000_000 },
  },
  {
    key: "monitorInterval",
    flag: "monitor-interval",
    default: "1",
    doc: "Seconds between CPU samples (from /proc/stat, in the background)",
    kind: { type: "number", min: 0.1, max: 60, unit: "s" },
  },
  {
    key: "busyThreshold",
    flag: "busy-threshold",
    default: "14",
    doc: "CPU or GPU busy percent above which time limits are multiplied",
    kind: { type: "number", min: 0, max: 100, unit: "%" },
  },
  {
    key: "busyMultiplier",
    flag: "busy-multiplier",
    default: "3",
    doc: "Multiplier applied to estimated time limits while the machine is busy",
    kind: { type: "number", min: 1, max: 100 },
  },
  ...COMPLEXITIES.map((level): SettingSpec => ({
    key: `timeout${level[0]!.toUpperCase()}${level.slice(1)}` as keyof Config,
    flag: `timeout-${level}`,
    default: String(DEFAULT_TIMEOUTS_S[level]),
    doc: `Automatic time limit in seconds for ${
      level === "extreme" ? "an" : "a"
    } ${level} command with no history`,
    kind: { type: "number", min: 1, max: 30 * 86400, unit: "s" },
  })),
  {
    key: "hooksConfig",
    flag: "hooks-config",
    default: "",
    doc: "JSON file of pre_execute / post_execute / on_timeout hooks (see Hooks)",
    kind: { type: "string" },
  },
  {
    key: "logLevel",
    flag: "log-level",
    aliases: ["LOG_LEVEL"],
    default: "info",
    doc: "debug, info, warning, error or fatal",
    kind: { type: "enum", values: ["trace", "debug", "info", "warning", "error", "fatal"] },
  },
  {
    key: "mcpMaxExecutions",
    flag: "mcp-max-executions",
    default: "8",
    doc: "Executions one MCP session may run at once (`execute` and `start` together; " +
      "legacy sessions keep `max-executions-per-session`)",
    kind: { type: "int", min: 1, max: 1000 },
  },
  {
    key: "mcpOutputLimit",
    flag: "mcp-output-limit",
    default: String(32 * KiB),
    doc: "Output bytes one MCP tool result carries at most: the tail of each stream for " +
      "`execute`, one page for `read_output` (the rest stays readable with `read_output`)",
    kind: { type: "int", min: 1 * KiB, max: 256 * KiB, unit: "bytes" },
  },
];

/** The validated, frozen settings. Times are in seconds unless named otherwise. */
export interface Config {
  port: number;
  host: string;
  maxSessions: number;
  maxSessionsPerPrincipal: number;
  sessionTimeout: number;
  maxExecutionsPerSession: number;
  maxTimeout: number;
  minAutoTimeout: number;
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
  retainedOutputTotal: number;
  outputMemoryBudget: number;
  stdinBuffer: number;
  executionRetention: number;
  maxRetainedExecutions: number;
  shutdownTimeout: number;
  /** `auto`, `off` or a cgroup v2 directory (lib/process/cgroup.ts). */
  cgroupRoot: string;
  /** Bytes; 0: no limit. */
  memoryMax: number;
  /** 0: no limit. */
  pidsMax: number;
  /** lib/security/sandbox.ts. */
  sandbox: "none" | "bwrap";
  sandboxNetwork: "none" | "host";
  /** `user` or `user:group`; empty: off (lib/security/run_as.ts). */
  runAs: string;
  shell: string;
  envAllowlist: readonly string[];
  apiKeys: readonly string[];
  apiKeysFile: string;
  insecureNoAuth: boolean;
  allowedOrigins: readonly string[];
  allowedHosts: readonly string[];
  allowedCommands: readonly string[];
  workspaceRoots: readonly string[];
  connRate: number;
  connBurst: number;
  msgRate: number;
  msgBurst: number;
  maxClients: number;
  maxCommandLength: number;
  maxEnvBytes: number;
  maxStdinBytes: number;
  redisUrl: string;
  redisPrefix: string;
  /** Resolved: never empty after loading. */
  dataDir: string;
  ephemeral: boolean;
  storeRetry: number;
  historyRuns: number;
  historyTtl: number;
  recordsMax: number;
  monitorInterval: number;
  busyThreshold: number;
  busyMultiplier: number;
  timeoutTrivial: number;
  timeoutSimple: number;
  timeoutLow: number;
  timeoutMedium: number;
  timeoutHigh: number;
  timeoutComplex: number;
  timeoutExtreme: number;
  hooksConfig: string;
  logLevel: "trace" | "debug" | "info" | "warning" | "error" | "fatal";
  /**
   * The environment every child starts from: PATH, HOME, LANG, TERM and the
   * allowlisted names, read once from the server's env, over the fixed
   * {@linkcode CHILD_ENV_FIXED}. Never the whole env, so the server's secrets
   * cannot reach a child. Each command also gets its `PWD` (lib/security/child_env.ts).
   */
  childEnv: Readonly<Record<string, string>>;
  mcpMaxExecutions: number;
  mcpOutputLimit: number;
  /**
   * Not a setting: where runs' cgroups go, filled in by `startServer` from
   * the containment it set up (lib/process/cgroup.ts); absent: process groups only.
   */
  cgroup?: CgroupPlacement | undefined;
  /**
   * Not a setting: the sandbox and run-as user every command runs under,
   * filled in by `startServer` once they are checked (lib/process/launch.ts).
   */
  confinement?: ChildConfinement | undefined;
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
    case "bool":
      return "true or false";
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
    case "bool":
      return z.string().trim().toLowerCase().pipe(z.enum(BOOL_WORDS as [string, ...string[]]))
        .transform((v) => v === "true" || v === "1" || v === "yes");
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

/**
 * Values every child gets whatever the server's environment holds: commands
 * run without a terminal, so nothing may wait on a pager or a prompt, and
 * Python must write through to its pipe rather than block-buffer (output
 * would not be live). A request's `env` overrides each; a name in
 * `env-allowlist` passes the server's value instead.
 */
export const CHILD_ENV_FIXED: Readonly<Record<string, string>> = {
  PYTHONUNBUFFERED: "1",
  PAGER: "cat",
  GIT_PAGER: "cat",
  GIT_TERMINAL_PROMPT: "0",
  DEBIAN_FRONTEND: "noninteractive",
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

const BOOL_WORDS = ["true", "false", "1", "0", "yes", "no"];

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
    else if (known.get(name)!.kind.type === "bool") {
      // `--ephemeral` alone means true; `--ephemeral false` is accepted too.
      const next = args[i + 1]?.toLowerCase();
      value = next !== undefined && BOOL_WORDS.includes(next) ? args[++i]! : "true";
    } else value = args[++i];
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
  const childEnv: Record<string, string> = { ...CHILD_ENV_FIXED };
  for (const name of [...Object.keys(CHILD_ENV_DEFAULTS), ...config.envAllowlist]) {
    if (isLoaderEnvName(name)) {
      throw new ConfigError(`Invalid CC_EXECUTOR_ENV_ALLOWLIST: ${name} may not be passed on`);
    }
    const value = getEnv(name) ?? CHILD_ENV_DEFAULTS[name];
    if (value !== undefined) childEnv[name] = value;
  }
  config.childEnv = Object.freeze(childEnv);
  if (config.dataDir === "") {
    const base = getEnv("XDG_DATA_HOME") ?? `${getEnv("HOME") ?? "."}/.local/share`;
    config.dataDir = `${base}/cc-executor`;
  }
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
