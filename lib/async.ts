/**
 * Small async helpers shared by the core and the tests.
 *
 * @module
 */

/**
 * Waits for `promise` at most `ms`: true if it settled (resolved or
 * rejected) in time, false otherwise. The timer is cleared either way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { settlesWithin } from "./async.ts";
 * assert.equal(await settlesWithin(Promise.resolve(), 1000), true);
 * assert.equal(await settlesWithin(new Promise(() => {}), 10), false);
 * ```
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let handle: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => handle = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(handle);
  }
}
