/**
 * Complexity levels and the automatic time limits that go with them: the one
 * source of these numbers for the classifier, the estimator and the settings
 * table. No imports, so the config can read it without pulling in the store.
 *
 * @module
 */

/** Complexity levels, least to most. */
export const COMPLEXITIES = [
  "trivial",
  "simple",
  "low",
  "medium",
  "high",
  "complex",
  "extreme",
] as const;

/** How much work a command is expected to be. */
export type Complexity = typeof COMPLEXITIES[number];

/**
 * Automatic limits by complexity for a class with no history, seconds.
 * Generous on purpose: an automatic limit catches hung commands, and killing
 * a legitimate build is far worse than letting a hung one run longer. Build
 * and test classes are at least `medium` (10 minutes).
 */
export const DEFAULT_TIMEOUTS_S: Readonly<Record<Complexity, number>> = Object.freeze({
  trivial: 60,
  simple: 120,
  low: 300,
  medium: 600,
  high: 1800,
  complex: 3600,
  extreme: 7200,
});

/** No automatic limit is ever below this many seconds (setting `min-auto-timeout`). */
export const DEFAULT_MIN_AUTO_TIMEOUT_S = 60;

/**
 * Position of `c` in {@linkcode COMPLEXITIES} (0 = trivial).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { complexityRank } from "./complexity.ts";
 * assert.ok(complexityRank("high") > complexityRank("medium"));
 * ```
 */
export function complexityRank(c: Complexity): number {
  return COMPLEXITIES.indexOf(c);
}

/**
 * The level `steps` above `c`, capped at `extreme`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { complexityAbove } from "./complexity.ts";
 * assert.equal(complexityAbove("low", 1), "medium");
 * assert.equal(complexityAbove("extreme", 2), "extreme");
 * ```
 */
export function complexityAbove(c: Complexity, steps: number): Complexity {
  return COMPLEXITIES[Math.min(COMPLEXITIES.length - 1, complexityRank(c) + steps)]!;
}

/**
 * True when `value` names a complexity level.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isComplexity } from "./complexity.ts";
 * assert.ok(isComplexity("high"));
 * assert.ok(!isComplexity("huge"));
 * ```
 */
export function isComplexity(value: string): value is Complexity {
  return COMPLEXITIES.some((c) => c === value);
}

/** The setting that holds a level's automatic limit: `timeoutTrivial`, … */
export type TimeoutKey<C extends Complexity = Complexity> = `timeout${Capitalize<C>}`;

/**
 * The settings key of each level's automatic limit (flag `--timeout-<level>`),
 * spelled out so the compiler checks each against {@linkcode TimeoutKey}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TIMEOUT_KEYS } from "./complexity.ts";
 * assert.equal(TIMEOUT_KEYS.extreme, "timeoutExtreme");
 * ```
 */
export const TIMEOUT_KEYS = Object.freeze(
  {
    trivial: "timeoutTrivial",
    simple: "timeoutSimple",
    low: "timeoutLow",
    medium: "timeoutMedium",
    high: "timeoutHigh",
    complex: "timeoutComplex",
    extreme: "timeoutExtreme",
  } as const satisfies { [C in Complexity]: TimeoutKey<C> },
);

/**
 * The automatic limit of each level, read from the settings that hold them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { complexityDefaults } from "./complexity.ts";
 * const settings = {
 *   timeoutTrivial: 1, timeoutSimple: 2, timeoutLow: 3, timeoutMedium: 4,
 *   timeoutHigh: 5, timeoutComplex: 6, timeoutExtreme: 7,
 * };
 * assert.equal(complexityDefaults(settings).medium, 4);
 * ```
 */
export function complexityDefaults(
  settings: Readonly<Record<TimeoutKey, number>>,
): Record<Complexity, number> {
  const out = { ...DEFAULT_TIMEOUTS_S };
  for (const level of COMPLEXITIES) out[level] = settings[TIMEOUT_KEYS[level]];
  return out;
}
