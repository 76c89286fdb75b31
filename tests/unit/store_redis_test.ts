import assert from "node:assert/strict";
import { createClient } from "redis";
import { RedisStore } from "../../lib/store/redis.ts";
import { createStore, StoreUnavailableError } from "../../lib/store/store.ts";
import { run, storeContract } from "../store_contract.ts";
import { delay, freePort, hasRedisServer, RedisServer } from "../_redis.ts";
import { eventually } from "../_helpers.ts";

/** Polls `check` until it holds; fails after 10 s so a broken build cannot hang. */
function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  return eventually(check, 10_000, what);
}

let prefixes = 0;
/** A key prefix no other test uses, so tests sharing a server never see each other's keys. */
function uniquePrefix(): string {
  return `cc_test_${Deno.pid}_${++prefixes}:`;
}

if (!(await hasRedisServer())) {
  Deno.test({
    ignore: true,
    name: "RedisStore tests (skipped: redis-server not installed)",
    fn() {},
  });
} else {
  Deno.test("RedisStore meets the store contract", async (t) => {
    const server = await RedisServer.start(freePort());
    try {
      await storeContract(
        t,
        (bounds) => RedisStore.open({ ...bounds, url: server.url, prefix: uniquePrefix() }),
      );
    } finally {
      await server.stop();
    }
  });

  Deno.test("RedisStore.appendRun() bounds lists with LTRIM and sets their TTL", async () => {
    const server = await RedisServer.start(freePort());
    const raw = createClient({ url: server.url });
    const prefix = uniquePrefix();
    const store = await RedisStore.open({ url: server.url, prefix, maxRuns: 4, ttlS: 3600 });
    try {
      await raw.connect();
      for (let i = 0; i < 6; i++) await store.appendRun("cmd:make", run(i));
      assert.equal(await raw.lLen(`${prefix}runs:cmd:make`), 4);
      const ttl = await raw.pTTL(`${prefix}runs:cmd:make`);
      assert.ok(ttl > 0 && ttl <= 3600_000, `ttl ${ttl}`);
      assert.ok((await raw.pTTL(`${prefix}classes`)) > 0);
      assert.deepEqual(await raw.zRange(`${prefix}classes`, 0, -1), ["cmd:make"]);
    } finally {
      await store.close();
      raw.destroy();
      await server.stop();
    }
  });

  Deno.test("RedisStore fails fast while Redis is down and recovers by itself", async () => {
    const port = freePort();
    let server = await RedisServer.start(port);
    const store = await RedisStore.open({
      url: server.url,
      prefix: uniquePrefix(),
      maxRetryDelayMs: 200,
      commandTimeoutMs: 60_000,
    });
    try {
      await store.appendRun("cmd:make", run(1));
      assert.equal(store.health().ok, true);

      await server.stop();
      await waitFor("health to go bad", () => !store.health().ok);
      // With no offline queue a call rejects at once with the connection error. A queued
      // call would still be pending here (the deadline is a minute away) and would
      // succeed once Redis is back.
      let outcome = "pending";
      const call = store.history("cmd:make").then(
        () => (outcome = "resolved"),
        (e: unknown) => (outcome = e instanceof StoreUnavailableError ? e.reason : "other"),
      );
      // One macrotask: what is under test is that the call settles at once, not later.
      await delay(0);
      assert.ok(!["pending", "resolved", "other"].includes(outcome), outcome);
      // The reason is the connection's (ECONNREFUSED, ECONNRESET, socket closed...).
      assert.doesNotMatch(outcome, /no reply/);
      await call;
      await assert.rejects(store.appendRun("cmd:make", run(2)), StoreUnavailableError);
      await assert.rejects(store.records(), StoreUnavailableError);
      const down = store.health();
      assert.equal(down.ok, false);
      assert.equal(down.backend, "redis");
      assert.ok(down.reason && down.reason.length > 0);

      server = await RedisServer.start(port);
      await waitFor("reconnect", () => store.health().ok);
      await store.ping();
      // The restarted server kept nothing (no persistence); new writes work again.
      assert.deepEqual(await store.history("cmd:make"), []);
      await store.appendRun("cmd:make", run(3));
      assert.deepEqual((await store.history("cmd:make")).map((r) => r.duration_s), [3]);
    } finally {
      await store.close();
      await server.stop();
    }
  });

  Deno.test("RedisStore.open() starts degraded when Redis is down, then connects", async () => {
    const port = freePort();
    const store = await RedisStore.open({
      url: `redis://127.0.0.1:${port}`,
      prefix: uniquePrefix(),
      maxRetryDelayMs: 200,
    });
    let server: RedisServer | undefined;
    try {
      const health = store.health();
      assert.equal(health.ok, false);
      assert.match(health.reason ?? "", /ECONNREFUSED/);
      await assert.rejects(store.ping(), (e: unknown) => {
        assert.ok(e instanceof StoreUnavailableError);
        assert.match(e.message, /ECONNREFUSED/);
        return true;
      });

      server = await RedisServer.start(port);
      await waitFor("first connection", () => store.health().ok);
      await store.appendRun("cmd:ls", run(0.1));
      assert.equal((await store.history("cmd:ls")).length, 1);
    } finally {
      await store.close();
      await server?.stop();
    }
  });

  Deno.test("RedisStore commands time out on a hung Redis instead of waiting", async () => {
    const server = await RedisServer.start(freePort());
    const store = await RedisStore.open({
      url: server.url,
      prefix: uniquePrefix(),
      commandTimeoutMs: 300,
    });
    try {
      await store.ping();
      server.freeze(true);
      await assert.rejects(store.ping(), /no reply from Redis within 300 ms/);
      const hung = store.health();
      assert.equal(hung.ok, false);
      assert.match(hung.reason ?? "", /no reply/);
      // Calls made meanwhile fail at once rather than queue behind the silent connection.
      await assert.rejects(store.history("cmd:ls"), StoreUnavailableError);
      server.freeze(false);
      await waitFor("a ping to succeed", async () => {
        try {
          await store.ping();
          return true;
        } catch {
          return false;
        }
      });
      assert.equal(store.health().ok, true);
    } finally {
      await store.close();
      await server.stop();
    }
  });

  Deno.test("createStore() opens the Redis store when given a URL", async () => {
    const server = await RedisServer.start(freePort());
    const store = await createStore({ redisUrl: server.url, prefix: uniquePrefix() });
    try {
      assert.equal(store.backend, "redis");
      assert.deepEqual(store.health(), { backend: "redis", ok: true });
    } finally {
      await store.close();
      await server.stop();
    }
  });
}
