/**
 * `deno task start` runs the service under a launcher (scripts/start.ts):
 * signals pass through it, and when the launcher itself is SIGKILLed the
 * service does not linger as an orphan holding the port and the store.
 */
import assert from "node:assert/strict";
import { eventually, spawnServer, TestClient } from "../_helpers.ts";

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

Deno.test("a SIGKILLed launcher takes the service and its runs down with it", async () => {
  const server = await spawnServer({ ephemeral: "true" }, {}, { script: "scripts/start.ts" });
  try {
    const health = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    const service = health.pid as number;
    assert.notEqual(service, server.pid);
    const client = await TestClient.open({ wsUrl: server.wsUrl } as never);
    const run = await client.request("execute", { command: "sleep 1000" });
    const pgid = run.result.pgid as number;
    assert.ok(alive(service) && alive(pgid));
    Deno.kill(server.pid, "SIGKILL");
    // The service drains as for SIGTERM: its run is ended, then it exits.
    await eventually(() => !alive(service) && !alive(pgid), 15_000, "service and run gone");
    await client.closed;
  } finally {
    await server.stop();
  }
});
