/**
 * `deno task start`: runs `main.ts` under the narrowest Deno permissions the
 * configuration needs (lib/permissions.ts), computed from the same flags and
 * env vars the service reads. Signals are passed on, so SIGTERM/SIGINT drain
 * the service and SIGHUP reloads its API keys.
 *
 * @module
 */
import { ConfigError, loadConfig } from "../lib/config.ts";
import { HookRunner } from "../lib/hooks.ts";
import { permissionFlags } from "../lib/permissions.ts";

const main = new URL("../main.ts", import.meta.url).pathname;
let flags: string[] = [];
if (!Deno.args.includes("--help") && !Deno.args.includes("-h")) {
  try {
    const config = loadConfig({ args: Deno.args });
    const hooks = await HookRunner.load(config.hooksConfig, config);
    flags = permissionFlags(config, hooks.programs());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`cc-executor: ${err.message}`);
    Deno.exit(2);
  }
}
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", ...flags, main, ...Deno.args],
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
