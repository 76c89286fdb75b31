/**
 * Time limit for a command that came without one: learned from the timing
 * history of its class, else of similar classes, else a default by
 * complexity; then stretched by the resource multiplier while the machine
 * is busy.
 *
 * @module
 */

import type { Store, TimingRun } from "../store/store.ts";
import { classify, type CommandClass, type Complexity, parseClass } from "./classify.ts";

/** Default limits by complexity, seconds. */
export const DEFAULT_TIMEOUTS_S: Readonly<Record<Complexity, number>> = Object.freeze({
  trivial: 15,
  simple: 30,
  low: 60,
  medium: 180,
  high: 360,
  complex: 600,
  extreme: 900,
});

/** Where an estimate came from (a subset of the `timeout_source` values). */
export type EstimateSource = "history" | "similar" | "default";

/** Why an estimate is what it is; sent to clients as is. */
export interface EstimateReasoning {
  /** The command's class (see `classify.ts`). */
  class: string;
  category: string;
  complexity: Complexity;
  /** Successful runs the estimate rests on (for a default: those the class has). */
  samples: number;
  /** Which percentile of successful durations was used (history and similar only). */
  percentile?: number;
  /** That percentile's duration, seconds. */
  p90?: number;
  /** Longest successful run, seconds: the estimate never goes below it. */
  longest_success?: number;
  /** Resource multiplier applied (1 when the machine is not busy). */
  multiplier: number;
  /** Limit before the multiplier, seconds. */
  base_s: number;
  /** Classes whose runs were pooled (source `similar`). */
  similar_classes?: string[];
  /** Why the store could not be used, when it could not. */
  store_error?: string;
}

/** An estimated time limit. */
export interface Estimate {
  /** Whole seconds, at least 1. */
  timeout_s: number;
  source: EstimateSource;
  reasoning: EstimateReasoning;
}

/** Inputs of {@linkcode estimateTimeout}. */
export interface EstimateInput {
  command: string;
  /** The command's class when the caller has it already (it is `classify(command)`). */
  cls?: CommandClass | undefined;
  /** Where history is read; failures fall back to defaults. */
  store: Pick<Store, "history" | "classes">;
  /** The resource monitor (anything with `multiplier()`); none means x1. */
  monitor?: { multiplier(): number } | null | undefined;
  /** Overrides of {@linkcode DEFAULT_TIMEOUTS_S}. */
  defaults?: Partial<Record<Complexity, number>> | undefined;
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
 * Estimates a time limit for `command`. Reads the store but never fails
 * because of it: a store error gives the default, with `store_error` set.
 *
 * Rules, in order:
 * 1. the class has >= `minSamples` successful runs: p90 x 1.2, never below
 *    the longest success;
 * 2. else the same rule over the pooled successes of similar classes: those
 *    with the same program, sub-command and complexity, or the same category
 *    and complexity;
 * 3. else the default for the class's complexity.
 *
 * The result is multiplied by `monitor.multiplier()` and rounded up to whole
 * seconds.
 *
 * @example No history yet: the default for the complexity
 * ```ts
 * import assert from "node:assert/strict";
 * import { createStore } from "../store/store.ts";
 * import { estimateTimeout } from "./estimate.ts";
 * const store = await createStore({ ephemeral: true });
 * const e = await estimateTimeout({ command: "git clone https://x/y", store });
 * assert.equal(e.source, "default");
 * assert.equal(e.timeout_s, 180);
 * assert.equal(e.reasoning.class, "cmd:git:clone");
 * await store.close();
 * ```
 */
/**
 * `estimate` under another resource multiplier: same history, the machine's
 * load as it is now.
 */
export function withMultiplier(estimate: Estimate, multiplier: number): Estimate {
  return {
    ...estimate,
    timeout_s: wholeSeconds(estimate.reasoning.base_s * multiplier),
    reasoning: { ...estimate.reasoning, multiplier },
  };
}

export async function estimateTimeout(input: EstimateInput): Promise<Estimate> {
  const cls = input.cls ?? classify(input.command);
  const minSamples = input.minSamples ?? 3;
  const multiplier = input.monitor?.multiplier() ?? 1;
  const base = { class: cls.class, category: cls.category, complexity: cls.complexity };
  const fromRuns = (source: EstimateSource, durations: number[], extra = {}): Estimate => {
    const pct = input.percentile ?? 90;
    const p = percentile(durations, pct);
    const longest = Math.max(...durations);
    const base_s = Math.max(p * (input.headroom ?? 1.2), longest);
    return {
      timeout_s: wholeSeconds(base_s * multiplier),
      source,
      reasoning: {
        ...base,
        samples: durations.length,
        percentile: pct,
        p90: round(p),
        longest_success: round(longest),
        multiplier,
        base_s: round(base_s),
        ...extra,
      },
    };
  };

  let samples = 0;
  let storeError: string | undefined;
  try {
    const own = successes(await input.store.history(cls.class));
    if (own.length >= minSamples) return fromRuns("history", own);
    samples = own.length;

    const similar = (await input.store.classes())
      .filter((c) => c !== cls.class && isSimilar(c, cls))
      .slice(0, MAX_SIMILAR);
    const histories = await Promise.all(similar.map((c) => input.store.history(c)));
    const pooled: number[] = [];
    const used: string[] = [];
    histories.forEach((runs, i) => {
      const ok = successes(runs);
      if (ok.length === 0) return;
      pooled.push(...ok);
      used.push(similar[i]!);
    });
    if (pooled.length >= minSamples) {
      return fromRuns("similar", pooled, { similar_classes: used.sort() });
    }
  } catch (e) {
    storeError = e instanceof Error ? e.message : String(e);
  }

  const base_s = input.defaults?.[cls.complexity] ?? DEFAULT_TIMEOUTS_S[cls.complexity];
  return {
    timeout_s: wholeSeconds(base_s * multiplier),
    source: "default",
    reasoning: {
      ...base,
      samples,
      multiplier,
      base_s,
      ...(storeError === undefined ? {} : { store_error: storeError }),
    },
  };
}

/** Durations of runs that succeeded: exit 0, not timed out. */
function successes(runs: readonly TimingRun[]): number[] {
  return runs
    .filter((r) => r.status === "completed" && r.exit_code === 0 && !r.timed_out)
    .map((r) => r.duration_s);
}

function isSimilar(other: string, cls: CommandClass): boolean {
  const t = parseClass(other);
  if (!t || t.complexity !== cls.complexity) return false;
  if (t.category === cls.category) return true;
  return t.program !== null && t.program === cls.program && t.subcommand === cls.subcommand;
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
