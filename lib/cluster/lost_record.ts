/**
 * The history record of a run declared lost (its node died): built from
 * what Redis held of it, since the node that ran it cannot say any more.
 *
 * @module
 */
import type { ExecutionRecord } from "../store/store.ts";
import { classify } from "../timing/classify.ts";
import { RunMeta } from "./relay_entry.ts";

/**
 * The record, or null for a run that never started (nothing to record).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lostRecord } from "./lost_record.ts";
 * assert.equal(lostRecord("e1", {}), null);
 * ```
 */
export function lostRecord(id: string, hash: Record<string, string>): ExecutionRecord | null {
  if (hash.meta === undefined) return null;
  let meta: RunMeta;
  try {
    meta = RunMeta.parse(JSON.parse(hash.meta));
  } catch {
    return null;
  }
  return {
    execution_id: id,
    command: meta.display,
    class: meta.limitClass ?? classify(meta.display).class,
    started_at: meta.startedAt,
    duration_s: Math.max(0, Math.round(Date.now() - meta.startedAt) / 1000),
    status: "lost",
    exit_code: null,
    signal: null,
    timeout_s: meta.timeout,
    timeout_source: meta.timeoutSource,
    bytes_out: 0,
    bytes_err: 0,
    principal: meta.principal,
  };
}
