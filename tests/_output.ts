/**
 * Output logs filled by hand, for the tests of lib/output.
 *
 * @module
 */
import type { OutputLog, RetainedChunk } from "../lib/output/output_log.ts";

const enc = new TextEncoder();

/** Appends `data` (text is UTF-8 encoded) as the next stdout chunk of `log`, with `extra` framing. */
export function appendChunk(
  log: OutputLog,
  data: string | Uint8Array,
  extra: Partial<RetainedChunk> = {},
): void {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  log.append({
    stream: "stdout",
    seq: log.next,
    bytes: bytes.length,
    truncated: false,
    chunkIndex: null,
    totalChunks: null,
    ...extra,
  }, bytes);
}
