/**
 * Programs that are not the work themselves: wrappers that run the command
 * that follows them (`sudo`, `timeout 5`, `uv run`, ...), builtins too quick
 * to count, and commands that only prepare the shell (`cd`, `export`).
 *
 * @module
 */

/** A wrapper runs the command that follows it; see {@linkcode WRAPPERS}. */
export interface Wrapper {
  /** Options that take a value. */
  valued: readonly string[];
  /** Positional words before the wrapped command (`timeout 5`: the duration). */
  skip?: number;
  /** The wrapper is a sub-command: `uv run`, `npm exec`. */
  via?: readonly string[];
}

/** Programs that only run another command, by name. */
export const WRAPPERS: Readonly<Record<string, Wrapper>> = {
  sudo: {
    valued: ["-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user", "--group"],
  },
  doas: { valued: ["-u", "-C"] },
  env: { valued: ["-u", "-C", "--unset", "--chdir"] },
  timeout: { valued: ["-s", "-k", "--signal", "--kill-after"], skip: 1 },
  nice: { valued: ["-n", "--adjustment"] },
  ionice: { valued: ["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"] },
  nohup: { valued: [] },
  time: { valued: ["-f", "-o", "--format", "--output"] },
  exec: { valued: ["-a"] },
  command: { valued: [] },
  builtin: { valued: [] },
  stdbuf: { valued: ["-i", "-o", "-e"] },
  taskset: { valued: [], skip: 1 },
  chrt: { valued: [], skip: 1 },
  unbuffer: { valued: [] },
  "xvfb-run": { valued: ["-s", "-n", "-e", "-f", "-p", "--server-args", "--server-num"] },
  npx: { valued: ["-p", "--package", "-c", "--call"] },
  xargs: {
    valued: [
      "-I",
      "-L",
      "-n",
      "-P",
      "-d",
      "-E",
      "-s",
      "-a",
      "--max-args",
      "--max-procs",
      "--delimiter",
      "--arg-file",
      "--replace",
    ],
  },
  parallel: { valued: ["-j", "--jobs", "-S", "--sshlogin", "--joblog", "--results"] },
  bunx: { valued: ["-p", "--package"] },
  pnpx: { valued: [] },
  uv: {
    valued: ["--with", "--python", "-p", "--project", "--directory", "--env-file", "--extra"],
    via: ["run", "tool run", "x"],
  },
  uvx: { valued: ["--with", "--python", "-p", "--from"] },
  poetry: { valued: [], via: ["run"] },
  pipenv: { valued: [], via: ["run"] },
  bundle: { valued: [], via: ["exec"] },
  conda: { valued: ["-n", "--name", "-p", "--prefix"], via: ["run"] },
  npm: { valued: ["-p", "--package", "-c", "--call"], via: ["exec", "x"] },
  pnpm: { valued: [], via: ["exec", "dlx"] },
  yarn: { valued: [], via: ["exec", "dlx"] },
};

/** Builtins so quick that any other program in the same command outweighs them. */
export const TRIVIAL_PROGRAMS: ReadonlySet<string> = new Set([
  "echo",
  "printf",
  "true",
  "false",
  "test",
  "[",
  "[[",
  ":",
  "read",
  "pwd",
]);

/** Commands that only prepare the shell for the command that matters. */
export const SETUP_PROGRAMS: ReadonlySet<string> = new Set([
  "cd",
  "pushd",
  "popd",
  "export",
  "source",
  ".",
  "set",
  "unset",
  "umask",
  "ulimit",
  "alias",
  "mkdir",
  "local",
  "declare",
  "shift",
  "trap",
]);
