/**
 * The command allowlist: a `command` string is split into argv by a POSIX
 * shell-words parser and run without a shell, so anything a shell would
 * have done beyond quoting (operators, substitutions, expansions) is refused
 * with a reason rather than silently passed on as literal text.
 *
 * @module
 */

import { CommandRefusedError, type ExecutorErrorOptions, InvalidParamsError } from "../errors.ts";

/**
 * A command refused by the allowlist policy (JSON-RPC code -32001). `data`
 * is `{reason, token?, index?, program?}`; `message` says why in words.
 */
export class CommandPolicyError extends CommandRefusedError {
  /** Creates a policy refusal. */
  constructor(message: string, options: ExecutorErrorOptions = {}) {
    super(message, options);
    this.name = "CommandPolicyError";
  }
}

/**
 * A command string that is not valid shell quoting (JSON-RPC code -32602):
 * an unterminated quote or a trailing backslash. `data` is `{reason, index}`.
 */
export class ShellWordsError extends InvalidParamsError {
  /** Creates a quoting error. */
  constructor(message: string, options: ExecutorErrorOptions = {}) {
    super(message, options);
    this.name = "ShellWordsError";
  }
}

/** What in the command made the policy refuse it. */
interface Hazard {
  reason: "operator" | "substitution" | "expansion" | "comment" | "newline";
  /** Words naming the construct, e.g. "shell operator". */
  what: string;
  token: string;
}

const POLICY_SUFFIX = "is not allowed when ALLOWED_COMMANDS is set";
const NAME_START = /[A-Za-z_]/;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const DIGITS = "0123456789";
const SPECIAL_PARAMS = "@*#?-$!";
/** Characters a backslash still escapes inside double quotes (newline is handled apart). */
const DQ_ESCAPABLE = '$`"\\';

const isBlank = (c: string): boolean => c === " " || c === "\t" || c === "\n";

function lastNonBlankIndex(s: string): number {
  let i = s.length - 1;
  while (i >= 0 && isBlank(s[i]!)) i--;
  return i;
}

/** What a `$` at `i` starts, if the shell would expand it; null when it is a literal `$`. */
function dollarHazard(cmd: string, i: number, inDouble: boolean): Hazard | null {
  const next = cmd[i + 1];
  if (next === undefined) return null;
  if (next === "(") {
    return cmd[i + 2] === "("
      ? { reason: "substitution", what: "arithmetic expansion", token: "$((" }
      : { reason: "substitution", what: "command substitution", token: "$(" };
  }
  if (next === "{") return { reason: "expansion", what: "parameter expansion", token: "${" };
  if (next === "[") return { reason: "substitution", what: "arithmetic expansion", token: "$[" };
  if (NAME_START.test(next)) {
    NAME.lastIndex = i + 1;
    const name = NAME.exec(cmd)![0];
    return { reason: "expansion", what: "variable expansion", token: `$${name}` };
  }
  if (DIGITS.includes(next)) {
    return { reason: "expansion", what: "positional parameter", token: `$${next}` };
  }
  if (SPECIAL_PARAMS.includes(next)) {
    return { reason: "expansion", what: "special parameter", token: `$${next}` };
  }
  // bash's $'...' and $"..." quoting; inside double quotes these are literal.
  if (!inDouble && (next === "'" || next === '"')) {
    return { reason: "expansion", what: "dollar quoting", token: `$${next}` };
  }
  return null;
}

/** What an unquoted, unescaped character at `i` starts, if anything beyond a word. */
function unquotedHazard(cmd: string, i: number, inWord: boolean): Hazard | null {
  const c = cmd[i]!;
  const next = cmd[i + 1];
  switch (c) {
    case ";":
    case "(":
    case ")":
      return { reason: "operator", what: "shell operator", token: c };
    case "&":
    case "|":
    case ">":
    case "<":
      return { reason: "operator", what: "shell operator", token: next === c ? c + c : c };
    case "`":
      return { reason: "substitution", what: "command substitution", token: "`" };
    case "$":
      return dollarHazard(cmd, i, false);
    case "#":
      // Only a word-initial `#` starts a comment; `a#b` is a plain word.
      return inWord ? null : { reason: "comment", what: "comment", token: "#" };
    case "~":
      return inWord ? null : { reason: "expansion", what: "tilde expansion", token: "~" };
    default:
      return null;
  }
}

function refusal(hazard: Hazard, index: number, inDouble: boolean): CommandPolicyError {
  const where = inDouble ? " (even inside double quotes)" : "";
  const message = hazard.reason === "newline"
    ? `Command refused: a newline separates commands and ${POLICY_SUFFIX}`
    : `Command refused: ${hazard.what} '${hazard.token}' ${POLICY_SUFFIX}${where}`;
  return new CommandPolicyError(message, {
    data: { reason: hazard.reason, token: hazard.token, index },
  });
}

/** A token of {@linkcode shellTokens}: a word (quotes removed), or an operator. */
export type ShellToken = { word: string } | { op: string };

/**
 * How {@linkcode scan} reads a command: `words` splits on blanks only,
 * `policy` also refuses what only a shell would act on, `lenient` splits
 * at operators too and never throws (for classification, where a best
 * guess beats a refusal).
 */
type ScanMode = "words" | "policy" | "lenient";

/** Redirection operators, longest first; a lenient scan reports each as one `op`. */
const REDIRECTION = /<<<|<<-|<<|<>|<&|>>|>&|>\||&>>|&>|<|>/y;

/** The end of a `$(...)`, `${...}` or backquoted text starting at `i`, for lenient scans. */
function substitutionEnd(cmd: string, i: number): number {
  if (cmd[i] === "`") {
    const close = cmd.indexOf("`", i + 1);
    return close === -1 ? cmd.length : close + 1;
  }
  const open = cmd[i + 1]!;
  const close = open === "(" ? ")" : "}";
  let depth = 0;
  for (let j = i + 1; j < cmd.length; j++) {
    if (cmd[j] === open) depth++;
    else if (cmd[j] === close && --depth === 0) return j + 1;
  }
  return cmd.length;
}

/**
 * The one scanner behind every export, so the parser, the policy and the
 * classifier can never disagree about what is quoted. With `policy`, it
 * throws at the first construct a shell would treat specially.
 */
function scan(cmd: string, mode: ScanMode): ShellToken[] {
  const tokens: ShellToken[] = [];
  const policy = mode === "policy";
  const lenient = mode === "lenient";
  let word = "";
  let inWord = false;
  const endWord = () => {
    if (inWord) tokens.push({ word });
    word = "";
    inWord = false;
  };
  let i = 0;
  // A newline separates commands only between two of them; leading and
  // trailing ones (a client's "echo hi\n") are harmless blanks.
  const lastNonBlank = lastNonBlankIndex(cmd);
  while (i < cmd.length) {
    const c = cmd[i]!;
    if (policy) {
      const hazard = c === "\n"
        ? (inWord || tokens.length > 0) && i < lastNonBlank
          ? { reason: "newline", what: "a newline", token: "\n" } as const
          : null
        : unquotedHazard(cmd, i, inWord);
      if (hazard !== null) throw refusal(hazard, i, false);
    }
    if (lenient) {
      const next = lenientStep(cmd, i, word, inWord);
      if (next !== null) {
        if (next.dropWord) {
          word = "";
          inWord = false;
        }
        if (next.op !== undefined) {
          endWord();
          tokens.push({ op: next.op });
        } else if (next.text !== undefined) {
          word += next.text;
          inWord = true;
        }
        i = next.end;
        continue;
      }
    }
    if (isBlank(c)) {
      endWord();
      i++;
    } else if (c === "\\") {
      if (i + 1 >= cmd.length) {
        if (lenient) break;
        throw new ShellWordsError("Command ends with a backslash that escapes nothing", {
          data: { reason: "trailing_backslash", index: i },
        });
      }
      if (cmd[i + 1] === "\n") {
        i += 2; // line continuation: removed, joins the lines
        continue;
      }
      const escaped = String.fromCodePoint(cmd.codePointAt(i + 1)!);
      word += escaped;
      inWord = true;
      i += 1 + escaped.length;
    } else if (c === "'") {
      let end = cmd.indexOf("'", i + 1);
      if (end === -1) {
        if (!lenient) {
          throw new ShellWordsError(`Unterminated single quote at index ${i}`, {
            data: { reason: "unterminated_single_quote", index: i },
          });
        }
        end = cmd.length;
      }
      word += cmd.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      const open = i;
      i++;
      for (;;) {
        const d = cmd[i];
        if (d === undefined) {
          if (lenient) break;
          throw new ShellWordsError(`Unterminated double quote at index ${open}`, {
            data: { reason: "unterminated_double_quote", index: open },
          });
        }
        if (d === '"') break;
        if (d === "\\") {
          const next = cmd[i + 1];
          if (next === "\n") {
            i += 2;
            continue;
          }
          if (next !== undefined && DQ_ESCAPABLE.includes(next)) {
            word += next;
            i += 2;
            continue;
          }
          // Before any other character the backslash is literal.
          word += d;
          i++;
          continue;
        }
        if (policy) {
          const hazard = d === "`"
            ? { reason: "substitution", what: "command substitution", token: "`" } as const
            : d === "$"
            ? dollarHazard(cmd, i, true)
            : null;
          if (hazard !== null) throw refusal(hazard, i, true);
        }
        word += d;
        i++;
      }
      inWord = true;
      i++; // the closing quote
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  endWord();
  return tokens;
}

/** What a lenient scan does with an unquoted character beyond plain words. */
interface LenientStep {
  /** An operator token to emit (the word so far ends first). */
  op?: string;
  /** Text to append to the current word, verbatim. */
  text?: string;
  /** Forget the word so far (a redirection's file descriptor number). */
  dropWord?: boolean;
  /** Where scanning resumes. */
  end: number;
}

/**
 * Operators, comments and substitutions for a lenient scan: `;` `&` `&&`
 * `|` `||` `|&` `;;` `(` `)` and newlines are operators, redirections are
 * reported as one `op` each (with a leading fd number dropped), and
 * `$(...)`, `${...}` and backquotes stay inside their word, unexpanded.
 */
function lenientStep(cmd: string, i: number, word: string, inWord: boolean): LenientStep | null {
  const c = cmd[i]!;
  const next = cmd[i + 1];
  if (c === "#" && !inWord) {
    const nl = cmd.indexOf("\n", i);
    return { end: nl === -1 ? cmd.length : nl };
  }
  if ((c === "$" && (next === "(" || next === "{")) || c === "`") {
    const end = substitutionEnd(cmd, i);
    return { text: cmd.slice(i, end), end };
  }
  if (c === "<" || c === ">" || (c === "&" && next === ">")) {
    REDIRECTION.lastIndex = i;
    const op = REDIRECTION.exec(cmd)![0];
    return { op, dropWord: inWord && /^\d+$/.test(word), end: i + op.length };
  }
  if (c === "\n" || c === "(" || c === ")") return { op: c, end: i + 1 };
  if (c === ";" || c === "&" || c === "|") {
    const op = next === c || (c === "|" && next === "&") ? c + next : c;
    return { op, end: i + op.length };
  }
  return null;
}

/**
 * Splits a command line into words and operators, the way a shell would
 * before expanding anything, and never throws: for reading what a command
 * runs (classification), not for running it. Quoting is as in
 * {@linkcode splitShellWords}; unterminated quotes run to the end; comments
 * are dropped; `$(...)`, `${...}` and backquotes stay literal in their word.
 *
 * @example Operators and redirections are tokens of their own
 * ```ts
 * import assert from "node:assert/strict";
 * import { shellTokens } from "./command_policy.ts";
 * assert.deepEqual(shellTokens(`cd 'my dir' && make 2>&1 | tee "log" # all`), [
 *   { word: "cd" }, { word: "my dir" }, { op: "&&" }, { word: "make" }, { op: ">&" },
 *   { word: "1" }, { op: "|" }, { word: "tee" }, { word: "log" },
 * ]);
 * ```
 */
export function shellTokens(cmd: string): ShellToken[] {
  return scan(cmd, "lenient");
}

/** The words of tokens from a scan that emits no operators. */
function wordsOf(tokens: ShellToken[]): string[] {
  return tokens.map((t) => ("word" in t ? t.word : t.op));
}

/**
 * Splits a command line into words the way a POSIX shell does, with no shell
 * involved. Single quotes keep everything literally; in double quotes a
 * backslash escapes only `$`, `` ` ``, `"`, `\` and newline; outside quotes
 * a backslash escapes any character; backslash-newline joins lines. Words
 * are separated by unquoted spaces, tabs and newlines.
 *
 * Only quoting is interpreted: operators (`;`, `|`, `>`, ...), `$`,
 * backticks, `#` and glob characters are ordinary characters here. Use
 * {@linkcode checkCommand} to refuse commands that rely on them.
 *
 * @param cmd The command line.
 * @returns Its words, with quotes and escapes removed.
 * @throws {ShellWordsError} on an unterminated quote or a trailing backslash.
 *
 * @example Quotes group, escapes are removed
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitShellWords } from "./command_policy.ts";
 * assert.deepEqual(
 *   splitShellWords(`grep -e 'a b' "c \\"d\\"" e\\ f ''`),
 *   ["grep", "-e", "a b", 'c "d"', "e f", ""],
 * );
 * ```
 */
export function splitShellWords(cmd: string): string[] {
  return wordsOf(scan(cmd, "words"));
}

/**
 * Checks that `argv[0]` names an allowed program. A bare name matches an
 * entry exactly; a path (`/bin/echo`, `./echo`) matches an entry equal to the
 * path or to its basename. So list full paths when clients could place
 * their own program of an allowed name somewhere reachable.
 *
 * @param argv The words to run; `argv[0]` is the program.
 * @param allowed Program names or paths (`ALLOWED_COMMANDS`).
 * @returns A copy of `argv`, to run without a shell.
 * @throws {CommandPolicyError} when `argv` is empty or the program is not listed.
 *
 * @example Paths match by basename
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkArgv } from "./command_policy.ts";
 * assert.deepEqual(checkArgv(["/bin/echo", "hi"], ["echo"]).argv, ["/bin/echo", "hi"]);
 * assert.throws(() => checkArgv(["rm", "-rf", "/"], ["echo"]), /Command 'rm' is not allowed/);
 * ```
 */
export function checkArgv(argv: readonly string[], allowed: readonly string[]): { argv: string[] } {
  const program = argv[0];
  if (program === undefined) {
    throw new CommandPolicyError("Command cannot be empty", { data: { reason: "empty" } });
  }
  const base = program.slice(program.lastIndexOf("/") + 1);
  if (!allowed.includes(program) && !(base !== "" && base !== program && allowed.includes(base))) {
    throw new CommandPolicyError(`Command '${program}' is not allowed`, {
      data: { reason: "not_allowed", program },
    });
  }
  return { argv: [...argv] };
}

/**
 * Turns a `command` string into an argv to run without a shell, under the
 * allowlist policy. Refused, with a message saying why:
 * - shell operators outside quotes: `;` `&` `&&` `|` `||` `>` `>>` `<` `<<` `(` `)`;
 * - an unquoted newline between two commands (leading and trailing newlines
 *   and backslash-newline are fine);
 * - command substitution (`` ` ``, `$(`) and arithmetic (`$((`, `$[`), also in
 *   double quotes;
 * - parameter expansion (`$NAME`, `${`, `$1`, `$?`, ...), also in double quotes,
 *   since no shell runs to expand it; and bash's `$'...'` / `$"..."`;
 * - a word-initial `#` (comment) or `~` (tilde expansion);
 * - a program not on the list (see {@linkcode checkArgv}).
 *
 * Everything inside single quotes is literal, and a backslash makes any
 * character literal (`echo \;` passes `;`). Glob characters `*`, `?`, `[`
 * and braces are passed literally: nothing expands them.
 *
 * @param command The command line a client sent.
 * @param allowed Program names or paths (`ALLOWED_COMMANDS`); empty refuses all.
 * @returns The argv to run without a shell.
 * @throws {CommandPolicyError} (code -32001) when refused, including for bad quoting.
 *
 * @example Operators are refused, quoted text is literal
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkCommand } from "./command_policy.ts";
 * assert.deepEqual(checkCommand("echo 'a; b' \\;", ["echo"]).argv, ["echo", "a; b", ";"]);
 * assert.throws(
 *   () => checkCommand("echo ok; touch X", ["echo"]),
 *   { code: -32001, message: "Command refused: shell operator ';' is not allowed when ALLOWED_COMMANDS is set" },
 * );
 * ```
 */
export function checkCommand(command: string, allowed: readonly string[]): { argv: string[] } {
  if (command.trim() === "") {
    throw new CommandPolicyError("Command cannot be empty", { data: { reason: "empty" } });
  }
  let argv: string[];
  try {
    argv = wordsOf(scan(command, "policy"));
  } catch (err) {
    if (!(err instanceof ShellWordsError)) throw err;
    const reason = err.message.charAt(0).toLowerCase() + err.message.slice(1);
    throw new CommandPolicyError(`Command refused: ${reason}`, { data: err.data, cause: err });
  }
  return checkArgv(argv, allowed);
}
