/**
 * What every subcommand shares: the server's URL and the API key, and the
 * parsing of a subcommand's flags into typed values, with usage errors
 * that say what was wrong.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** The endpoint when neither `--url` nor `CC_EXECUTOR_URL` says otherwise. */
export const DEFAULT_URL = "ws://127.0.0.1:8003/ws/mcp";

/** A usage error: the CLI prints it with the subcommand's help hint and exits 2. */
export class UsageError extends Error {
  /** A usage error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Where and as whom the CLI connects. */
export interface Target {
  /** The WebSocket URL (`ws://…/ws/mcp`). */
  url: string;
  /** The API key, if any. */
  key: string | undefined;
}

/** Flags every subcommand takes. */
export const COMMON_FLAGS = {
  url: { type: "string" },
  "key-file": { type: "string" },
  key: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

/**
 * The WebSocket URL for what a user wrote: a full `ws://`/`wss://` URL, an
 * `http(s)://` one, or `host:port`; a URL without a path gets `/ws/mcp`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wsUrl } from "./options.ts";
 * assert.equal(wsUrl("127.0.0.1:9000"), "ws://127.0.0.1:9000/ws/mcp");
 * assert.equal(wsUrl("https://exec.example.com"), "wss://exec.example.com/ws/mcp");
 * assert.equal(wsUrl("ws://h:1/ws"), "ws://h:1/ws");
 * ```
 */
export function wsUrl(text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `ws://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`--url ${text}: not a URL`);
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new UsageError(`--url ${text}: expected ws://, wss://, http:// or https://`);
  }
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/ws/mcp";
  return url.href;
}

/**
 * The HTTP URL of the same server, for `/health` and `/metrics`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { httpUrl } from "./options.ts";
 * assert.equal(httpUrl("wss://h/ws/mcp", "/health"), "https://h/health");
 * ```
 */
export function httpUrl(ws: string, path: string): string {
  const url = new URL(ws);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = path;
  url.search = "";
  return url.href;
}

/**
 * The target from the parsed common flags and the environment. The key
 * comes from `CC_EXECUTOR_API_KEY` or the file `--key-file` names, never
 * from a flag value, which anyone on the machine can read in `ps`.
 *
 * @throws {UsageError} for `--key`, or a key file that cannot be read.
 */
export function resolveTarget(
  values: { url?: string | undefined; "key-file"?: string | undefined; key?: unknown },
  getEnv: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Target {
  if (values.key !== undefined) {
    throw new UsageError(
      "--key is not taken: a flag's value is visible to everyone in `ps`. Set " +
        "CC_EXECUTOR_API_KEY or pass --key-file FILE",
    );
  }
  const url = wsUrl(values.url ?? getEnv("CC_EXECUTOR_URL") ?? DEFAULT_URL);
  let key = getEnv("CC_EXECUTOR_API_KEY")?.trim() || undefined;
  const file = values["key-file"];
  if (file !== undefined) {
    try {
      key = Deno.readTextFileSync(file).trim() || undefined;
    } catch (err) {
      throw new UsageError(`--key-file ${file}: ${err instanceof Error ? err.message : err}`);
    }
    if (key === undefined) throw new UsageError(`--key-file ${file} is empty`);
  }
  return { url, key };
}

/**
 * Parses `args` with `flags` (and {@linkcode COMMON_FLAGS}); everything
 * after `--` is kept apart as the command.
 *
 * @throws {UsageError} for an unknown flag or a missing value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "./options.ts";
 * const p = parseFlags(["--json", "--", "ls", "-l"], { json: { type: "boolean" } });
 * assert.equal(p.values.json, true);
 * assert.deepEqual(p.command, ["ls", "-l"]);
 * assert.throws(() => parseFlags(["--timeout", "-1"], { timeout: { type: "string" } }),
 *   { message: "--timeout -1: expected a number >= 0" });
 * ```
 */
export function parseFlags<T extends ParseArgsOptionsConfig>(args: string[], flags: T) {
  const dash = args.indexOf("--");
  const own = dash === -1 ? args : args.slice(0, dash);
  const command = dash === -1 ? [] : args.slice(dash + 1);
  try {
    const parsed = parseArgs({
      args: own,
      options: { ...COMMON_FLAGS, ...flags },
      allowPositionals: true,
      strict: true,
    });
    return { values: parsed.values, positionals: parsed.positionals, command };
  } catch (err) {
    const message = err instanceof Error ? err.message.split("\n")[0]! : String(err);
    // parseArgs takes "--timeout -1" for a flag followed by another: say what is wrong with it.
    const flag = /^Option '(--[\w-]+)(?:, -\w)?(?: <value>)?' argument is ambiguous/.exec(message)
      ?.[1];
    const value = flag === undefined ? undefined : own[own.indexOf(flag) + 1];
    if (flag !== undefined && value !== undefined && /^-\d/.test(value)) {
      throw new UsageError(`${flag} ${value}: expected a number >= 0`);
    }
    throw new UsageError(message);
  }
}

/**
 * A number of seconds (or bytes) from a flag value.
 *
 * @throws {UsageError} when it is not a non-negative number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { numberFlag } from "./options.ts";
 * assert.equal(numberFlag("timeout", "2.5"), 2.5);
 * assert.throws(() => numberFlag("timeout", "soon"));
 * assert.throws(() => numberFlag("timeout", "0x10"));
 * ```
 */
export function numberFlag(name: string, value: string, integer = false): number {
  // Decimal only: Number() would also take "0x10" and "1e3".
  const n = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} ${value}: expected ${integer ? "a whole" : "a"} number >= 0`);
  }
  return n;
}
