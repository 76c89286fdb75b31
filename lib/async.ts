/**
 * Small async helpers shared by the core, the protocols and the tests: bounded
 * waits, a sleep, and a wait that an abort signal ends.
 *
 * @module
 */

/**
 * The longest delay `setTimeout` keeps (2^31 - 1 ms, about 24.8 days): a
 * longer one fires at once. Longer waits arm for this and arm again.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fire` once `ms` have passed, however long that is (past
 * {@linkcode MAX_TIMER_MS} it re-arms); returns the cancel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { longTimeout } from "./async.ts";
 * let fired = false;
 * const cancel = longTimeout(() => fired = true, 30 * 86400 * 1000); // 30 days
 * await new Promise((r) => setTimeout(r, 20));
 * assert.equal(fired, false, "not at once, as setTimeout would");
 * cancel();
 * ```
 */
export function longTimeout(fire: () => void, ms: number, unref = false): () => void {
  const due = performance.now() + ms;
  let handle: ReturnType<typeof setTimeout> | undefined;
  const arm = (left: number) => {
    handle = setTimeout(() => {
      const rest = due - performance.now();
      if (rest > 1) arm(rest);
      else fire();
    }, Math.min(Math.max(0, left), MAX_TIMER_MS));
    if (unref) Deno.unrefTimer(handle);
  };
  arm(ms);
  return () => clearTimeout(handle);
}

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

/**
 * Resolves after `ms` milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sleep } from "./async.ts";
 * const start = performance.now();
 * await sleep(5);
 * assert.ok(performance.now() - start >= 4);
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `promise`, or a rejection with `reason()` when `signal` aborts first. The
 * operation itself goes on: only the wait for it ends.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { abortable } from "./async.ts";
 * assert.equal(await abortable(Promise.resolve(1), new AbortController().signal, () => "x"), 1);
 * const aborted = AbortSignal.abort();
 * await assert.rejects(abortable(new Promise(() => {}), aborted, () => new Error("gone")), /gone/);
 * ```
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  reason: () => unknown,
): Promise<T> {
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
