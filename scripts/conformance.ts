/**
 * `deno task conformance`: starts a fresh cc-executor exactly as
 * `deno task start` does (`scripts/start.ts`, under its narrow permissions),
 * on a free port, with the default settings except an in-memory store, runs
 * the MCP conformance suite's required server scenarios against its `/mcp`,
 * prints each outcome, and exits non-zero when one fails (or the suite cannot
 * be installed). Further arguments go to the server.
 *
 * @module
 */
import { installSuite, outcomes, REQUIRED, runSuite } from "../tests/_conformance.ts";

/** The server, started as `deno task start` starts it; resolves once it listens. */
async function startServer(args: string[]) {
  const start = new URL("./start.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    // The `start` task's command line (deno.json), on port 0.
    args: [
      "run",
      "--allow-env",
      "--allow-read",
      "--allow-run",
      start,
      "--port",
      "0",
      "--ephemeral",
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const { promise: listening, resolve } = Promise.withResolvers<number | null>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      const m = text.match(/listening on "?ws:\/\/[^:]+:(\d+)/);
      if (m) resolve(Number(m[1]));
    }
  };
  const pumping = Promise.all([pump(child.stdout), pump(child.stderr)]);
  // Exited before listening: say so rather than wait.
  void child.status.then(() => resolve(null));
  const timer = setTimeout(() => resolve(null), 30_000);
  const port = await listening;
  clearTimeout(timer);
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
    await child.status;
    await pumping;
  };
  if (port === null) {
    await stop();
    throw new Error(`The server did not start:\n${text.slice(-2000)}`);
  }
  return { port, stop };
}

const suite = await installSuite();
if (typeof suite === "string") {
  console.error(`Cannot run the conformance suite: ${suite}`);
  Deno.exit(2);
}
const server = await startServer(Deno.args);
const results = await Deno.makeTempDir({ prefix: "cc-executor-conformance-" });
let failed = 0;
try {
  const url = `http://127.0.0.1:${server.port}/mcp`;
  console.log(`MCP conformance suite against ${url}`);
  for (const scenario of REQUIRED) {
    const log = await runSuite(suite, url, results, scenario);
    const outcome = (await outcomes(results)).get(scenario);
    if (outcome?.passed === true) {
      console.log(`PASS  ${scenario}`);
      continue;
    }
    failed++;
    console.log(`FAIL  ${scenario}`);
    const why = outcome?.failures ?? [`did not run:\n${log.slice(-2000)}`];
    for (const line of why) console.log(`      ${line}`);
  }
  console.log(`${REQUIRED.length - failed} of ${REQUIRED.length} scenarios passed`);
} finally {
  await server.stop();
  await Deno.remove(results, { recursive: true });
}
Deno.exit(failed === 0 ? 0 : 1);
