/**
 * Settings for confinement (cgroups, sandbox, run-as), the child env,
 * authentication, origins, allowed commands, and request and rate limits: one
 * part of `SETTINGS` (settings.ts), in README order.
 *
 * @module
 */
import { KiB, MiB, type SettingSpec } from "./kind.ts";

/**
 * Settings for confinement (cgroups, sandbox, run-as), the child env,
 * authentication, origins, allowed commands, and request and rate limits.
 */
export const ACCESS_SETTINGS = [
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
] as const satisfies readonly SettingSpec[];
