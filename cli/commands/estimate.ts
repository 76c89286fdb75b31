/**
 * `estimate`: the time limit a command would get, and why, without running it.
 *
 * @module
 */
import { parseFlags, resolveTarget, UsageError } from "../options.ts";
import { requestOnce } from "./request.ts";

/** `estimate --help`. */
export const ESTIMATE_HELP = `Usage: cc-executor estimate [--json] -- COMMAND [ARGS...]
       cc-executor estimate [--json] --shell 'COMMAND LINE'

Prints the time limit the server would give the command when run without
--timeout, where it comes from (history, similar, default) and why.

Flags:
  --shell CMD   a shell command line instead of a program and its arguments
  --json        the server's answer as JSON
  --url URL, --key-file FILE: as for run
`;

/** `cc-executor estimate`. */
export async function estimateCommand(args: string[]): Promise<number> {
  const { values, positionals, command } = parseFlags(args, {
    shell: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    console.log(ESTIMATE_HELP);
    return 0;
  }
  const argv = command.length > 0 ? command : positionals;
  if ((values.shell === undefined) === (argv.length === 0)) {
    throw new UsageError("give --shell 'COMMAND LINE' or -- COMMAND ARGS");
  }
  const result = await requestOnce(
    resolveTarget(values),
    "estimate",
    values.shell !== undefined ? { command: values.shell } : { args: argv },
  );
  if (values.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(`${result.timeout}s (${result.timeout_source})`);
    const why = result.reasoning as Record<string, unknown> | string | undefined;
    if (typeof why === "string") console.log(why);
    else if (why !== undefined) {
      // The class it was judged by, and the rule that gave the figure.
      if (typeof why.class === "string") console.log(`class ${why.class}`);
      if (typeof why.rule === "string") console.log(why.rule);
    }
  }
  return 0;
}
