/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`):
 * installing it with Node, once, and reading the outcome of its scenarios.
 * Shared by `tests/integration/mcp_conformance_test.ts` and
 * `scripts/conformance.ts` (`deno task conformance`).
 *
 * The suite needs Node >= 22. Both are installed with npm into
 * `$XDG_CACHE_HOME` (or `~/.cache`)`/cc-executor/`.
 *
 * @module
 */

/** The suite's version: the scenario lists of the test are for this one. */
export const SUITE = "@modelcontextprotocol/conformance@0.1.16";
const NODE_MAJOR = 22;

/** The scenarios `deno task conformance` runs: those the issue asks to pass with default settings. */
export const REQUIRED = [
  "server-initialize",
  "ping",
  "tools-list",
  "logging-set-level",
  "server-sse-multiple-streams",
  "dns-rebinding-protection",
];

/** An installed suite: node's and the suite's entry points. */
export interface Suite {
  node: string;
  cli: string;
}

function env(name: string): string | undefined {
  return Deno.env.get(name) || undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Where a complete install lives: node's and the suite's entry points. */
function layout(dir: string): Suite {
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  return {
    node: `${dir}/node_modules/node-${Deno.build.os}-${arch}/bin/node`,
    cli: `${dir}/node_modules/@modelcontextprotocol/conformance/dist/index.js`,
  };
}

/** Installs node 22 and the suite when missing; returns them, or why not. */
export async function installSuite(): Promise<Suite | string> {
  const cacheHome = env("XDG_CACHE_HOME") ??
    (env("HOME") ? `${env("HOME")}/.cache` : new URL("../.data/cache", import.meta.url).pathname);
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  const name = `mcp-conformance-${
    SUITE.split("@").at(-1)
  }-node${NODE_MAJOR}-${Deno.build.os}-${arch}`;
  const dir = `${cacheHome}/cc-executor/${name}`;
  const suite = layout(dir);
  if (await exists(suite.node) && await exists(suite.cli)) return suite;
  // Installed beside, then renamed in: an interrupted or concurrent install
  // never leaves a half-installed directory under the final name.
  await Deno.mkdir(`${cacheHome}/cc-executor`, { recursive: true });
  const staging = await Deno.makeTempDir({ dir: `${cacheHome}/cc-executor`, prefix: `${name}.` });
  try {
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command("npm", {
        args: [
          "install",
          "--prefix",
          staging,
          "--no-audit",
          "--no-fund",
          "--loglevel=error",
          "--prefer-offline",
          // A registry out of reach fails in seconds, not after npm's minutes of retries.
          "--fetch-retries=1",
          "--fetch-retry-mintimeout=1000",
          "--fetch-retry-maxtimeout=2000",
          "--fetch-timeout=60000",
          `node-${Deno.build.os}-${arch}@${NODE_MAJOR}`,
          SUITE,
        ],
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(180_000),
      }).output();
    } catch (err) {
      return `npm cannot run: ${err instanceof Error ? err.message : String(err)}`;
    }
    const staged = layout(staging);
    if (!out.success || !await exists(staged.node) || !await exists(staged.cli)) {
      const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").slice(0, 2)
        .join(" ");
      return `npm could not install node ${NODE_MAJOR} and ${SUITE}: ${
        stderr || `exit ${out.code}`
      }`;
    }
    try {
      await Deno.rename(staging, dir);
    } catch (err) {
      // Another run finished first: use its install.
      if (!(await exists(suite.node) && await exists(suite.cli))) throw err;
    }
    return suite;
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** One scenario's outcome: passed when none of its checks is a FAILURE. */
export interface Outcome {
  passed: boolean;
  failures: string[];
}

/** Each scenario's outcome, read from the suite's `-o` directory. */
export async function outcomes(
  dir: string,
): Promise<Map<string, Outcome>> {
  const result = new Map<string, Outcome>();
  for await (const entry of Deno.readDir(dir)) {
    const m = /^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/.exec(entry.name);
    if (!entry.isDirectory || m === null) continue;
    const checks: { id: string; status: string; errorMessage?: string }[] = JSON.parse(
      await Deno.readTextFile(`${dir}/${entry.name}/checks.json`),
    );
    const failures = checks.filter((c) => c.status === "FAILURE")
      .map((c) => `${c.id}: ${c.errorMessage ?? ""}`);
    result.set(m[1]!, { passed: failures.length === 0, failures });
  }
  return result;
}

/**
 * Runs the suite against the MCP endpoint `url`: every scenario (`--suite
 * all`) or one (`scenario`), writing results under `outDir`; returns the
 * suite's output.
 */
export async function runSuite(
  suite: Suite,
  url: string,
  outDir: string,
  scenario?: string,
): Promise<string> {
  const run = await new Deno.Command(suite.node, {
    args: [
      suite.cli,
      "server",
      "--url",
      url,
      ...(scenario === undefined ? ["--suite", "all"] : ["--scenario", scenario]),
      "-o",
      outDir,
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  return new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
}
