/**
 * The command allowlist: a `command` string is split into argv by a POSIX
 * shell-words parser (lib/security/shell_words.ts) and run without a shell,
 * so anything a shell would have done beyond quoting (operators,
 * substitutions, expansions) is refused with a reason rather than silently
 * passed on as literal text.
 *
 * @module
 */
import { CommandRefusedError, type ExecutorErrorOptions } from "../errors.ts";
import { type Hazard, scan, ShellWordsError, wordsOf } from "./shell_words.ts";

export { shellTokens } from "./shell_words.ts";

/**
 * A command refused by the allowlist policy (JSON-RPC code -32001). `data`
 * is `{reason, token?, index?, program?}`; `message` says why in words.
 */
export class CommandPolicyError extends CommandRefusedError {
  /** Creates a policy refusal. */
  constructor(message: string, options: ExecutorErrorOptions = {}) {
    super(message, options);
    this.name = "CommandPolicyError";
  }
}

const POLICY_SUFFIX = "is not allowed when ALLOWED_COMMANDS is set";

function refusal(hazard: Hazard, index: number, inDouble: boolean): CommandPolicyError {
  const where = inDouble ? " (even inside double quotes)" : "";
  const message = hazard.reason === "newline"
    ? `Command refused: a newline separates commands and ${POLICY_SUFFIX}`
    : `Command refused: ${hazard.what} '${hazard.token}' ${POLICY_SUFFIX}${where}`;
  return new CommandPolicyError(message, {
    data: { reason: hazard.reason, token: hazard.token, index },
  });
}

/**
 * Checks that `argv[0]` names an allowed program. A bare name matches an
 * entry exactly; a path (`/bin/echo`, `./echo`) matches an entry equal to the
 * path or to its basename. So list full paths when clients could place
 * their own program of an allowed name somewhere reachable.
 *
 * @param argv The words to run; `argv[0]` is the program.
 * @param allowed Program names or paths (`ALLOWED_COMMANDS`).
 * @returns A copy of `argv`, to run without a shell.
 * @throws {CommandPolicyError} when `argv` is empty or the program is not listed.
 *
 * @example Paths match by basename
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkArgv } from "./command_policy.ts";
 * assert.deepEqual(checkArgv(["/bin/echo", "hi"], ["echo"]).argv, ["/bin/echo", "hi"]);
 * assert.throws(() => checkArgv(["rm", "-rf", "/"], ["echo"]), /Command 'rm' is not allowed/);
 * ```
 */
export function checkArgv(argv: readonly string[], allowed: readonly string[]): { argv: string[] } {
  const program = argv[0];
  if (program === undefined) {
    throw new CommandPolicyError("Command cannot be empty", { data: { reason: "empty" } });
  }
  const base = program.slice(program.lastIndexOf("/") + 1);
  if (!allowed.includes(program) && !(base !== "" && base !== program && allowed.includes(base))) {
    throw new CommandPolicyError(`Command '${program}' is not allowed`, {
      data: { reason: "not_allowed", program },
    });
  }
  return { argv: [...argv] };
}

/**
 * Turns a `command` string into an argv to run without a shell, under the
 * allowlist policy. Refused, with a message saying why:
 * - shell operators outside quotes: `;` `&` `&&` `|` `||` `>` `>>` `<` `<<` `(` `)`;
 * - an unquoted newline between two commands (leading and trailing newlines
 *   and backslash-newline are fine);
 * - command substitution (`` ` ``, `$(`) and arithmetic (`$((`, `$[`), also in
 *   double quotes;
 * - parameter expansion (`$NAME`, `${`, `$1`, `$?`, ...), also in double quotes,
 *   since no shell runs to expand it; and bash's `$'...'` / `$"..."`;
 * - a word-initial `#` (comment) or `~` (tilde expansion);
 * - a program not on the list (see {@linkcode checkArgv}).
 *
 * Everything inside single quotes is literal, and a backslash makes any
 * character literal (`echo \;` passes `;`). Glob characters `*`, `?`, `[`
 * and braces are passed literally: nothing expands them.
 *
 * @param command The command line a client sent.
 * @param allowed Program names or paths (`ALLOWED_COMMANDS`); empty refuses all.
 * @returns The argv to run without a shell.
 * @throws {CommandPolicyError} (code -32001) when refused, including for bad quoting.
 *
 * @example Operators are refused, quoted text is literal
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkCommand } from "./command_policy.ts";
 * assert.deepEqual(checkCommand("echo 'a; b' \\;", ["echo"]).argv, ["echo", "a; b", ";"]);
 * assert.throws(
 *   () => checkCommand("echo ok; touch X", ["echo"]),
 *   { code: -32001, message: "Command refused: shell operator ';' is not allowed when ALLOWED_COMMANDS is set" },
 * );
 * ```
 */
export function checkCommand(command: string, allowed: readonly string[]): { argv: string[] } {
  if (command.trim() === "") {
    throw new CommandPolicyError("Command cannot be empty", { data: { reason: "empty" } });
  }
  let argv: string[];
  try {
    argv = wordsOf(scan(command, "policy", refusal));
  } catch (err) {
    if (!(err instanceof ShellWordsError)) throw err;
    const reason = err.message.charAt(0).toLowerCase() + err.message.slice(1);
    throw new CommandPolicyError(`Command refused: ${reason}`, { data: err.data, cause: err });
  }
  return checkArgv(argv, allowed);
}
