/**
 * Child environment defaults against a running server (PROTOCOL.md part 3,
 * "Child environment defaults"): PWD, PYTHONUNBUFFERED and the agent-safe
 * non-interactive settings are present, and the request's `env` overrides each.
 */
import assert from "node:assert/strict";
import { python3, spawnServer, TestClient, withServer } from "../_helpers.ts";

const python = python3;

const DEFAULTS = {
  PYTHONUNBUFFERED: "1",
  PAGER: "cat",
  GIT_PAGER: "cat",
  GIT_TERMINAL_PROMPT: "0",
  DEBIAN_FRONTEND: "noninteractive",
};

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** A python3 that runs without pyenv shims (the child env has HOME=/), or null. */

/** A real directory and a symlink to it, removed after `fn`. */
async function withLinkedDir(fn: (link: string, real: string) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${base}/real`);
    await Deno.symlink(`${base}/real`, `${base}/link`);
    await fn(`${base}/link`, await Deno.realPath(`${base}/real`));
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

Deno.test("child env: PWD and the agent-safe defaults are set, without a cwd too", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    for (const params of [{ args: ["env"] }, { command: "env" }]) {
      const env = parseEnv((await client.run(params)).stdout);
      for (const [name, value] of Object.entries(DEFAULTS)) assert.equal(env[name], value, name);
      // The server's own directory, where the child starts.
      assert.equal(env.PWD, await Deno.realPath(Deno.cwd()));
    }
    await client.close();
  });
});

Deno.test("child env: the request's env overrides every default, PWD included", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.open(server);
    const overrides = {
      PYTHONUNBUFFERED: "",
      PAGER: "less",
      GIT_PAGER: "more",
      GIT_TERMINAL_PROMPT: "1",
      DEBIAN_FRONTEND: "dialog",
      PWD: "/somewhere/else",
    };
    const env = parseEnv((await client.run({ args: ["env"], env: overrides })).stdout);
    for (const [name, value] of Object.entries(overrides)) assert.equal(env[name], value, name);
    await client.close();
  });
});

Deno.test("child env: PWD is the resolved cwd (symlinks followed), and pwd agrees", async () => {
  await withLinkedDir(async (link, real) => {
    await withServer({}, async (server) => {
      const client = await TestClient.open(server);
      const run = await client.run({ command: 'printf "%s\\n" "$PWD"; pwd', cwd: link });
      assert.equal(run.stdout, `${real}\n${real}\n`);
      const args = parseEnv((await client.run({ args: ["env"], cwd: `${link}/../link` })).stdout);
      assert.equal(args.PWD, real);
      await client.close();
    });
    // With workspace roots and no cwd, the child starts in the first root, resolved.
    await withServer({ "workspace-roots": link }, async (server) => {
      const client = await TestClient.open(server);
      assert.equal(parseEnv((await client.run({ args: ["env"] })).stdout).PWD, real);
      await client.close();
    });
  });
});

Deno.test({
  name: "child env: Python output is live (PYTHONUNBUFFERED), not held until exit",
  ignore: python === null,
  fn: async () => {
    await withServer({}, async (server) => {
      const client = await TestClient.open(server);
      const r = await client.request("execute", {
        args: [python!, "-c", "import time\nprint('live')\ntime.sleep(1000)"],
      });
      const id = r.result.execution_id;
      // Block-buffered into the pipe, this would arrive only at exit, which never comes.
      assert.equal((await client.event("output", id)).params.data, "live\n");
      await client.request("control", { type: "CANCEL", execution_id: id });
      assert.equal((await client.event("completed", id)).params.status, "canceled");
      await client.close();
    });
  },
});

Deno.test("child env: under deno task start's scoped reads, a shell still sees the real cwd as PWD", async () => {
  const real = await Deno.realPath(await Deno.makeTempDir());
  const link = `${real}-link`;
  await Deno.symlink(real, link);
  const server = await spawnServer({ ephemeral: "true" }, {}, { script: "scripts/start.ts" });
  try {
    const health = await fetch(`${server.httpUrl}/health`).then((r) => r.json());
    assert.equal(health.permissions.read.state, "scoped");
    const client = await TestClient.open({ wsUrl: server.wsUrl } as never);
    const run = await client.run({ command: 'printf "%s\\n" "$PWD"; pwd', cwd: link });
    assert.equal(run.stdout, `${real}\n${real}\n`);
    await client.close();
  } finally {
    await server.stop();
    await Deno.remove(link);
    await Deno.remove(real);
  }
});
