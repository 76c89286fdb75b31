/**
 * An estimate in words: the sentence the MCP `estimate_timeout` tool answers
 * with, and the few words the error of a run an automatic limit ended
 * carries.
 *
 * @module
 */
import type { Estimate } from "./estimate.ts";

/**
 * One sentence that explains an estimate, term by term, for people and
 * models (the MCP `estimate_timeout` text).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createStore } from "../store/store.ts";
 * import { estimateTimeout } from "./estimate.ts";
 * import { explainEstimate } from "./explain.ts";
 * const store = await createStore({ ephemeral: true });
 * const text = explainEstimate(await estimateTimeout({ command: "npm test", store }));
 * assert.match(text, /^600s for cmd:npm:test: the default for medium commands/);
 * await store.close();
 * ```
 */
export function explainEstimate(e: Estimate): string {
  const r = e.reasoning;
  const figure = r.learned_s === undefined
    ? `the default for ${r.complexity} commands (${r.default_s}s)`
    : `p${r.percentile} ${r.percentile_s}s x ${r.headroom} = ${r.learned_s}s over ${r.samples} ` +
      `successful runs` +
      (e.source === "similar"
        ? ` of similar classes (${(r.similar_classes ?? []).join(", ")})`
        : "");
  const terms = [
    figure,
    ...(r.minimum_s !== undefined
      ? [`at least the default ${r.minimum_s}s for ${r.category}`]
      : []),
    ...(r.longest_failure_s !== undefined
      ? [`2 x the longest failed run ${r.longest_failure_s}s`]
      : []),
    ...(r.longest_success_s !== undefined
      ? [`2 x the longest success ${r.longest_success_s}s`]
      : []),
    ...(r.stated_s !== undefined ? [`2 x the stated ${r.stated_s}s`] : []),
  ];
  const decided = r.decided_by === "max"
    ? `the cap (max-timeout ${r.max_s}s)`
    : r.decided_by === "floor"
    ? `the floor (min-auto-timeout ${r.floor_s}s)`
    : r.decided_by === "backoff"
    ? `the back-off: ${r.timeouts_since_success} run(s) since the last success were killed by ` +
      `an automatic limit, so it doubled to ${r.backoff_s}s`
    : `the base ${r.base_s}s` +
      (r.multiplier !== 1 ? ` x${r.multiplier} while the machine is busy` : "");
  return `${e.timeout_s}s for ${r.class}: ${terms.join("; ")}. Decided by ${decided}` +
    (r.store_error ? ` (history unavailable: ${r.store_error})` : "") +
    `. Pass timeout to set a limit yourself, or 0 for no automatic limit.`;
}

/**
 * Where an automatic limit came from, in a few words, for the error of a run
 * it ended: the term that decided it, and the class.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createStore } from "../store/store.ts";
 * import { estimateTimeout } from "./estimate.ts";
 * import { describeLimit } from "./explain.ts";
 * const store = await createStore({ ephemeral: true });
 * const e = await estimateTimeout({ command: "make", store });
 * assert.equal(describeLimit(e), "the default for cmd:make");
 * await store.close();
 * ```
 */
export function describeLimit(e: Estimate): string {
  const r = e.reasoning;
  switch (r.decided_by) {
    case "max":
      return `max-timeout, the cap, for ${r.class}`;
    case "floor":
      return `min-auto-timeout, the floor, for ${r.class}`;
    case "backoff":
      return `doubled for ${r.class} after ${r.timeouts_since_success} automatic timeout(s) ` +
        "since its last success";
    case "base":
      return e.source === "history"
        ? `learned from the history of ${r.class}`
        : e.source === "similar"
        ? `learned from classes similar to ${r.class}`
        : `the default for ${r.class}`;
  }
}
