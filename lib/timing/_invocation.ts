/**
 * Reading one simple command: the real program behind assignments and
 * wrappers (`sudo`, `timeout 5`, `uv run`, `python -m`), its sub-command or
 * script name, and the commands it runs itself (`sh -c`, `find -exec`).
 *
 * @module
 */
import { normalizeProgram, programInfo, sleepSeconds } from "./_programs.ts";
import { WRAPPERS } from "./_wrappers.ts";
import { LEADING_KEYWORDS } from "./_shell.ts";

/** A simple command with its wrappers stripped. */
export interface Invocation {
  program: string;
  args: string[];
  /** `timeout N cmd`: N seconds. */
  limit?: number;
}

/** A sub-command is a name: never a number, a path, an assignment or an option. */
const SUBCOMMAND_WORD = /^[A-Za-z_][A-Za-z0-9_.+\-]*$/;
/** Script names of `npm run` and the like may hold colons (`test:e2e`). */
const SCRIPT_WORD = /^[A-Za-z_][A-Za-z0-9_.+:\-]*$/;

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Strips assignments, keywords and wrappers (`sudo`, `timeout 5`, `uv run`) to the real program. */
export function unwrap(words: string[]): Invocation | null {
  let rest = words.filter((w) => w !== "");
  let limit: number | undefined;
  for (let guard = 0; guard < 10; guard++) {
    while (rest.length > 0 && (ASSIGNMENT.test(rest[0]!) || LEADING_KEYWORDS.has(rest[0]!))) {
      rest = rest.slice(1);
    }
    const head = rest[0];
    if (head === undefined) return null;
    const program = programName(head);
    const wrapper = WRAPPERS[program];
    const done = (): Invocation =>
      limit === undefined
        ? { program, args: rest.slice(1) }
        : { program, args: rest.slice(1), limit };
    if (program === "python") {
      // `python3 -u -X dev -m pytest` runs pytest.
      const module = pythonModule(rest);
      if (module !== null) {
        rest = rest.slice(module);
        continue;
      }
    }
    if (!wrapper) return done();
    let i = skipOptions(rest, 1, wrapper.valued);
    if (wrapper.via) {
      const via = wrapper.via.find((v) => v.split(" ").every((w, k) => rest[i + k] === w));
      if (!via) return done();
      i = skipOptions(rest, i + via.split(" ").length, wrapper.valued);
    }
    // env's own assignments come before the command.
    while (program === "env" && i < rest.length && ASSIGNMENT.test(rest[i]!)) i++;
    if (program === "timeout") {
      const s = sleepSeconds(rest[i]);
      if (s !== null) limit = Math.min(limit ?? Infinity, s);
    }
    i = skipOptions(rest, i + (wrapper.skip ?? 0), wrapper.valued);
    if (i >= rest.length) return done();
    rest = rest.slice(i);
  }
  return null;
}

/** `$(which python3)`, `$(command -v node)`: the program it finds. */
const FOUND_PROGRAM =
  /^\$\((?:which|command -v|type -p) +([\w.+-]+)\)$|^`(?:which|command -v) +([\w.+-]+)`$/;

/**
 * The program a command word names: its normalized base name, or for a word
 * that a shell must expand first (`$(...)`, `$CC`) the program it
 * plainly names, else `unknown`.
 */
function programName(word: string): string {
  const found = FOUND_PROGRAM.exec(word);
  if (found !== null) return normalizeProgram(found[1] ?? found[2]!);
  if (word.includes("$(") || word.includes("`")) return "unknown";
  return normalizeProgram(word);
}

/** Python options that take a value (`-X dev`, `-W ignore`). */
const PYTHON_VALUED = new Set(["-X", "-W", "-Q"]);

/** Index of the module of `python [options] -m <module>` in `words`, else null. */
function pythonModule(words: string[]): number | null {
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w === "-m") return words[i + 1] === undefined ? null : i + 1;
    if (!w.startsWith("-") || w === "-c" || w === "-") return null;
    if (PYTHON_VALUED.has(w)) i++;
  }
  return null;
}

/** Index of the first word at or after `from` that is not an option (or an option's value). */
function skipOptions(words: string[], from: number, valued: readonly string[]): number {
  let i = from;
  while (i < words.length) {
    const w = words[i]!;
    if (w === "--") return i + 1;
    if (!w.startsWith("-") || w === "-") return i;
    i += valued.includes(w) ? 2 : 1;
  }
  return i;
}

/** The sub-command (or script name) of an invocation, by its program's kind; null for none. */
export function subcommandOf(inv: Invocation): string | null {
  const { kind, valued } = programInfo(inv.program);
  if (kind === undefined || kind === "seconds") return null;
  const args = inv.args;
  if (kind === "follow") {
    return args.some((a) => /^-[A-Za-z]*[fF]|^--follow/.test(a)) ? "follow" : null;
  }
  if (kind === "script") return scriptName(args);
  let i = skipOptions(args, 0, valued);
  // `cargo +nightly build`: the toolchain is not the sub-command.
  if (inv.program === "cargo") {
    while (args[i]?.startsWith("+")) i = skipOptions(args, i + 1, valued);
  }
  if (kind === "target") {
    while (i < args.length && ASSIGNMENT.test(args[i]!)) i = skipOptions(args, i + 1, valued);
  }
  const first = subcommandWord(args[i]);
  if (first === null) return null;
  // `npm run build`, `deno task dev`, `docker compose up`: what follows is what varies.
  if (kind === "subcommand" && EXPANDED[inv.program]?.includes(first)) {
    const next = args[skipOptions(args, i + 1, valued)];
    return next !== undefined && SCRIPT_WORD.test(next) ? `${first}:${next}` : first;
  }
  return first;
}

/** `word` when it can name a sub-command, else null (numbers, paths, `VAR=1`...). */
function subcommandWord(word: string | undefined): string | null {
  return word !== undefined && SUBCOMMAND_WORD.test(word) ? word : null;
}

/** Sub-commands whose own first argument is part of the class. */
const EXPANDED: Record<string, readonly string[]> = {
  npm: ["run", "run-script"],
  pnpm: ["run"],
  yarn: ["run"],
  bun: ["run"],
  deno: ["run", "task"],
  docker: ["compose"],
  podman: ["compose"],
  nerdctl: ["compose"],
};

/** Options of interpreters that take a value (`node -r ts-node/register app.js`). */
const INTERPRETER_VALUED = ["-r", "--require", "--import", "--loader", "-W", "-X", "-I"];

/**
 * `python tools/gen.py` → `gen.py` (the file's name, never its path);
 * inline code (`-c`, `-e`) → `inline`; no script at all → `repl`.
 */
function scriptName(args: string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (["-c", "-e", "--eval", "-p", "--print"].includes(a)) return "inline";
    if (INTERPRETER_VALUED.includes(a)) i++;
    else if (!a.startsWith("-")) return subcommandWord(a.split("/").pop());
  }
  return "repl";
}

/** The script of `sh -c '...'` (also `bash -lc`, `zsh -ec`), else null. */
export function shellScript(inv: Invocation): string | null {
  if (!["sh", "bash", "zsh", "dash", "ksh"].includes(inv.program)) return null;
  for (let i = 0; i < inv.args.length; i++) {
    const a = inv.args[i]!;
    if (!a.startsWith("-") && !a.startsWith("+")) return null;
    if (/^-[a-zA-Z]*c[a-zA-Z]*$/.test(a)) return inv.args[i + 1] ?? null;
    // `-o pipefail`, `-euxo pipefail`, `+O extglob`: the option's name follows.
    if (/^[-+][a-zA-Z]*[oO]$/.test(a)) i++;
  }
  return null;
}

/** The command of `find ... -exec <command> ;` (or `-execdir`, `-ok`), else null. */
export function findExec(args: string[]): string[] | null {
  const at = args.findIndex((a) => a === "-exec" || a === "-execdir" || a === "-ok");
  if (at === -1) return null;
  const end = args.findIndex((a, i) => i > at && (a === ";" || a === "+"));
  const command = args.slice(at + 1, end === -1 ? undefined : end).filter((a) => a !== "{}");
  return command.length > 0 ? command : null;
}
