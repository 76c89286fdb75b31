/**
 * What the classifier knows about programs: their category and usual
 * complexity, and how to find their sub-command. Programs that merely wrap
 * another command are in `_wrappers.ts`.
 *
 * @module
 */

import { type Complexity, complexityRank } from "./complexity.ts";

/** Category and complexity of a program or one of its sub-commands. */
export interface Profile {
  category: string;
  complexity: Complexity;
}

/** How a program's first argument is read. */
export type SubcommandKind =
  /** `git clone`, `cargo build`: the first non-option word. */
  | "subcommand"
  /** `python tools/gen.py`: the script's file name. */
  | "script"
  /** `make test`: the first target (not a `VAR=value`). */
  | "target"
  /** `sleep 30`: the argument is a duration (stated, never part of the class). */
  | "seconds"
  /** `tail -f`: `follow` when it follows (runs until stopped), else nothing. */
  | "follow";

interface ProgramInfo extends Profile {
  kind?: SubcommandKind;
  /** Profiles of sub-commands (or targets) that differ from the program's. */
  sub?: Record<string, Profile>;
  /** Options of this program (before the sub-command) that take a value. */
  valued?: readonly string[];
}

const p = (category: string, complexity: Complexity): Profile => ({ category, complexity });

function many(names: string, info: ProgramInfo): Record<string, ProgramInfo> {
  return Object.fromEntries(names.split(" ").map((n) => [n, info]));
}

function subs(entries: Record<string, Profile>): Record<string, Profile> {
  const out: Record<string, Profile> = {};
  for (const [names, profile] of Object.entries(entries)) {
    for (const n of names.split(" ")) out[n] = profile;
  }
  return out;
}

const JS_PM: ProgramInfo = {
  ...p("package", "low"),
  kind: "subcommand",
  valued: ["--prefix", "-C", "--dir", "--filter", "-w", "--workspace", "--cwd"],
  sub: subs({
    "install i ci add update upgrade up": p("package", "medium"),
    "test t": p("test", "medium"),
    "build": p("build", "medium"),
    "lint": p("lint", "low"),
    "ls list view info outdated init why": p("package", "simple"),
    // Dev servers and watchers run until stopped.
    "start dev serve watch": p("server", "extreme"),
  }),
};

const PY_PM: ProgramInfo = {
  ...p("package", "low"),
  kind: "subcommand",
  sub: subs({
    "install add sync lock update upgrade create env": p("package", "medium"),
    "uninstall remove": p("package", "low"),
    "list show freeze search info": p("package", "simple"),
  }),
};

const OS_PM: ProgramInfo = {
  ...p("package", "low"),
  kind: "subcommand",
  sub: subs({
    "install upgrade dist-upgrade full-upgrade reinstall": p("package", "high"),
    "update remove purge autoremove": p("package", "low"),
    "search list show info policy": p("package", "simple"),
  }),
};

const CONTAINER: ProgramInfo = {
  ...p("container", "low"),
  kind: "subcommand",
  valued: ["-H", "--host", "--context", "-c", "--config", "-l", "--log-level"],
  sub: subs({
    "build buildx": p("container", "high"),
    "pull push run": p("container", "medium"),
    "compose": p("container", "medium"),
    "compose:up compose:build": p("container", "high"),
    "compose:down compose:ps compose:logs": p("container", "low"),
    "ps images logs inspect version info": p("container", "trivial"),
    "stop rm rmi kill start restart": p("container", "simple"),
  }),
};

const TEST: ProgramInfo = p("test", "medium");
const SERVER: ProgramInfo = p("server", "extreme");
const LINT: ProgramInfo = p("lint", "simple");
const BUILD_TOOL: ProgramInfo = { ...p("build", "high"), kind: "target" };

/** Programs by name (after path and version normalisation, see {@linkcode normalizeProgram}). */
export const PROGRAMS: Readonly<Record<string, ProgramInfo>> = {
  ...many(
    "ls cat echo printf pwd whoami date true false head tail wc which uname hostname id touch " +
      "mkdir rm rmdir cp mv ln chmod chown stat df ps kill cut sort uniq tr tee basename dirname " +
      "realpath readlink test [ jq yq env printenv free uptime nproc",
    p("shell", "trivial"),
  ),
  ...many("tail journalctl", { ...p("shell", "trivial"), kind: "follow" }),
  ...many("watch http.server uvicorn gunicorn hypercorn daphne flask jupyter nginx", SERVER),
  ...many(
    "grep egrep rg ag fd find du sed awk diff cmp file md5sum sha256sum",
    p("shell", "simple"),
  ),
  ...many("tar zip unzip gzip gunzip xz bzip2 zstd 7z", p("shell", "low")),
  sleep: { ...p("wait", "trivial"), kind: "seconds" },
  git: {
    ...p("vcs", "simple"),
    kind: "subcommand",
    valued: ["-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"],
    sub: subs({
      "clone": p("vcs", "medium"),
      "fetch pull push submodule gc lfs bisect": p("vcs", "low"),
      "status log diff show branch add commit checkout switch restore reset rev-parse config remote tag stash init mv rm blame describe ls-files":
        p("vcs", "trivial"),
    }),
  },
  ...many("gh hg svn", { ...p("vcs", "simple"), kind: "subcommand" }),
  ...many("npm pnpm yarn bun", JS_PM),
  ...many("pip uv poetry pipenv conda mamba micromamba", PY_PM),
  ...many("apt apt-get dnf yum apk brew pacman zypper snap", OS_PM),
  cargo: {
    ...p("build", "low"),
    kind: "subcommand",
    sub: subs({
      "build b install": p("build", "high"),
      "check c clippy doc": p("build", "medium"),
      "test t bench": p("test", "high"),
      "run r": p("script", "medium"),
      "fmt": p("lint", "trivial"),
      "update fetch": p("package", "low"),
      "new init": p("shell", "trivial"),
    }),
  },
  go: {
    ...p("build", "low"),
    kind: "subcommand",
    sub: subs({
      "build install": p("build", "medium"),
      "test": p("test", "medium"),
      "run generate": p("script", "low"),
      "mod get": p("package", "low"),
      "vet": p("lint", "low"),
      "fmt version env": p("lint", "trivial"),
    }),
  },
  deno: {
    ...p("script", "low"),
    kind: "subcommand",
    sub: subs({
      "test bench": p("test", "medium"),
      "compile": p("build", "medium"),
      "serve": p("server", "extreme"),
      "fmt lint": p("lint", "simple"),
      "check": p("lint", "low"),
      "install add cache outdated": p("package", "low"),
    }),
  },
  dotnet: {
    ...p("build", "medium"),
    kind: "subcommand",
    sub: subs({
      "test": p("test", "medium"),
      "run": p("script", "low"),
      "restore": p("package", "low"),
    }),
  },
  ...many("make gmake", {
    ...p("build", "medium"),
    kind: "target",
    valued: ["-C", "-f", "--file", "--directory", "-j", "--jobs", "-l", "-o", "-W"],
    sub: subs({
      "test check tests": p("test", "medium"),
      "clean distclean": p("shell", "trivial"),
      "lint fmt format": p("lint", "low"),
    }),
  }),
  ...many("cmake meson tsc webpack vite esbuild rollup parcel", p("build", "medium")),
  ninja: { ...p("build", "medium"), kind: "target" },
  ...many("gradle gradlew mvn mvnw sbt ant bazel bazelisk", BUILD_TOOL),
  ...many("pytest py.test jest vitest mocha ava karma phpunit rspec ctest nose2 unittest", TEST),
  ...many("tox nox playwright cypress", p("test", "high")),
  ...many(
    "eslint prettier ruff black isort flake8 shellcheck biome stylelint clang-format rustfmt gofmt",
    LINT,
  ),
  ...many("mypy pylint pyright", p("lint", "low")),
  ...many("docker podman nerdctl", CONTAINER),
  "docker-compose": {
    ...p("container", "medium"),
    kind: "subcommand",
    sub: subs({ "up build": p("container", "high"), "down ps logs": p("container", "low") }),
  },
  kubectl: {
    ...p("container", "low"),
    kind: "subcommand",
    valued: ["-n", "--namespace", "--context", "--kubeconfig"],
    sub: subs({
      "get describe logs version config": p("container", "simple"),
      "rollout wait": p("container", "medium"),
    }),
  },
  helm: {
    ...p("container", "low"),
    kind: "subcommand",
    sub: subs({ "install upgrade": p("container", "medium") }),
  },
  ...many("terraform tofu", {
    ...p("infra", "low"),
    kind: "subcommand",
    sub: subs({
      "plan": p("infra", "medium"),
      "apply destroy": p("infra", "high"),
      "fmt validate version": p("infra", "simple"),
    }),
  }),
  ...many("curl wget http https xh", p("network", "low")),
  ...many("ssh scp rsync sftp", p("network", "medium")),
  ...many("ping dig nslookup host nc", p("network", "simple")),
  ...many(
    "python node ruby perl php bash sh zsh dash ksh fish tsx ts-node rscript lua julia java",
    { ...p("script", "low"), kind: "script" },
  ),
  claude: p("claude", "medium"),
};

/** Unknown programs. */
const UNKNOWN_PROFILE: Profile = p("other", "low");

/** Scripts of `npm run` (and `deno task`) by what their name suggests. */
function runScriptProfile(script: string): Profile {
  if (/test|spec|e2e|jest|vitest|mocha|pytest|cypress|playwright/.test(script)) {
    return p("test", "medium");
  }
  if (/build|compile|bundle|dist/.test(script)) return p("build", "medium");
  if (/lint|format|fmt|check|typecheck|tsc/.test(script)) return p("lint", "low");
  // Dev servers and watchers run until stopped.
  if (/^(dev|start|serve|watch)\b/.test(script)) return p("server", "extreme");
  return p("script", "low");
}

/** What `sleep infinity` states: more than any time limit may be. */
const FOREVER_S = 365 * 86400;

/**
 * `sleep N[smhd]` (or `infinity`) in seconds, or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sleepSeconds } from "./_programs.ts";
 * assert.equal(sleepSeconds("2m"), 120);
 * assert.equal(sleepSeconds("soon"), null);
 * ```
 */
export function sleepSeconds(arg: string | undefined): number | null {
  if (arg === "infinity" || arg === "inf") return FOREVER_S;
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(arg ?? "");
  if (!m) return null;
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

/** Scripts whose names say they serve or watch: they run until stopped. */
const SERVER_SCRIPT = /serv(er|e)?\b|^app\.|daemon|worker|watch|listen/;

/** Package managers that run a package script named as their sub-command. */
const SCRIPT_RUNNERS = new Set(["yarn", "pnpm", "bun"]);

/** Categories whose work is long enough that they are never below `medium` (10 minutes). */
const LONG_CATEGORIES = new Set(["build", "test"]);

/** Profile of `program` with optional `subcommand`. */
export function profileOf(program: string, subcommand: string | null): Profile {
  const profile = ownProfile(program, subcommand);
  return LONG_CATEGORIES.has(profile.category) &&
      complexityRank(profile.complexity) < complexityRank("medium")
    ? p(profile.category, "medium")
    : profile;
}

function ownProfile(program: string, subcommand: string | null): Profile {
  const info = PROGRAMS[program];
  if (!info) return UNKNOWN_PROFILE;
  if (subcommand !== null) {
    if (info.kind === "follow") return subcommand === "follow" ? SERVER : info;
    if (info.kind === "script") {
      // A bare interpreter is a REPL, waiting on its input.
      if (subcommand === "repl" || SERVER_SCRIPT.test(subcommand)) return SERVER;
      return info;
    }
    // `npm run build` is classed as `run:build`, by what its script name suggests.
    const run = /^(?:run|run-script|task):(.+)$/.exec(subcommand);
    if (run) return runScriptProfile(run[1]!);
    const own = info.sub?.[subcommand] ?? info.sub?.[subcommand.split(":")[0]!];
    if (own) return own;
    // `yarn jest`, `pnpm build`: any other word names a package script.
    if (SCRIPT_RUNNERS.has(program)) return runScriptProfile(subcommand);
  }
  return { category: info.category, complexity: info.complexity };
}

/** Kind and valued options of `program`. */
export function programInfo(
  program: string,
): { kind: SubcommandKind | undefined; valued: readonly string[] } {
  const info = PROGRAMS[program];
  return { kind: info?.kind, valued: info?.valued ?? [] };
}

/**
 * `/usr/bin/python3.12` → `python`, `./gradlew` → `gradlew`, `pip3` → `pip`:
 * one name per program so their histories pool.
 */
export function normalizeProgram(word: string): string {
  const base = (word.split("/").pop() ?? word).toLowerCase();
  if (/^python[\d.]*$/.test(base)) return "python";
  if (/^pip[\d.]*$/.test(base)) return "pip";
  if (base === "nodejs") return "node";
  if (base === "py.test") return "pytest";
  return base;
}
