/**
 * The `cc-executor` command-line client: `deno task cli <subcommand>`, or
 * `cc-executor <subcommand>` from the compiled binary (whose bare
 * `cc-executor`, or `cc-executor serve`, is the server).
 *
 * @module
 */
import { ATTACH_HELP, attachCommand, RUN_HELP, runCommand } from "./commands/run.ts";
import { CANCEL_HELP, cancelCommand, SIGNAL_HELP, signalCommand } from "./commands/control.ts";
import { ESTIMATE_HELP, estimateCommand } from "./commands/estimate.ts";
import { HEALTH_HELP, healthCommand } from "./commands/health.ts";
import { LOGS_HELP, logsCommand } from "./commands/logs.ts";
import { PS_HELP, psCommand } from "./commands/ps.ts";
import { RequestFailure } from "./commands/request.ts";
import { EXIT_TRANSPORT, EXIT_USAGE } from "./exit_status.ts";
import { UsageError } from "./options.ts";

/** A subcommand: what it does, in one line, its help, and its body. */
interface Subcommand {
  summary: string;
  help: string;
  main: (args: string[]) => Promise<number>;
}

/** The subcommands, by name. */
export const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  run: {
    summary: "run a command and follow it like a local one",
    help: RUN_HELP,
    main: runCommand,
  },
  attach: { summary: "follow a run from a byte offset", help: ATTACH_HELP, main: attachCommand },
  ps: { summary: "list runs", help: PS_HELP, main: psCommand },
  logs: { summary: "print a run's output so far", help: LOGS_HELP, main: logsCommand },
  cancel: { summary: "cancel a run", help: CANCEL_HELP, main: cancelCommand },
  signal: {
    summary: "send a signal to a run's process group",
    help: SIGNAL_HELP,
    main: signalCommand,
  },
  estimate: {
    summary: "the time limit a command would get",
    help: ESTIMATE_HELP,
    main: estimateCommand,
  },
  health: { summary: "the server's health and figures", help: HEALTH_HELP, main: healthCommand },
};

/** `cc-executor --help`. */
export function mainHelp(): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((n) => n.length));
  const lines = Object.entries(SUBCOMMANDS).map(([name, s]) =>
    `  ${name.padEnd(width)}  ${s.summary}`
  );
  return `Usage: cc-executor <subcommand> [flags]

The command-line client of a cc-executor server.

Subcommands:
${lines.join("\n")}

  serve${
    " ".repeat(Math.max(1, width - 3))
  }run the server (the compiled binary with no subcommand does too)

The server: --url URL or CC_EXECUTOR_URL (default ws://127.0.0.1:8003/ws/mcp).
The API key: CC_EXECUTOR_API_KEY, or --key-file FILE (never a flag: ps shows flags).
Exit status of run and attach: the remote one (128+N for a signal, 124 for its
time limit, 130 after Ctrl-C), 255 when its end was not seen; of the others: 0,
1 when the server refused, 2 for a usage error, 255 when it cannot be reached.

cc-executor <subcommand> --help for its flags.
`;
}

/**
 * Runs the subcommand `args[0]` with the rest.
 *
 * @returns the exit status.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cli } from "./main.ts";
 * assert.equal(await cli(["frobnicate"]), 2);
 * ```
 */
export async function cli(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" && rest[0] !== undefined ? SUBCOMMANDS[rest[0]] : undefined;
    console.log(topic?.help ?? mainHelp());
    return name === undefined ? EXIT_USAGE : 0;
  }
  const sub = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
  if (sub === undefined) {
    console.error(`cc-executor: unknown subcommand '${name}' (cc-executor --help lists them)`);
    return EXIT_USAGE;
  }
  try {
    return await sub.main(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`cc-executor ${name}: ${err.message} (cc-executor ${name} --help)`);
      return EXIT_USAGE;
    }
    if (err instanceof RequestFailure) {
      console.error(`cc-executor ${name}: ${err.message}`);
      return err.exit;
    }
    console.error(`cc-executor ${name}: ${err instanceof Error ? err.stack ?? err.message : err}`);
    return EXIT_TRANSPORT;
  }
}

if (import.meta.main) Deno.exit(await cli(Deno.args));
