import assert from "node:assert/strict";
import fc from "fast-check";
import { ShellWordsError, splitShellWords } from "../../lib/security/shell_words.ts";

/** Quotes a word for sh so it is taken literally, whatever it contains. */
const singleQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

Deno.test("splitShellWords() splits on unquoted blanks", () => {
  assert.deepEqual(splitShellWords("  ls\t-la \n /tmp  "), ["ls", "-la", "/tmp"]);
  assert.deepEqual(splitShellWords(""), []);
  assert.deepEqual(splitShellWords(" \t\n"), []);
  assert.deepEqual(splitShellWords("naïve 日本 😀"), ["naïve", "日本", "😀"]);
});

Deno.test("splitShellWords() keeps single-quoted text literally", () => {
  assert.deepEqual(splitShellWords(`echo 'a  b' '$HOME' '\\n' '"'`), [
    "echo",
    "a  b",
    "$HOME",
    "\\n",
    '"',
  ]);
  assert.deepEqual(splitShellWords("'line1\nline2'"), ["line1\nline2"]);
});

Deno.test('splitShellWords() applies double-quote escapes only to $ ` " \\ and newline', () => {
  assert.deepEqual(splitShellWords(`"\\$ \\\` \\" \\\\"`), ['$ ` " \\']);
  assert.deepEqual(splitShellWords(`"\\a\\n\\'"`), ["\\a\\n\\'"]);
  assert.deepEqual(splitShellWords(`"it's"`), ["it's"]);
  assert.deepEqual(splitShellWords('"a\\\nb"'), ["ab"]);
  assert.deepEqual(splitShellWords('"a\nb"'), ["a\nb"]);
});

Deno.test("splitShellWords() lets a backslash escape any character outside quotes", () => {
  assert.deepEqual(splitShellWords("a\\ b \\'c \\\\ \\😀"), ["a b", "'c", "\\", "😀"]);
  assert.deepEqual(splitShellWords("ab\\\ncd"), ["abcd"]); // line continuation
  assert.deepEqual(splitShellWords("\\\n"), []);
});

Deno.test("splitShellWords() joins adjacent quoted parts and keeps empty words", () => {
  assert.deepEqual(splitShellWords(`a'b'"c"\\d`), ["abcd"]);
  assert.deepEqual(splitShellWords(`echo '' ""`), ["echo", "", ""]);
  assert.deepEqual(splitShellWords(`'it'\\''s'`), ["it's"]);
});

Deno.test("splitShellWords() treats operators as ordinary characters", () => {
  assert.deepEqual(splitShellWords("a;b|c $(d) #e"), ["a;b|c", "$(d)", "#e"]);
});

Deno.test("splitShellWords() throws ShellWordsError on bad quoting", () => {
  const cases: [string, string, number][] = [
    ["echo 'abc", "unterminated_single_quote", 5],
    ['echo "abc', "unterminated_double_quote", 5],
    ['echo "abc\\"', "unterminated_double_quote", 5],
    ["echo abc\\", "trailing_backslash", 8],
  ];
  for (const [cmd, reason, index] of cases) {
    assert.throws(() => splitShellWords(cmd), (err: unknown) => {
      assert.ok(err instanceof ShellWordsError);
      assert.equal(err.name, "ShellWordsError");
      assert.equal(err.code, -32602);
      assert.deepEqual(err.data, { reason, index });
      return true;
    });
  }
});

Deno.test("splitShellWords() round-trips any words quoted with single quotes", () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "binary" }), { maxLength: 8 }), (words) => {
      assert.deepEqual(splitShellWords(words.map(singleQuote).join(" ")), words);
    }),
    { numRuns: 500 },
  );
});
