import assert from "node:assert/strict";
import { InvalidParamsError } from "../../lib/errors.ts";
import { CLIENT_CANCELLED, errorResult, McpTools } from "../../lib/protocol/mcp/tools.ts";
import { eventually, type Msg } from "../_helpers.ts";
import { makeSession, testConfig } from "../_session.ts";

function setup(flags: string[] = []) {
  const config = testConfig(["--kill-grace", "0.5", ...flags]);
  const { session, services } = makeSession({ config });
  session.maxExecutions = 4;
  const ended: string[] = [];
  const tools = new McpTools(session, config, services, {
    ready: () => Promise.resolve(),
    ended: (exec) => void ended.push(exec.id),
    hook: () => {},
  });
  const call = (name: string, args: unknown, signal = new AbortController().signal) =>
    tools.call(name, args, { signal, progress: null });
  return { tools, session, ended, call };
}

Deno.test("errorResult() names each invalid field for the model", () => {
  const r = errorResult(
    new InvalidParamsError("Invalid params", {
      data: {
        field: "timeout",
        reason: "must be greater than 0",
        issues: [
          { field: "timeout", reason: "must be greater than 0" },
          { field: "cwd", reason: "no such directory" },
        ],
      },
    }),
  );
  assert.equal(r.isError, true);
  assert.deepEqual(r.content, [{
    type: "text",
    text: "Error -32602: Invalid params: timeout: must be greater than 0; cwd: no such directory",
  }]);
  assert.equal((r.structuredContent as Msg).error.code, -32602);
});

Deno.test("McpTools.call() throws for an unknown tool and reports tool failures as results", async () => {
  const { call } = setup();
  await assert.rejects(call("rm_rf", {}), { code: -32602, message: "Unknown tool: rm_rf" });
  await assert.rejects(call("__proto__", {}), { code: -32602 });
  const r = await call("control", { type: "STOP" });
  assert.equal(r.isError, true);
  assert.match((r.content[0] as { text: string }).text, /type/);
});

Deno.test("McpTools keeps an execute result under the 1 MiB message cap, whatever the output", async () => {
  // Both streams stay retained whole, so each must be cut to fit.
  const { call, ended } = setup([
    "--mcp-output-limit",
    String(256 * 1024),
    "--output-retention",
    String(1024 * 1024),
  ]);
  // Control characters are escaped to six bytes each in JSON, in two copies (text and structured).
  const r = await call("execute", {
    command:
      "head -c 400000 /dev/zero | tr '\\0' '\\1'; head -c 400000 /dev/zero | tr '\\0' '\\2' >&2",
  });
  const size = new TextEncoder().encode(JSON.stringify(r)).length;
  assert.ok(size <= 1024 * 1024 - 4096, `result is ${size} bytes`);
  const s = r.structuredContent as Msg;
  assert.equal(s.status, "completed");
  assert.ok(s.stdout.length > 1000 && s.stdout_omitted_bytes > 0);
  assert.equal(s.stdout.length + s.stdout_omitted_bytes, 400_000);
  assert.equal(s.stderr.length + s.stderr_omitted_bytes, 400_000);
  assert.deepEqual(ended, [s.execution_id]);
});

Deno.test("McpTools execute: a cancelled call ends its run, a closed connection leaves it to the session", async () => {
  const { call, session } = setup();
  const cancel = new AbortController();
  const pending = call("execute", { command: "exec sleep 1000" }, cancel.signal);
  const active = () => session.executions().filter((e) => e.active);
  await eventually(() => active().length === 1, 10_000, "the first run to start");
  const [first] = session.executions().filter((e) => e.active);
  cancel.abort(CLIENT_CANCELLED);
  await pending;
  assert.equal((await first!.done).status, "canceled");

  const gone = new AbortController();
  const waiting = call("execute", { command: "exec sleep 1000" }, gone.signal);
  await eventually(() => active().length === 1, 10_000, "the second run to start");
  const [second] = session.executions().filter((e) => e.active);
  gone.abort("connection closed");
  const r = await waiting;
  assert.equal((r.structuredContent as Msg).running, true, "still running after the call ended");
  assert.equal(second!.active, true);
  await session.end("disconnect");
  assert.equal(second!.state, "canceled");
});

Deno.test("McpTools send_input holds each input to max-stdin-bytes", async () => {
  const { call, session } = setup(["--max-stdin-bytes", "4"]);
  const started = await call("start", { args: ["cat"], stdin_open: true });
  const id = (started.structuredContent as Msg).execution_id;
  const ok = await call("send_input", { execution_id: id, input: "abcd" });
  assert.equal((ok.structuredContent as Msg).bytes_written, 4);
  const big = await call("send_input", { execution_id: id, input: "abcdé" });
  assert.equal(big.isError, true);
  assert.equal((big.structuredContent as Msg).error.data.field, "input");
  await session.end("disconnect");
});
