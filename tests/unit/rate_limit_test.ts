import assert from "node:assert/strict";
import fc from "fast-check";
import { RateLimiter, type RateLimiterOptions } from "../../lib/security/rate_limit.ts";

const limiter = (options: Partial<RateLimiterOptions> = {}) =>
  new RateLimiter({ ratePerSec: 10, burst: 3, maxKeys: 100, idleMs: 60_000, ...options });

Deno.test("RateLimiter.take() allows a burst, then refuses with a retry delay", () => {
  const rl = limiter({ ratePerSec: 4, burst: 3 });
  for (let i = 0; i < 3; i++) assert.deepEqual(rl.take("c", 1000), { ok: true });
  assert.deepEqual(rl.take("c", 1000), { ok: false, retryAfterMs: 250 });
  assert.deepEqual(rl.take("c", 1100), { ok: false, retryAfterMs: 150 });
});

Deno.test("RateLimiter.take() refills at the configured rate up to the burst", () => {
  const rl = limiter({ ratePerSec: 2, burst: 2 });
  rl.take("c", 0);
  rl.take("c", 0);
  assert.equal(rl.take("c", 0).ok, false);
  assert.equal(rl.take("c", 499).ok, false);
  assert.equal(rl.take("c", 500).ok, true); // one token after 0.5 s
  assert.equal(rl.take("c", 500).ok, false);
  // A long pause refills only up to the burst.
  assert.equal(rl.take("c", 100_000).ok, true);
  assert.equal(rl.take("c", 100_000).ok, true);
  assert.equal(rl.take("c", 100_000).ok, false);
});

Deno.test("RateLimiter.take() keeps a bucket per key", () => {
  const rl = limiter({ burst: 1 });
  assert.equal(rl.take("a", 0).ok, true);
  assert.equal(rl.take("a", 0).ok, false);
  assert.equal(rl.take("b", 0).ok, true);
  assert.equal(rl.size, 2);
});

Deno.test("RateLimiter.take() does not refill when the clock goes back", () => {
  const rl = limiter({ ratePerSec: 1, burst: 1 });
  assert.equal(rl.take("c", 5000).ok, true);
  assert.equal(rl.take("c", 1000).ok, false);
  assert.equal(rl.take("c", 5999).ok, false);
  assert.equal(rl.take("c", 6000).ok, true);
});

Deno.test("RateLimiter.take() never grants more than burst + rate × time", () => {
  fc.assert(fc.property(
    fc.double({ min: 0.5, max: 50, noNaN: true }),
    fc.integer({ min: 1, max: 10 }),
    fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 200 }),
    (ratePerSec, burst, gaps) => {
      const rl = limiter({ ratePerSec, burst });
      let now = 0;
      let granted = 0;
      for (const gap of gaps) {
        now += gap;
        const result = rl.take("k", now);
        if (result.ok) granted++;
        else assert.ok(result.retryAfterMs > 0 && result.retryAfterMs <= 1000 / ratePerSec + 1);
      }
      assert.ok(granted <= burst + (ratePerSec * now) / 1000 + 1e-6);
    },
  ));
});

Deno.test("RateLimiter.take() is granted again once retryAfterMs has passed", () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0.1, max: 100, noNaN: true }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 0, max: 1e9 }),
      (ratePerSec, burst, start) => {
        const rl = limiter({ ratePerSec, burst });
        for (let i = 0; i < burst; i++) assert.equal(rl.take("k", start).ok, true);
        const refused = rl.take("k", start);
        assert.equal(refused.ok, false);
        if (!refused.ok) assert.equal(rl.take("k", start + refused.retryAfterMs).ok, true);
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("RateLimiter keeps at most maxKeys buckets", () => {
  const rl = limiter({ maxKeys: 5 });
  for (let i = 0; i < 1000; i++) {
    rl.take(`client-${i}`, i);
    assert.ok(rl.size <= 5);
  }
  assert.equal(rl.size, 5);
});

Deno.test("RateLimiter evicts the least recently used bucket when full", () => {
  const rl = limiter({ maxKeys: 2, burst: 1 });
  rl.take("a", 0);
  rl.take("b", 1);
  rl.take("a", 2); // refused, but "a" is now the most recent
  rl.take("c", 3); // evicts "b"
  assert.equal(rl.size, 2);
  assert.equal(rl.take("a", 4).ok, false); // "a" kept its empty bucket
  assert.equal(rl.take("c", 4).ok, false);
  assert.equal(rl.take("b", 5).ok, true); // "b" starts over (and evicts "a")
  assert.equal(rl.take("a", 6).ok, true);
});

Deno.test("RateLimiter drops idle buckets before evicting active ones", () => {
  const rl = limiter({ maxKeys: 3, idleMs: 1000, burst: 1, ratePerSec: 0.001 });
  rl.take("idle-1", 0);
  rl.take("idle-2", 10);
  rl.take("active", 1500);
  rl.take("new", 1600); // both idle ones go; "active" stays
  assert.equal(rl.size, 2);
  assert.equal(rl.take("active", 1600).ok, false);
});

Deno.test("RateLimiter.prune() drops full and idle buckets and keeps draining ones", () => {
  const rl = limiter({ ratePerSec: 1, burst: 2, idleMs: 10_000 });
  rl.take("refilled", 0);
  rl.take("drained", 0);
  rl.take("drained", 0);
  rl.take("recent", 900);
  rl.take("recent", 900);
  // At 1000: "refilled" is full again, "drained" has 1 of 2, "recent" has 0.1.
  assert.equal(rl.prune(1000), 1);
  assert.equal(rl.size, 2);
  assert.equal(rl.take("drained", 1000).ok, true);
  assert.equal(rl.take("drained", 1000).ok, false);
  // Long idle buckets go whatever their level.
  rl.take("recent", 1000);
  assert.equal(rl.prune(11_000), 2);
  assert.equal(rl.size, 0);
});

Deno.test("RateLimiter.take() uses the monotonic clock by default", () => {
  const rl = limiter({ ratePerSec: 0.001, burst: 1 });
  assert.equal(rl.take("c").ok, true);
  const refused = rl.take("c");
  assert.equal(refused.ok, false);
  assert.equal(rl.prune(), 0);
});

Deno.test("RateLimiter() rejects invalid options", () => {
  for (
    const bad of [
      { ratePerSec: 0 },
      { ratePerSec: -1 },
      { ratePerSec: Number.NaN },
      { ratePerSec: Infinity },
      { burst: 0.5 },
      { burst: Number.NaN },
      { maxKeys: 0 },
      { maxKeys: 1.5 },
      { idleMs: -1 },
      { idleMs: Number.NaN },
    ]
  ) {
    assert.throws(() => limiter(bad), RangeError, JSON.stringify(bad));
  }
});
