/**
 * `ps`: the runs of this API key (an admin key's: everyone's), running ones
 * by default, as a table or NDJSON.
 *
 * @module
 */
import { parseFlags, resolveTarget } from "../options.ts";
import { requestOnce } from "./request.ts";

/** `ps --help`. */
export const PS_HELP = `Usage: cc-executor ps [--all] [--json]

Lists the runs of your API key (an admin key's: everyone's): running ones, or
with --all those that ended and are still kept too, oldest first.

Flags:
  --all         ended runs too
  --json        one JSON object per run (NDJSON)
  --url URL, --key-file FILE: as for run
`;

/**
 * `text` with control characters shown as `\xNN`: a command's text must not
 * drive the terminal that lists it (escape sequences, carriage returns).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { printable } from "./ps.ts";
 * assert.equal(printable("echo \x1b[31mred\n"), "echo \\x1b[31mred\\x0a");
 * ```
 */
export function printable(text: string): string {
  const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, hex);
}

/** One listed run, as `list` gives it. */
interface Entry {
  execution_id: string;
  command: string;
  state: string;
  status: string;
  pid: number | null;
  started_at: string;
  duration_s: number;
  exit_code: number | null;
  signal: string | null;
  detached: boolean;
  attached: boolean;
  node: string | null;
}

/**
 * The table `ps` prints.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { psTable } from "./ps.ts";
 * const text = psTable([{ execution_id: "e1", command: "sleep 5", state: "running",
 *   status: "running", pid: 42, started_at: "2026-01-01T00:00:00.000Z", duration_s: 1.5,
 *   exit_code: null, signal: null, detached: true, attached: true, node: null }]);
 * assert.match(text, /^ID +STATUS +PID +STARTED +DURATION +EXIT +COMMAND$/m);
 * assert.match(text, /^e1 +running +42 .* sleep 5$/m);
 * ```
 */
export function psTable(entries: Entry[]): string {
  const rows = [["ID", "STATUS", "PID", "STARTED", "DURATION", "EXIT", "COMMAND"]];
  for (const e of entries) {
    const exit = e.exit_code !== null ? String(e.exit_code) : e.signal ?? "";
    const status = e.status + (e.state === "running" && !e.attached ? " (detached)" : "");
    rows.push([
      e.execution_id,
      status,
      e.pid === null ? "" : String(e.pid),
      e.started_at.replace("T", " ").replace(/\.\d+Z$/, "Z"),
      `${e.duration_s.toFixed(1)}s`,
      exit,
      printable(e.command),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ")
  ).join("\n") + "\n";
}

/** `cc-executor ps`. */
export async function psCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { all: { type: "boolean" }, json: { type: "boolean" } });
  if (values.help) {
    console.log(PS_HELP);
    return 0;
  }
  const target = resolveTarget(values);
  const result = await requestOnce(target, "list", {
    state: values.all ? "all" : "running",
    limit: 1000,
  });
  const entries = result.executions as Entry[];
  if (values.json) {
    for (const e of entries) console.log(JSON.stringify(e));
  } else {
    await Deno.stdout.write(new TextEncoder().encode(psTable(entries)));
  }
  return 0;
}
