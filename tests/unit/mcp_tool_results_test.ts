import assert from "node:assert/strict";
import { Ajv } from "ajv";
import { McpTools } from "../../lib/protocol/mcp/tools.ts";
import { eventually, type Msg } from "../_helpers.ts";
import { makeSession, testConfig, withHooks } from "../_session.ts";

Deno.test("McpTools results show the run's hooks (text and structured), valid against the output schemas", async () => {
  await withHooks({
    pre_execute: [{ name: "before", argv: ["true"] }],
    post_execute: [{ name: "after", argv: ["sh", "-c", "echo hook-said-no; exit 4"] }],
  }, async (hooks) => {
    const config = testConfig(["--kill-grace", "0.5"]);
    const { session, services } = makeSession({ config, hooks });
    session.maxExecutions = 4;
    const tools = new McpTools(session, config, services, {
      ready: () => Promise.resolve(),
      ended: () => {},
      hook: () => {},
    });
    const ajv = new Ajv({ strict: false, allErrors: true });
    const schemas = new Map(tools.list().map((t) => [t.name, ajv.compile(t.outputSchema!)]));
    const signal = new AbortController().signal;
    const call = async (name: string, args: unknown) => {
      const r = await tools.call(name, args, { signal, progress: null });
      const validate = schemas.get(name)!;
      assert.ok(validate(r.structuredContent), JSON.stringify(validate.errors));
      return { r, s: r.structuredContent as Msg, text: (r.content[0] as { text: string }).text };
    };

    const run = await call("execute", { command: "echo hi" });
    assert.equal(run.s.hooks[0].name, "before");
    assert.equal(run.s.hooks[0].hook, "pre_execute");
    assert.equal(run.s.hooks[0].status, "completed");
    assert.match(run.text, /Hook pre_execute before: completed/);
    const exec = session.get(run.s.execution_id)!;
    await eventually(() => exec.hooks.length === 2, 10_000, "the post_execute hook");
    const page = await call("read_output", { execution_id: exec.id });
    assert.deepEqual(page.s.hooks.map((h: Msg) => [h.name, h.status, h.exit_code]), [
      ["before", "completed", 0],
      ["after", "failed", 4],
    ]);
    // A failed hook's output is in the text once, and in the structured content once.
    assert.match(page.text, /Hook post_execute after: failed \(exit 4\).*\nhook-said-no\n/);
    assert.equal(JSON.stringify(page.r).split("hook-said-no").length - 1, 2);

    const bg = await call("start", { command: "exec sleep 100" });
    assert.equal(bg.s.hooks[0].name, "before");
    const interrupted = await call("control", {
      type: "INTERRUPT",
      execution_id: bg.s.execution_id,
    });
    assert.equal(interrupted.s.hooks[0].name, "before");
    assert.match(interrupted.text, /Sent SIGINT/);
    const ended = await call("read_output", { execution_id: bg.s.execution_id, wait_for: "exit" });
    assert.equal(ended.s.signal, "SIGINT");
    // A run without hooks says nothing about them.
    const plain = makeSession({ config });
    const bare = new McpTools(plain.session, config, plain.services, {
      ready: () => Promise.resolve(),
      ended: () => {},
      hook: () => {},
    });
    const r = await bare.call("execute", { command: "true" }, { signal, progress: null });
    assert.equal("hooks" in (r.structuredContent as Msg), false);
    await session.end("disconnect");
    await plain.session.end("disconnect");
  });
});

Deno.test("McpTools control SIGNAL sends the named signal; summaries say detached and attached", async () => {
  const config = testConfig(["--kill-grace", "0.5"]);
  const { session, services } = makeSession({ config });
  session.maxExecutions = 4;
  const tools = new McpTools(session, config, services, {
    ready: () => Promise.resolve(),
    ended: () => {},
    hook: () => {},
  });
  const signal = new AbortController().signal;
  const call = async (name: string, args: unknown) =>
    (await tools.call(name, args, { signal, progress: null })).structuredContent as Msg;
  const bg = await call("start", { command: "exec sleep 100" });
  assert.equal(typeof bg.detached, "boolean");
  assert.equal(typeof bg.attached, "boolean");
  assert.equal(bg.node, null);
  const missing = await call("control", { type: "SIGNAL", execution_id: bg.execution_id });
  assert.equal(missing.error.data.field, "signal");
  const sent = await call("control", {
    type: "SIGNAL",
    signal: "USR1",
    execution_id: bg.execution_id,
  });
  assert.equal(sent.execution_id, bg.execution_id);
  const ended = await call("read_output", { execution_id: bg.execution_id, wait_for: "exit" });
  assert.equal(ended.signal, "SIGUSR1");
  assert.equal(ended.state, "ended");
  await session.end("disconnect");
});
