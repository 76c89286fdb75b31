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
 * The classifier is this file; `_shell.ts` reads a command line into simple
 * commands, `_invocation.ts` reads each into its program and sub-command,
 * `_programs.ts` and `_wrappers.ts` hold the program tables and `prompt.ts`
 * the prompt rules.
 *
 * @module
 */

import { findExec, type Invocation, shellScript, subcommandOf, unwrap } from "./_invocation.ts";
import { profileOf, PROGRAMS, sleepSeconds } from "./_programs.ts";
import { MAX_SHELL_DEPTH, readScript, type Shape } from "./_shell.ts";
import { SETUP_PROGRAMS, TRIVIAL_PROGRAMS } from "./_wrappers.ts";
import { type Complexity, complexityAbove, complexityRank, isComplexity } from "./complexity.ts";
import { classifyPrompt, claudePrompt, isClaudePrint } from "./prompt.ts";

export type { Shape } from "./_shell.ts";

/** Where a classification came from. */
export type ClassSource = "tags" | "claude_prompt" | "program" | "shape";

/** What is classified: a shell command line, or an argv run without a shell. */
export type CommandLine = string | readonly string[];

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

function classifyClaude(invocations: Invocation[], at: number): CommandClass {
  const { kind, complexity } = classifyPrompt(claudePrompt(invocations, at));
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
