/**
 * A small POSIX-shell word splitter, enough to find the program in a command
 * line: quotes, backslash escapes, comments and the operators that separate
 * simple commands. It does not expand anything; `$(...)` stays literal text.
 *
 * @module
 */

/**
 * Splits `line` into simple commands (at unquoted `;`, `&`, `|`, `&&`, `||`
 * and newlines), each a list of words with quotes removed. Redirections stay
 * as words. Unbalanced quotes run to the end of the line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitCommands } from "./_shell_words.ts";
 * assert.deepEqual(splitCommands(`cd 'my dir' && git commit -m "a b" # note`), [
 *   ["cd", "my dir"],
 *   ["git", "commit", "-m", "a b"],
 * ]);
 * ```
 */
export function splitCommands(line: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = "";
  let inWord = false;
  const endWord = () => {
    if (inWord) words.push(word);
    word = "";
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0) commands.push(words);
    words = [];
  };

  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const close = line.indexOf("'", i + 1);
      const end = close === -1 ? line.length : close;
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      for (i++; i < line.length && line[i] !== '"'; i++) {
        // Inside double quotes a backslash only escapes these.
        if (line[i] === "\\" && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1]!)) i++;
        word += line[i];
      }
    } else if (c === "\\") {
      // Backslash-newline is a line continuation and leaves nothing behind.
      if (i + 1 < line.length && line[i + 1] !== "\n") {
        word += line[i + 1];
        inWord = true;
      }
      i++;
    } else if (c === "#" && !inWord) {
      const nl = line.indexOf("\n", i);
      i = nl === -1 ? line.length : nl - 1;
    } else if (c === ";" || c === "&" || c === "|" || c === "\n") {
      // `2>&1` and `>&2` are redirections, not the `&` operator.
      if (c === "&" && (line[i - 1] === ">" || line[i - 1] === "<")) {
        word += c;
        inWord = true;
        continue;
      }
      endCommand();
      if ((c === "&" || c === "|") && line[i + 1] === c) i++;
    } else if (c === " " || c === "\t" || c === "\r") {
      endWord();
    } else {
      word += c;
      inWord = true;
    }
  }
  endCommand();
  return commands;
}
