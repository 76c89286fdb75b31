import assert from "node:assert/strict";
import { ExecutorError, InvalidParamsError } from "../../lib/errors.ts";
import {
  encodeError,
  encodeNotification,
  encodeResult,
  parseMessage,
  toErrorObject,
} from "../../lib/protocol/jsonrpc.ts";

Deno.test("parseMessage() tells requests, notifications and invalid messages apart", () => {
  assert.deepEqual(parseMessage('{"jsonrpc":"2.0","method":"ping","id":0}'), {
    kind: "request",
    id: 0,
    method: "ping",
    params: undefined,
  });
  assert.equal(parseMessage('{"jsonrpc":"2.0","method":"ping","id":null}').kind, "request");
  assert.equal(parseMessage('{"method":"ping","id":"a"}').kind, "request"); // jsonrpc omitted
  const cases: [string, number][] = [
    ["", -32700],
    ["{", -32700],
    ["[]", -32600],
    ["1", -32600],
    ['{"jsonrpc":"2.0"}', -32600],
    ['{"jsonrpc":"2.0","method":""}', -32600],
    ['{"jsonrpc":"2.0","method":"x","id":true}', -32600],
    ['{"jsonrpc":2,"method":"x","id":1}', -32600],
  ];
  for (const [text, code] of cases) {
    const m = parseMessage(text);
    assert.equal(m.kind, "invalid", text);
    if (m.kind === "invalid") assert.equal(m.error.code, code, text);
  }
});

Deno.test("encodeError() puts error before id and never a result; omits id when asked", () => {
  const e = toErrorObject(new InvalidParamsError("Invalid params", { data: { field: "x" } }));
  assert.equal(
    encodeError(1, e),
    '{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":{"field":"x"}},"id":1}',
  );
  assert.equal(
    encodeError(undefined, toErrorObject(new ExecutorError(-32003, "Session limit exceeded"))),
    '{"jsonrpc":"2.0","error":{"code":-32003,"message":"Session limit exceeded","data":null}}',
  );
});

Deno.test("toErrorObject() hides unexpected errors behind -32603", () => {
  assert.deepEqual(toErrorObject(new Error("secret path /etc/x")), {
    code: -32603,
    message: "Internal error",
    data: null,
  });
});

Deno.test("encodeResult() and encodeNotification() produce JSON-RPC 2.0", () => {
  assert.deepEqual(JSON.parse(encodeResult("x", { a: 1 })), {
    jsonrpc: "2.0",
    result: { a: 1 },
    id: "x",
  });
  assert.deepEqual(JSON.parse(encodeNotification("ping", {})), {
    jsonrpc: "2.0",
    method: "ping",
    params: {},
  });
});
