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
import { installSuite, outcomes, runSuite, type Suite } from "../_conformance.ts";

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

const installed = await installSuite();
const skipped = typeof installed === "string" ? installed : null;
if (skipped !== null) console.warn(`mcp_conformance_test ignored: ${skipped}`);

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
      const log = await runSuite(suite, `${server.httpUrl}/mcp`, results);
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
