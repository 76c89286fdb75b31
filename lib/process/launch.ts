/**
 * The argv that starts a command through the steps around it, outermost
 * first: joining the run's cgroup (lib/process/run_cgroup.ts, as the service's user),
 * the sandbox (lib/security/sandbox.ts), dropping to the run-as user (lib/security/run_as.ts),
 * and re-checking the working directory in the process that then execs the
 * command. Each step execs the next in the same process, so the pid the
 * service spawned stays the group's leader. Builds argv only:
 * lib/process/process_group.ts spawns it.
 *
 * @module
 */
import { basename } from "node:path";
import type { ChildConfinement, SandboxLauncher } from "../types.ts";

// Declared in lib/types.ts, which lies below this layer; re-exported for the
// spawners and the sandbox.
export type { ChildConfinement, SandboxLauncher };

/** The shell that runs the steps before a command (and the cgroup helper, lib/process/cgroup_fs.ts). */
export const WRAPPER_SHELL = "/bin/sh";

/** What the child prints on stderr when its working directory moved between check and start. */
export const CWD_CHANGED_MESSAGE = "cc-executor: working directory changed during start";

/** Its exit code (the command never ran). */
export const CWD_CHANGED_EXIT = 126;

/** Shells whose `-c` script can run the steps itself, saving an exec. */
const POSIX_SHELLS = new Set(["sh", "dash", "bash", "ash", "ksh", "mksh", "zsh"]);

/**
 * Shells whose `cd -P` sets `PWD` from the kernel (getcwd()) after the
 * chdir. bash's and others' compute it from the path first, which a swap
 * between the two would fool; for them the check asks `/bin/pwd -P`.
 */
const KERNEL_PWD_SHELLS = new Set(["dash", "ash", "busybox"]);

/** Quotes `text` for a POSIX shell. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

const kernelPwd = new Map<string, boolean>();

/** Whether `shell`'s `cd -P` takes `PWD` from the kernel (by what `shell` really is). */
function setsPwdFromKernel(shell: string): boolean {
  let known = kernelPwd.get(shell);
  if (known === undefined) {
    let real = shell;
    try {
      real = Deno.realPathSync(shell); // /bin/sh -> /usr/bin/dash
    } catch {
      // not readable here: judge by the name
    }
    known = KERNEL_PWD_SHELLS.has(basename(real));
    kernelPwd.set(shell, known);
  }
  return known;
}

/**
 * Shell text that moves to `dir` and exits 126 unless the directory it is
 * now in is `dir` itself: no symlink swapped in on the way, nothing moved
 * since the service checked it. Run by `shell`.
 */
function cwdCheck(dir: string, shell: string): string {
  const q = shellQuote(dir);
  const here = setsPwdFromKernel(shell) ? `"$PWD"` : `"$(/bin/pwd -P)"`;
  return `{ cd -P -- ${q} && [ ${here} = ${q} ]; } 2>/dev/null || ` +
    `{ echo '${CWD_CHANGED_MESSAGE}' >&2; exit ${CWD_CHANGED_EXIT}; }; `;
}

/** The script of `program -c script` when `program` is a POSIX shell, else null. */
function ownScript(program: string, args: readonly string[]): string | null {
  return POSIX_SHELLS.has(basename(program)) && args.length === 2 && args[0] === "-c"
    ? args[1]!
    : null;
}

/** The steps around one command. */
export interface LaunchSteps {
  /** The command's program (a resolved path where one is known) and its arguments. */
  program: string;
  args: readonly string[];
  /**
   * Shell text that joins the run's cgroups, ending in `; `
   * (`RunCgroup.prelude()`): run first, as the service's user.
   */
  join?: string | undefined;
  /**
   * A real path checked against the workspace roots, which the command must
   * start in: the process that execs the command moves there and verifies it.
   */
  verifyCwd?: string | undefined;
  /** The child's `PWD`, restored after a wrapper shell that reset it. */
  pwd?: string | undefined;
  /** The directory the command starts in (the spawn's, when none is checked). */
  cwd?: string | undefined;
  /** The sandbox the command runs in. */
  sandbox?: SandboxLauncher | undefined;
  /** setpriv's argv ending in `--`: what drops to the run-as user. */
  runAs?: readonly string[] | undefined;
}

/**
 * The argv that runs `steps.program` with its steps. Without a sandbox:
 * one shell does the cgroup join and the directory check (the command's own
 * `sh -c` when it has one and nothing else comes between), then setpriv if
 * any, then the command. With one: outside, SIGTERM is ignored (bwrap would
 * die of it and take the sandbox with it at once, so a command could never
 * clean up on SIGTERM) and the cgroup joined; inside, the sandbox's PID 1
 * checks the directory in the sandbox's own view of it and starts the
 * command with its signals reset, setpriv dropping to the user first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { launchArgv } from "./launch.ts";
 * assert.deepEqual(launchArgv({ program: "/bin/echo", args: ["hi"] }), ["/bin/echo", "hi"]);
 * const [shell, flag, script] = launchArgv({ program: "/bin/sh", args: ["-c", "pwd"],
 *   verifyCwd: "/srv/ws" });
 * assert.deepEqual([shell, flag], ["/bin/sh", "-c"]);
 * assert.ok(script!.startsWith("{ cd -P -- '/srv/ws' && ") && script!.endsWith("; pwd"));
 * ```
 */
export function launchArgv(steps: LaunchSteps): string[] {
  const { program, args } = steps;
  const command = [program, ...args];
  const script = ownScript(program, args);
  const join = steps.join ?? "";
  const verify = steps.verifyCwd;
  const runAs = steps.runAs ?? [];
  if (steps.sandbox === undefined) {
    // The command's own shell does it all when nothing comes between.
    if (script !== null && runAs.length === 0 && (join !== "" || verify !== undefined)) {
      const check = verify === undefined ? "" : cwdCheck(verify, program);
      // On the same line: the command's own line numbers in errors stay as they were.
      return [program, "-c", join + check + script];
    }
    if (runAs.length > 0 && verify !== undefined) {
      // Checked after setpriv, as the user: the service (root) may enter
      // directories the user may not, and the command must not start in one.
      const inner = script !== null
        ? [program, "-c", cwdCheck(verify, program) + script]
        : [WRAPPER_SHELL, "-c", `${cwdCheck(verify, WRAPPER_SHELL)}exec "$@"`, "sh", ...command];
      return join === ""
        ? [...runAs, ...inner]
        : [WRAPPER_SHELL, "-c", `${join}exec "$@"`, "sh", ...runAs, ...inner];
    }
    const check = verify === undefined ? "" : cwdCheck(verify, WRAPPER_SHELL);
    if (join === "" && check === "") return [...runAs, ...command];
    // The wrapping shell resets an inherited PWD that does not name its directory.
    const restore = check === "" && steps.pwd !== undefined
      ? `export PWD=${shellQuote(steps.pwd)}; `
      : "";
    return [WRAPPER_SHELL, "-c", `${join}${check}${restore}exec "$@"`, "sh", ...runAs, ...command];
  }
  const { sandbox } = steps;
  const env = sandbox.env;
  // The sandbox's PID 1 (bwrap --as-pid-1) is a shell that checks the
  // directory as the sandbox shows it, then runs the command as its child
  // and exits with its status, which ends the namespace and all in it.
  // bwrap reaps it, so the group is empty once bwrap has exited (bwrap's
  // own init would be left a zombie for the machine's init to reap).
  // Started in the background, the command would get /dev/null for stdin
  // and SIGINT and SIGQUIT ignored: fd 3 keeps stdin, env resets every
  // signal (SIGTERM too, ignored from outside). Nothing is reported of a
  // command killed by a signal but the status.
  //
  // Root has no capabilities in the sandbox, so it may not enter a run-as
  // user's private directory: then the user moves there after setpriv.
  const asUser = runAs.length > 0;
  const dir = verify ?? steps.cwd;
  const check = verify === undefined ? "" : cwdCheck(verify, WRAPPER_SHELL);
  const init = `${asUser ? "" : check}` +
    `exec 3<&0; ${shellQuote(env)} --default-signal "$@" <&3 3<&- & wait $! 2>/dev/null`;
  const enter = (shell: string) =>
    verify !== undefined ? cwdCheck(verify, shell) : `cd -- ${shellQuote(dir!)} || exit 126; `;
  const inner = !asUser || dir === undefined
    ? command
    : script !== null
    ? [program, "-c", enter(program) + script]
    : [WRAPPER_SHELL, "-c", `${enter(WRAPPER_SHELL)}exec "$@"`, "sh", ...command];
  const confined = [
    ...sandbox.argv(asUser ? undefined : dir),
    WRAPPER_SHELL,
    "-c",
    init,
    "sh",
    ...runAs,
    ...inner,
  ];
  // bwrap would die of SIGTERM and take the sandbox with it at once.
  return join === ""
    ? [env, "--ignore-signal=TERM", ...confined]
    : [WRAPPER_SHELL, "-c", `trap '' TERM; ${join}exec "$@"`, "sh", ...confined];
}

const SIGNALS: readonly Deno.Signal[] = [
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];

/**
 * The status of a sandboxed command as the unsandboxed one would have had
 * it: the sandbox (its PID 1, then bwrap) exits 128+N when the command was
 * killed by signal N, which is reported as that signal again. A command that itself exits 129 to 159 is
 * reported as killed too (bwrap does not tell the two apart).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { commandStatus } from "./launch.ts";
 * assert.deepEqual(commandStatus({ success: false, code: 137, signal: null }),
 *   { success: false, code: 137, signal: "SIGKILL" });
 * assert.deepEqual(commandStatus({ success: false, code: 3, signal: null }),
 *   { success: false, code: 3, signal: null });
 * ```
 */
export function commandStatus(status: Deno.CommandStatus): Deno.CommandStatus {
  if (status.signal !== null || status.code <= 128) return status;
  const signal = SIGNALS[status.code - 129];
  return signal === undefined ? status : { success: false, code: status.code, signal };
}
