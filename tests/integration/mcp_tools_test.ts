/**
 * The MCP tools as an agent meets them, against a real server with the
 * official SDK client over both transports: unknown argument names are
 * refused before anything runs, `execute` returns while a run goes on,
 * `read_output` waits for a run's end or returns its tail, and every result
 * validates against its tool's `outputSchema` (the SDK client checks each
 * call itself once it has listed the tools; ajv checks them here as well).
 */
import assert from "node:assert/strict";
import { Ajv, type ValidateFunction } from "ajv";
import type { Tool } from "@modelcontextprotocol/sdk/types";
import type { ServerHandle } from "../../main.ts";
import { assertGroupGone, type Msg, withServer } from "../_helpers.ts";
import { call, type Client, closeHttp, connectHttp, connectWs } from "../_mcp.ts";

/** An SDK client over one transport, its tools listed (so it validates every result). */
interface Connected {
  client: Client;
  tools: Tool[];
  close(): Promise<void>;
}

const TRANSPORTS: [string, (server: ServerHandle) => Promise<Connected>][] = [
  ["WebSocket", async (server) => {
    const { client } = await connectWs(server);
    const { tools } = await client.listTools();
    return { client, tools, close: () => client.close() };
  }],
  ["Streamable HTTP", async (server) => {
    const c = await connectHttp(server);
    const { tools } = await c.client.listTools();
    return { client: c.client, tools, close: () => closeHttp(c) };
  }],
];

/** Runs `fn` with a fresh server and a connected client, over each transport in turn. */
function overBoth(
  name: string,
  flags: Record<string, string>,
  fn: (c: Connected, server: ServerHandle) => Promise<void>,
): void {
  for (const [transport, connect] of TRANSPORTS) {
    Deno.test(`MCP tools over ${transport}: ${name}`, async () => {
      await withServer(flags, async (server) => {
        const c = await connect(server);
        try {
          await fn(c, server);
        } finally {
          await c.close();
        }
      });
    });
  }
}

/** Prints 1 to 20, one every 0.2 s: about 4 s in all. */
const FOUR_SECONDS = "for i in $(seq 20); do echo $i; sleep 0.2; done";
const ONE_TO_20 = Array.from({ length: 20 }, (_, i) => `${i + 1}\n`).join("");

overBoth("unknown argument names are refused, with hints, and nothing runs", {}, async (c) => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await call(c.client, "execute", {
      command: `touch ${dir}/ran`,
      working_directory: dir,
      timeout_ms: 5000,
    });
    assert.equal(r.result.isError, true);
    assert.match(r.text, /Unknown arguments for execute: working_directory \(use cwd\)/);
    assert.match(r.text, /timeout_ms \(use timeout \(in seconds, not milliseconds\)\)/);
    assert.match(r.text, /Nothing was done/);
    assert.match(r.text, /Valid arguments: command, args, timeout, idle_timeout, cwd,/);
    assert.equal(r.s.error.code, -32602);
    assert.deepEqual(r.s.error.data.unknown, ["working_directory", "timeout_ms"]);
    assert.ok(r.s.error.data.valid.includes("wait_seconds"));
    // Nothing was started: no run is listed and the file was never made.
    assert.equal((await call(c.client, "list_executions")).s.total, 0);
    await assert.rejects(Deno.stat(`${dir}/ran`), Deno.errors.NotFound);
    // Every tool checks its names, with hints that fit the tool.
    const read = await call(c.client, "read_output", { pid: 123 });
    assert.equal(read.result.isError, true);
    assert.match(read.text, /pid \(use execution_id/);
    const send = await call(c.client, "send_input", { execution_id: "x", stdin: "y\n" });
    assert.match(send.text, /stdin \(use input\)/);
    const list = await call(c.client, "list_executions", { all: true });
    assert.match(list.text, /Unknown argument for list_executions: all\. .*running_only/);
    const cmd = await call(c.client, "start", { cmd: "true", argv: ["true"] });
    assert.match(cmd.text, /cmd \(use command\), argv \(use args\)/);
    assert.equal((await call(c.client, "list_executions")).s.total, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

overBoth('read_output wait_for: "exit" sees a 4 s job to its end in 2 calls', {}, async (c) => {
  const started = await call(c.client, "start", { command: FOUR_SECONDS });
  assert.equal(started.s.state, "running");
  const r = await call(c.client, "read_output", {
    execution_id: started.s.execution_id,
    wait_for: "exit",
  });
  assert.equal(r.s.running, false);
  assert.equal(r.s.state, "ended");
  assert.equal(r.s.status, "completed");
  assert.equal(r.s.exit_code, 0);
  assert.equal(r.s.stdout, ONE_TO_20);
  assert.equal(r.s.remaining_bytes, 0);
});

overBoth(
  "read_output tail_bytes returns the end of the output, never with offset",
  {},
  async (c) => {
    const run = await call(c.client, "execute", { command: "seq 1000" });
    const id = run.s.execution_id;
    const tail = await call(c.client, "read_output", { execution_id: id, tail_bytes: 10 });
    assert.equal(tail.s.stdout, "\n999\n1000\n");
    assert.equal(tail.s.next_offset, tail.s.output_bytes);
    assert.equal(tail.s.remaining_bytes, 0);
    const all = await call(c.client, "read_output", { execution_id: id, tail_bytes: 1_000_000 });
    assert.equal(all.s.offset, 0);
    assert.equal(all.s.stdout.length, run.s.output_bytes);
    const both = await call(c.client, "read_output", {
      execution_id: id,
      offset: 0,
      tail_bytes: 5,
    });
    assert.equal(both.result.isError, true);
    assert.match(both.text, /tail_bytes: give offset .* or tail_bytes .*, not both/);
  },
);

overBoth("execute with wait_seconds: 1 on sleep 5 returns running, and the run goes on", {
  "kill-grace": "0.5",
}, async (c) => {
  const r = await call(c.client, "execute", { command: "sleep 5; echo done", wait_seconds: 1 });
  assert.equal(r.result.isError, undefined);
  assert.equal(r.s.running, true);
  assert.equal(r.s.state, "running");
  assert.equal(r.s.next_offset, 0);
  assert.match(r.text, /goes on in the background/);
  const listed = await call(c.client, "list_executions", { running_only: true });
  assert.deepEqual(listed.s.executions.map((e: Msg) => e.execution_id), [r.s.execution_id]);
  const end = await call(c.client, "read_output", {
    execution_id: r.s.execution_id,
    offset: r.s.next_offset,
    wait_for: "exit",
  });
  assert.equal(end.s.status, "completed");
  assert.equal(end.s.stdout, "done\n");
});

Deno.test("MCP tools: execute of sleep 75 with default settings returns running (within the SDK's 60 s request timeout), and the run goes on", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const { client } = await connectWs(server);
    try {
      // The SDK client rejects a request unanswered after 60 s: an answer at all is the check.
      const r = await call(client, "execute", { command: "sleep 75" });
      assert.equal(r.s.running, true);
      const listed = await call(client, "list_executions", { running_only: true });
      assert.equal(listed.s.total, 1);
      const canceled = await call(client, "control", {
        type: "CANCEL",
        execution_id: r.s.execution_id,
      });
      assert.equal(canceled.s.status, "canceled");
      await assertGroupGone(r.s.pgid);
    } finally {
      await client.close();
    }
  });
});

/** Compiles each tool's `outputSchema` as the SDK client does (ajv, not strict). */
function validators(tools: Tool[]): Map<string, ValidateFunction> {
  const ajv = new Ajv({ strict: false, allErrors: true });
  return new Map(tools.map((t) => [t.name, ajv.compile(t.outputSchema!)]));
}

Deno.test("MCP tools: every result validates against its tool's outputSchema (success, running, error)", async () => {
  await withServer({ "kill-grace": "0.5" }, async (server) => {
    const { client } = await connectWs(server);
    try {
      const { tools } = await client.listTools();
      const check = validators(tools);
      const seen = new Map<string, Set<string>>();
      const run = async (name: string, args: Record<string, unknown>, kind: string) => {
        const r = await call(client, name, args);
        const validate = check.get(name)!;
        assert.ok(validate(r.s), `${name} (${kind}): ${JSON.stringify(validate.errors)}`);
        if (!seen.has(name)) seen.set(name, new Set());
        seen.get(name)!.add(kind);
        return r;
      };
      // Success results declare every field they carry (the schemas keep up with the results).
      const branch = (name: string) =>
        (tools.find((t) => t.name === name)!.outputSchema as Msg).anyOf[0];
      const declared = (name: string, s: Msg, properties = branch(name).properties) => {
        for (const key of Object.keys(s)) assert.ok(key in properties, `${name}: ${key}`);
      };
      const ok = await run("execute", { command: "echo hi" }, "success");
      declared("execute", ok.s);
      await run("execute", { command: "exit 3" }, "failed");
      const bg = await run("execute", { command: "sleep 100", wait_seconds: 0 }, "running");
      assert.equal(bg.s.running, true);
      await run("execute", { command: "true", bogus: 1 }, "error");
      await run("execute", { timeout: -1, command: "true" }, "error");
      const st = await run("start", { command: "cat", stdin_open: true }, "success");
      declared("start", st.s);
      await run("start", {}, "error");
      const page = await run("read_output", { execution_id: ok.s.execution_id }, "success");
      declared("read_output", page.s);
      await run("read_output", { execution_id: bg.s.execution_id }, "running");
      await run("read_output", { execution_id: ok.s.execution_id, tail_bytes: 2 }, "tail");
      await run("read_output", { execution_id: "nope" }, "error");
      const sent = await run("send_input", {
        execution_id: st.s.execution_id,
        input: "x\n",
        close_stdin: true,
      }, "success");
      declared("send_input", sent.s);
      await run("send_input", { execution_id: ok.s.execution_id, input: "x" }, "error");
      const paused = await run("control", {
        type: "PAUSE",
        execution_id: bg.s.execution_id,
      }, "success");
      declared("control", paused.s);
      await run("control", { type: "RESUME", execution_id: bg.s.execution_id }, "success");
      await run("control", {
        type: "SIGNAL",
        signal: "HUP",
        execution_id: st.s.execution_id,
      }, "success");
      await run("control", { type: "SIGNAL", execution_id: bg.s.execution_id }, "error");
      await run("control", { type: "CANCEL", execution_id: bg.s.execution_id }, "success");
      await run("control", { type: "CANCEL", execution_id: bg.s.execution_id }, "error");
      await run("control", { type: "STOP" }, "error");
      const est = await run("estimate_timeout", { command: "make" }, "success");
      declared("estimate_timeout", est.s);
      await run("estimate_timeout", {}, "error");
      const list = await run("list_executions", {}, "success");
      declared("list_executions", list.s);
      const item = branch("list_executions").properties.executions.items.properties;
      assert.ok(list.s.executions.length > 0);
      for (const e of list.s.executions) declared("list_executions", e, item);
      await run("list_executions", { running_only: "yes" }, "error");
      // Each tool was seen succeeding and failing.
      for (const t of tools) {
        const kinds = seen.get(t.name) ?? new Set();
        assert.ok(kinds.has("success") && kinds.has("error"), `${t.name}: ${[...kinds]}`);
      }
      // A wrong result is caught: the schemas are not vacuous.
      assert.equal(check.get("execute")!({ execution_id: 1 }), false);
      assert.equal(check.get("read_output")!({ error: "x" }), false);
    } finally {
      await client.close();
    }
  });
});

Deno.test("MCP tools/list: input schemas refuse unknown names, output schemas are objects", async () => {
  await withServer({}, async (server) => {
    const { client } = await connectWs(server);
    try {
      const { tools } = await client.listTools();
      for (const t of tools) {
        assert.equal(t.inputSchema.additionalProperties, false, t.name);
        assert.equal(t.outputSchema?.type, "object", t.name);
      }
      const read = tools.find((t) => t.name === "read_output")!;
      assert.deepEqual((read.inputSchema.properties!.wait_for as Msg).enum, ["output", "exit"]);
      const execute = tools.find((t) => t.name === "execute")!;
      assert.match(execute.description!, /at most `wait_seconds` \(default 30s\)/);
      assert.match(execute.description!, /ended at most 1s after the command exits/);
      assert.match(execute.description!, /Runs outlive the MCP session/);
      const control = tools.find((t) => t.name === "control")!.inputSchema.properties!;
      assert.deepEqual((control.type as Msg).enum, [
        "PAUSE",
        "RESUME",
        "CANCEL",
        "INTERRUPT",
        "SIGNAL",
      ]);
      assert.ok("signal" in control);
      assert.equal("detach" in execute.inputSchema.properties!, false);
    } finally {
      await client.close();
    }
  });
});

Deno.test("MCP tools: a result carries each output byte at most twice (text and structuredContent)", async () => {
  await withServer({}, async (server) => {
    const { client } = await connectWs(server);
    try {
      // The marker is in the output, not in the command line the summary repeats.
      const command = "printf 'ab%scd\\n' MARK; printf 'ef%sgh\\n' MARK >&2";
      const r = await call(client, "execute", { command });
      const count = (s: string, m: string) => s.split(m).length - 1;
      const json = JSON.stringify(r.result);
      assert.equal(count(json, "abMARKcd"), 2);
      assert.equal(count(json, "efMARKgh"), 2);
      const page = await call(client, "read_output", { execution_id: r.s.execution_id });
      assert.equal(count(JSON.stringify(page.result), "abMARKcd"), 2);
      const tail = await call(client, "read_output", {
        execution_id: r.s.execution_id,
        tail_bytes: 100,
      });
      assert.equal(count(JSON.stringify(tail.result), "efMARKgh"), 2);
    } finally {
      await client.close();
    }
  });
});
