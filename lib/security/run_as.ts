/**
 * `run-as`: a service started as root runs every command as another user,
 * through util-linux `setpriv`, which sets the real, effective and saved
 * uid and gid (and the supplementary groups) and then execs the command in
 * the same process. The command then holds no capability and cannot read
 * root-only files, nor `/proc/<pid>/environ` of the service, its launcher
 * or the shell that started them.
 *
 * `user` takes the user's own groups (initgroups); `user:group` that group
 * alone, with no supplementary groups, since a group given explicitly is
 * all the command should hold.
 *
 * @module
 */
import { firstRunnable } from "../process/program.ts";
import { ConfigError } from "../config/config.ts";
import { logger } from "../log.ts";

const log = logger("run-as");

/** Where setpriv may be; a fixed list, so no PATH entry can stand in for it. */
export const SETPRIV_PATHS: readonly string[] = ["/usr/bin/setpriv", "/bin/setpriv"];

/** `/health`'s `run_as`. */
export interface RunAsStatus {
  user: string;
  uid: number;
  gid: number;
  /** `user`: the user's supplementary groups; `only`: the given group alone. */
  groups: "user" | "only";
}

/** A passwd or group entry, from getent (NSS included) or the files. */
async function lookUp(database: "passwd" | "group", key: string): Promise<string[] | null> {
  try {
    const out = await new Deno.Command("getent", {
      args: [database, key],
      stdout: "piped",
      stderr: "null",
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
    }).output();
    // 2: no such entry.
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).trim().split("\n")[0]!.split(":");
  } catch {
    // No getent (or not allowed to run it): the file itself.
    const text = await Deno.readTextFile(`/etc/${database}`).catch(() => "");
    const numeric = /^\d+$/.test(key);
    for (const line of text.split("\n")) {
      const fields = line.split(":");
      if (fields[0] === key || (numeric && fields[2] === key)) return fields;
    }
    return null;
  }
}

/** What {@linkcode RunAs.start} checks besides the user. */
export interface RunAsOptions {
  /** Must be writable by the user: a warning names those that are not. */
  workspaceRoots?: readonly string[];
  /** Must not be readable by the user: the keys file (refused unless `hiddenBySandbox`). */
  keysFile?: string;
  /** Should not be readable by the user: a warning names them (data directory, hooks config). */
  private?: readonly string[];
  /** The sandbox covers the keys file and the private paths over anyway. */
  hiddenBySandbox?: boolean;
  /** The service's uid; `Deno.uid()` unless given. */
  currentUid?: number | null;
}

/**
 * The run-as user of one server, checked by {@linkcode RunAs.start}.
 *
 * @example Off
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunAs } from "./run_as.ts";
 * assert.equal(await RunAs.start(""), null);
 * ```
 */
export class RunAs {
  /** setpriv's argv, ending in `--`: the step lib/process/launch.ts puts before the command. */
  readonly argv: readonly string[];
  /** The user's home directory: the command's `HOME`. */
  readonly home: string;
  readonly #status: RunAsStatus;

  private constructor(argv: string[], home: string, status: RunAsStatus) {
    this.argv = argv;
    this.home = home;
    this.#status = status;
  }

  /**
   * Resolves `setting` (`user` or `user:group`, names or numbers) and tries
   * the switch once. Warns when a workspace root is not writable by the user.
   *
   * @returns null when `setting` is empty.
   * @throws {ConfigError} when the service is not root, the user or group
   * does not exist, the user is root, setpriv is missing or cannot switch,
   * or the user could read the keys file.
   */
  static async start(setting: string, options: RunAsOptions = {}): Promise<RunAs | null> {
    if (setting === "") return null;
    const invalid = (why: string) =>
      new ConfigError(`Invalid CC_EXECUTOR_RUN_AS=${setting}: ${why}`);
    const uid = options.currentUid === undefined ? Deno.uid() : options.currentUid;
    if (uid !== 0) {
      throw new ConfigError(
        `CC_EXECUTOR_RUN_AS=${setting} needs the service to start as root, and it runs as ` +
          `uid ${uid}: start it as root (it drops to the user for each command), or leave ` +
          "run-as empty",
      );
    }
    const [name, group] = setting.split(":") as [string, string | undefined];
    const user = await lookUp("passwd", name);
    if (user === null) throw invalid(`there is no user ${name} on this machine`);
    const userId = Number(user[2]);
    if (userId === 0) throw invalid(`${name} is root (uid 0): name an unprivileged user`);
    let groupId = Number(user[3]);
    if (group !== undefined) {
      const entry = await lookUp("group", group);
      if (entry === null) throw invalid(`there is no group ${group} on this machine`);
      groupId = Number(entry[2]);
      if (groupId === 0) throw invalid(`${group} is root's group (gid 0): name another group`);
    }
    const setpriv = firstRunnable(SETPRIV_PATHS);
    if (setpriv === null) {
      throw new ConfigError(
        `CC_EXECUTOR_RUN_AS=${setting} needs setpriv (util-linux) in ${SETPRIV_PATHS.join(" or ")}`,
      );
    }
    const argv = [
      setpriv,
      "--reuid",
      String(userId),
      "--regid",
      String(groupId),
      group === undefined ? "--init-groups" : "--clear-groups",
      // Root's inheritable set would otherwise stay (harmless, but not ours to hand on).
      "--inh-caps=-all",
      "--",
    ];
    const runAs = new RunAs(argv, user[5] || "/", {
      user: user[0]!,
      uid: userId,
      gid: groupId,
      groups: group === undefined ? "user" : "only",
    });
    await runAs.#check(setting, options);
    return runAs;
  }

  /** Switches once, and asks as the user what it may write and read. */
  async #check(setting: string, options: RunAsOptions): Promise<void> {
    const roots = options.workspaceRoots ?? [];
    const keys = options.keysFile ? [options.keysFile] : [];
    const secret = options.private ?? [];
    // The user may rename what is inside its roots: a keys file, hooks
    // config or data directory there could be read or replaced (hooks run as
    // root), whatever their own modes say.
    const realRoots = await Promise.all(roots.map((r) => Deno.realPath(r).catch(() => r)));
    for (const path of [...keys, ...secret]) {
      const real = await Deno.realPath(path).catch(() => path);
      const root = realRoots.find((r) => real === r || real.startsWith(`${r}/`));
      if (root !== undefined) {
        throw new ConfigError(
          `CC_EXECUTOR_RUN_AS=${setting}: ${path} (the keys file, data directory or hooks ` +
            `config) lies inside the workspace root ${root}, where commands can write: move it ` +
            "out of the workspace roots",
        );
      }
    }
    // One line per finding: "w <root>" not writable, "r <path>" readable.
    const script = "n=$1; shift; i=0; for p do i=$((i+1)); if [ $i -le $n ]; then " +
      '{ [ -w "$p" ] && [ -x "$p" ]; } || printf "w %s\\n" "$p"; ' +
      'else ! [ -r "$p" ] || printf "r %s\\n" "$p"; fi; done';
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(this.argv[0]!, {
        args: [
          ...this.argv.slice(1),
          "/bin/sh",
          "-c",
          script,
          "sh",
          String(roots.length),
          ...roots,
          ...keys,
          ...secret,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        clearEnv: true,
        env: { PATH: "/usr/bin:/bin" },
      }).output();
    } catch (err) {
      throw new ConfigError(
        `CC_EXECUTOR_RUN_AS=${setting}: cannot run setpriv: ${
          err instanceof Error ? err.message : String(err)
        }`,
      );
    }
    if (!out.success) {
      throw new ConfigError(
        `CC_EXECUTOR_RUN_AS=${setting}: setpriv cannot switch to ${this.#status.user} here (${
          new TextDecoder().decode(out.stderr).trim() || `exit code ${out.code}`
        }): the service needs CAP_SETUID and CAP_SETGID`,
      );
    }
    for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
      const path = line.slice(2);
      if (line.startsWith("w ")) {
        log.warning(
          "Workspace root {path} is not writable by {user} (run-as): commands cannot write " +
            "there; give it to that user (chown) or choose another",
          { path, user: this.#status.user },
        );
      } else if (line.startsWith("r ") && !options.hiddenBySandbox) {
        if (keys.includes(path)) {
          throw new ConfigError(
            `CC_EXECUTOR_RUN_AS=${setting}: ${this.#status.user} can read the keys file ` +
              `${path}: make it readable by the service's user only (chmod 600), or use the sandbox`,
          );
        }
        log.warning("{path} is readable by {user} (run-as): make it private to the service", {
          path,
          user: this.#status.user,
        });
      }
    }
  }

  /** What `/health` reports. */
  status(): RunAsStatus {
    return { ...this.#status };
  }
}
