/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`,
 * server scenarios) against a real cc-executor (`main.ts`) on an ephemeral
 * port. Most scenarios exercise the fixture tools, resources and prompts of
 * the SDKs' "everything" test server, which cc-executor does not have: those
 * are listed as expected failures, with why. The test fails when a passing
 * scenario regresses, and also when an expected failure starts passing (move
 * it to PASSING then), as the suite's own `--expected-failures` does.
 *
 * The suite needs Node >= 22. Both are installed with npm, once, into
 * `$XDG_CACHE_HOME` (or `~/.cache`)`/cc-executor/`; when npm cannot install
 * them (no npm, no registry) the test is ignored and says why.
 */
import assert from "node:assert/strict";
import { spawnServer } from "../_helpers.ts";

/** The suite's version: the scenario lists below are for this one. */
const SUITE = "@modelcontextprotocol/conformance@0.1.16";
const NODE_MAJOR = 22;

/** Scenarios cc-executor passes today (`--suite all`). */
const PASSING = [
  "server-initialize",
  "logging-set-level",
  "ping",
  "tools-list",
  "server-sse-multiple-streams",
  "server-sse-polling",
  "dns-rebinding-protection",
];

/** Scenarios that fail today, and why. */
const FAILING: Record<string, string> = {
  "completion-complete": "no completion/complete (no prompts or resource templates to complete)",
  "json-schema-2020-12": "fixture tool json_schema_2020_12_tool",
  "elicitation-sep1034-defaults": "fixture tool test_elicitation_sep1034_defaults",
  "elicitation-sep1330-enums": "fixture tool test_elicitation_sep1330_enums",
  ...Object.fromEntries(
    [
      "simple-text",
      "image",
      "audio",
      "embedded-resource",
      "mixed-content",
      "with-logging",
      "error",
      "with-progress",
      "sampling",
      "elicitation",
    ].map((s) => [`tools-call-${s}`, "fixture tool test_*"]),
  ),
  ...Object.fromEntries(
    [
      "resources-list",
      "resources-read-text",
      "resources-read-binary",
      "resources-templates-read",
      "resources-subscribe",
      "resources-unsubscribe",
      "prompts-list",
      "prompts-get-simple",
      "prompts-get-with-args",
      "prompts-get-embedded-resource",
      "prompts-get-with-image",
    ].map((s) => [s, "no resources or prompts"]),
  ),
};

interface Suite {
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
async function installSuite(): Promise<Suite | string> {
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

const installed = await installSuite();
const skipped = typeof installed === "string" ? installed : null;
if (skipped !== null) console.warn(`mcp_conformance_test ignored: ${skipped}`);

/** Each scenario's outcome: passed when none of its checks is a FAILURE. */
async function outcomes(
  dir: string,
): Promise<Map<string, { passed: boolean; failures: string[] }>> {
  const result = new Map<string, { passed: boolean; failures: string[] }>();
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

Deno.test({
  name: skipped === null
    ? "the MCP conformance suite's server scenarios: dns-rebinding-protection and the rest"
    : `the MCP conformance suite (ignored: ${skipped})`,
  ignore: skipped !== null,
  async fn() {
    const suite = installed as Suite;
    const server = await spawnServer({ ephemeral: "true", "ws-ping-interval": "0" });
    const results = await Deno.makeTempDir({ prefix: "cc-executor-conformance-" });
    try {
      const run = await new Deno.Command(suite.node, {
        args: [
          suite.cli,
          "server",
          "--url",
          `${server.httpUrl}/mcp`,
          "--suite",
          "all",
          "-o",
          results,
        ],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).output();
      const log = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
      const got = await outcomes(results);
      const missing = [...PASSING, ...Object.keys(FAILING)].filter((s) => !got.has(s));
      assert.deepEqual(missing, [], `scenarios that did not run:\n${log.slice(-2000)}`);
      const unknown = [...got.keys()].filter((s) => !PASSING.includes(s) && !(s in FAILING));
      assert.deepEqual(unknown, [], "scenarios this test does not know: list them");
      const regressed = PASSING.filter((s) => !got.get(s)!.passed)
        .map((s) => `${s}: ${got.get(s)!.failures.join("; ")}`);
      assert.deepEqual(regressed, [], "scenarios that passed before fail now");
      const fixed = Object.keys(FAILING).filter((s) => got.get(s)!.passed);
      assert.deepEqual(fixed, [], "expected failures that pass now: move them to PASSING");
    } finally {
      await server.stop();
      await Deno.remove(results, { recursive: true });
    }
  },
});
