/**
 * An execution's retained output as text within a byte budget, for replies
 * that carry output whole rather than as a stream (the MCP tools): a page
 * read forward from an offset, or the tail of each stream. Text is cut only
 * between characters, so a multi-byte character is never split.
 *
 * Offsets are the `seq` byte offsets of {@linkcode OutputLog}. A cut inside a
 * chunk is measured on the chunk's decoded text, which matches its raw bytes
 * except where invalid UTF-8 was replaced by U+FFFD.
 *
 * @module
 */
import type { OutputLog } from "./output_log.ts";
import type { StreamName } from "./types.ts";
import { utf8DropFront, utf8Length, utf8Prefix } from "./utf8.ts";

/** What {@linkcode readOutput} returns. */
export interface OutputPage {
  stdout: string;
  stderr: string;
  /** Offset of the first byte returned (past the one asked for when that was dropped). */
  start: number;
  /** Offset to read from next. */
  next: number;
  /** Bytes between the requested offset and `start` that are no longer retained. */
  skipped: number;
  /** Output after `next` already available but over the budget. */
  remaining: number;
}

/** What {@linkcode tailOutput} returns. */
export interface OutputTail {
  stdout: string;
  stderr: string;
  /** Bytes of each stream included. */
  kept: Record<StreamName, number>;
  /** Offset just past the last byte of output. */
  next: number;
}

/**
 * Reads output forward from offset `from`, at most `maxBytes` of it, split
 * into stdout and stderr. Read again from `next` for more.
 *
 * @param log The execution's output.
 * @param from Offset to start at; one past the end reads nothing.
 * @param maxBytes Budget for stdout and stderr together (at least 4).
 * @returns The page and where it ends.
 * @example Page through output three bytes at a time
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputLog } from "./output_log.ts";
 * import { readOutput } from "./output_text.ts";
 * const log = new OutputLog(1024);
 * log.append({ stream: "stdout", data: "hello\n", seq: 0, bytes: 6,
 *   truncated: false, chunkIndex: null, totalChunks: null });
 * const page = readOutput(log, 0, 3);
 * assert.equal(page.stdout, "hel");
 * assert.equal(page.next, 3);
 * assert.equal(page.remaining, 3);
 * assert.equal(readOutput(log, page.next, 3).stdout, "lo\n");
 * ```
 */
export function readOutput(log: OutputLog, from: number, maxBytes: number): OutputPage {
  const end = log.next;
  const at = Math.max(0, Math.min(from, end));
  const { chunks, skipped } = log.since(at);
  const parts: Record<StreamName, string[]> = { stdout: [], stderr: [] };
  const start = at + skipped;
  let pos = start;
  let budget = maxBytes;
  for (const chunk of chunks) {
    const chunkEnd = chunk.seq + chunk.bytes;
    let data = chunk.data;
    if (chunk.seq < pos) {
      const cut = utf8DropFront(data, pos - chunk.seq);
      data = cut.text;
      pos = Math.min(chunkEnd, chunk.seq + cut.dropped);
    }
    const bytes = chunkEnd - pos;
    if (bytes <= budget) {
      parts[chunk.stream].push(data);
      budget -= bytes;
      pos = chunkEnd;
      continue;
    }
    const head = utf8Prefix(data, budget);
    if (head.bytes > 0) {
      parts[chunk.stream].push(head.text);
      pos = Math.min(chunkEnd, pos + head.bytes);
    }
    break;
  }
  return {
    stdout: parts.stdout.join(""),
    stderr: parts.stderr.join(""),
    start,
    next: pos,
    skipped,
    remaining: end - pos,
  };
}

/**
 * The last `maxBytes` of each stream's retained output (stdout and stderr
 * each get the full budget).
 *
 * @param log The execution's output.
 * @param maxBytes Budget per stream.
 * @returns The tails, and how many bytes of each they hold.
 * @example Keep the tail of a long output
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputLog } from "./output_log.ts";
 * import { tailOutput } from "./output_text.ts";
 * const log = new OutputLog(1024);
 * log.append({ stream: "stdout", data: "one\ntwo\n", seq: 0, bytes: 8,
 *   truncated: false, chunkIndex: null, totalChunks: null });
 * const tail = tailOutput(log, 4);
 * assert.equal(tail.stdout, "two\n");
 * assert.deepEqual(tail.kept, { stdout: 4, stderr: 0 });
 * ```
 */
export function tailOutput(log: OutputLog, maxBytes: number): OutputTail {
  const { chunks, next } = log.since(0);
  const parts: Record<StreamName, string[]> = { stdout: [], stderr: [] };
  const kept: Record<StreamName, number> = { stdout: 0, stderr: 0 };
  const full: Record<StreamName, boolean> = { stdout: false, stderr: false };
  for (let i = chunks.length - 1; i >= 0 && !(full.stdout && full.stderr); i--) {
    const chunk = chunks[i]!;
    const stream = chunk.stream;
    if (full[stream]) continue;
    const budget = maxBytes - kept[stream];
    if (chunk.bytes <= budget) {
      parts[stream].push(chunk.data);
      kept[stream] += chunk.bytes;
      continue;
    }
    const size = utf8Length(chunk.data);
    const cut = utf8DropFront(chunk.data, size - budget);
    if (cut.text.length > 0) {
      parts[stream].push(cut.text);
      kept[stream] += size - cut.dropped;
    }
    full[stream] = true;
  }
  return {
    stdout: parts.stdout.reverse().join(""),
    stderr: parts.stderr.reverse().join(""),
    kept,
    next,
  };
}
