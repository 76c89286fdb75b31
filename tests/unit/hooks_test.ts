import assert from "node:assert/strict";
import { ConfigError } from "../../lib/config/config.ts";
import { HookRunner } from "../../lib/ops/hooks.ts";
import { assertGroupGone } from "../_helpers.ts";

const options = { childEnv: { PATH: "/usr/bin:/bin" }, killGrace: 0.3 };

async function withHooksFile(
  content: unknown,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/hooks.json`;
    await Deno.writeTextFile(path, typeof content === "string" ? content : JSON.stringify(content));
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("HookRunner.status() reports the file and the kinds configured, truthfully", async () => {
  await withHooksFile({
    timeout: 12,
    hooks: { pre_execute: [{ argv: ["true"] }], on_timeout: [{ argv: ["true"] }] },
  }, async (path) => {
    const hooks = await HookRunner.load(path, options);
    assert.deepEqual(hooks.status(), {
      enabled: true,
      config_path: path,
      hooks_configured: ["pre_execute", "on_timeout"],
      timeout: 12,
      parallel: false,
    });
    assert.deepEqual(hooks.programs(), ["true"]);
  });
});

Deno.test("HookRunner.run() passes the execution's facts as env vars, never via a shell", async () => {
  await withHooksFile({
    hooks: { post_execute: [{ name: "show", argv: ["env"], env: { EXTRA: "1" } }] },
  }, async (path) => {
    const hooks = await HookRunner.load(path, options);
    const [outcome] = await hooks.run("post_execute", {
      executionId: "e-1",
      command: "echo $(whoami); rm -rf /nothing",
      exit: { status: "failed", exitCode: 3, signal: null, error: null, executionTime: 1.5 },
    });
    assert.equal(outcome!.ok, true);
    assert.equal(outcome!.name, "show");
    const env = Object.fromEntries(
      outcome!.output.trim().split("\n").map((
        l,
      ) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    assert.equal(env.CC_EXECUTOR_EXECUTION_ID, "e-1");
    assert.equal(env.CC_EXECUTOR_COMMAND, "echo $(whoami); rm -rf /nothing");
    assert.equal(env.CC_EXECUTOR_STATUS, "failed");
    assert.equal(env.CC_EXECUTOR_EXIT_CODE, "3");
    assert.equal(env.CC_EXECUTOR_DURATION, "1.5");
    assert.equal(env.CC_EXECUTOR_HOOK, "post_execute");
    assert.equal(env.EXTRA, "1");
  });
});

Deno.test("HookRunner.run() reports failures and time limits, and kills the hook's group", async () => {
  await withHooksFile({
    hooks: {
      pre_execute: [
        { name: "fails", argv: ["sh", "-c", "echo nope >&2; exit 4"], required: true },
        { name: "hangs", argv: ["sh", "-c", "sleep 1000 & sleep 1000; wait"], timeout: 0.3 },
        { name: "missing", argv: ["/no/such/hook"] },
      ],
    },
  }, async (path) => {
    const hooks = await HookRunner.load(path, options);
    const [fails, hangs, missing] = await hooks.run("pre_execute", {
      executionId: "e",
      command: "x",
    });
    assert.deepEqual([fails!.ok, fails!.status, fails!.exitCode, fails!.required], [
      false,
      "failed",
      4,
      true,
    ]);
    assert.equal(fails!.output, "nope\n");
    assert.equal(hangs!.status, "timeout");
    assert.match(hangs!.error!, /timed out after 0.3s/);
    assert.equal(missing!.status, "error");
    assert.match(missing!.error!, /cannot start/);
  });
});

Deno.test("HookRunner.run() with parallel runs the hooks of a kind together", async () => {
  const dir = await Deno.makeTempDir();
  // Each hook waits for the other's marker: both succeed only if they run at once.
  const meet = (me: string, other: string) => [
    "sh",
    "-c",
    `touch ${dir}/${me}; for i in $(seq 1 40); do [ -e ${dir}/${other} ] && exit 0; sleep 0.05; done; exit 1`,
  ];
  try {
    for (const parallel of [true, false]) {
      await Deno.remove(`${dir}/a`).catch(() => {});
      await Deno.remove(`${dir}/b`).catch(() => {});
      await withHooksFile({
        parallel,
        hooks: { post_execute: [{ argv: meet("a", "b") }, { argv: meet("b", "a") }] },
      }, async (path) => {
        const hooks = await HookRunner.load(path, options);
        const outcomes = await hooks.run("post_execute", { executionId: "e", command: "x" });
        assert.deepEqual(outcomes.map((o) => o.ok), parallel ? [true, true] : [false, true]);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HookRunner.load() names the file and the problem for a bad config", async () => {
  await withHooksFile("{not json", async (path) => {
    await assert.rejects(
      HookRunner.load(path, options),
      (e: Error) => e instanceof ConfigError && e.message.includes(path),
    );
  });
  await withHooksFile({ hooks: { pre_execute: [{ argv: "echo hi" }] } }, async (path) => {
    await assert.rejects(HookRunner.load(path, options), /hooks\.pre_execute\.0\.argv/);
  });
  await withHooksFile({ hooks: { before: [] } }, async (path) => {
    await assert.rejects(HookRunner.load(path, options), ConfigError);
  });
  await assert.rejects(HookRunner.load("/no/such/hooks.json", options), ConfigError);
});

Deno.test("a hook's leftover background processes do not outlive it", async () => {
  await withHooksFile({
    hooks: { post_execute: [{ argv: ["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $$"] }] },
  }, async (path) => {
    const hooks = await HookRunner.load(path, options);
    const [outcome] = await hooks.run("post_execute", { executionId: "e", command: "x" });
    assert.equal(outcome!.ok, true);
    await assertGroupGone(Number(outcome!.output.trim()));
  });
});
