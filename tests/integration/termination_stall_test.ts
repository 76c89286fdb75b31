/**
 * Issue 9 item 1: ending many groups at once never stops the server from
 * answering. Against real servers (the plain `main.ts`, and one under the
 * scoped permissions of `deno task start`, where /proc cannot be read), 18
 * groups end together while `/healthz` is polled every 10 ms. The latency
 * goal lives in `deno task bench` (the `stall` figure); here every group must
 * be gone and every poll answered.
 *
 * @module
 */
import assert from "node:assert/strict";
import { assertGroupGone, type Msg, pidsWithMarker, spawnServer, TestClient } from "../_helpers.ts";

/** Polls `/healthz` every 10 ms until stopped; counts answers and failures. */
function pollHealthz(httpUrl: string) {
  let stopped = false;
  let answered = 0;
  const failures: string[] = [];
  const latencies: number[] = [];
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${httpUrl}/healthz`);
        const body = await res.json();
        if (res.status === 200 && body.status === "ok") answered++;
        else failures.push(`${res.status} ${JSON.stringify(body)}`);
      } catch (err) {
        failures.push(String(err));
      }
      latencies.push(performance.now() - t0);
      // A steady probe rate is what is measured, not a wait for an event.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { answered, failures, maxMs: Math.max(...latencies) };
    },
  };
}

/** Starts `params` and returns its execution id and pgid. */
async function start(client: TestClient, params: Record<string, unknown>) {
  const r = await client.request("execute", params);
  if (r.error) throw new Error(`execute failed: ${JSON.stringify(r.error)}`);
  return { id: r.result.execution_id as string, pgid: r.result.pgid as number };
}

async function endManyAtOnce(server: { httpUrl: string; wsUrl: string }): Promise<void> {
  const client = await TestClient.open({ wsUrl: server.wsUrl } as never);
  const tag = `${Date.now() % 100000}`;
  const marker = (i: number) => `1000.${tag}${i}`;
  const completed = new Map<string, Msg>();
  try {
    // Leaders that die on SIGTERM while a child ignores it (the case that
    // used to spin), and groups where both ignore it; each says when its
    // trap is in place.
    const stubborn = [];
    for (let i = 0; i < 6; i++) {
      const command = i < 3
        ? `(trap '' TERM; echo ready; exec sleep ${marker(i)}) & wait`
        : `trap '' TERM; (trap '' TERM; exec sleep ${marker(i)}) & echo ready; wait`;
      const run = await start(client, { command });
      await client.next((m) => m.method === "process.output" && m.params.execution_id === run.id);
      stubborn.push(run);
    }
    // Plain shells: sh dies with its child, whose zombie init may be slow to reap.
    const plain = [];
    for (let i = 0; i < 6; i++) plain.push(await start(client, { command: "sleep 1000; true" }));
    const poller = pollHealthz(server.httpUrl);
    const timedOut = [];
    for (let i = 0; i < 6; i++) {
      timedOut.push(await start(client, { command: "sleep 1000; true", timeout: 0.5 }));
    }
    const canceled = [...stubborn, ...plain];
    const replies = await Promise.all(
      canceled.map((run) => client.request("control", { type: "CANCEL", execution_id: run.id })),
    );
    for (const reply of replies) assert.equal(reply.result?.status, "canceled");
    for (const run of [...canceled, ...timedOut]) {
      completed.set(run.id, (await client.event("completed", run.id, 30_000)).params);
    }
    const polled = await poller.stop();
    assert.deepEqual(polled.failures, []);
    assert.ok(polled.answered > 0);
    console.log(`  /healthz: ${polled.answered} answers, slowest ${polled.maxMs.toFixed(1)} ms`);

    for (const run of canceled) assert.equal(completed.get(run.id)?.status, "canceled");
    for (const run of timedOut) assert.equal(completed.get(run.id)?.status, "timeout");
    // The leaders that ignored SIGTERM were ended by SIGKILL.
    for (const run of stubborn.slice(3)) assert.equal(completed.get(run.id)?.signal, "SIGKILL");
    for (const run of [...canceled, ...timedOut]) await assertGroupGone(run.pgid);
    for (let i = 0; i < 6; i++) assert.deepEqual(await pidsWithMarker(marker(i)), []);

    const health = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    assert.equal(health.running_executions, 0);
    // Reported, not asserted: the server's own view of the worst stall.
    assert.equal(typeof health.event_loop_lag_max_ms, "number");
    console.log(`  server event loop lag: worst ${health.event_loop_lag_max_ms} ms`);
  } finally {
    await client.close();
  }
}

const FLAGS = { "kill-grace": "1", "max-executions-per-session": "18", ephemeral: "true" };

Deno.test("termination: 18 groups ending at once leave every /healthz answered (main.ts -A)", async () => {
  const server = await spawnServer(FLAGS);
  try {
    await endManyAtOnce(server);
  } finally {
    await server.stop();
  }
});

Deno.test("termination: the same under the scoped permissions of deno task start", async () => {
  const server = await spawnServer(FLAGS, {}, { script: "scripts/start.ts" });
  try {
    const health = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    // Deno refuses /proc without --allow-all: termination must do without it.
    assert.equal(health.permissions.read.state, "scoped");
    await endManyAtOnce(server);
  } finally {
    await server.stop();
  }
});
