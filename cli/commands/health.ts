/**
 * `health`: the server's `/health`, with the key, so the full figures show.
 *
 * @module
 */
import { EXIT_REFUSED, EXIT_TRANSPORT } from "../exit_status.ts";
import { httpUrl, parseFlags, resolveTarget } from "../options.ts";
import { RequestFailure } from "./request.ts";

/** `health --help`. */
export const HEALTH_HELP = `Usage: cc-executor health [--json]

Prints the server's /health (all figures when your key is accepted) and
exits 0 when it is healthy, 1 when it is not (draining, or its store down),
255 when it cannot be reached.

Flags:
  --json        the JSON on one line (default: indented)
  --url URL, --key-file FILE: as for run
`;

/** `cc-executor health`. */
export async function healthCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { json: { type: "boolean" } });
  if (values.help) {
    console.log(HEALTH_HELP);
    return 0;
  }
  const target = resolveTarget(values);
  const url = httpUrl(target.url, "/health");
  let res: Response;
  try {
    res = await fetch(url, {
      headers: target.key ? { authorization: `Bearer ${target.key}` } : {},
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new RequestFailure(`cannot reach ${url}: ${(err as Error).message}`, EXIT_TRANSPORT);
  }
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    throw new RequestFailure(`${url}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`, 255);
  }
  if (res.status === 401 || res.status === 403) {
    throw new RequestFailure(`${url} refused the API key (HTTP ${res.status})`, EXIT_TRANSPORT);
  }
  console.log(values.json ? JSON.stringify(body) : JSON.stringify(body, null, 2));
  // A key the server does not hold gets the status alone, not a refusal: say so.
  if (target.key !== undefined && !("running_executions" in body) && res.ok) {
    console.error("cc-executor health: the server did not accept the API key: only the status");
    return EXIT_REFUSED;
  }
  return res.ok && body.status === "healthy" ? 0 : EXIT_REFUSED;
}
