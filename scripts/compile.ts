/**
 * `deno task compile`: builds `dist/cc-executor`, a single binary with the
 * permission flags (lib/security/permissions.ts) of the configuration in effect when
 * it is built (the same flags and env vars the service reads) and the V8
 * flags of `deno task start` (scripts/_v8_flags.ts). Build it with
 * the settings you will run it with, e.g.
 * `CC_EXECUTOR_HOST=10.0.0.5 deno task compile`.
 *
 * The binary is the CLI too (`cc-executor run -- ls`): it may also reach
 * the server that `CC_EXECUTOR_URL` names at build time (default
 * 127.0.0.1:8003, the server's own default address) and read the CLI's
 * env vars. A `--key-file` must then lie in a path the service may read;
 * `CC_EXECUTOR_API_KEY` always works.
 *
 * `deno compile` downloads its runtime base (`denort`) the first time; with
 * no internet access, set `DENORT_BIN` to a local copy.
 *
 * @module
 */
import { permissionFlagsOrExit } from "./_permission_flags.ts";
import { v8FlagsArgs } from "./_v8_flags.ts";
import { DEFAULT_URL, wsUrl } from "../cli/options.ts";

/** `flags` with a scoped `--allow-<name>=...` widened by `more` (an unscoped one stays). */
function widen(flags: string[], name: string, more: string[]): string[] {
  const prefix = `--allow-${name}=`;
  return flags.map((f) => {
    if (!f.startsWith(prefix)) return f;
    const scope = new Set([...f.slice(prefix.length).split(","), ...more]);
    return `${prefix}${[...scope].join(",")}`;
  });
}

const cliTarget = new URL(wsUrl(Deno.env.get("CC_EXECUTOR_URL") ?? DEFAULT_URL));
const cliPort = cliTarget.port || (cliTarget.protocol === "wss:" ? "443" : "80");
let flags = await permissionFlagsOrExit(Deno.args);
flags = widen(flags, "net", [`${cliTarget.hostname}:${cliPort}`]);
flags = widen(flags, "env", ["CC_EXECUTOR_URL", "CC_EXECUTOR_API_KEY"]);
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
