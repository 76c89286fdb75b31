/**
 * A fake clock for timer tests: `setTimeout`, `setInterval` and
 * `performance.now()` move only when the test says so, so a test of a
 * 100 ms interval does not depend on how loaded the machine is.
 *
 * @module
 */
// @ts-types="@types/sinonjs__fake-timers"
import FakeTimers from "@sinonjs/fake-timers";

/** The installed fake clock; `using` restores the real timers. */
export interface TestClock extends Disposable {
  /** Moves time forward by `ms`, firing every timer due on the way (and their microtasks). */
  tick(ms: number): Promise<void>;
  /** Fake milliseconds since install. */
  now(): number;
}

/** Installs fake timers and a fake `performance.now()` until disposed. */
export function fakeClock(): TestClock {
  const clock = FakeTimers.install({
    toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "performance"],
  });
  return {
    tick: async (ms) => void await clock.tickAsync(ms),
    now: () => clock.now,
    [Symbol.dispose]: () => clock.uninstall(),
  };
}
