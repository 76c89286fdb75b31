/**
 * `cancel` and `signal`: a control for one run, by id.
 *
 * @module
 */
import { parseFlags, resolveTarget, UsageError } from "../options.ts";
import { requestOnce } from "./request.ts";

/** `cancel --help`. */
export const CANCEL_HELP = `Usage: cc-executor cancel ID

Cancels a run: SIGTERM to its whole process group, then SIGKILL after the
server's kill grace. Followers see it end with status "canceled".

Flags: --url URL, --key-file FILE: as for run
`;

/** `signal --help`. */
export const SIGNAL_HELP = `Usage: cc-executor signal ID SIG

Sends signal SIG (INT, TERM, KILL, HUP, QUIT, USR1 or USR2; SIG prefix
optional) to a run's whole process group.

Flags: --url URL, --key-file FILE: as for run
`;

/** `cc-executor cancel`. */
export async function cancelCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {});
  if (values.help) {
    console.log(CANCEL_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("expected one execution id: cancel ID");
  const id = positionals[0]!;
  await requestOnce(resolveTarget(values), "control", { type: "CANCEL", execution_id: id });
  console.log(`canceled ${id}`);
  return 0;
}

/** `cc-executor signal`. */
export async function signalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {});
  if (values.help) {
    console.log(SIGNAL_HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError("expected an id and a signal: signal ID SIG");
  const [id, signal] = positionals as [string, string];
  const result = await requestOnce(resolveTarget(values), "control", {
    type: "SIGNAL",
    execution_id: id,
    signal,
  });
  console.log(`sent ${result.signal ?? signal} to ${id}`);
  return 0;
}
