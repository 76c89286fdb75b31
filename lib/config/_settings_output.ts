/**
 * Settings for output framing, socket back-pressure, retention and shutdown:
 * one part of `SETTINGS` (settings.ts), in README order.
 *
 * @module
 */
import { KiB, MiB, type SettingSpec } from "./kind.ts";

/** Settings for output framing, socket back-pressure, retention and shutdown. */
export const OUTPUT_SETTINGS = [
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
    default: String(8 * MiB),
    doc: "Bytes of each execution's most recent output kept in memory for replay and reads " +
      "(within `output-memory-budget`); older output spills to disk (`output-spill`)",
    kind: { type: "int", min: 0, max: 256 * MiB, unit: "bytes" },
  },
  {
    key: "outputSpill",
    flag: "output-spill",
    default: "true",
    doc: "Write output that memory no longer holds to a capped log file per run under " +
      "`<data-dir>/spill`, so a long run replays from offset 0; off (or `--ephemeral`): " +
      "such output is dropped and replay reports a `process.gap`",
    kind: { type: "bool" },
  },
  {
    key: "outputSpillPerRun",
    flag: "output-spill-per-run",
    default: String(256 * MiB),
    doc: "Bytes of spilled output kept per run on disk at most (oldest dropped first)",
    kind: { type: "int", min: 1 * MiB, max: 1024 * 1024 * MiB, unit: "bytes" },
  },
  {
    key: "outputSpillTotal",
    flag: "output-spill-total",
    default: String(2048 * MiB),
    doc: "Bytes of spilled output kept on disk by all runs together; past it the oldest " +
      "finished runs' spill is deleted first, then a run's spill stops growing",
    kind: { type: "int", min: 1 * MiB, max: 1024 * 1024 * MiB, unit: "bytes" },
  },
  {
    key: "retainedOutputTotal",
    flag: "retained-output-total",
    default: String(8 * MiB),
    doc: "Output bytes kept in memory by all finished executions together (the oldest move " +
      "out of memory first: to their spill, or dropped without one)",
    kind: { type: "int", min: 0, max: 4096 * MiB, unit: "bytes" },
  },
  {
    key: "outputMemoryBudget",
    flag: "output-memory-budget",
    default: String(32 * MiB),
    doc: "Bytes of output the server holds at once, retained by all executions and queued " +
      "on all sockets together; past it finished runs' output leaves memory (oldest first; " +
      "to its spill, or dropped without one), " +
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
    doc: "Seconds a finished execution stays listable, readable and attachable",
    kind: { type: "number", min: 0, max: 7 * 86400, unit: "s" },
  },
  {
    key: "detachTimeout",
    flag: "detach-timeout",
    default: "3600",
    doc: "Seconds a detached run (legacy `detach: true`, every MCP run) goes on with no " +
      "client attached or reading it before it is canceled",
    kind: { type: "number", min: 1, max: 30 * 86400, unit: "s" },
  },
  {
    key: "maxDetachedPerPrincipal",
    flag: "max-detached-per-principal",
    default: "128",
    doc: "Detached runs (legacy `detach: true` and MCP runs) one principal may have running " +
      "at once, over all its sessions",
    kind: { type: "int", min: 1, max: 100_000 },
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
] as const satisfies readonly SettingSpec[];
