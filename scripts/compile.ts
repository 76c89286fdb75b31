/**
 * `deno task compile`: builds `dist/cc-executor`, a single binary with the
 * permission flags (lib/permissions.ts) of the configuration in effect when
 * it is built (the same flags and env vars the service reads). Build it with
 * the settings you will run it with, e.g.
 * `CC_EXECUTOR_HOST=10.0.0.5 deno task compile`.
 *
 * `deno compile` downloads its runtime base (`denort`) the first time; with
 * no internet access, set `DENORT_BIN` to a local copy.
 *
 * @module
 */
import { ConfigError, loadConfig } from "../lib/config.ts";
import { HookRunner } from "../lib/hooks.ts";
import { permissionFlags } from "../lib/permissions.ts";

let flags: string[];
try {
  const config = loadConfig({ args: Deno.args });
  const hooks = await HookRunner.load(config.hooksConfig, config);
  flags = permissionFlags(config, hooks.programs());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`cc-executor: ${err.message}`);
  Deno.exit(2);
}
const root = new URL("..", import.meta.url).pathname;
const args = ["compile", ...flags, "--output", `${root}dist/cc-executor`, `${root}main.ts`];
console.error(`deno ${args.join(" ")}`);
const status = await new Deno.Command(Deno.execPath(), {
  args,
  stdout: "inherit",
  stderr: "inherit",
}).spawn().status;
Deno.exit(status.code);
