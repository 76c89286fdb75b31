/**
 * Refusals are never internal errors (issue 8 part 6): a program the
 * service's Deno permissions refuse gets -32001 with a message saying how to
 * allow it, and `history` while the store is down gets -32004.
 */
import assert from "node:assert/strict";
import { eventually, type Msg, spawnServer, TestClient, withServer } from "../_helpers.ts";
import { call, connectWs } from "../_mcp.ts";
import { freePort, hasRedisServer, RedisServer } from "../_redis.ts";

/** The echo program on this machine's PATH. */
async function whichEcho(): Promise<string> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const info = await Deno.stat(`${dir}/echo`);
      if (info.isFile) return `${dir}/echo`;
    } catch {
      // not in this directory
    }
  }
  throw new Error("no echo program on PATH");
}

function assertNotPermitted(response: Msg, path?: string): void {
  assert.ok(response.error, `expected an error, got ${JSON.stringify(response)}`);
  assert.equal(response.error.code, -32001, JSON.stringify(response.error));
  assert.match(response.error.message, /^Command '.*' is not allowed: /);
  assert.match(response.error.message, /full path in ALLOWED_COMMANDS \(--allowed-commands\)/);
  assert.equal(response.error.data.reason, "not_permitted");
  if (path !== undefined) {
    assert.ok(response.error.message.includes(`'${path}'`), response.error.message);
    assert.equal(response.error.data.path, path);
  }
}

Deno.test("refusals: under deno task start's scoped --allow-run, a program outside it gets -32001", async () => {
  // A copy of echo elsewhere: allowed by name, but not the file Deno was granted.
  const dir = await Deno.realPath(await Deno.makeTempDir());
  await Deno.copyFile(await whichEcho(), `${dir}/echo`);
  await Deno.chmod(`${dir}/echo`, 0o755);
  const server = await spawnServer(
    { "allowed-commands": "echo,env", ephemeral: "true" },
    {},
    { script: "scripts/start.ts" },
  );
  try {
    const health = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    assert.equal(health.permissions.run.state, "scoped");
    const client = await TestClient.open({ wsUrl: server.wsUrl } as never);

    // A path, as a command, as args, and relative to cwd.
    assertNotPermitted(
      await client.request("execute", { command: `${dir}/echo hi` }),
      `${dir}/echo`,
    );
    assertNotPermitted(
      await client.request("execute", { args: [`${dir}/echo`, "hi"] }),
      `${dir}/echo`,
    );
    assertNotPermitted(
      await client.request("execute", { command: "./echo hi", cwd: dir }),
      `${dir}/echo`,
    );
    // A bare name that env.PATH resolves to a file not granted.
    const viaPath = await client.request("execute", { command: "echo hi", env: { PATH: dir } });
    assertNotPermitted(viaPath);
    assert.match(viaPath.error.message, /child's PATH/);

    // The session is unharmed and the listed program runs.
    assert.equal((await client.run({ command: "echo still fine" })).stdout, "still fine\n");
    // PWD under scoped permissions: the server's directory; for a cwd it may
    // not read (here through a symlink), none is set and the shell finds the
    // real directory itself.
    const env = (await client.run({ args: ["env"] })).stdout;
    assert.match(env, new RegExp(`^PWD=${await Deno.realPath(Deno.cwd())}$`, "m"));
    await Deno.symlink(dir, `${dir}-link`);
    try {
      const unreadable = (await client.run({ args: ["env"], cwd: `${dir}-link` })).stdout;
      assert.doesNotMatch(unreadable, /^PWD=/m);
    } finally {
      await Deno.remove(`${dir}-link`);
    }
    await client.close();

    // MCP tools report the same refusal as a tool error.
    const { client: mcp } = await connectWs({ wsUrl: server.wsUrl } as never);
    const { result, s } = await call(mcp, "execute", { command: `${dir}/echo hi` });
    assert.equal(result.isError, true);
    assert.equal(s.error.code, -32001);
    assert.match(s.error.message, /ALLOWED_COMMANDS/);
    await mcp.close();
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("refusals: a program the OS will not execute gets -32001, not an internal error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/script`, "#!/bin/sh\necho never\n");
    await Deno.chmod(`${dir}/script`, 0o644);
    await withServer({}, async (server) => {
      const client = await TestClient.open(server);
      const r = await client.request("execute", { args: [`${dir}/script`] });
      assert.equal(r.error?.code, -32001, JSON.stringify(r));
      assert.match(r.error.message, /^Cannot run '.*script': permission denied/);
      assert.equal(r.error.data.reason, "os_permission_denied");
      await client.close();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

if (!(await hasRedisServer())) {
  Deno.test({
    ignore: true,
    name: "refusals: history while the store is down (skipped: redis-server not installed)",
    fn() {},
  });
} else {
  Deno.test("refusals: history while the store is down gets -32004 Store unavailable", async () => {
    const redis = await RedisServer.start(freePort());
    try {
      await withServer(
        { "redis-url": redis.url, "redis-prefix": `t${Date.now()}:` },
        async (server) => {
          const client = await TestClient.open(server);
          await client.run({ command: "echo recorded" });
          assert.ok(Array.isArray((await client.request("history", { limit: 5 })).result?.records));

          await redis.stop();
          await eventually(async () =>
            (await (await fetch(`${server.httpUrl}/health`)).json()).status === "degraded"
          );
          const r = await client.request("history", { limit: 5 });
          assert.deepEqual([r.error?.code, r.error?.message], [-32004, "Store unavailable"]);
          assert.equal(r.error.data.backend, "redis");
          assert.equal(typeof r.error.data.reason, "string");
          assert.ok(!("result" in r));
          // The session keeps working, and commands still run.
          assert.equal((await client.run({ command: "echo during" })).stdout, "during\n");
          await client.close();
        },
      );
    } finally {
      await redis.stop();
    }
  });
}
