/**
 * The Model Context Protocol, server side: the lifecycle (`initialize`,
 * `notifications/initialized`, `ping`), `tools/list`, `tools/call` with
 * progress and cancellation, and `logging/setLevel` with
 * `notifications/message`, driving one {@linkcode Session}. It talks to any
 * transport of the official SDK's `Transport` shape: ours over the WebSocket
 * (`mcp_socket_transport.ts`) and the SDK's Streamable HTTP one.
 *
 * Hand-written rather than the SDK's `Server` because the protocol surface we
 * serve is small and the `Server` gets the parts that matter here wrong for
 * us: it answers any request before `initialize` (the spec asks for an
 * error), reports malformed params as -32603 with a zod dump, and would sit
 * between our `ExecutorError` codes and the wire. Owning the dispatch keeps
 * the JSON-RPC codes, cancellation (which must end a process group, and send
 * no response) and the 1 MiB message cap in one place. The SDK still
 * supplies the types, the HTTP transport and the clients the tests use.
 *
 * @module
 */
import { z } from "zod";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types";
import type { Config } from "../../config/config.ts";
import { ErrorCode, ExecutorError } from "../../errors.ts";
import { parseParams } from "../../session/exec_params.ts";
import type { Execution } from "../../core/execution.ts";
import { logger } from "../../log.ts";
import type { Session } from "../../session/session.ts";
import type { ExitInfo } from "../../types.ts";
import { toErrorObject } from "../jsonrpc.ts";
import { PROTOCOL_VERSION } from "../legacy/legacy.ts";
import type { ProgressOptions } from "./progress.ts";
import { CLIENT_CANCELLED, McpTools, type McpToolsConfig } from "./tools.ts";
import { exceedsUtf8 } from "../../utf8.ts";

/** MCP revisions we speak, newest first; the first is answered to anything else. */
export const MCP_PROTOCOL_VERSIONS: readonly string[] = [
  "2025-11-25",
  "2025-06-18",
  "2025-03-26",
  "2024-11-05",
];

/** No message we send is larger (common WebSocket clients refuse bigger frames). */
export const MCP_MAX_MESSAGE_BYTES = 1024 * 1024;

/** Settings an MCP session applies. */
export type McpConfig = McpToolsConfig & Pick<Config, "mcpMaxExecutions">;

/** Options of {@linkcode McpProtocol}. */
export interface McpOptions {
  /** Resolves when the connection can take more (socket back-pressure); default: at once. */
  ready?: () => Promise<void>;
  /**
   * A request was cancelled by the client and will get no response: lets
   * Streamable HTTP close the stream that was waiting for one.
   */
  cancelled?: (id: RequestId) => void;
  /** Pace of progress notifications (tests speed it up). */
  progress?: ProgressOptions;
}

const LEVELS = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency",
] as const;
type Level = (typeof LEVELS)[number];

const InitializeParams = z.looseObject({
  protocolVersion: z.string(),
  capabilities: z.looseObject({}).optional(),
  clientInfo: z.looseObject({ name: z.string() }).optional(),
});

const CallToolParams = z.looseObject({
  name: z.string(),
  arguments: z.record(z.string(), z.unknown()).optional(),
  _meta: z.looseObject({ progressToken: z.union([z.string(), z.number()]).optional() })
    .optional(),
});

const SetLevelParams = z.looseObject({ level: z.enum(LEVELS) });

const INSTRUCTIONS = "cc-executor runs commands on the machine it is installed on. Use " +
  "`execute` for a command you want the result of, and `start` for anything long-running " +
  "or interactive (servers, watchers, REPLs), then `read_output`, `send_input` and " +
  "`control` with its execution_id. Every run has a time limit, and ending a run ends " +
  "every process it started.";

const log = logger("mcp");

/** Whether `message` is a request or notification (rather than a response). */
function isCall(message: JSONRPCMessage): message is JSONRPCMessage & {
  method: string;
  params?: unknown;
  id?: RequestId;
} {
  return "method" in message && typeof message.method === "string";
}

/**
 * One session's MCP endpoint.
 *
 * @example Initialize, then list the tools, over an in-memory transport
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
 * import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types";
 * import { McpProtocol } from "./mcp.ts";
 * import { Session } from "../../session/session.ts";
 * import { ExecutionRegistry } from "../../core/execution_registry.ts";
 * import { Metrics } from "../../ops/metrics.ts";
 * import { loadConfig } from "../../config/config.ts";
 * import { HookRunner } from "../../ops/hooks.ts";
 * import { createStore } from "../../store/store.ts";
 * import { TimeLimits } from "../../timing/time_limits.ts";
 * import { DEFAULT_TIMEOUTS_S } from "../../timing/estimate.ts";
 * const config = loadConfig({ getEnv: () => undefined });
 * const store = await createStore({ ephemeral: true });
 * const services = { hooks: HookRunner.none(),
 *   timeLimits: new TimeLimits(store, { multiplier: () => 1 }, { ...DEFAULT_TIMEOUTS_S }) };
 * const sent: JSONRPCMessage[] = [];
 * const transport: Transport = {
 *   start: () => Promise.resolve(),
 *   close: () => Promise.resolve(),
 *   send: (m) => { sent.push(m); return Promise.resolve(); },
 * };
 * const session = new Session({
 *   registry: new ExecutionRegistry({ retentionSeconds: 60, maxRetained: 10 }),
 *   metrics: new Metrics(), config, ...services }, () => {});
 * await new McpProtocol(session, transport, config).start();
 * transport.onmessage!({ jsonrpc: "2.0", id: 1, method: "tools/list" });
 * transport.onmessage!({ jsonrpc: "2.0", id: 2, method: "initialize",
 *   params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } });
 * transport.onmessage!({ jsonrpc: "2.0", id: 3, method: "tools/list" });
 * await new Promise((r) => setTimeout(r, 10));
 * const byId = (id: number) => sent.find((m) => "id" in m && m.id === id) as any;
 * assert.equal(byId(1).error.code, -32600);
 * assert.equal(byId(2).result.protocolVersion, "2025-06-18");
 * assert.equal(byId(3).result.tools.length, 7);
 * await store.close();
 * ```
 */
export class McpProtocol {
  readonly #session: Session;
  readonly #transport: Transport;
  readonly #tools: McpTools;
  /** Running `tools/call` requests by id, for `notifications/cancelled`. */
  readonly #inflight = new Map<RequestId, AbortController>();
  #initialized = false;
  #version: string | null = null;
  #level: Level = "info";
  #closed = false;
  readonly #cancelled: (id: RequestId) => void;

  /** Binds MCP to a session and a transport (not started yet). */
  constructor(
    session: Session,
    transport: Transport,
    config: McpConfig,
    options: McpOptions = {},
  ) {
    this.#session = session;
    this.#transport = transport;
    // MCP clients start and execute side by side: the legacy limit of one does not fit.
    session.maxExecutions = config.mcpMaxExecutions;
    const ready = options.ready ?? (() => Promise.resolve());
    this.#cancelled = options.cancelled ?? (() => {});
    this.#tools = new McpTools(session, config, {
      ready,
      ended: (exec, exit) => this.#ended(exec, exit),
      ...(options.progress ? { progress: options.progress } : {}),
    });
  }

  /** The negotiated protocol version, once initialized. */
  get protocolVersion(): string | null {
    return this.#version;
  }

  /** Installs the handlers and starts the transport. */
  start(): Promise<void> {
    const transport = this.#transport;
    const onclose = transport.onclose;
    transport.onclose = () => {
      onclose?.();
      this.#onClose();
    };
    transport.onerror = (error) => log.debug("Transport error: {error}", { error: String(error) });
    transport.onmessage = (message) => this.#receive(message);
    return transport.start();
  }

  /** Sends `notifications/message` when `level` is at or above the client's threshold. */
  log(level: Level, data: unknown): void {
    if (!this.#initialized || this.#closed) return;
    if (LEVELS.indexOf(level) < LEVELS.indexOf(this.#level)) return;
    void this.#send({
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { level, logger: "cc-executor", data },
    });
  }

  #receive(message: JSONRPCMessage): void {
    this.#session.touch();
    // Responses need no handling: we send no requests.
    if (!isCall(message)) return;
    if ("id" in message && message.id !== undefined) {
      void this.#request(message.id, message.method, message.params);
    } else {
      this.#notification(message.method, message.params);
    }
  }

  async #request(id: RequestId, method: string, params: unknown): Promise<void> {
    const controller = new AbortController();
    if (method === "tools/call") this.#inflight.set(id, controller);
    try {
      const result = await this.#dispatch(id, method, params, controller.signal);
      // A cancelled request gets no response at all (spec: cancellation).
      if (this.#wasCancelled(id, controller)) return;
      await this.#send({ jsonrpc: "2.0", id, result: result as Record<string, unknown> });
    } catch (err) {
      if (this.#wasCancelled(id, controller)) return;
      if (!(err instanceof ExecutorError)) {
        log.error("Unexpected error in {method}: {error}", { method, error: err });
      }
      const { code, message, data } = toErrorObject(err);
      await this.#send({
        jsonrpc: "2.0",
        id,
        error: { code, message, ...(data !== null ? { data } : {}) },
      });
    } finally {
      if (this.#inflight.get(id) === controller) this.#inflight.delete(id);
    }
  }

  /** Whether the request was aborted; tells the transport when the client cancelled it. */
  #wasCancelled(id: RequestId, controller: AbortController): boolean {
    if (!controller.signal.aborted) return false;
    if (controller.signal.reason === CLIENT_CANCELLED) this.#cancelled(id);
    return true;
  }

  async #dispatch(
    id: RequestId,
    method: string,
    params: unknown,
    signal: AbortSignal,
  ): Promise<unknown> {
    if (method === "initialize") return this.#initialize(params);
    if (method === "ping") return {};
    if (!this.#initialized) {
      throw new ExecutorError(
        ErrorCode.InvalidRequest,
        `Session not initialized: send initialize before ${method}`,
      );
    }
    switch (method) {
      case "tools/list":
        return { tools: this.#tools.list() };
      case "tools/call":
        return await this.#callTool(id, params, signal);
      case "logging/setLevel":
        this.#level = parseParams(SetLevelParams, params).level;
        return {};
      default:
        throw new ExecutorError(ErrorCode.MethodNotFound, `Unknown method: ${method}`);
    }
  }

  #initialize(params: unknown): Record<string, unknown> {
    const p = parseParams(InitializeParams, params);
    if (this.#initialized) {
      throw new ExecutorError(ErrorCode.InvalidRequest, "Session already initialized");
    }
    const version = MCP_PROTOCOL_VERSIONS.includes(p.protocolVersion)
      ? p.protocolVersion
      : MCP_PROTOCOL_VERSIONS[0]!;
    this.#version = version;
    this.#initialized = true;
    return {
      protocolVersion: version,
      capabilities: { tools: { listChanged: false }, logging: {} },
      serverInfo: { name: "cc-executor", title: "CC Executor", version: PROTOCOL_VERSION },
      instructions: INSTRUCTIONS,
    };
  }

  #callTool(id: RequestId, params: unknown, signal: AbortSignal): Promise<unknown> {
    const p = parseParams(CallToolParams, params);
    const token = p._meta?.progressToken;
    const progress = token === undefined
      ? null
      : (progress: number, message: string) =>
        void this.#send({
          jsonrpc: "2.0",
          method: "notifications/progress",
          params: { progressToken: token, progress, message },
        }, id);
    return this.#tools.call(p.name, p.arguments, { signal, progress });
  }

  #notification(method: string, params: unknown): void {
    if (method !== "notifications/cancelled") return;
    // initialized, progress, roots/list_changed...: nothing to do.
    const requestId = (params as { requestId?: unknown } | undefined)?.requestId;
    if (typeof requestId !== "string" && typeof requestId !== "number") return;
    this.#inflight.get(requestId)?.abort(CLIENT_CANCELLED);
  }

  #ended(exec: Execution, exit: ExitInfo): void {
    this.log(exit.status === "failed" || exit.status === "timeout" ? "warning" : "info", {
      event: "execution_ended",
      execution_id: exec.id,
      command: exec.spec.display.slice(0, 500),
      status: exit.status,
      exit_code: exit.exitCode,
      signal: exit.signal,
      error: exit.error,
      duration_seconds: exit.executionTime,
    });
  }

  /**
   * Sends one message; `relatedRequestId` routes a notification to its
   * request's stream (Streamable HTTP). A result over the message cap is
   * replaced by an error rather than sent (the tools keep theirs below it).
   */
  async #send(message: JSONRPCMessage, relatedRequestId?: RequestId): Promise<void> {
    if (this.#closed) return;
    if ("result" in message && exceedsUtf8(JSON.stringify(message), MCP_MAX_MESSAGE_BYTES)) {
      log.error("Result of request {id} exceeds the message cap", { id: message.id });
      message = {
        jsonrpc: "2.0",
        id: message.id,
        error: { code: ErrorCode.InternalError, message: "Result too large" },
      };
    }
    try {
      await this.#transport.send(
        message,
        relatedRequestId === undefined ? undefined : { relatedRequestId },
      );
    } catch (err) {
      // The client went away (an HTTP stream closed): nothing to deliver to.
      log.debug("Send failed: {error}", { error: String(err) });
    }
  }

  #onClose(): void {
    this.#closed = true;
    for (const controller of this.#inflight.values()) controller.abort("connection closed");
    this.#inflight.clear();
  }
}
