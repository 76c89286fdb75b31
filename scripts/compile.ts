/**
 * `deno task compile`: builds `dist/cc-executor`, a single binary with the
 * permission flags (lib/security/permissions.ts) of the configuration in effect when
 * it is built (the same flags and env vars the service reads) and the V8
 * flags of `deno task start` (scripts/_v8_flags.ts). Build it with
 * the settings you will run it with, e.g.
 * `CC_EXECUTOR_HOST=10.0.0.5 deno task compile`.
 *
 * `deno compile` downloads its runtime base (`denort`) the first time; with
 * no internet access, set `DENORT_BIN` to a local copy.
 *
 * @module
 */
import { permissionFlagsOrExit } from "./_permission_flags.ts";
import { v8FlagsArgs } from "./_v8_flags.ts";

const flags = await permissionFlagsOrExit(Deno.args);
const root = new URL("..", import.meta.url).pathname;
const args = [
  "compile",
  ...v8FlagsArgs(Deno.env.get("DENO_V8_FLAGS")),
  ...flags,
  "--output",
  `${root}dist/cc-executor`,
  `${root}main.ts`,
];
console.error(`deno ${args.join(" ")}`);
const status = await new Deno.Command(Deno.execPath(), {
  args,
  stdout: "inherit",
  stderr: "inherit",
}).spawn().status;
Deno.exit(status.code);
