/**
 * Test helpers for MCP: the official SDK client connected to a test server
 * over the WebSocket (subprotocol `mcp`) or Streamable HTTP.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client";
// The package maps `./*` to `*.d.ts` for types: a `.js` subpath needs its types named.
// @ts-types="@modelcontextprotocol/sdk/client/websocket"
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types";
import type { ServerHandle } from "../main.ts";
import type { Msg } from "./_helpers.ts";

export { Client, StreamableHTTPClientTransport, WebSocketClientTransport };

/** An SDK client connected to `server` over the WebSocket; `errors` collects its transport errors. */
export async function connectWs(
  server: ServerHandle,
  path = "/ws/mcp",
): Promise<{ client: Client; errors: Error[] }> {
  const client = new Client({ name: "cc-executor-test", version: "1.0.0" });
  const errors: Error[] = [];
  client.onerror = (e) => void errors.push(e);
  const url = new URL(server.wsUrl);
  url.pathname = path;
  await client.connect(new WebSocketClientTransport(url));
  return { client, errors };
}

/** An SDK client connected to `server` over Streamable HTTP at `/mcp`. */
export async function connectHttp(
  server: ServerHandle,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport; errors: Error[] }> {
  const client = new Client({ name: "cc-executor-test", version: "1.0.0" });
  const errors: Error[] = [];
  client.onerror = (e) => void errors.push(e);
  const transport = new StreamableHTTPClientTransport(new URL(`${server.httpUrl}/mcp`));
  await client.connect(transport);
  return { client, transport, errors };
}

/** Ends an HTTP client's session (DELETE) and closes it. */
export async function closeHttp(
  c: { client: Client; transport: StreamableHTTPClientTransport },
): Promise<void> {
  await c.transport.terminateSession();
  await c.client.close();
}

/** Calls a tool and returns its result with the structured content at hand. */
export async function call(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
  options: Parameters<Client["callTool"]>[2] = {},
): Promise<{ result: CallToolResult; s: Msg; text: string }> {
  const result = await client.callTool(
    { name, arguments: args },
    undefined,
    options,
  ) as CallToolResult;
  const first = result.content[0];
  return {
    result,
    s: result.structuredContent as Msg,
    text: first?.type === "text" ? first.text : "",
  };
}

/** Reads an execution's output with `read_output` until it has ended; returns everything. */
export async function readToEnd(client: Client, executionId: string, from = 0) {
  let offset = from;
  let stdout = "";
  let stderr = "";
  for (;;) {
    const { s } = await call(client, "read_output", {
      execution_id: executionId,
      offset,
      wait_seconds: 5,
    });
    stdout += s.stdout;
    stderr += s.stderr;
    offset = s.next_offset;
    if (!s.running && s.remaining_bytes === 0) return { stdout, stderr, last: s };
  }
}

/**
 * Runs an `execute` with a progress token while `onprogress` sees each
 * notification; resolves with the result or the error the call ended with.
 */
export function executeWithProgress(
  client: Client,
  args: Record<string, unknown>,
  onprogress: (p: { progress: number; message?: string | undefined }) => void,
  signal?: AbortSignal,
): Promise<CallToolResult> {
  return client.callTool({ name: "execute", arguments: args }, undefined, {
    onprogress,
    ...(signal ? { signal } : {}),
  }) as Promise<CallToolResult>;
}

/** A raw MCP `initialize` request, for tests that speak HTTP themselves. */
export const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-11-25",
    capabilities: {},
    clientInfo: { name: "raw", version: "1" },
  },
};

/**
 * A raw request to `/mcp` of the server at `httpUrl`, with the headers a
 * Streamable HTTP client sends (JSON in, JSON or SSE accepted) plus `headers`.
 */
export function mcpRequest(
  httpUrl: string,
  method: "GET" | "POST" | "DELETE",
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Response> {
  return fetch(`${httpUrl}/mcp`, {
    method,
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** A raw POST of `body` to `/mcp`. */
export function postMcp(
  httpUrl: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return mcpRequest(httpUrl, "POST", headers, body);
}
