/**
 * The V8 flags the service runs with, by `deno task start` (and so by
 * `deno task bench`, which starts it the same way) and in the binary of
 * `deno task compile`.
 *
 * `--max-semi-space-size=2` (MiB): V8 grows each of its young generation's
 * two semi-spaces up to 16 MiB under a burst of allocation, and keeps them.
 * Output streaming allocates fast and keeps little (framing, events, JSON),
 * so the young generation is mostly garbage between collections. Capped at
 * 2 MiB, scavenges run more often but each is short: the idle server is
 * about 5 MB smaller, 100 detached `cat`s of 1 MiB at once peak about 45 MB
 * lower, and 20 sessions streaming at once about 35 MB lower, with no
 * measurable loss of throughput. 1 MiB saves another 1-2 MB but promotes
 * what waits on a slow socket to the old generation, which makes
 * `slow_reader`'s growth erratic (11-23 MB against 10-12 MB at 2 MiB).
 *
 * A flag given in `DENO_V8_FLAGS` is left to it: Deno applies `--v8-flags`
 * after that variable, so ours would override the operator's.
 *
 * @module
 */

/** The flags, each with the name it is recognised by in `DENO_V8_FLAGS`. */
const FLAGS: ReadonlyArray<readonly [name: string, flag: string]> = [
  ["max-semi-space-size", "--max-semi-space-size=2"],
];

/**
 * The `--v8-flags=...` argument for `deno run` or `deno compile`, or none
 * when `fromEnv` (the value of `DENO_V8_FLAGS`) sets every one of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { v8FlagsArgs } from "./_v8_flags.ts";
 * assert.deepEqual(v8FlagsArgs(undefined), ["--v8-flags=--max-semi-space-size=2"]);
 * assert.deepEqual(v8FlagsArgs("--max-semi-space-size=8"), []);
 * assert.deepEqual(v8FlagsArgs("--max_semi_space_size=8"), []);
 * ```
 */
export function v8FlagsArgs(fromEnv: string | undefined): string[] {
  // V8 takes `-` and `_` alike in flag names.
  const given = (fromEnv ?? "").replaceAll("_", "-");
  const flags = FLAGS.filter(([name]) => !given.includes(`--${name}`)).map(([, flag]) => flag);
  return flags.length === 0 ? [] : [`--v8-flags=${flags.join(",")}`];
}
