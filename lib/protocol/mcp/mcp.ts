/**
 * The Model Context Protocol, server side, on the official SDK's `Server`:
 * it does the lifecycle (`initialize` and version negotiation, `ping`),
 * `logging/setLevel`, cancellation and the routing of progress to its
 * request. This module adds our tools (`tools/list`, `tools/call`), driving
 * one {@linkcode Session}, over any transport of the SDK's `Transport` shape:
 * ours over the WebSocket (`socket_transport.ts`) and the SDK's Streamable
 * HTTP one.
 *
 * Three things differ from the bare `Server`, each a few lines of
 * {@linkcode ExecutorServer}:
 * - a request before `initialize` (other than `ping`) is refused with
 *   -32600, as is a second `initialize` (the `Server` answers both);
 * - params that fail validation are -32602 naming the field, like the legacy
 *   protocol (the `Server` reports a zod dump as -32603);
 * - the log threshold starts at `info` (the `Server` sends everything, debug
 *   included, until the client sets a level).
 *
 * The SDK's runtime modules are imported by their `.js` path with the types
 * of the extensionless one (see `mcp_http.ts`).
 *
 * @module
 */
import { hookFields } from "../../ops/hooks.ts";
import { z } from "zod";
// @ts-types="@modelcontextprotocol/sdk/server/index"
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
// @ts-types="@modelcontextprotocol/sdk/shared/protocol"
import { Protocol } from "@modelcontextprotocol/sdk/shared/protocol.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  SetLevelRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
import type {
  CallToolRequest,
  LoggingLevel,
  RequestId,
  ServerNotification,
  ServerRequest,
} from "@modelcontextprotocol/sdk/types";
import type { Config } from "../../config/config.ts";
import { ErrorCode, ExecutorError, InvalidParamsError } from "../../errors.ts";
import type { Run } from "../../core/run.ts";
import { type Logger, logger, sessionFields } from "../../log.ts";
import type { Session, SessionServices } from "../../session/session.ts";
import type { ExitInfo, HookOutcome } from "../../types.ts";
import { toErrorObject } from "../jsonrpc.ts";
import { PROTOCOL_VERSION } from "../legacy/legacy.ts";
import type { ProgressOptions } from "./progress.ts";
import { CLIENT_CANCELLED, McpTools, type McpToolsConfig } from "./tools.ts";

/** Settings an MCP session applies. */
export type McpConfig = McpToolsConfig & Pick<Config, "mcpMaxExecutions" | "mcpSessionTimeout">;

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

const LEVELS: readonly LoggingLevel[] = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency",
];

/**
 * `initialize` as we accept it: the spec's fields, but `capabilities` and
 * `clientInfo.version` may be missing (clients that leave them out worked
 * before the move to the SDK and keep working).
 */
const InitializeRequest = z.looseObject({
  method: z.literal("initialize"),
  params: z.looseObject({
    protocolVersion: z.string(),
    capabilities: z.looseObject({}).optional(),
    clientInfo: z.looseObject({ name: z.string() }).optional(),
  }),
});

const INSTRUCTIONS = "cc-executor runs commands on the machine it is installed on. Use " +
  "`execute` for a command you want the result of, and `start` for anything long-running " +
  "or interactive (servers, watchers, REPLs), then `read_output`, `send_input` and " +
  "`control` with its execution_id. `execute` waits at most about 30 s: if its result says " +
  '`running: true`, continue with `read_output` (`wait_for: "exit"`) rather than running ' +
  "the command again. Runs belong to your API key, not to this session: a new session finds " +
  "them with `list_executions`. Every run has a time limit, and ending a run ends every " +
  "process it started.";

/** Methods a client may send before `initialize`. */
const BEFORE_INITIALIZE = new Set(["initialize", "ping"]);

const log = logger("mcp");

/** What the SDK gives a request handler besides the request. */
type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** A zod schema of a request, as far as this module reads it. */
interface RequestSchema {
  safeParse(value: unknown): {
    success: boolean;
    data?: unknown;
    error?: { issues: { path: PropertyKey[]; message: string }[] };
  };
  shape: { method: { value: string } };
}

/** Params that failed `schema`, as -32602 naming the field (relative to `params`). */
function invalidParams(issues: { path: PropertyKey[]; message: string }[]): InvalidParamsError {
  const fields = issues.map((i) => ({
    field: (i.path[0] === "params" ? i.path.slice(1) : i.path).map(String).join(".") || "params",
    reason: i.message,
  }));
  return new InvalidParamsError("Invalid params", {
    data: { field: fields[0]!.field, reason: fields[0]!.reason, issues: fields },
  });
}

/** An error as the SDK puts it on the wire: `code`, `message`, and `data` only when there is some. */
function wireError(err: unknown): Error {
  const { code, message, data } = toErrorObject(err);
  return Object.assign(new Error(message), { code }, data !== null ? { data } : {});
}

/**
 * The SDK's `Server` with our request gate and params validation: every
 * handler, the `Server`'s own included (it registers `initialize`, `ping` and
 * `logging/setLevel` in its constructor, through this override), is wrapped.
 * Handlers go straight to `Protocol`, past the `Server`'s own `tools/call`
 * check, whose -32602 would not name the field; our results are built by
 * `render.ts` in the shape that check enforces.
 */
class ExecutorServer extends Server {
  /** Set once `initialize` has been answered. */
  initialized = false;
  /** The session's logger, set by its protocol (handlers are registered before: in `super`). */
  log: Logger = log;

  // deno-lint-ignore no-explicit-any
  override setRequestHandler(schema: any, handler: any): void {
    const method: string = (schema as RequestSchema).shape.method.value;
    const strict: RequestSchema = method === "initialize" ? InitializeRequest : schema;
    const methodOnly = z.looseObject({ method: z.literal(method) });
    Protocol.prototype.setRequestHandler.call(
      this,
      methodOnly,
      // deno-lint-ignore no-explicit-any
      async (request: unknown, extra: any) => {
        try {
          this.#admit(method);
          const parsed = strict.safeParse(request);
          if (!parsed.success) throw invalidParams(parsed.error!.issues);
          const result = await handler(parsed.data, extra);
          if (method === "initialize") this.initialized = true;
          return result;
        } catch (err) {
          if (!(err instanceof ExecutorError)) {
            this.log.error("Unexpected error in {method}: {error}", { method, error: err });
          }
          throw wireError(err);
        }
      },
    );
  }

  /** Refuses a request out of order (spec: lifecycle). */
  #admit(method: string): void {
    if (method === "initialize" && this.initialized) {
      throw new ExecutorError(ErrorCode.InvalidRequest, "Session already initialized");
    }
    if (!this.initialized && !BEFORE_INITIALIZE.has(method)) {
      throw new ExecutorError(
        ErrorCode.InvalidRequest,
        `Session not initialized: send initialize before ${method}`,
      );
    }
  }

  /** Methods we do not serve: -32601, or -32600 before `initialize` as for every other. */
  override fallbackRequestHandler = (request: { method: string }) => {
    try {
      this.#admit(request.method);
      throw new ExecutorError(ErrorCode.MethodNotFound, `Unknown method: ${request.method}`);
    } catch (err) {
      return Promise.reject(wireError(err));
    }
  };
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
 * await new McpProtocol(session, transport, config, services).start();
 * transport.onmessage!({ jsonrpc: "2.0", id: 1, method: "tools/list" });
 * transport.onmessage!({ jsonrpc: "2.0", id: 2, method: "initialize",
 *   params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } });
 * await new Promise((r) => setTimeout(r, 10));
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
  /** Every line names the session and its principal. */
  readonly #log: Logger;
  readonly #transport: Transport;
  readonly #server: ExecutorServer;
  readonly #tools: McpTools;
  readonly #cancelled: (id: RequestId) => void;
  #level: LoggingLevel = "info";
  #closed = false;

  /** Binds MCP to a session and a transport (not started yet). */
  constructor(
    session: Session,
    transport: Transport,
    config: McpConfig,
    services: SessionServices,
    options: McpOptions = {},
  ) {
    this.#session = session;
    this.#log = log.with(sessionFields(session));
    this.#transport = transport;
    // MCP clients start and execute side by side: the legacy limit of one does not fit.
    session.maxExecutions = config.mcpMaxExecutions;
    // Runs belong to the principal: any of its MCP sessions may follow them,
    // and they go on when this one ends (DELETE, expiry, a dropped socket).
    session.detachAll = true;
    session.idleLimitMs = config.mcpSessionTimeout * 1000;
    this.#cancelled = options.cancelled ?? (() => {});
    this.#tools = new McpTools(session, config, services, {
      ready: options.ready ?? (() => Promise.resolve()),
      ended: (exec, exit) => this.#ended(exec, exit),
      hook: (id, outcome) => this.#hook(id, outcome),
      ...(options.progress ? { progress: options.progress } : {}),
    });
    const server = new ExecutorServer(
      { name: "cc-executor", title: "CC Executor", version: PROTOCOL_VERSION },
      { capabilities: { tools: { listChanged: false }, logging: {} }, instructions: INSTRUCTIONS },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: this.#tools.list() }));
    server.setRequestHandler(
      CallToolRequestSchema,
      (request: CallToolRequest, extra: Extra) => this.#callTool(request.params, extra),
    );
    // Replaces the `Server`'s own, which keeps no threshold until one is set.
    server.setRequestHandler(
      SetLevelRequestSchema,
      (request: { params: { level: LoggingLevel } }) => {
        this.#level = request.params.level;
        return {};
      },
    );
    server.onerror = (error) =>
      this.#log.debug("Transport error: {error}", { error: String(error) });
    server.log = this.#log;
    this.#server = server;
  }

  /** Connects the server to the transport and starts it. */
  start(): Promise<void> {
    const transport = this.#transport;
    // Both run before the SDK's own handlers, which `connect` chains after them.
    const onclose = transport.onclose;
    transport.onclose = () => {
      // Set before the SDK aborts the requests in flight: they then know it was no cancel.
      this.#closed = true;
      onclose?.();
    };
    transport.onmessage = () => this.#session.touch();
    // A result the transport refuses as too large (the WebSocket's 1 MiB cap)
    // still answers its request, with an error; the tools keep theirs below it.
    const send = transport.send.bind(transport);
    transport.send = (message, options) =>
      send(message, options).catch((err) => {
        if (!(err instanceof RangeError && "result" in message)) throw err;
        this.#log.error("Result of request {id} exceeds the message cap", { id: message.id });
        return send({
          jsonrpc: "2.0",
          id: message.id,
          error: { code: ErrorCode.InternalError, message: "Result too large" },
        }, options);
      });
    return this.#server.connect(transport);
  }

  /** Sends `notifications/message` when `level` is at or above the client's threshold. */
  log(level: LoggingLevel, data: unknown): void {
    if (!this.#server.initialized || this.#closed) return;
    if (LEVELS.indexOf(level) < LEVELS.indexOf(this.#level)) return;
    this.#server.notification({
      method: "notifications/message",
      params: { level, logger: "cc-executor", data },
    }).catch((err) => this.#log.debug("Send failed: {error}", { error: String(err) }));
  }

  async #callTool(
    params: CallToolRequest["params"],
    extra: Extra,
  ): Promise<Record<string, unknown>> {
    const requestId = extra.requestId;
    const token = extra._meta?.progressToken;
    // The SDK aborts with the client's reason, or none on close: say which for the tools.
    const controller = new AbortController();
    const signal = extra.signal;
    const onAbort = () => {
      const cancelled = !this.#closed;
      // A client that gave up waiting (the SDK's request timeout says "Request timed out")
      // did not ask for the run to end: it goes on, and list_executions finds it.
      const gaveUp = cancelled && /timed? ?out/i.test(String(signal.reason ?? ""));
      controller.abort(
        !cancelled ? "connection closed" : gaveUp ? "the client stopped waiting" : CLIENT_CANCELLED,
      );
      if (cancelled) this.#cancelled(requestId);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    // A call waiting on a run keeps the session from expiring.
    const release = this.#session.hold();
    const progress = token === undefined
      ? null
      : (progress: number, message: string) =>
        void extra.sendNotification({
          method: "notifications/progress",
          params: { progressToken: token, progress, message },
        }).catch((err: unknown) => this.#log.debug("Send failed: {error}", { error: String(err) }));
    try {
      return {
        ...await this.#tools.call(params.name, params.arguments, {
          signal: controller.signal,
          progress,
        }),
      };
    } finally {
      release();
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** A hook's outcome, as the legacy protocol's `hook.completed` / `hook.warning` says it. */
  #hook(executionId: string, o: HookOutcome): void {
    // A hook that failed is a warning: it blocks nothing unless marked required.
    this.log(o.ok ? "info" : "warning", {
      event: o.ok ? "hook_completed" : "hook_warning",
      execution_id: executionId,
      ...hookFields(o),
    });
  }

  #ended(exec: Run, exit: ExitInfo): void {
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
}
