/**
 * `run` and `attach`: start a command (or join a running one) and follow it
 * like a local command: its stdout to stdout and stderr to stderr, byte for
 * byte and live, and its exit status as the CLI's.
 *
 * @module
 */
import { ConnectionError, RpcError } from "../client.ts";
import {
  EXIT_NOT_EXECUTABLE,
  EXIT_NOT_FOUND,
  EXIT_REFUSED,
  EXIT_TRANSPORT,
} from "../exit_status.ts";
import { numberFlag, parseFlags, resolveTarget, UsageError } from "../options.ts";
import { type LocalStream, OutputWriter } from "../output_writer.ts";
import { ProgressLine } from "../progress.ts";
import { RemoteRun } from "../remote_run.ts";
import { follow } from "./follow.ts";

/** How long the CLI tries to get a lost connection back (`--reconnect-timeout`). */
const DEFAULT_RECONNECT_S = 60;
/**
 * How much longer than that a run waits for its CLI before the server ends
 * it: a CLI killed outright leaves nothing running for long.
 */
const DETACH_MARGIN_S = 60;

/** `run --help`. */
export const RUN_HELP = `Usage: cc-executor run [flags] -- COMMAND [ARGS...]
       cc-executor run [flags] --shell 'COMMAND LINE'

Runs a command on the server and follows it as if it ran here: its stdout
and stderr go to yours, byte for byte, and its exit status is yours (128+N
for a signal, 124 for its time limit, 255 when its end was not seen).
Ctrl-C interrupts it (SIGINT); a second Ctrl-C within 2 s cancels it.
A lost connection is made again, resuming exactly where the output stopped.

Flags:
  --shell CMD             run CMD with the server's shell (pipes, globs); without it
                          the words after -- are the program and its arguments
  --timeout S             time limit in seconds (0: no automatic limit); default:
                          the server's automatic limit, learned from similar runs
  --idle-timeout S        end the run after S seconds without output
  --cwd DIR               working directory on the server
  --node ID               run on this node of a multi-node deployment
  --label L               run on a live node with label L (repeatable: every one)
  --env K=V               an environment variable for the command (repeatable)
  --stdin                 stream this terminal's stdin to the command
  --detach                start it and print only its id (see: attach, logs, ps)
  --json                  NDJSON events on stdout instead of the output itself
  --quiet, -q             no progress line (there is none unless stderr is a terminal)
  --reconnect-timeout S   give up reconnecting after S seconds (default ${DEFAULT_RECONNECT_S})
  --keepalive S           ping the server every S seconds; a ping unanswered for S
                          seconds means the connection is dead (default 15; 0: off)
  --url URL               server (default $CC_EXECUTOR_URL or ws://127.0.0.1:8003/ws/mcp)
  --key-file FILE         file holding the API key (default $CC_EXECUTOR_API_KEY)
`;

/** `attach --help`. */
export const ATTACH_HELP = `Usage: cc-executor attach ID [--from N] [flags]

Follows a run started elsewhere (run --detach, another client, an MCP tool):
replays its output from byte offset N (default 0; output no longer retained
is said on stderr), then streams it live, and exits with its exit status, as
run does. Ctrl-C interrupts the run; a second within 2 s cancels it. If your
reader goes away (| head), the run goes on.

Flags:
  --from N                byte offset to replay from
  --json, --quiet, --reconnect-timeout S, --keepalive S, --url URL, --key-file FILE:
                          as for run
`;

const FOLLOW_FLAGS = {
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  "reconnect-timeout": { type: "string" },
  keepalive: { type: "string" },
} as const;

const RUN_FLAGS = {
  ...FOLLOW_FLAGS,
  shell: { type: "string" },
  timeout: { type: "string" },
  "idle-timeout": { type: "string" },
  cwd: { type: "string" },
  node: { type: "string" },
  label: { type: "string", multiple: true },
  env: { type: "string", multiple: true },
  stdin: { type: "boolean" },
  detach: { type: "boolean" },
} as const;

/** What `run` and `attach` follow a run with: the connection, the writer, the progress line. */
function follower(
  values: { "reconnect-timeout"?: string; keepalive?: string; url?: string; "key-file"?: string },
  options: { quiet: boolean; json: boolean; owner?: boolean },
) {
  const reconnectS = values["reconnect-timeout"] === undefined
    ? DEFAULT_RECONNECT_S
    : numberFlag("reconnect-timeout", values["reconnect-timeout"]);
  const keepalive = values.keepalive === undefined
    ? {}
    : { keepaliveMs: numberFlag("keepalive", values.keepalive) * 1000 };
  const { writer, progress } = localOutput(options.quiet, options.json);
  const run = new RemoteRun({
    ...resolveTarget(values),
    writer,
    progress,
    json: options.json,
    // The run's owner holds it to its reader's pace and ends it when its reader leaves.
    cancelOnBrokenPipe: options.owner === true,
    hold: options.owner === true,
    reconnectTimeoutMs: reconnectS * 1000,
    ...keepalive,
  });
  return { run, writer, progress, reconnectS };
}

/** The output writer and, on a terminal, the progress line watching it. */
function localOutput(quiet: boolean, json: boolean): {
  writer: OutputWriter;
  progress: ProgressLine | null;
} {
  if (quiet || json || !Deno.stderr.isTerminal()) {
    return { writer: new OutputWriter(), progress: null };
  }
  const terminals = new Set<LocalStream>(["stderr"]);
  if (Deno.stdout.isTerminal()) terminals.add("stdout");
  const progress = new ProgressLine(terminals);
  return { writer: new OutputWriter(undefined, progress), progress };
}

/** `K=V` pairs as an env object. */
function envFlags(pairs: string[] | undefined): Record<string, string> | undefined {
  if (pairs === undefined || pairs.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env ${pair}: expected NAME=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/** A refusal or failure before the run started, said once. */
function startFailure(err: unknown, json: boolean): number {
  const refused = err instanceof RpcError;
  const message = refused
    ? `the server refused the request: ${err.message} (${err.code})` +
      (err.data ? ` ${JSON.stringify(err.data)}` : "")
    : err instanceof ConnectionError
    ? err.message
    : String(err);
  // As a shell says of a program it cannot find.
  const notFound = refused && /program (or working directory )?not found/.test(err.message);
  const denied = refused && /permission denied/i.test(err.message);
  const exit = notFound
    ? EXIT_NOT_FOUND
    : denied
    ? EXIT_NOT_EXECUTABLE
    : refused
    ? EXIT_REFUSED
    : EXIT_TRANSPORT;
  if (json) console.log(JSON.stringify({ event: "error", message, exit }));
  else console.error(`cc-executor: ${message}`);
  return exit;
}

/** `cc-executor run`. */
export async function runCommand(args: string[]): Promise<number> {
  const { values, positionals, command } = parseFlags(args, RUN_FLAGS);
  if (values.help) {
    console.log(RUN_HELP);
    return 0;
  }
  const argv = command.length > 0 ? command : positionals;
  if (values.shell !== undefined && argv.length > 0) {
    throw new UsageError("give either --shell 'COMMAND LINE' or -- COMMAND ARGS, not both");
  }
  if (values.shell === undefined && argv.length === 0) {
    throw new UsageError("no command: cc-executor run -- COMMAND [ARGS...]");
  }
  if (values.detach && values.stdin) {
    throw new UsageError("--stdin needs the CLI to stay: it cannot go with --detach");
  }
  const json = values.json === true;
  const detach = values.detach === true;
  // With --detach, the one line printed at the end is all there is.
  const { run, writer, progress, reconnectS } = follower(values, {
    quiet: values.quiet === true || detach,
    json: json && !detach,
    // A detached run has no owner here to hold it: it runs at its own pace.
    owner: !detach,
  });
  const params: Record<string, unknown> = {
    ...(values.shell !== undefined ? { command: values.shell } : { args: argv }),
    ...(values.timeout !== undefined ? { timeout: numberFlag("timeout", values.timeout) } : {}),
    ...(values["idle-timeout"] !== undefined
      ? { idle_timeout: numberFlag("idle-timeout", values["idle-timeout"]) }
      : {}),
    ...(values.cwd !== undefined ? { cwd: values.cwd } : {}),
    ...(values.node !== undefined ? { node: values.node } : {}),
    ...(values.label !== undefined && values.label.length > 0 ? { labels: values.label } : {}),
    ...(envFlags(values.env) !== undefined ? { env: envFlags(values.env) } : {}),
    ...(values.stdin ? { stdin_open: true } : {}),
    // Always detached, so a dropped connection can be resumed; without
    // --detach the server ends it soon after its CLI is gone for good.
    detach: true,
    ...(detach ? {} : { detach_timeout: reconnectS + DETACH_MARGIN_S }),
  };
  let started: Record<string, unknown>;
  try {
    started = await run.start(params);
  } catch (err) {
    return startFailure(err, json);
  }
  if (detach) {
    run.close();
    console.log(
      json ? JSON.stringify({ event: "detached", ...started }) : String(started.execution_id),
    );
    return 0;
  }
  return await follow(run, { writer, progress, json, stdin: values.stdin === true });
}

/** `cc-executor attach`. */
export async function attachCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    ...FOLLOW_FLAGS,
    from: { type: "string" },
  });
  if (values.help) {
    console.log(ATTACH_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("expected one execution id: attach ID");
  const json = values.json === true;
  // From 0 unless told otherwise: output no longer retained is then said, never skipped silently.
  const from = values.from === undefined ? 0 : numberFlag("from", values.from, true);
  const { run, writer, progress } = follower(values, { quiet: values.quiet === true, json });
  try {
    await run.attach(positionals[0]!, from);
  } catch (err) {
    return startFailure(err, json);
  }
  return await follow(run, { writer, progress, json, stdin: false });
}
