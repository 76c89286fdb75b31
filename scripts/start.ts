/**
 * `deno task start`: runs `main.ts` under the narrowest Deno permissions the
 * configuration needs (lib/security/permissions.ts), computed from the same flags and
 * env vars the service reads, with its V8 flags (scripts/_v8_flags.ts).
 * Signals are passed on, so SIGTERM/SIGINT drain the service and SIGHUP
 * reloads its API keys.
 *
 * @module
 */
import { permissionFlagsOrExit } from "./_permission_flags.ts";
import { v8FlagsArgs } from "./_v8_flags.ts";

const main = new URL("../main.ts", import.meta.url).pathname;
// --help is answered by main.ts itself, under no permissions at all.
const help = Deno.args.includes("--help") || Deno.args.includes("-h");
const flags = help ? [] : await permissionFlagsOrExit(Deno.args);
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", ...v8FlagsArgs(Deno.env.get("DENO_V8_FLAGS")), ...flags, main, ...Deno.args],
  // The service watches for this launcher's death: a supervisor that
  // SIGKILLs the pid it started must not leave the service running.
  env: { CC_EXECUTOR_LAUNCHER_PID: String(Deno.pid) },
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  Deno.addSignalListener(signal, () => {
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
  });
}
const status = await child.status;
Deno.exit(status.signal ? 1 : status.code);
