/**
 * Settings for listening, sessions, and the limits and grace periods of runs:
 * one part of `SETTINGS` (settings.ts), in README order.
 *
 * @module
 */
import { DEFAULT_MIN_AUTO_TIMEOUT_S } from "../timing/complexity.ts";
import type { SettingSpec } from "./kind.ts";

/** Settings for listening, sessions, and the limits and grace periods of runs. */
export const RUN_SETTINGS = [
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
    doc: "Concurrent sessions (WebSocket and MCP HTTP); one more is refused with -32003 and " +
      "close 1008, except that an MCP HTTP initialize takes the place of an MCP HTTP session " +
      "idle for 60 s or more: its own principal's, or else one of the principal holding the " +
      "most sessions (clients that never DELETE theirs)",
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
] as const satisfies readonly SettingSpec[];
