import assert from "node:assert/strict";
import { checkArgNames } from "../../lib/protocol/mcp/tool_args.ts";
import { argNames } from "../../lib/protocol/mcp/tool_schemas.ts";
import { McpTools } from "../../lib/protocol/mcp/tools.ts";
import type { Msg } from "../_helpers.ts";
import { makeSession, testConfig } from "../_session.ts";

/** The hints `checkArgNames` gives for `args` in `tool`. */
function hints(tool: Parameters<typeof argNames>[0], args: Record<string, unknown>): Msg {
  try {
    checkArgNames(tool, args, argNames(tool));
  } catch (err) {
    return (err as { data: Msg }).data.hints;
  }
  return null;
}

Deno.test("checkArgNames() points peer tools' names at ours, each where the tool has it", () => {
  assert.deepEqual(
    hints("execute", {
      working_directory: "/",
      cwd_path: "/",
      dir: "/",
      timeout_ms: 1,
      cmd: "x",
      argv: [],
      environment: {},
      input: "",
    }),
    {
      working_directory: "use cwd",
      cwd_path: "use cwd",
      dir: "use cwd",
      timeout_ms: "use timeout (in seconds, not milliseconds)",
      cmd: "use command",
      argv: "use args",
      environment: "use env",
      input: "use stdin",
    },
  );
  assert.deepEqual(hints("control", { pid: 1, action: "CANCEL" }), {
    pid: "use execution_id (the execution_id that execute or start returned)",
    action: "use type",
  });
  // A name with no counterpart in this tool gets no hint, but is still refused.
  assert.deepEqual(hints("estimate_timeout", { cwd_path: "/", xyz: 1 }), {});
  assert.deepEqual(hints("read_output", { timeout: 5, timeout_ms: 5 }), {
    timeout: "use wait_seconds",
    timeout_ms: "use wait_seconds (in seconds, not milliseconds)",
  });
  assert.equal(
    hints("execute", { run_in_background: true }).run_in_background,
    "use the start tool for a run that goes on in the background",
  );
  assert.match(hints("start", { detach: true }).detach, /every run outlives the MCP session/);
  // Inherited names are not arguments.
  assert.notEqual(hints("execute", { command: "x", ["__proto__"]: 1, toString: 1 }), null);
  assert.equal(hints("execute", { command: "x", timeout: null }), null);
});

Deno.test("McpTools execute waits at most mcp-default-wait when the call gives no wait_seconds", async () => {
  const config = testConfig(["--mcp-default-wait", "0.2", "--kill-grace", "0.5"]);
  const { session, services } = makeSession({ config });
  const tools = new McpTools(session, config, services, {
    ready: () => Promise.resolve(),
    ended: () => {},
    hook: () => {},
  });
  const signal = new AbortController().signal;
  const r = await tools.call("execute", { command: "exec sleep 100" }, { signal, progress: null });
  const s = r.structuredContent as Msg;
  assert.equal(s.running, true);
  assert.equal(r.isError, undefined);
  const exec = session.get(s.execution_id)!;
  assert.equal(exec.active, true);
  await exec.cancel("canceled");
  await session.end("disconnect");
});
