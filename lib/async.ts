/**
 * Small async helpers shared by the core and the tests.
 *
 * @module
 */

/** True once `promise` is done, false if `ms` pass first; the timer is cleared either way. */
async function beforeTimeout(promise: Promise<true>, ms: number): Promise<boolean> {
  let handle: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => handle = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(handle);
  }
}

/**
 * Waits for `promise` at most `ms`: true if it settled (resolved or
 * rejected) in time, false otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { settlesWithin } from "./async.ts";
 * assert.equal(await settlesWithin(Promise.resolve(), 1000), true);
 * assert.equal(await settlesWithin(Promise.reject(new Error("x")), 1000), true);
 * assert.equal(await settlesWithin(new Promise(() => {}), 10), false);
 * ```
 */
export function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return beforeTimeout(promise.then(() => true, () => true), ms);
}

/**
 * Waits for `promise` at most `ms`: true if it resolved in time, false
 * otherwise; rejects as `promise` does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolvesWithin } from "./async.ts";
 * assert.equal(await resolvesWithin(Promise.resolve(), 1000), true);
 * await assert.rejects(resolvesWithin(Promise.reject(new Error("x")), 1000), /x/);
 * assert.equal(await resolvesWithin(new Promise(() => {}), 10), false);
 * ```
 */
export function resolvesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return beforeTimeout(promise.then(() => true), ms);
}
