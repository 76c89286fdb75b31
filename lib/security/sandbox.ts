/**
 * The sandbox (`sandbox: bwrap`): every command runs under bubblewrap, with
 * the root filesystem read-only, the workspace roots writable at their own
 * paths, a private /tmp, a minimal /dev, its own PID namespace (the server's
 * and other runs' processes are invisible and cannot be signalled) and IPC
 * namespace, optionally no network (`sandbox-network: none`), and no
 * capabilities, not even as root. The keys file, the data directory and
 * the hooks config are covered over. `--die-with-parent`: when the server
 * dies, bwrap dies, and with it its PID namespace and everything in it.
 * The namespace's PID 1 is lib/process/launch.ts's shell (`--as-pid-1`), which runs
 * the command and exits with it, ending the namespace.
 *
 * This module builds bwrap's argv and checks at startup that bwrap works
 * here; lib/process/launch.ts places it around a command, lib/process/process_group.ts
 * spawns that.
 *
 * @module
 */
import { firstRunnable } from "../process/program.ts";
import { ConfigError } from "../config/config.ts";
import { bwrapOptions, type SandboxLayout, within } from "./bwrap_options.ts";

export { bwrapOptions, type SandboxLayout };
import { logger } from "../log.ts";
import { launchArgv, type SandboxLauncher } from "../process/launch.ts";

const log = logger("sandbox");

/** Where bwrap may be; a fixed list, so no PATH entry can stand in for it. */
export const BWRAP_PATHS: readonly string[] = ["/usr/bin/bwrap", "/bin/bwrap"];

/** Where coreutils' `env` may be: it ignores SIGTERM for bwrap and restores it for the command. */
export const ENV_PATHS: readonly string[] = ["/usr/bin/env", "/bin/env"];

/** `/health`'s `sandbox`. */
export type SandboxStatus =
  | { mode: "none" }
  | {
    mode: "bwrap";
    network: "none" | "host";
    /** The workspace roots, writable inside. */
    writable: string[];
    /** What is covered over inside (keys file, data directory, hooks config). */
    hidden: string[];
  };

/** What {@linkcode Sandbox.start} needs. */
export interface SandboxOptions {
  mode: "none" | "bwrap";
  network: "none" | "host";
  workspaceRoots: readonly string[];
  /** The keys file, data directory and hooks config: covered over when they exist. */
  hide: readonly string[];
  /** The run-as step, which runs first inside (and is tried by the startup check). */
  runAs?: { argv: readonly string[] } | null;
  /** Where to look for bwrap; {@linkcode BWRAP_PATHS} unless given. */
  bwrapPaths?: readonly string[];
}

/** The service's directory if the sandbox of `layout` shows it, else `/`. */
function shownDirectory(layout: SandboxLayout): string {
  let here: string;
  try {
    here = Deno.cwd();
  } catch {
    return "/";
  }
  if (layout.writable.some((root) => within(here, root))) return here;
  const covered = ["/tmp", "/dev", "/proc", ...(layout.network === "none" ? ["/run"] : [])];
  const hidden = layout.hidden.map((h) => h.path);
  return [...covered, ...hidden].some((dir) => within(here, dir)) ? "/" : here;
}

/** This process's uid; null where it may not be read. */
function uidOrNull(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}

/** Whether anything is at `path` now (a dangling symlink counts). */
function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The real path of `path`, or null when nothing is there. */
async function realOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.realPath(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    // Anything else (permissions, Deno's grants): what it is cannot be told,
    // so it cannot be hidden or mounted safely.
    throw new ConfigError(
      `CC_EXECUTOR_SANDBOX=bwrap: cannot resolve ${path} (${
        err instanceof Error ? err.message : String(err)
      }): give its real path (no symlink), readable by the service`,
    );
  }
}

/** Whether `path` is a directory; a ConfigError when it cannot be looked at. */
async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (err) {
    throw new ConfigError(
      `CC_EXECUTOR_SANDBOX=bwrap: cannot look at ${path} (${
        err instanceof Error ? err.message : String(err)
      }), which the sandbox must hide`,
    );
  }
}

/** What the startup probe prints from inside the sandbox. */
const PROBE_MARK = "cc-executor-sandbox-ok";

/** Runs `program`; null when it succeeded (and printed `mark`, if given), else why not. */
async function tryRun(program: string, args: string[], mark?: string): Promise<string | null> {
  try {
    const out = await new Deno.Command(program, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    }).output();
    if (!out.success) {
      return new TextDecoder().decode(out.stderr).trim() || `exit code ${out.code}`;
    }
    if (mark !== undefined && !new TextDecoder().decode(out.stdout).includes(mark)) {
      return "it exited without running the command, or / was writable inside";
    }
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

const FIX = "or set CC_EXECUTOR_SANDBOX=none";

/**
 * The sandbox of one server, set up by {@linkcode Sandbox.start}.
 *
 * @example Off
 * ```ts
 * import assert from "node:assert/strict";
 * import { Sandbox } from "./sandbox.ts";
 * assert.equal(await Sandbox.start({ mode: "none", network: "host", workspaceRoots: [], hide: [] }), null);
 * ```
 */
export class Sandbox implements SandboxLauncher {
  /** The `env` program that sets SIGTERM's handling around bwrap. */
  readonly env: string;
  readonly #bwrap: string;
  readonly #layout: SandboxLayout;
  #options: readonly string[];
  /** How many hidden paths `#options` covers. */
  #present: number;
  /**
   * Where a run without a `cwd` starts: the service's own directory when the
   * sandbox shows it, else `/` (a service started in /tmp, private inside,
   * or in a hidden directory, would fail every such run).
   */
  readonly #defaultDir: string;
  readonly #status: SandboxStatus;

  private constructor(bwrap: string, env: string, layout: SandboxLayout, status: SandboxStatus) {
    this.#bwrap = bwrap;
    this.env = env;
    this.#layout = layout;
    this.#options = bwrapOptions(layout);
    this.#present = layout.hidden.length;
    this.#defaultDir = shownDirectory(layout);
    this.#status = status;
  }

  /**
   * Finds bwrap, lays out the sandbox, and tries it once: a bare PID
   * namespace, then a command through the whole of it.
   *
   * @returns null when the sandbox is off.
   * @throws {ConfigError} naming the cause and the fix: bwrap missing, no
   * namespaces here, a workspace root that is a hidden path, or a sandbox
   * that cannot start a command.
   */
  static async start(options: SandboxOptions): Promise<Sandbox | null> {
    if (options.mode === "none") return null;
    const paths = options.bwrapPaths ?? BWRAP_PATHS;
    const bwrap = firstRunnable(paths);
    if (bwrap === null) {
      throw new ConfigError(
        `CC_EXECUTOR_SANDBOX=bwrap needs bubblewrap, and there is no bwrap in ` +
          `${paths.join(" or ")}: install it (apt-get install bubblewrap, ` +
          `dnf install bubblewrap) ${FIX}`,
      );
    }
    const env = firstRunnable(ENV_PATHS);
    if (env === null) {
      throw new ConfigError(
        `CC_EXECUTOR_SANDBOX=bwrap needs env (GNU coreutils) in ${ENV_PATHS.join(" or ")} ${FIX}`,
      );
    }
    const writable: string[] = [];
    for (const root of options.workspaceRoots) {
      const real = await realOrNull(root);
      if (real === null) {
        log.warning("Workspace root {root} does not exist: it is not writable in the sandbox", {
          root,
        });
      } else writable.push(real);
    }
    const hidden: { path: string; directory: boolean }[] = [];
    for (const path of options.hide) {
      const real = await realOrNull(path);
      if (real === null) continue; // nothing there to hide
      const directory = await isDirectory(real);
      if (writable.includes(real)) {
        throw new ConfigError(
          `Invalid CC_EXECUTOR_WORKSPACE_ROOTS: ${real} is also the keys file, data ` +
            "directory or hooks config, which the sandbox hides: choose a workspace root " +
            "outside it (a directory inside it is fine)",
        );
      }
      const root = writable.find((r) => within(real, r));
      if (root !== undefined) {
        // Covered by a mount at its own path, it would still move with a
        // directory above it that a command renames, uncovering it.
        throw new ConfigError(
          `${path} (the keys file, data directory or hooks config) lies inside the workspace ` +
            `root ${root}, where commands can write: a command could rename a directory ` +
            "above it and read or replace it. Move it out of the workspace roots",
        );
      }
      hidden.push({ path: real, directory });
    }
    if (!options.runAs && uidOrNull() === 0) {
      log.warning(
        "Sandboxed commands run as uid 0 (without capabilities): files they create in the " +
          "workspace roots are root's, and they can make them setuid, which works outside the " +
          "sandbox; they also share root's kernel keyring. Set CC_EXECUTOR_RUN_AS as well",
      );
    }
    const layout: SandboxLayout = {
      network: options.network,
      writable,
      hidden,
      capabilities: options.runAs ? ["CAP_SETUID", "CAP_SETGID"] : [],
    };
    // The namespaces alone first, for a clear message where there are none.
    const bare = await tryRun(bwrap, ["--ro-bind", "/", "/", "--unshare-pid", "true"]);
    if (bare !== null) {
      throw new ConfigError(
        `CC_EXECUTOR_SANDBOX=bwrap: bwrap cannot create namespaces here (${bare}). Run the ` +
          "service as root, or allow unprivileged user namespaces (sysctl " +
          "kernel.unprivileged_userns_clone=1, or on Ubuntu " +
          `kernel.apparmor_restrict_unprivileged_userns=0), or in a container with --privileged ` +
          FIX,
      );
    }
    const sandbox = new Sandbox(bwrap, env, layout, {
      mode: "bwrap",
      network: options.network,
      writable,
      hidden: hidden.map((h) => h.path),
    });
    // A command through the whole of it, which must say from inside that it
    // ran and that / is read-only: an exit status alone proves neither.
    const [first, ...rest] = launchArgv({
      program: "/bin/sh",
      args: ["-c", `test -w / && exit 3; echo ${PROBE_MARK}`],
      cwd: "/",
      sandbox,
      runAs: options.runAs?.argv,
    });
    const whole = await tryRun(first!, rest, PROBE_MARK);
    if (whole !== null) {
      throw new ConfigError(
        `CC_EXECUTOR_SANDBOX=bwrap: the sandbox cannot run a command (${whole}) ${FIX}`,
      );
    }
    return sandbox;
  }

  /**
   * bwrap's argv for a command that starts in `cwd`, ending in `--`. A
   * hidden path that is gone now (a keys file being rotated) is left out:
   * bwrap cannot make a mount point on the read-only root, and nothing is
   * there to hide.
   */
  argv(cwd: string | undefined): string[] {
    const present = this.#layout.hidden.filter((h) => exists(h.path));
    if (present.length !== this.#present) {
      this.#present = present.length;
      this.#options = bwrapOptions({ ...this.#layout, hidden: present });
    }
    return [this.#bwrap, ...this.#options, "--chdir", cwd ?? this.#defaultDir, "--"];
  }

  /** What `/health` reports. */
  status(): SandboxStatus {
    return structuredClone(this.#status);
  }
}
