/**
 * Settings for the store, timing history and automatic limits, monitoring,
 * hooks, logging and MCP: one part of `SETTINGS` (settings.ts), in README
 * order.
 *
 * @module
 */
import {
  COMPLEXITIES,
  type Complexity,
  DEFAULT_TIMEOUTS_S,
  TIMEOUT_KEYS,
} from "../timing/complexity.ts";
import { KiB, type SettingSpec } from "./kind.ts";

/** The automatic limit of one complexity level with no history (`--timeout-<level>`). */
function timeoutSetting<C extends Complexity>(level: C) {
  return {
    key: TIMEOUT_KEYS[level],
    flag: `timeout-${level}`,
    default: String(DEFAULT_TIMEOUTS_S[level]),
    doc: `Automatic time limit in seconds for ${
      level === "extreme" ? "an" : "a"
    } ${level} command with no history`,
    kind: { type: "number", min: 1, max: 30 * 86400, unit: "s" },
  } as const satisfies SettingSpec;
}

/**
 * Settings for the store, timing history and automatic limits, monitoring,
 * hooks, logging and MCP.
 */
export const STORE_SETTINGS = [
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
    key: "nodeId",
    flag: "node-id",
    default: "",
    doc: "This node's id among the nodes sharing `redis-url` (`execute` `node`); empty: " +
      "`hostname:port`. Only with `redis-url`",
    kind: { type: "string", pattern: /^[\w:.\-]{0,100}$/, hint: "letters, digits, _ : . -" },
  },
  {
    key: "nodeLabels",
    flag: "node-labels",
    default: "",
    doc: "Comma list of this node's labels (`execute` `labels`: a run goes to a live node " +
      "that has every label asked for). Only with `redis-url`",
    kind: { type: "list" },
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
  ...COMPLEXITIES.map(timeoutSetting),
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
    key: "logFormat",
    flag: "log-format",
    default: "text",
    doc: "`text`: a line of time, level, logger and message per record, for people; " +
      "`json`: one JSON object per line " +
      "(time, level, logger, message, `node` and the record's ids such as `execution_id`, " +
      "`session`, `principal`; see Logs), on the same stream",
    kind: { type: "enum", values: ["text", "json"] },
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
    key: "mcpDefaultWait",
    flag: "mcp-default-wait",
    default: "30",
    doc: "Seconds the MCP `execute` tool waits for a run to end when the call gives no " +
      "`wait_seconds` (below common 60 s client timeouts); the run then goes on in the " +
      "background and the result says `running: true`",
    kind: { type: "number", min: 0, max: 3600, unit: "s" },
  },
  {
    key: "mcpSessionTimeout",
    flag: "mcp-session-timeout",
    default: "1800",
    doc: "Seconds an MCP session may stay idle (no request, no call in flight) before it " +
      "expires; its runs go on (they belong to the principal)",
    kind: { type: "number", min: 1, max: 30 * 86400, unit: "s" },
  },
  {
    key: "mcpOutputLimit",
    flag: "mcp-output-limit",
    default: String(32 * KiB),
    doc: "Output bytes one MCP tool result carries at most: the tail of each stream for " +
      "`execute`, one page for `read_output` (the rest stays readable with `read_output`)",
    kind: { type: "int", min: 1 * KiB, max: 256 * KiB, unit: "bytes" },
  },
] as const satisfies readonly SettingSpec[];
