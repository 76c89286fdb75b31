/**
 * What a `claude -p` prompt asks: the keyword rules that give its kind and
 * complexity, and how the prompt is found in a `claude` command line.
 *
 * @module
 */
import type { Invocation } from "./_invocation.ts";
import { COMPLEXITIES, type Complexity, complexityRank } from "./complexity.ts";

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
 * import { classifyPrompt } from "./prompt.ts";
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

/** Whether an invocation is `claude -p` / `--print`: a prompt, classed by what it asks. */
export function isClaudePrint(inv: Invocation): boolean {
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

/**
 * The prompt of the `claude -p` at `invocations[at]`: its longest free word;
 * with none, it was piped in by an `echo` or `printf` just before.
 */
export function claudePrompt(invocations: readonly Invocation[], at: number): string {
  const args = invocations[at]!.args;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith("--print=")) positional.push(a.slice("--print=".length));
    else if (CLAUDE_VALUED.has(a)) i++;
    else if (!a.startsWith("-")) positional.push(a);
  }
  const prompt = positional.reduce((a, b) => (b.length > a.length ? b : a), "");
  const previous = invocations[at - 1];
  if (prompt === "" && previous && ["echo", "printf"].includes(previous.program)) {
    return previous.args.filter((a) => !a.startsWith("-")).join(" ");
  }
  return prompt;
}
