/**
 * Data shared by the core modules: what to run, and what a run reports.
 * Plain data only; behaviour lives in the modules named for it.
 *
 * @module
 */

/** A sandbox as a spawn uses it (lib/security/sandbox.ts). */
export interface SandboxLauncher {
  /** bwrap's argv for a command that starts in `cwd`, ending in `--`. */
  argv(cwd: string | undefined): string[];
  /** coreutils' `env`, which ignores SIGTERM for bwrap and restores it for the command. */
  readonly env: string;
}

/** What confines every command beyond its cgroup; set up once at startup. */
export interface ChildConfinement {
  /** The sandbox; absent: none. */
  sandbox?: SandboxLauncher | undefined;
  /** setpriv's argv ending in `--` (lib/security/run_as.ts); absent: the service's own user. */
  runAs?: readonly string[] | undefined;
}

/** Where a run's time limit came from (PROTOCOL.md part 2). */
export type TimeoutSource = "request" | "history" | "similar" | "default";

/** How output is cut into messages. */
export type Framing = "chunk" | "line";

/** Which pipe a piece of output came from. */
export type StreamName = "stdout" | "stderr";

/** A resource controller a run can be limited with (lib/process/cgroup.ts). */
export type CgroupController = "memory" | "pids";

/**
 * Where a server makes its runs' cgroups (lib/process/cgroup.ts): a run's cgroup is
 * `<dir>/<execution id>` under each directory named here.
 */
export interface CgroupPlacement {
  /** This server instance's cgroup v2 directory (`<cgroup-root>/<instance>`). */
  unified: string;
  /**
   * The directory whose run cgroups enforce each controller: `unified` when
   * the v2 hierarchy offers it, else the instance directory on a cgroup v1
   * hierarchy. Absent: no limit of that kind can be enforced.
   */
  memory?: string | undefined;
  pids?: string | undefined;
}

/** A fully resolved request to run something. */
export interface ExecSpec {
  /** argv to spawn; argv[0] is the program. Shell commands arrive as [shell, "-c", cmd]. */
  argv: readonly string[];
  /** What the client asked for, for logs and records (the command string, or argv joined). */
  display: string;
  /** Working directory; undefined inherits the server's. */
  cwd?: string | undefined;
  /**
   * `cwd` is a real path checked against the workspace roots: the child
   * starts in that directory or not at all (lib/process/process_group.ts).
   */
  cwdChecked?: boolean | undefined;
  /** The complete child environment (already built; never the server's own). */
  env: Readonly<Record<string, string>>;
  /** Text written to stdin, which is then closed; undefined closes stdin at once. */
  stdin?: string | undefined;
  /**
   * Keep stdin open after writing `stdin`, for input sent later
   * (`Execution.writeInput`); it closes when asked or when the run ends.
   */
  stdinOpen?: boolean | undefined;
  /**
   * What the client asked to run, as it is classified for learned limits:
   * the `command` string, or the `args` array. Defaults to `display`.
   */
  line?: string | readonly string[] | undefined;
  /** Time limit in seconds, not counting time paused; null for none. */
  timeout: number | null;
  timeoutSource: TimeoutSource;
  /** The command class whose automatic limit is in force; absent when the request set it. */
  limitClass?: string | undefined;
  /** Where that automatic limit came from, in words (for the error of a run it ends). */
  limitNote?: string | undefined;
  /** Seconds without output after which the run is ended as a timeout; null for none. */
  idleTimeout: number | null;
  framing: Framing;
  /** The server's run cgroups (lib/process/cgroup.ts); absent: the process group alone contains the run. */
  cgroup?: CgroupPlacement | undefined;
  /** Memory the whole run may use, swap included, in bytes; absent: no limit. Needs `cgroup.memory`. */
  memoryMax?: number | undefined;
  /** Processes and threads the run may have at once; absent: no limit. Needs `cgroup.pids`. */
  pidsMax?: number | undefined;
  /** The sandbox and run-as user the command runs under (lib/process/launch.ts); absent: neither. */
  confinement?: ChildConfinement | undefined;
}

/**
 * Final status of a run, as `process.completed` reports it: `lost` when the
 * node that ran it died or was cut off before it ended (lib/cluster/), or a
 * server crash left it (found by crash recovery). A lost run is never re-run.
 */
export type FinalStatus = "completed" | "failed" | "canceled" | "timeout" | "lost";

/** Status of an execution record (`history`): the run's final status. */
export type RecordStatus = FinalStatus;

/** Lifecycle state of an execution. */
export type ExecState = "running" | "paused" | "terminating" | FinalStatus;

/**
 * Where a piece of output sits in a line: shared by the framer's byte
 * frames (`lib/output/framer.ts`) and the chunks sinks get.
 */
export interface LinePiece {
  /** True on every piece of a split line but the last. */
  truncated: boolean;
  /** Index of this piece within a split line, else null. */
  chunkIndex: number | null;
  /** Number of pieces of a split line, once known (on its last piece), else null. */
  totalChunks: number | null;
}

/** One output message's worth of text. */
export interface OutputChunk extends LinePiece {
  stream: StreamName;
  data: string;
  /** Per-execution byte offset of this chunk's first byte, across both streams. */
  seq: number;
  /** Raw bytes this chunk came from (before any U+FFFD replacement). */
  bytes: number;
  /**
   * The child's bytes themselves, for clients that want them exactly
   * (legacy `encoding: "base64"`); valid only while the event is being sent,
   * like `data`. Absent: encode `data`.
   */
  raw?(): Uint8Array;
}

/** How a run ended. */
export interface ExitInfo {
  status: FinalStatus;
  exitCode: number | null;
  /** Signal name when a signal ended the process, else null. */
  signal: string | null;
  error: string | null;
  /** Wall-clock seconds from spawn to end. */
  executionTime: number;
}

/** How one hook run ended (lib/ops/hooks.ts). */
export interface HookOutcome {
  kind: "pre_execute" | "post_execute" | "on_timeout";
  name: string;
  ok: boolean;
  status: "completed" | "failed" | "timeout" | "error";
  exitCode: number | null;
  duration: number;
  /** A failing required pre_execute hook stops the command from running. */
  required: boolean;
  /** Why it failed, when it did. */
  error: string | null;
  /** The end of what it printed (stdout then stderr), at most 4 KiB. */
  output: string;
}

/** Everything an execution tells its sink, in order. */
export type ExecutionEvent =
  & {
    /** The run the event is about, so a sink need not be made for one id. */
    executionId: string;
  }
  & (
    | { type: "started"; pid: number; pgid: number }
    | { type: "output"; chunk: OutputChunk }
    | { type: "paused" | "resumed" | "canceled"; pid: number; pgid: number }
    | { type: "completed"; pid: number; pgid: number; exit: ExitInfo }
    /** Pre-execute hooks run before there is a process: no pid. */
    | { type: "hook"; outcome: HookOutcome }
    /** Output from `from` to `to` is no longer retained: a replay skips it (PROTOCOL.md part 3). */
    | { type: "gap"; from: number; to: number }
  );
