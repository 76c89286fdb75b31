/**
 * A POSIX shell-words scanner: splits a command line into words the way a
 * shell would before expanding anything, with no shell involved, and knows
 * which constructs a shell would act on beyond quoting (the hazards the
 * allowlist policy in lib/security/command_policy.ts refuses).
 *
 * @module
 */

import { type ExecutorErrorOptions, InvalidParamsError } from "../errors.ts";

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

/** A construct a shell would act on beyond quoting, which the policy refuses. */
export interface Hazard {
  reason: "operator" | "substitution" | "expansion" | "comment" | "newline";
  /** Words naming the construct, e.g. "shell operator". */
  what: string;
  token: string;
}

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

/** A token of {@linkcode shellTokens}: a word (quotes removed), or an operator. */
export type ShellToken = { word: string } | { op: string };

/**
 * How {@linkcode scan} reads a command: `words` splits on blanks only,
 * `policy` also refuses what only a shell would act on, `lenient` splits
 * at operators too and never throws (for classification, where a best
 * guess beats a refusal).
 */
export type ScanMode = "words" | "policy" | "lenient";

/** Makes the error a `policy` scan throws at a hazard (at `index`, in double quotes or not). */
export type Refuse = (hazard: Hazard, index: number, inDouble: boolean) => Error;

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
 * throws `refuse`'s error at the first construct a shell would treat specially.
 */
export function scan(cmd: string, mode: ScanMode, refuse?: Refuse): ShellToken[] {
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
      if (hazard !== null) throw refuse!(hazard, i, false);
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
          if (hazard !== null) throw refuse!(hazard, i, true);
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
 * import { shellTokens } from "./shell_words.ts";
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
export function wordsOf(tokens: ShellToken[]): string[] {
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
 * `checkCommand()` (lib/security/command_policy.ts) to refuse commands that
 * rely on them.
 *
 * @param cmd The command line.
 * @returns Its words, with quotes and escapes removed.
 * @throws {ShellWordsError} on an unterminated quote or a trailing backslash.
 *
 * @example Quotes group, escapes are removed
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitShellWords } from "./shell_words.ts";
 * assert.deepEqual(
 *   splitShellWords(`grep -e 'a b' "c \\"d\\"" e\\ f ''`),
 *   ["grep", "-e", "a b", 'c "d"', "e f", ""],
 * );
 * ```
 */
export function splitShellWords(cmd: string): string[] {
  return wordsOf(scan(cmd, "words"));
}
