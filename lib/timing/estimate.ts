/**
 * Automatic time limit for a command that came without one. An automatic
 * limit is a safety net against hung commands, never a guess that cuts
 * plausible work short, so it is the largest of:
 * - the floor, `min-auto-timeout` (60 s by default);
 * - the base, stretched by the resource multiplier while the machine is busy:
 *   the learned figure (the 90th percentile of the class's successful runs
 *   x 1.2, from its own history or that of similar classes) or else the
 *   default for its complexity, and never less than twice the longest run
 *   that ended by itself (succeeded or failed), nor twice what the command
 *   states (`sleep 300`); for build, test, package, container, infra and
 *   server classes never less than the default either, since one class holds
 *   both a single test and the whole suite;
 * - the back-off: twice the automatic limit that last killed a run of the
 *   class, until a run of it succeeds;
 *
 * capped at `max-timeout`.
 *
 * @module
 */

import type { Store, TimingRun } from "../store/store.ts";
import { classify, type CommandClass, type CommandLine, parseClass } from "./classify.ts";
import { type Complexity, DEFAULT_MIN_AUTO_TIMEOUT_S, DEFAULT_TIMEOUTS_S } from "./complexity.ts";

// Defined in complexity.ts, their one source; re-exported until the doc
// examples that still import them from here (lib/protocol, lib/session,
// tests/_helpers.ts) point at complexity.ts.
export { DEFAULT_MIN_AUTO_TIMEOUT_S, DEFAULT_TIMEOUTS_S } from "./complexity.ts";

/** Where an estimate came from (a subset of the `timeout_source` values). */
export type EstimateSource = "history" | "similar" | "default";

/** Why an estimate is what it is, term by term; sent to clients as is. Seconds throughout. */
export interface EstimateReasoning {
  /** The command's class (see `classify.ts`). */
  class: string;
  category: string;
  complexity: Complexity;
  /** Successful runs the learned figure rests on (for a default: those the class has). */
  samples: number;
  /** Which percentile of successful durations was used (history and similar only). */
  percentile?: number;
  /** That percentile's duration. */
  percentile_s?: number;
  /** Factor over the percentile. */
  headroom?: number;
  /** `percentile_s` x `headroom`. */
  learned_s?: number;
  /** The default for the class's complexity (source `default`). */
  default_s?: number;
  /** Longest successful run of the class (or of the pooled classes). */
  longest_success_s?: number;
  /** Longest failed run of the class, when longer than every success: it counts too. */
  longest_failure_s?: number;
  /** The default as a minimum: for long-work classes (build, test, ...), learning only raises. */
  minimum_s?: number;
  /** What the command says it takes (`sleep N`, `timeout N ...`). */
  stated_s?: number;
  /** max(learned or default, 2 x longest run, 2 x stated, minimum), before the multiplier. */
  base_s: number;
  /** Resource multiplier applied to the base (1 when the machine is not busy). */
  multiplier: number;
  /** `min-auto-timeout`: no automatic limit is below it. */
  floor_s: number;
  /** Runs of the class ended by an automatic limit since its last success. */
  timeouts_since_success: number;
  /** Twice the automatic limit that last killed a run of the class (when one did). */
  backoff_s?: number;
  /** `max-timeout`: no limit is above it. */
  max_s?: number;
  /** The term that decided the limit. */
  decided_by: "floor" | "base" | "backoff" | "max";
  /** The rule with its values, e.g. `max(floor 60, base 12 x 1, backoff -) = 60`. */
  rule: string;
  /** Classes whose runs were pooled (source `similar`). */
  similar_classes?: string[];
  /** Why the store could not be used, when it could not. */
  store_error?: string;
}

/** An estimated time limit. */
export interface Estimate {
  /** Whole seconds, at least the floor. */
  timeout_s: number;
  source: EstimateSource;
  reasoning: EstimateReasoning;
}

/** Inputs of {@linkcode estimateTimeout}. */
export interface EstimateInput {
  /** A shell command line, or an argv run without a shell. */
  command: CommandLine;
  /** The command's class when the caller has it already (it is `classify(command)`). */
  cls?: CommandClass | undefined;
  /** Where history is read; failures fall back to defaults. */
  store: Pick<Store, "history" | "classes">;
  /** The resource monitor (anything with `multiplier()`); none means x1. */
  monitor?: { multiplier(): number } | null | undefined;
  /** Overrides of {@linkcode DEFAULT_TIMEOUTS_S}. */
  defaults?: Partial<Record<Complexity, number>> | undefined;
  /** `min-auto-timeout` (default {@linkcode DEFAULT_MIN_AUTO_TIMEOUT_S}). */
  floorS?: number | undefined;
  /** `max-timeout`: the cap (default none). */
  maxS?: number | undefined;
  /** Successful runs needed before history is trusted (default 3). */
  minSamples?: number | undefined;
  /** Factor over the percentile (default 1.2). */
  headroom?: number | undefined;
  /** Percentile of successful durations used (default 90). */
  percentile?: number | undefined;
}

/** Similar classes read at most, so one estimate stays a handful of store calls. */
const MAX_SIMILAR = 50;

/**
 * `estimate` for another command of the same class, or under another load:
 * the same history, with the machine's multiplier as it is now and what
 * this command states (`sleep 300`: 300; null for nothing).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createStore } from "../store/store.ts";
 * import { estimateTimeout, restate } from "./estimate.ts";
 * const store = await createStore({ ephemeral: true });
 * const e = await estimateTimeout({ command: "make", store });
 * assert.equal(restate(e, 3).timeout_s, 1800);
 * assert.equal(restate(e, 1, 500).timeout_s, 1000);
 * await store.close();
 * ```
 */
export function restate(
  estimate: Estimate,
  multiplier: number,
  statedSeconds: number | null = estimate.reasoning.stated_s ?? null,
): Estimate {
  const { stated_s: _, ...rest } = estimate.reasoning;
  const reasoning = decide({
    ...rest,
    multiplier,
    ...(statedSeconds === null ? {} : { stated_s: round(statedSeconds) }),
  });
  return { ...estimate, timeout_s: wholeSeconds(limitOf(reasoning)), reasoning };
}

/**
 * Estimates an automatic time limit for `command`. Reads the store but never
 * fails because of it: a store error gives the default, with `store_error`
 * set. See the module doc for the rule.
 *
 * @example No history yet: the default for the complexity
 * ```ts
 * import assert from "node:assert/strict";
 * import { createStore } from "../store/store.ts";
 * import { estimateTimeout } from "./estimate.ts";
 * const store = await createStore({ ephemeral: true });
 * const e = await estimateTimeout({ command: "git clone https://x/y", store });
 * assert.equal(e.source, "default");
 * assert.equal(e.timeout_s, 600);
 * assert.equal(e.reasoning.class, "cmd:git:clone");
 * await store.close();
 * ```
 * @example Quick history never gives less than the floor
 * ```ts
 * import assert from "node:assert/strict";
 * import { createStore } from "../store/store.ts";
 * import { estimateTimeout } from "./estimate.ts";
 * const store = await createStore({ ephemeral: true });
 * for (let i = 0; i < 5; i++) {
 *   await store.appendRun("cmd:echo", { duration_s: 0.01, exit_code: 0, status: "completed",
 *     timed_out: false, at: Date.now() });
 * }
 * const e = await estimateTimeout({ command: "echo hi", store });
 * assert.equal(e.source, "history");
 * assert.equal(e.timeout_s, 60);
 * assert.equal(e.reasoning.decided_by, "floor");
 * await store.close();
 * ```
 */
export async function estimateTimeout(input: EstimateInput): Promise<Estimate> {
  const cls = input.cls ?? classify(input.command);
  const minSamples = input.minSamples ?? 3;
  const pct = input.percentile ?? 90;
  const headroom = input.headroom ?? 1.2;
  const defaultS = input.defaults?.[cls.complexity] ?? DEFAULT_TIMEOUTS_S[cls.complexity];
  const common = {
    class: cls.class,
    category: cls.category,
    complexity: cls.complexity,
    multiplier: input.monitor?.multiplier() ?? 1,
    floor_s: input.floorS ?? DEFAULT_MIN_AUTO_TIMEOUT_S,
    ...(input.maxS === undefined ? {} : { max_s: input.maxS }),
    ...(cls.statedSeconds === null ? {} : { stated_s: round(cls.statedSeconds) }),
    ...(LONG_WORK.has(cls.category) ? { minimum_s: defaultS } : {}),
  };
  const make = (source: EstimateSource, terms: Terms): Estimate => {
    const reasoning = decide({ ...common, ...terms });
    return { timeout_s: wholeSeconds(limitOf(reasoning)), source, reasoning };
  };
  const learned = (durations: number[]) => {
    const p = percentile(durations, pct);
    return {
      samples: durations.length,
      percentile: pct,
      percentile_s: round(p),
      headroom,
      learned_s: round(p * headroom),
      longest_success_s: round(Math.max(...durations)),
    };
  };

  let own: TimingRun[] = [];
  let storeError: string | undefined;
  try {
    own = await input.store.history(cls.class);
    const backoff = { ...backoffOf(own), ...longestFailure(own) };
    const ok = successes(own);
    if (ok.length >= minSamples) return make("history", { ...learned(ok), ...backoff });

    const similar = (await input.store.classes())
      .filter((c) => c !== cls.class && isSimilar(c, cls))
      .slice(0, MAX_SIMILAR);
    const histories = await Promise.all(similar.map((c) => input.store.history(c)));
    const pooled: number[] = [...ok];
    const used: string[] = [];
    histories.forEach((runs, i) => {
      const good = successes(runs);
      if (good.length === 0) return;
      pooled.push(...good);
      used.push(similar[i]!);
    });
    if (pooled.length >= minSamples && used.length > 0) {
      return make("similar", { ...learned(pooled), ...backoff, similar_classes: used.sort() });
    }
  } catch (e) {
    storeError = e instanceof Error ? e.message : String(e);
  }

  const ok = successes(own);
  return make("default", {
    samples: ok.length,
    default_s: defaultS,
    ...(ok.length > 0 ? { longest_success_s: round(Math.max(...ok)) } : {}),
    ...longestFailure(own),
    ...backoffOf(own),
    ...(storeError === undefined ? {} : { store_error: storeError }),
  });
}

/** The terms a source contributes; {@linkcode decide} derives the rest. */
type Terms =
  & Omit<
    EstimateReasoning,
    | "class"
    | "category"
    | "complexity"
    | "multiplier"
    | "floor_s"
    | "base_s"
    | "decided_by"
    | "rule"
    | "timeouts_since_success"
  >
  & { timeouts_since_success?: number };

/** Fills in base, decision and rule from the terms. */
function decide(
  t:
    & Terms
    & Pick<EstimateReasoning, "class" | "category" | "complexity" | "multiplier" | "floor_s">,
): EstimateReasoning {
  const figure = t.learned_s ?? t.default_s ?? 0;
  const longest = Math.max(t.longest_success_s ?? 0, t.longest_failure_s ?? 0);
  const base_s = round(Math.max(figure, 2 * longest, 2 * (t.stated_s ?? 0), t.minimum_s ?? 0));
  const stretched = base_s * t.multiplier;
  const backoff = t.backoff_s ?? 0;
  const uncapped = Math.max(t.floor_s, stretched, backoff);
  const limit = Math.min(uncapped, t.max_s ?? Infinity);
  const decided_by = limit < uncapped
    ? "max"
    : limit === backoff && backoff > 0
    ? "backoff"
    : limit === stretched && stretched >= t.floor_s
    ? "base"
    : "floor";
  const baseTerms = [
    t.learned_s !== undefined ? `learned ${t.learned_s}` : `default ${t.default_s ?? 0}`,
    ...(longest > 0 ? [`2 x longest ${round(longest)}`] : []),
    ...(t.stated_s !== undefined ? [`2 x stated ${t.stated_s}`] : []),
    ...(t.minimum_s !== undefined ? [`minimum ${t.minimum_s}`] : []),
  ];
  const rule = `max(floor ${t.floor_s}, base ${base_s} x ${t.multiplier}, backoff ` +
    `${t.backoff_s ?? "-"})` + (t.max_s === undefined ? "" : ` capped at max ${t.max_s}`) +
    ` = ${wholeSeconds(limit)}; base = max(${baseTerms.join(", ")})`;
  return {
    ...t,
    timeouts_since_success: t.timeouts_since_success ?? 0,
    base_s,
    decided_by,
    rule,
  };
}

function limitOf(r: EstimateReasoning): number {
  return Math.min(
    Math.max(r.floor_s, r.base_s * r.multiplier, r.backoff_s ?? 0),
    r.max_s ?? Infinity,
  );
}

/**
 * Categories whose classes hold work of very different sizes (one test or
 * the whole suite, a no-op build or a clean one): their default is a
 * minimum, and learning only raises their limit.
 */
const LONG_WORK: ReadonlySet<string> = new Set([
  "build",
  "test",
  "package",
  "container",
  "infra",
  "server",
]);

/** The longest run that failed on its own (not a limit, not a cancel), if longer than every success. */
function longestFailure(runs: readonly TimingRun[]): { longest_failure_s?: number } {
  const failed = runs.filter((r) => r.status === "failed" && !r.timed_out).map((r) => r.duration_s);
  if (failed.length === 0) return {};
  const longest = Math.max(...failed);
  const ok = successes(runs);
  return ok.length > 0 && Math.max(...ok) >= longest ? {} : { longest_failure_s: round(longest) };
}

/**
 * Runs ended by an automatic limit since the class last succeeded, and twice
 * the newest such limit (a run recorded before limits were kept counts its
 * duration, which is about the limit that ended it).
 */
function backoffOf(
  runs: readonly TimingRun[],
): { timeouts_since_success?: number; backoff_s?: number } {
  let count = 0;
  let last: number | undefined;
  for (const run of runs) {
    if (isSuccess(run)) break;
    if (run.timed_out && run.auto === true) {
      count++;
      last ??= run.limit_s ?? run.duration_s;
    }
  }
  return last === undefined ? {} : { timeouts_since_success: count, backoff_s: round(2 * last) };
}

function isSuccess(r: TimingRun): boolean {
  return r.status === "completed" && r.exit_code === 0 && !r.timed_out;
}

/** Durations of runs that succeeded: exit 0, not timed out. */
function successes(runs: readonly TimingRun[]): number[] {
  return runs.filter(isSuccess).map((r) => r.duration_s);
}

/**
 * Only classes of the same program and sub-command pool their history: a
 * category (`shell`, `build`) says nothing about how long one of its
 * programs takes. Nor does one run say how long a loop of them takes.
 */
function isSimilar(other: string, cls: CommandClass): boolean {
  const t = parseClass(other);
  if (t === null || t.program === null) return false;
  const loop = parseClass(cls.class)?.shape === "loop";
  return t.program === cls.program && t.subcommand === cls.subcommand &&
    t.complexity === cls.complexity && (t.shape === "loop") === loop;
}

/** Nearest-rank percentile: the smallest value with at least `p` % of values at or below it. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

function wholeSeconds(s: number): number {
  // Round first: 10 * 1.2 is 12.000000000000002, which must not become 13.
  return Math.max(1, Math.ceil(round(s)));
}

function round(s: number): number {
  return Math.round(s * 1000) / 1000;
}
