/**
 * The `tenant_lookup` figure (9 in scripts/bench.ts).
 *
 * @module
 */
import { INIT, postMcp } from "../../tests/_mcp.ts";
import { median, percentile, quick, report, round, startServer, stopProcess } from "./_common.ts";

/**
 * The `tenant_lookup` figure: with two principals' keys, bob sends `/mcp`
 * requests naming alice's live session id and naming ids that never existed,
 * alternating, 500 of each (100 with `--quick`), after 50 warm-up pairs:
 * both must be the same 404, and the medians of their latencies must not
 * differ by more than 0.1 ms or 5% of the faster one, whichever is larger
 * (target): an attacker cannot tell a live session of another tenant from
 * an unknown id by its answer or its timing.
 */
export async function tenantLookup() {
  const server = await startServer({
    CC_EXECUTOR_API_KEYS: "alice:alice-key,bob:bob-key",
    // Each request with an id that is not the caller's counts as a new
    // connection: lifted, so the figure times the lookup, not the throttle.
    CC_EXECUTOR_CONN_RATE: "100000",
    CC_EXECUTOR_CONN_BURST: "100000",
  });
  try {
    const post = (key: string, body: unknown, sessionId?: string) =>
      postMcp(server.httpUrl, body, {
        authorization: `Bearer ${key}`,
        "mcp-protocol-version": "2025-11-25",
        ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId }),
      });
    const init = await post("alice-key", INIT);
    const aliceSession = init.headers.get("mcp-session-id");
    await init.body?.cancel();
    if (aliceSession === null) throw new Error(`initialize failed: ${init.status}`);
    const call = {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "list_executions", arguments: {} },
    };
    const timed = async (sessionId: string) => {
      const t0 = performance.now();
      const res = await post("bob-key", call, sessionId);
      const body = await res.text();
      return { ms: performance.now() - t0, answer: `${res.status} ${body}` };
    };
    const n = quick ? 100 : 500;
    const theirs: number[] = [];
    const unknown: number[] = [];
    const answers = new Set<string>();
    for (let i = 0; i < 50 + n; i++) {
      // Alternating which goes first, so neither always follows the other.
      const pair = i % 2 === 0
        ? [await timed(aliceSession), await timed(crypto.randomUUID())]
        : [await timed(crypto.randomUUID()), await timed(aliceSession)].reverse();
      for (const r of pair) answers.add(r.answer);
      if (i < 50) continue;
      theirs.push(pair[0]!.ms);
      unknown.push(pair[1]!.ms);
    }
    theirs.sort((a, b) => a - b);
    unknown.sort((a, b) => a - b);
    const mTheirs = median(theirs);
    const mUnknown = median(unknown);
    const diff = Math.abs(mTheirs - mUnknown);
    const bound = Math.max(0.1, 0.05 * Math.min(mTheirs, mUnknown));
    report({
      figure: "tenant_lookup",
      quick,
      requests_each: n,
      distinct_answers: answers.size,
      answers: [...answers].map((a) => a.slice(0, 120)).slice(0, 3),
      others_session_p50_ms: round(mTheirs, 3),
      unknown_session_p50_ms: round(mUnknown, 3),
      others_session_p90_ms: round(percentile(theirs, 90), 3),
      unknown_session_p90_ms: round(percentile(unknown, 90), 3),
      p50_difference_ms: round(diff, 3),
      target_difference_ms: round(bound, 3),
      pass: answers.size === 1 && diff <= bound,
    });
  } finally {
    await stopProcess(server.proc);
  }
}
