/**
 * The Deno permission flags the service needs for a given config, and no
 * more: `deno task start` and `deno task compile` run the service under
 * exactly these. They limit the service itself; a spawned command has the
 * OS user's full rights whatever they are (README, "Security").
 *
 * @module
 */
import { CHILD_ENV_DEFAULTS, type Config, configEnvNames } from "../config/config.ts";
import { SETSID_PATHS } from "../process/program.ts";
import { WRAPPER_SHELL } from "../process/cgroup.ts";
import { isWildcardAddress } from "./host_check.ts";
import { BWRAP_PATHS, ENV_PATHS } from "./sandbox.ts";
import { SETPRIV_PATHS } from "./run_as.ts";

/**
 * `path` and, when it is a symlink (or under one), its real path too: Deno
 * checks a grant against the path it is given, and the service resolves
 * these (the sandbox mounts and hides real paths).
 */
function andReal(path: string): string[] {
  try {
    const real = Deno.realPathSync(path);
    return real === path ? [path] : [path, real];
  } catch {
    return [path];
  }
}

/** What the flags depend on (the sandbox settings may be left out: none). */
export type PermissionConfig =
  & Partial<Pick<Config, "sandbox" | "runAs" | "nodeId">>
  & Pick<
    Config,
    | "host"
    | "port"
    | "apiKeysFile"
    | "workspaceRoots"
    | "allowedCommands"
    | "envAllowlist"
    | "redisUrl"
    | "dataDir"
    | "ephemeral"
    | "hooksConfig"
    | "shell"
    | "childEnv"
  >;

/** Env vars read by libraries, or to place the data directory. */
const LIBRARY_ENV = [
  "REDIS_DEBUG_MAINTENANCE",
  "NO_COLOR",
  "XDG_DATA_HOME",
  // Set by scripts/start.ts: the service ends itself when its launcher dies.
  "CC_EXECUTOR_LAUNCHER_PID",
];

/**
 * Programs the service itself runs: `kill` signals groups under a scoped
 * --allow-run; `nvidia-smi` reads GPU load (absent: no GPU figure); `cat`
 * reads process start times from /proc for crash recovery (Deno grants /proc
 * only with --allow-all): once at startup, never per command.
 */
const SERVICE_PROGRAMS = ["kill", "nvidia-smi", "cat", "ps"];

/** host:port of a Redis URL, for --allow-net. */
function redisHost(url: string): string | null {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "6379"}`;
  } catch {
    return null;
  }
}

function netHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** One permission: every use (`true`) or a list of hosts, paths, names or programs. */
export type Scope = true | readonly string[];

/** The permissions the service needs, by Deno permission name. */
export interface PermissionSet {
  net: Scope;
  read: Scope;
  write: Scope;
  env: Scope;
  run: Scope;
  sys: Scope;
}

/**
 * What the service needs for `config`.
 *
 * `run` is unscoped unless `allowed-commands` is set: a shell command may
 * run any program, and `Deno.kill(-pgid)` (signalling a whole process group)
 * needs it; with an allowlist, it is that list plus `kill`.
 */
export function requiredPermissions(
  config: PermissionConfig,
  hookPrograms: readonly string[] = [],
): PermissionSet {
  const host = netHost(config.host);
  // No /proc: Deno grants it only with --allow-all, and the service does
  // without (signals probe groups; CPU times come from os.cpus()).
  // setsid, the shell and the child's PATH directories: spawns check the
  // program exists before taking the fast (non-forking) setsid path.
  // No /sys either, for the same reason: cgroups are reached through a
  // helper shell (lib/process/cgroup_fs.ts), WRAPPER_SHELL, which also joins each
  // run to its cgroup before exec'ing the command.
  const read = [
    ...SETSID_PATHS,
    WRAPPER_SHELL,
    config.shell,
    ...(config.childEnv.PATH ?? "").split(":").filter((d) => d.startsWith("/")),
  ];
  const write: string[] = [];
  // The sandbox (lib/security/sandbox.ts): bwrap, and env around it, found by stat.
  const sandboxed = config.sandbox === "bwrap";
  if (sandboxed) read.push(...BWRAP_PATHS, ...ENV_PATHS);
  // run-as (lib/security/run_as.ts): setpriv, found by stat; users and groups from getent or the files.
  const runAs = (config.runAs ?? "") !== "";
  if (runAs) read.push(...SETPRIV_PATHS, "/etc/passwd", "/etc/group");
  if (config.apiKeysFile !== "") read.push(...andReal(config.apiKeysFile));
  if (config.hooksConfig !== "") read.push(...andReal(config.hooksConfig));
  read.push(...config.workspaceRoots.flatMap(andReal));
  // The embedded store, and with Redis too the crash journal (running/).
  if (!config.ephemeral) {
    read.push(...andReal(config.dataDir));
    write.push(...andReal(config.dataDir));
  }
  const net = [config.port === 0 ? host : `${host}:${config.port}`];
  const redis = config.redisUrl === "" ? null : redisHost(config.redisUrl);
  if (redis !== null) net.push(redis);
  const env = [
    ...configEnvNames(),
    ...Object.keys(CHILD_ENV_DEFAULTS),
    ...config.envAllowlist,
    ...LIBRARY_ENV,
  ];
  return {
    net,
    read: [...new Set(read)],
    write,
    env: [...new Set(env)],
    run: config.allowedCommands.length > 0
      ? [
        ...new Set([
          ...config.allowedCommands,
          ...SERVICE_PROGRAMS,
          ...hookPrograms,
          // The child checks its own cwd before it execs the command: without
          // a shell to do it, a directory swapped for a symlink during the
          // fork of the server would be followed. spawn() checks the program
          // against the list itself before it wraps it.
          ...(config.workspaceRoots.length > 0 ? [...SETSID_PATHS, WRAPPER_SHELL] : []),
          // What starts a sandboxed command (the program inside is checked
          // against the list by spawn(), as above).
          ...(sandboxed ? [...BWRAP_PATHS, ...ENV_PATHS] : []),
          ...(runAs ? [...SETPRIV_PATHS, "getent"] : []),
        ]),
      ]
      : true,
    // On a wildcard address the Host check accepts the machine's own
    // addresses and hostname (lib/security/host_check.ts), so it reads them; uid:
    // run-as refuses to start unless the service is root.
    sys: [
      "loadavg",
      "systemMemoryInfo",
      "cpus",
      ...(isWildcardAddress(config.host) ? ["networkInterfaces"] : []),
      // hostname: also the default node id (`hostname:port`) of a node on Redis.
      ...(isWildcardAddress(config.host) || (config.redisUrl !== "" && !config.nodeId)
        ? ["hostname"]
        : []),
      // uid: the sandbox warns when commands would run as root.
      ...(runAs || sandboxed ? ["uid"] : []),
    ],
  };
}

/**
 * The permission flags for `config`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { permissionFlags } from "./permissions.ts";
 * const flags = permissionFlags({ host: "127.0.0.1", port: 8003, apiKeysFile: "",
 *   workspaceRoots: [], allowedCommands: ["git"], envAllowlist: [], redisUrl: "",
 *   dataDir: "/var/lib/cc-executor", ephemeral: false, hooksConfig: "", shell: "/bin/sh",
 *   childEnv: { PATH: "/usr/bin:/bin" } });
 * assert.ok(flags.includes("--allow-net=127.0.0.1:8003"));
 * assert.ok(flags.includes("--allow-run=git,kill,nvidia-smi,cat,ps"));
 * assert.ok(flags.includes("--allow-write=/var/lib/cc-executor"));
 * ```
 */
export function permissionFlags(
  config: PermissionConfig,
  hookPrograms: readonly string[] = [],
): string[] {
  return Object.entries(requiredPermissions(config, hookPrograms)).flatMap(([name, scope]) =>
    scope === true
      ? [`--allow-${name}`]
      : scope.length > 0
      ? [`--allow-${name}=${scope.join(",")}`]
      : []
  );
}

/** How much of a permission the running service holds. */
export interface HeldPermission {
  /** `all`: unscoped; `scoped`: only `scope`; `none`. */
  state: "all" | "scoped" | "none";
  scope?: string[];
}

const PERMISSION_NAMES = ["net", "read", "write", "env", "run", "sys", "ffi", "import"] as const;

function descriptor(name: keyof PermissionSet, entry: string): Deno.PermissionDescriptor {
  switch (name) {
    case "net":
      return { name, host: entry };
    case "read":
    case "write":
      return { name, path: entry };
    case "env":
      return { name, variable: entry };
    case "run":
      return { name, command: entry };
    case "sys":
      return { name, kind: entry as Deno.SysPermissionDescriptor["kind"] };
  }
}

/**
 * The permissions this process holds, for `/health`. Deno reports a scoped
 * grant as "prompt", so each entry the config needs is checked on its own.
 */
export function heldPermissions(config: PermissionConfig): Record<string, HeldPermission> {
  const needed = requiredPermissions(config);
  const out: Record<string, HeldPermission> = {};
  for (const name of PERMISSION_NAMES) {
    if (Deno.permissions.querySync({ name } as Deno.PermissionDescriptor).state === "granted") {
      out[name] = { state: "all" };
      continue;
    }
    const wanted = name in needed ? needed[name as keyof PermissionSet] : [];
    const scope = wanted === true
      ? []
      : wanted.filter((entry) =>
        Deno.permissions.querySync(descriptor(name as keyof PermissionSet, entry)).state ===
          "granted"
      );
    out[name] = scope.length > 0 ? { state: "scoped", scope } : { state: "none" };
  }
  return out;
}
