/**
 * File operations on cgroup hierarchies, for the cgroup modules
 * (lib/process/cgroup.ts and the parts it re-exports). Deno grants any
 * access below /sys (as below /proc and /dev) only with `--allow-all`, which
 * no scoped `--allow-read`/`--allow-write` list can stand in for. So under
 * the scoped permissions of `deno task start` they go through a helper: one
 * long-lived `/bin/sh` that performs each operation and answers on a pipe
 * (it runs as the service's user, which may run any program anyway). With
 * `--allow-all` they are made directly, synchronously.
 *
 * @module
 */

/** The operations containment needs. Paths are absolute and hold no tab or newline. */
export interface CgroupFs {
  /**
   * True when operations are made in this process, each complete before its
   * call returns; false when they go to the helper shell.
   */
  readonly direct: boolean;
  /** A file's text; null when it does not exist or cannot be read. */
  read(path: string): Promise<string | null>;
  /** Writes `value` to an existing file. @throws {Error} saying why it failed. */
  write(path: string, value: string): Promise<void>;
  /** Makes a directory (and its parents with `recursive`). @throws {Error} saying why not. */
  mkdir(path: string, recursive?: boolean): Promise<void>;
  /** Removes empty directories, in order; true when all are gone (or never were). */
  rmdir(paths: readonly string[]): Promise<boolean>;
  /** The names of a directory's subdirectories; null when it is not a directory. */
  dirs(path: string): Promise<string[] | null>;
  /** Whether something exists at `path`. */
  exists(path: string): Promise<boolean>;
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Each operation made with Deno's synchronous file API, before the call returns. */
const directFs: CgroupFs = {
  direct: true,
  read(path) {
    try {
      return Promise.resolve(Deno.readTextFileSync(path));
    } catch {
      return Promise.resolve(null);
    }
  },
  write(path, value) {
    try {
      Deno.writeTextFileSync(path, value, { create: false });
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(new Error(reason(err), { cause: err }));
    }
  },
  mkdir(path, recursive = false) {
    try {
      Deno.mkdirSync(path, { recursive });
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(new Error(reason(err), { cause: err }));
    }
  },
  rmdir(paths) {
    let gone = true;
    for (const path of paths) {
      try {
        Deno.removeSync(path);
      } catch (err) {
        gone &&= err instanceof Deno.errors.NotFound;
      }
    }
    return Promise.resolve(gone);
  },
  dirs(path) {
    try {
      return Promise.resolve(
        [...Deno.readDirSync(path)].filter((e) => e.isDirectory).map((e) => e.name),
      );
    } catch {
      return Promise.resolve(null);
    }
  },
  exists(path) {
    try {
      Deno.statSync(path);
      return Promise.resolve(true);
    } catch {
      return Promise.resolve(false);
    }
  },
};

/**
 * The helper: reads `<op> TAB <path> TAB <value>` lines, answers each with
 * data lines (`|` + text) and one status line: `ok`, `no`, or `err <why>`.
 * Only builtins but for mkdir and rmdir (one exec for all the paths of an
 * rmdir, which come separated by US); it ends when its stdin closes.
 */
const HELPER = `tab=$(printf '\\t') us=$(printf '\\037')
while IFS=$tab read -r op p v; do
  case $op in
  read)
    if [ -f "$p" ] && { while IFS= read -r l || [ -n "$l" ]; do printf '|%s\\n' "$l"; done; } <"$p" 2>/dev/null
    then echo ok; else echo no; fi ;;
  write)
    if { printf '%s' "$v" >"$p"; } 2>/dev/null; then echo ok; else echo "err cannot write $p"; fi ;;
  mkdir)
    if e=$(command -p mkdir \${v:+-p} -- "$p" 2>&1); then echo ok; else echo "err \${e##*: }"; fi ;;
  rmdir)
    set -f; ifs=$IFS; IFS=$us; set -- $p; IFS=$ifs; set +f
    command -p rmdir -- "$@" 2>/dev/null
    gone=ok; for d; do ! [ -e "$d" ] || gone=no; done; echo $gone ;;
  dirs)
    if [ -d "$p" ]; then
      for d in "$p"/*/; do [ -d "$d" ] || continue; d=\${d%/}; printf '|%s\\n' "\${d##*/}"; done
      echo ok
    else echo no; fi ;;
  exists)
    if [ -e "$p" ]; then echo ok; else echo no; fi ;;
  *) echo "err unknown operation" ;;
  esac
done`;

/** The helper's answer to one operation. */
interface Answer {
  status: string;
  lines: string[];
}

/** Operations through the helper shell, one at a time, in call order. */
class ShellFs implements CgroupFs {
  readonly direct = false;
  readonly #shell: string;
  #child: Deno.ChildProcess | null = null;
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #buffered = "";
  #queue: Promise<unknown> = Promise.resolve();

  constructor(shell: string) {
    this.#shell = shell;
  }

  async read(path: string): Promise<string | null> {
    const answer = await this.#ask("read", path);
    return answer.status === "ok" ? answer.lines.map((l) => `${l}\n`).join("") : null;
  }

  async write(path: string, value: string): Promise<void> {
    const answer = await this.#ask("write", path, value);
    if (answer.status !== "ok") throw new Error(answer.status.replace(/^err ?/, ""));
  }

  async mkdir(path: string, recursive = false): Promise<void> {
    const answer = await this.#ask("mkdir", path, recursive ? "p" : "");
    if (answer.status !== "ok") throw new Error(answer.status.replace(/^err ?/, ""));
  }

  async rmdir(paths: readonly string[]): Promise<boolean> {
    if (paths.length === 0) return true;
    return (await this.#ask("rmdir", paths.join("\x1f"))).status === "ok";
  }

  async dirs(path: string): Promise<string[] | null> {
    const answer = await this.#ask("dirs", path);
    return answer.status === "ok" ? answer.lines : null;
  }

  async exists(path: string): Promise<boolean> {
    return (await this.#ask("exists", path)).status === "ok";
  }

  /** Queues one operation; a helper that died is started again (once per operation). */
  #ask(op: string, path: string, value = ""): Promise<Answer> {
    if (/[\t\n]/.test(path + value)) return Promise.reject(new TypeError("tab or newline"));
    const asked = this.#queue.then(() =>
      this.#exchange(op, path, value).catch(() => {
        this.#stop();
        return this.#exchange(op, path, value);
      })
    );
    this.#queue = asked.catch(() => {});
    return asked;
  }

  async #exchange(op: string, path: string, value: string): Promise<Answer> {
    this.#start();
    await this.#writer!.write(new TextEncoder().encode(`${op}\t${path}\t${value}\n`));
    const lines: string[] = [];
    for (;;) {
      const line = await this.#line();
      if (!line.startsWith("|")) return { status: line, lines };
      lines.push(line.slice(1));
    }
  }

  /** The next line from the helper; reads only while an answer is due, so an idle helper holds no op. */
  async #line(): Promise<string> {
    for (;;) {
      const end = this.#buffered.indexOf("\n");
      if (end !== -1) {
        const line = this.#buffered.slice(0, end);
        this.#buffered = this.#buffered.slice(end + 1);
        return line;
      }
      const { value, done } = await this.#reader!.read();
      if (done) throw new Error("the cgroup helper exited");
      this.#buffered += new TextDecoder().decode(value);
    }
  }

  #start(): void {
    if (this.#child !== null) return;
    // A session of its own: a terminal's Ctrl-C is for the server, which
    // still needs the helper while it shuts down.
    const child = new Deno.Command(this.#shell, {
      args: ["-c", HELPER],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      clearEnv: true,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
      detached: true,
    }).spawn();
    // It ends when its stdin closes, with the server: it never keeps the server alive.
    child.unref();
    child.status.then(() => {
      if (this.#child === child) this.#stop();
    });
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#reader = child.stdout.getReader();
    this.#buffered = "";
  }

  #stop(): void {
    const child = this.#child;
    if (child === null) return;
    this.#child = null;
    this.#writer?.close().catch(() => {});
    this.#reader?.cancel().catch(() => {});
    this.#writer = null;
    this.#reader = null;
    try {
      child.kill("SIGKILL");
    } catch {
      // exited already
    }
  }
}

let shared: CgroupFs | null | undefined;

/**
 * The way this process reaches cgroup hierarchies: directly under
 * `--allow-all`, else through the helper shell `shell` when Deno may run it;
 * null when neither (a scoped `--allow-run` list without it).
 */
export function cgroupFs(shell: string): CgroupFs | null {
  if (shared !== undefined) return shared;
  try {
    Deno.readTextFileSync("/proc/self/cgroup");
    shared = directFs;
  } catch (err) {
    const runnable =
      Deno.permissions.querySync({ name: "run", command: shell }).state === "granted";
    shared = err instanceof Deno.errors.NotCapable && runnable ? new ShellFs(shell) : null;
    if (!(err instanceof Deno.errors.NotCapable)) shared = null; // no /proc: not Linux
  }
  return shared;
}
