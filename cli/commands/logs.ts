/**
 * `logs`: a run's output so far (the retained part), each stream to its
 * own, then exit; `attach` is the one that follows.
 *
 * @module
 */
import { numberFlag, parseFlags, UsageError } from "../options.ts";
import { RemoteRun } from "../remote_run.ts";
import { OutputWriter } from "../output_writer.ts";
import { RequestFailure, requestFailure } from "./request.ts";
import { EXIT_TRANSPORT, signalStatus } from "../exit_status.ts";
import { resolveTarget } from "../options.ts";

/** `logs --help`. */
export const LOGS_HELP = `Usage: cc-executor logs ID [--tail BYTES]

Prints a run's output so far, stdout to stdout and stderr to stderr, byte for
byte, and exits (attach follows it live instead). Output no longer retained
is said on stderr. Runs that ended stay readable while the server retains
them (execution-retention).

Flags:
  --tail BYTES  only the last BYTES bytes
  --url URL, --key-file FILE: as for run
`;

/** `cc-executor logs`. */
export async function logsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { tail: { type: "string" } });
  if (values.help) {
    console.log(LOGS_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("expected one execution id: logs ID");
  const tail = values.tail === undefined ? undefined : numberFlag("tail", values.tail, true);
  const writer = new OutputWriter();
  // Paced like any follower: a slow reader slows the transfer, not the CLI's memory.
  const run = new RemoteRun({ ...resolveTarget(values), writer, reconnectTimeoutMs: 60_000 });
  let attached: Record<string, unknown>;
  try {
    attached = await run.attach(positionals[0]!, tail === undefined ? 0 : undefined, tail);
  } catch (err) {
    throw requestFailure(err);
  }
  run.stopAt(Number(attached.next_seq));
  const outcome = await run.outcome;
  run.close();
  await writer.drained();
  if (writer.broken !== null) return signalStatus("SIGPIPE") ?? EXIT_TRANSPORT;
  if (outcome.kind === "failed") throw new RequestFailure(outcome.message, EXIT_TRANSPORT);
  return 0;
}
