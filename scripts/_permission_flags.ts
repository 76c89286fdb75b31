/**
 * The permission flags for the configuration given by `args` and the
 * environment, shared by `start.ts` and `compile.ts`. A bad setting ends the
 * script with the same message and exit code as the service itself.
 *
 * @module
 */
import { ConfigError, loadConfig } from "../lib/config/config.ts";
import { HookRunner } from "../lib/ops/hooks.ts";
import { permissionFlags } from "../lib/security/permissions.ts";

/** The flags for `args`, or exit 2 naming the bad setting. */
export async function permissionFlagsOrExit(args: readonly string[]): Promise<string[]> {
  try {
    const config = loadConfig({ args });
    const hooks = await HookRunner.load(config.hooksConfig, config);
    return permissionFlags(config, hooks.programs());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`cc-executor: ${err.message}`);
    Deno.exit(2);
  }
}
