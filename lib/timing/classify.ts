/**
 * Command → class, the key under which timing history is learned. Explicit
 * tags win; `claude -p "<prompt>"` is classed by what the prompt asks; a
 * loop, `if` or `case` by its shape and its heaviest program; anything else
 * by its heaviest program and that program's sub-command. Argument values
 * (numbers, paths) never become part of a class name, so the number of
 * classes stays bounded.
 *
 * Class names are parseable ({@linkcode parseClass}), so the estimator can
 * find similar classes from names alone:
 * - `tag:<category>:<task>:<complexity>`
 * - `claude:<kind>:<complexity>`
 * - `cmd:<program>` or `cmd:<program>:<subcommand>`
 * - `shell:<shape>:<program>[:<subcommand>]` for loops, `if` and `case`
 *
 * @module
 */

import { shellTokens } from "../security/command_policy.ts";
import {
  normalizeProgram,
  profileOf,
  programInfo,
  PROGRAMS,
  SETUP_PROGRAMS,
  sleepSeconds,
  TRIVIAL_PROGRAMS,
  WRAPPERS,
} from "./_programs.ts";
import {
  COMPLEXITIES,
  type Complexity,
  complexityAbove,
  complexityRank,
  isComplexity,
} from "./complexity.ts";

/** Where a classification came from. */
export type ClassSource = "tags" | "claude_prompt" | "program" | "shape";

/** What is classified: a shell command line, or an argv run without a shell. */
export type CommandLine = string | readonly string[];

/** Compound shell shapes that get a class of their own (`shell:<shape>:<program>`). */
export type Shape = "loop" | "if" | "case";

/** A command's class and what it was derived from. */
export interface CommandClass {
  /** The history key, e.g. `cmd:git:clone`, `claude:code:low`, `shell:loop:make`. */
  class: string;
  /** Broad kind of work: `vcs`, `test`, `build`, `claude`, a tag's category, ... */
  category: string;
  /** The program run, with wrappers (`sudo`, `timeout 5`, `VAR=1`) and its path removed. */
  program: string;
  /** Sub-command (`clone`), make target, script name, or what a prompt asks (`code`). */
  subcommand: string | null;
  complexity: Complexity;
  source: ClassSource;
  /**
   * Seconds the command says it will take, when it says so: the `sleep`s of
   * a plain list, or the duration of a `timeout N` wrapper. Null otherwise.
   */
  statedSeconds: number | null;
}

/** What {@linkcode parseClass} recovers from a class name. */
export interface ClassTraits {
  category: string;
  complexity: Complexity;
  /** Null for tag classes, whose names do not carry the program. */
  program: string | null;
  subcommand: string | null;
  /** The compound shape of a `shell:` class, else null. */
  shape: Shape | null;
}

/**
 * Classifies a shell command line, or an argv that runs without a shell
 * (classified as it is, never joined and re-parsed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classify } from "./classify.ts";
 * assert.equal(classify("sudo -E FOO=1 /usr/bin/git clone https://x/y.git").class, "cmd:git:clone");
 * assert.equal(classify(["sh", "-c", "npm test"]).class, classify("npm test").class);
 * assert.equal(classify("for i in 1 2; do echo $i; sleep 1; done").class, "shell:loop:sleep");
 * assert.equal(classify("sleep 77200.5").class, "cmd:sleep");
 * assert.equal(classify(`claude -p "What is 2+2?"`).complexity, "trivial");
 * assert.equal(classify("[category:etl][task:load][complexity:high] ./load.sh").class,
 *   "tag:etl:load:high");
 * ```
 */
export function classify(command: CommandLine): CommandClass {
  if (typeof command !== "string") return classifyArgv(command, 0);
  const tags = readTags(command);
  const derived = classifyScript(tags.rest, 0);
  if (tags.category === undefined && tags.task === undefined && tags.complexity === undefined) {
    return derived;
  }
  const category = tags.category ?? derived.category;
  const task = tags.task ?? "any";
  const complexity = tags.complexity ?? derived.complexity;
  return {
    class: `tag:${category}:${task}:${complexity}`,
    category,
    program: derived.program,
    subcommand: derived.subcommand,
    complexity,
    source: "tags",
    statedSeconds: derived.statedSeconds,
  };
}

/**
 * Recovers category, complexity, program, sub-command and shape from a class
 * name made by {@linkcode classify}; null for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseClass } from "./classify.ts";
 * assert.deepEqual(parseClass("cmd:git:clone"), {
 *   category: "vcs", complexity: "medium", program: "git", subcommand: "clone", shape: null,
 * });
 * assert.equal(parseClass("shell:loop:make:test")?.shape, "loop");
 * assert.equal(parseClass("nonsense"), null);
 * ```
 */
export function parseClass(cls: string): ClassTraits | null {
  const [head, ...parts] = cls.split(":");
  if (head === "cmd" && parts[0]) {
    const program = parts[0];
    const subcommand = parts.length > 1 ? parts.slice(1).join(":") : null;
    return { ...profileOf(program, subcommand), program, subcommand, shape: null };
  }
  if (head === "shell" && isShape(parts[0]) && parts[1]) {
    const program = parts[1];
    const subcommand = parts.length > 2 ? parts.slice(2).join(":") : null;
    return {
      ...shapeProfile(parts[0], profileOf(program, subcommand)),
      program,
      subcommand,
      shape: parts[0],
    };
  }
  if (head === "claude" && parts.length === 2 && isComplexity(parts[1]!)) {
    return {
      category: "claude",
      complexity: parts[1],
      program: "claude",
      subcommand: parts[0]!,
      shape: null,
    };
  }
  if (head === "tag" && parts.length === 3 && isComplexity(parts[2]!)) {
    return {
      category: parts[0]!,
      complexity: parts[2],
      program: null,
      subcommand: parts[1]!,
      shape: null,
    };
  }
  return null;
}

function isShape(word: string | undefined): word is Shape {
  return word === "loop" || word === "if" || word === "case";
}

/** A loop repeats its body: one level more work than its heaviest program. */
function shapeProfile(
  shape: Shape,
  profile: { category: string; complexity: Complexity },
): { category: string; complexity: Complexity } {
  return shape === "loop"
    ? { category: profile.category, complexity: complexityAbove(profile.complexity, 1) }
    : profile;
}

/** Kinds of request a prompt makes, first match wins. */
const PROMPT_KINDS: [string, RegExp][] = [
  ["refactor", /\b(refactor\w*|restructur\w*|clean ?up|reorgani[sz]e)\b/],
  ["debug", /\b(debug\w*|fix\w*|bugs?|failing|fails|traceback|crash\w*)\b/],
  ["test", /\b(tests?|testing|pytest|unit tests?|coverage)\b/],
  ["review", /\b(review\w*|audit\w*|analy[sz]\w*|assess\w*)\b/],
  ["docs", /\b(document\w*|readme|docstrings?|comments?)\b/],
  ["summary", /\b(summari[sz]\w*|summary|tl;?dr)\b/],
  ["build", /\b(implement\w*|build\w*|create|develop\w*|scaffold\w*|design\w*)\b/],
  ["code", /\b(write|function|class|script|code|program|regex|sql|query)\b/],
  ["question", /\b(what|why|how|who|when|where|which|explain|list|hello|hi|define)\b|\?\s*$/],
];

const BUILD_VERB = "(?:refactor|implement|build|debug|rewrite|design|migrate|create|develop)";

/** Keyword rules, most complex first; a prompt takes the highest level any rule gives. */
const PROMPT_RULES: [Complexity, RegExp][] = [
  ["extreme", /\b(entire|whole|full)\s+(code\s*base|repo(sitory)?|monorepo|project|system)\b/],
  ["extreme", /\barchitecture\b|\bmulti[- ]?file\s+(system|project|application|app)\b/],
  ["extreme", /\bmicroservices?\b|\bfrom scratch\b.*\b(system|platform|framework)\b/],
  ["complex", new RegExp(`\\b${BUILD_VERB}\\w*\\b.{0,40}\\b(whole|entire|complete|full)\\b`)],
  [
    "complex",
    /\b(complete|full[- ]featured|production[- ]ready|comprehensive)\b.{0,40}\b(app|application|service|server|api|system|library|tool|suite|implementation)\b/,
  ],
  ["complex", /\b(web|rest|graphql)\s*(app|application|api|server|service)\b|\btest suite\b/],
  ["high", new RegExp(`\\b${BUILD_VERB}\\w*\\b`)],
  ["high", /\b(optimi[sz]e|integrate|multiple files|investigate|in[- ]depth|research)\b/],
  [
    "medium",
    /\bwrite\b.{0,40}\b(class|module|script|program|tests?|cli|parser|component|library)\b/,
  ],
  ["medium", /\bwrite\b.{0,40}\bfunctions?\b.{0,80}\b(tests?|edge cases?|errors?|validat\w*)\b/],
  ["medium", /\b(analy[sz]e|review|fix|compare|generate|document)\b/],
  ["medium", /\bexplain\b.{0,30}\b(code|codebase|file|algorithm|how .{0,60} works)\b/],
  [
    "low",
    /\bwrite\b.{0,40}\b(functions?|snippet|one[- ]liner|regex|query|sql|haiku|poem|email|paragraph|story)\b/,
  ],
  ["low", /\b(summari[sz]e|translate|convert|rephrase|explain)\b/],
  ["simple", /\b(define|definition|calculate|compute|why|how (do|does|to|many|much))\b/],
  ["simple", /\b(one|single|short) (sentence|word|line|answer)\b|\bbriefly\b/],
  ["trivial", /^\s*(hi|hello|hey|ping)\b/],
  ["trivial", /\bwhat(\s+is|'s)\b|\blist\b|\bwhat time\b/],
  ["trivial", /\b(say|print|echo|respond with|reply with|return) /],
  ["trivial", /^\s*[\d\s.()+\-*/^]+[=?]?\s*$/],
];

/** Characters of a prompt searched for keywords. */
const PROMPT_HEAD_CHARS = 2000;

/** Prompt lengths (characters) that make a prompt at least this complex. */
const LENGTH_FLOORS: [number, Complexity][] = [
  [4000, "extreme"],
  [2000, "complex"],
  [1000, "high"],
  [500, "medium"],
  [200, "low"],
];

/**
 * Classes a `claude -p` prompt by what it asks (keywords) and how long it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyPrompt } from "./classify.ts";
 * assert.deepEqual(classifyPrompt("Write a function that reverses a string"),
 *   { kind: "code", complexity: "low" });
 * assert.equal(classifyPrompt("Refactor the entire codebase to async").complexity, "extreme");
 * ```
 */
export function classifyPrompt(prompt: string): { kind: string; complexity: Complexity } {
  const text = prompt.toLowerCase().replace(/\s+/g, " ").trim();
  if (text === "") return { kind: "general", complexity: "medium" };
  // Keywords are looked for in the head only: the rules' bounded gaps keep
  // each match linear, and the head keeps the total bounded too.
  const head = text.slice(0, PROMPT_HEAD_CHARS);
  const kind = PROMPT_KINDS.find(([, re]) => re.test(head))?.[0] ?? "general";
  let rank = -1;
  for (const [level, re] of PROMPT_RULES) {
    if (complexityRank(level) > rank && re.test(head)) rank = complexityRank(level);
  }
  // No keyword: a short request is simple, a longer one at least low.
  if (rank < 0) rank = complexityRank(text.length <= 80 ? "simple" : "low");
  for (const [length, level] of LENGTH_FLOORS) {
    if (text.length > length) {
      rank = Math.max(rank, complexityRank(level));
      break;
    }
  }
  return { kind, complexity: COMPLEXITIES[rank]! };
}

interface Tags {
  category?: string;
  task?: string;
  complexity?: Complexity;
  /** The command without its tags. */
  rest: string;
}

/** A tag; its value is bounded and trimmed afterwards, so matching stays linear. */
const TAG = /\[(category|task|complexity):([^\][]{0,200})\]/gi;

function readTags(command: string): Tags {
  const tags: Tags = { rest: command.replace(TAG, " ") };
  for (const [, name, raw] of command.matchAll(TAG)) {
    const value = namePart(raw!);
    if (!value) continue;
    const key = name!.toLowerCase();
    if (key === "complexity") {
      if (isComplexity(value)) tags.complexity = value;
    } else if (key === "category") {
      tags.category = value;
    } else {
      tags.task = value;
    }
  }
  return tags;
}

/** A safe piece of a class name: lower case, no `:`, bounded. */
function namePart(raw: string): string {
  return raw.toLowerCase().trim().replace(/[^a-z0-9_.+\-]+/g, "-").replace(/^-+|-+$/g, "")
    .slice(0, 40);
}

/** A sub-command is a name: never a number, a path, an assignment or an option. */
const SUBCOMMAND_WORD = /^[A-Za-z_][A-Za-z0-9_.+\-]*$/;
/** Script names of `npm run` and the like may hold colons (`test:e2e`). */
const SCRIPT_WORD = /^[A-Za-z_][A-Za-z0-9_.+:\-]*$/;
/** A run of hex digits with at least one decimal digit: an id, a date or a counter. */
const ID_RUN = /[0-9a-f]*[0-9][0-9a-f]*/gi;

/**
 * Collapses ids in a name (`tmp_9f8e7d6c.py`, `run-1234.sh`, `foo_20261201`)
 * to `N`, so generated names do not each make a class; short ones (`test2`,
 * `md5`, `v10`, `e2e`) stay.
 */
function collapseIds(name: string): string {
  return name.replace(ID_RUN, (run) => {
    const digits = run.replace(/[^0-9]/g, "").length;
    return digits >= 3 || run.length >= 6 ? "N" : run;
  });
}

interface Invocation {
  program: string;
  args: string[];
  /** `timeout N cmd`: N seconds. */
  limit?: number;
}

/** A shell script read into its simple commands and its compound shape. */
interface Script {
  /** Simple commands, each its words (redirections removed), in order. */
  commands: string[][];
  /** The outermost compound construct, if any. */
  shape: Shape | null;
}

/** Reserved words that may start a simple command and are not part of it. */
const LEADING_KEYWORDS = new Set([
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
function readScript(line: string, nesting = 0): Script {
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

const MAX_SHELL_DEPTH = 3;

/** A script: claude prompts first, then its shape, then its heaviest program. */
function classifyScript(script: string, depth: number): CommandClass {
  const { commands, shape } = readScript(script);
  const invocations = commands
    .map((words) => unwrap(words))
    .filter((inv): inv is Invocation => inv !== null);

  const claudeAt = invocations.findIndex(isClaudePrint);
  if (claudeAt >= 0) return classifyClaude(invocations, claudeAt);

  const classes = invocations.map((inv) => classifyInvocation(inv, depth));
  const heaviest = pickHeaviest(invocations, classes);
  if (heaviest === null) return programClass("unknown", null, null);
  if (shape === null) {
    // A plain list's stated durations add up; a loop's repeat an unknown number of times.
    const stated = classes.reduce<number | null>(
      (sum, c) => c.statedSeconds === null ? sum : (sum ?? 0) + c.statedSeconds,
      null,
    );
    return { ...heaviest, statedSeconds: stated };
  }
  if (heaviest.source !== "program") return heaviest;
  const tail = heaviest.subcommand === null
    ? heaviest.program
    : `${heaviest.program}:${heaviest.subcommand}`;
  return {
    ...heaviest,
    ...shapeProfile(shape, heaviest),
    class: `shell:${shape}:${tail}`,
    source: "shape",
    statedSeconds: null,
  };
}

/**
 * The class of the heaviest invocation: the highest complexity, setup
 * commands (`cd`, `export`) and trivial builtins (`echo`, `true`) only
 * when there is nothing else; the first of equals.
 */
function pickHeaviest(invocations: Invocation[], classes: CommandClass[]): CommandClass | null {
  const weight = (i: number): number => {
    const program = invocations[i]!.program;
    if (SETUP_PROGRAMS.has(program)) return -2;
    if (TRIVIAL_PROGRAMS.has(program)) return -1;
    return complexityRank(classes[i]!.complexity);
  };
  let best = -1;
  for (let i = 0; i < classes.length; i++) {
    if (best < 0 || weight(i) > weight(best)) best = i;
  }
  return best < 0 ? null : classes[best]!;
}

/** The command of `find ... -exec <command> ;` (or `-execdir`, `-ok`), else null. */
function findExec(args: string[]): string[] | null {
  const at = args.findIndex((a) => a === "-exec" || a === "-execdir" || a === "-ok");
  if (at === -1) return null;
  const end = args.findIndex((a, i) => i > at && (a === ";" || a === "+"));
  const command = args.slice(at + 1, end === -1 ? undefined : end).filter((a) => a !== "{}");
  return command.length > 0 ? command : null;
}

/** An argv run without a shell: its program, or the script of `sh -c`. */
function classifyArgv(argv: readonly string[], depth: number): CommandClass {
  const inv = unwrap([...argv]);
  if (inv === null) return programClass("unknown", null, null);
  return classifyInvocation(inv, depth);
}

function classifyInvocation(inv: Invocation, depth: number): CommandClass {
  // `find . -exec pytest {} \;` runs pytest for each file it finds.
  const exec = inv.program === "find" ? findExec(inv.args) : null;
  if (exec !== null && depth < MAX_SHELL_DEPTH) {
    const inner = classifyArgv(exec, depth + 1);
    if (inner.program !== "unknown") return inner;
  }
  // `bash -c "npm test"` is whatever its script is.
  const script = shellScript(inv);
  if (script !== null && depth < MAX_SHELL_DEPTH) {
    const inner = classifyScript(script, depth + 1);
    return inv.limit === undefined ? inner : { ...inner, statedSeconds: inv.limit };
  }
  const stated = inv.program === "sleep" ? sleepSeconds(inv.args[0]) : null;
  return programClass(inv.program, subcommandOf(inv), inv.limit ?? stated);
}

function programClass(
  program: string,
  subcommand: string | null,
  statedSeconds: number | null,
): CommandClass {
  const prog = namePart(Object.hasOwn(PROGRAMS, program) ? program : collapseIds(program)) ||
    "unknown";
  const sub = subcommand === null
    ? null
    : subcommand.split(":").map((part) => namePart(collapseIds(part))).join(":") || null;
  return {
    class: sub === null ? `cmd:${prog}` : `cmd:${prog}:${sub}`,
    ...profileOf(prog, sub),
    program: prog,
    subcommand: sub,
    source: "program",
    statedSeconds,
  };
}

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Strips assignments, keywords and wrappers (`sudo`, `timeout 5`, `uv run`) to the real program. */
function unwrap(words: string[]): Invocation | null {
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

function subcommandOf(inv: Invocation): string | null {
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
function shellScript(inv: Invocation): string | null {
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

function isClaudePrint(inv: Invocation): boolean {
  return inv.program === "claude" &&
    inv.args.some((a) => a === "-p" || a === "--print" || a.startsWith("--print="));
}

/** Options of `claude` that take a value, so their values are not mistaken for the prompt. */
const CLAUDE_VALUED = new Set([
  "--model",
  "--output-format",
  "--input-format",
  "--allowedTools",
  "--allowed-tools",
  "--disallowedTools",
  "--disallowed-tools",
  "--tools",
  "--system-prompt",
  "--system-prompt-file",
  "--append-system-prompt",
  "--permission-mode",
  "--permission-prompt-tool",
  "--mcp-config",
  "--add-dir",
  "--max-turns",
  "--session-id",
  "--resume",
  "-r",
  "--fallback-model",
  "--settings",
  "--setting-sources",
  "--agents",
  "--json-schema",
  "--max-budget-usd",
]);

function classifyClaude(invocations: Invocation[], at: number): CommandClass {
  const args = invocations[at]!.args;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith("--print=")) positional.push(a.slice("--print=".length));
    else if (CLAUDE_VALUED.has(a)) i++;
    else if (!a.startsWith("-")) positional.push(a);
  }
  // The prompt is the longest free word; with none, it was piped in by `echo`.
  let prompt = positional.reduce((a, b) => (b.length > a.length ? b : a), "");
  const previous = invocations[at - 1];
  if (prompt === "" && previous && ["echo", "printf"].includes(previous.program)) {
    prompt = previous.args.filter((a) => !a.startsWith("-")).join(" ");
  }
  const { kind, complexity } = classifyPrompt(prompt);
  return {
    class: `claude:${kind}:${complexity}`,
    category: "claude",
    program: "claude",
    subcommand: kind,
    complexity,
    source: "claude_prompt",
    statedSeconds: invocations[at]!.limit ?? null,
  };
}
