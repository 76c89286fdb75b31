/**
 * Reading a shell command line into its simple commands (words, redirections
 * removed) and its outermost compound shape, with what command
 * substitutions run counted too and here-document bodies left out.
 *
 * @module
 */
import { shellTokens } from "../security/command_policy.ts";

/** Compound shell shapes that get a class of their own (`shell:<shape>:<program>`). */
export type Shape = "loop" | "if" | "case";

/** How deep `sh -c`, `find -exec` and `$(...)` nest before they are no longer followed. */
export const MAX_SHELL_DEPTH = 3;

/** A shell script read into its simple commands and its compound shape. */
export interface Script {
  /** Simple commands, each its words (redirections removed), in order. */
  commands: string[][];
  /** The outermost compound construct, if any. */
  shape: Shape | null;
}

/** Reserved words that may start a simple command and are not part of it. */
export const LEADING_KEYWORDS = new Set([
  "!",
  "then",
  "do",
  "else",
  "{",
  "}",
  "time",
  "done",
  "fi",
  "esac",
]);
/** Words that start a compound command, and its shape. */
const SHAPE_WORDS: Readonly<Record<string, Shape>> = {
  for: "loop",
  select: "loop",
  while: "loop",
  until: "loop",
  if: "if",
  elif: "if",
  case: "case",
};
/** Headers whose words are not a command: `for x in a b`, `case $x in`. */
const HEADER_WORDS = new Set(["for", "select", "case"]);
/** Operators that end a simple command. */
const SEPARATORS = new Set([";", "&", "&&", "||", "|", "|&", "\n", ";;", ";&", ";;&"]);

/**
 * Reads a command line into simple commands and its shape, with the lenient
 * scanner of lib/security/command_policy.ts (the one the allowlist policy uses).
 */
export function readScript(line: string, nesting = 0): Script {
  const commands: string[][] = [];
  let shape: Shape | null = null;
  let words: string[] = [];
  let depth = 0;
  let skipNext = false;
  const end = (casePattern = false) => {
    let rest = words;
    words = [];
    for (;;) {
      while (rest.length > 0 && LEADING_KEYWORDS.has(rest[0]!)) rest = rest.slice(1);
      const opens = SHAPE_WORDS[rest[0] ?? ""];
      if (opens === undefined) break;
      shape ??= opens;
      // `while make; do`: the condition is a command; `for x in a b`: no command.
      rest = HEADER_WORDS.has(rest[0]!) ? [] : rest.slice(1);
    }
    if (!casePattern && rest.length > 0) commands.push(rest);
  };
  for (const token of shellTokens(stripHeredocs(line))) {
    if ("word" in token) {
      // `x=$(make)`, `echo "$(npm test)"`: what a substitution runs counts too.
      if (nesting < MAX_SHELL_DEPTH) {
        for (const inner of substitutions(token.word)) {
          commands.push(...readScript(inner, nesting + 1).commands);
        }
      }
      if (skipNext) skipNext = false;
      else words.push(token.word);
    } else if (token.op === "(") {
      // `name() { ... }` defines a function: the name is not a command.
      if (words.length === 1) words = [];
      end();
      depth++;
    } else if (token.op === ")") {
      // An unmatched `)` ends a case pattern (`a|b) cmd ;;`), not a command.
      end(depth === 0);
      depth = Math.max(0, depth - 1);
    } else if (SEPARATORS.has(token.op)) {
      end();
    } else {
      skipNext = true; // a redirection: the next word is its target
    }
  }
  end();
  return { commands, shape };
}

/** A here-document's start: `<<EOF`, `<<-'EOF'`, `<< "END"` (not a `<<<` here-string). */
const HEREDOC = /<<(?!<)-?[ \t]*(["']?)([A-Za-z_][\w.-]*)\1/g;

/**
 * `line` without the bodies of its here-documents, which are data, not
 * commands (`cat <<EOF` ... `EOF`).
 */
function stripHeredocs(line: string): string {
  if (!line.includes("<<")) return line;
  let out = "";
  let from = 0;
  HEREDOC.lastIndex = 0;
  for (let m = HEREDOC.exec(line); m !== null; m = HEREDOC.exec(line)) {
    if (m.index < from) continue;
    const bodyStart = line.indexOf("\n", HEREDOC.lastIndex);
    if (bodyStart === -1) break;
    const delimiter = new RegExp(`\n\t*${m[2]!.replace(/[.]/g, "\\.")}[ \t]*(?:\n|$)`, "g");
    delimiter.lastIndex = bodyStart;
    const end = delimiter.exec(line);
    const resume = end === null ? line.length : end.index + end[0].length - 1;
    out += line.slice(from, bodyStart);
    from = resume;
    HEREDOC.lastIndex = resume;
  }
  return out + line.slice(from);
}

/** The scripts of the command substitutions (`$(...)`, backquotes) in a word. */
function substitutions(word: string): string[] {
  const found: string[] = [];
  for (let i = 0; i < word.length; i++) {
    if (word[i] === "`") {
      const close = word.indexOf("`", i + 1);
      if (close === -1) break;
      found.push(word.slice(i + 1, close));
      i = close;
    } else if (word[i] === "$" && word[i + 1] === "(" && word[i + 2] !== "(") {
      let depth = 0;
      let j = i + 1;
      for (; j < word.length; j++) {
        if (word[j] === "(") depth++;
        else if (word[j] === ")" && --depth === 0) break;
      }
      found.push(word.slice(i + 2, j));
      i = j;
    }
  }
  return found;
}
