/**
 * An execution's retained output as text within a byte budget, for replies
 * that carry output whole rather than as a stream (the MCP tools): a page
 * read forward from an offset, or the tail of each stream. The log holds
 * bytes; this is where they are decoded, once per reply and stream. Cuts
 * are made on the bytes, between UTF-8 characters, so a multi-byte character
 * is never split and pages read one after another reassemble exactly.
 *
 * Offsets are the `seq` byte offsets of {@linkcode OutputLog}.
 *
 * @module
 */
import type { OutputLog } from "./output_log.ts";
import type { StreamName } from "../types.ts";
import { utf8Boundary, utf8CharEnd } from "../utf8.ts";

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

/** Byte ranges of one stream, in order. */
type Ranges = Record<StreamName, [number, number][]>;

// A BOM inside the output is text the child wrote, not a marker to strip.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Decodes each stream's ranges as one run of bytes. */
function decode(log: OutputLog, ranges: Ranges): Record<StreamName, string> {
  const text = (list: [number, number][]) => {
    if (list.length === 0) return "";
    let size = 0;
    for (const [from, to] of list) size += to - from;
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const [from, to] of list) {
      log.copyTo(from, to, bytes, at);
      at += to - from;
    }
    return decoder.decode(bytes);
  };
  return { stdout: text(ranges.stdout), stderr: text(ranges.stderr) };
}

/** Adds `[from, to)` to a stream's ranges, merging it with the previous one when they touch. */
function add(list: [number, number][], from: number, to: number): void {
  const last = list.at(-1);
  if (last !== undefined && last[1] === from) last[1] = to;
  else list.push([from, to]);
}

/**
 * Reads output forward from offset `from`, at most `maxBytes` of it, split
 * into stdout and stderr. Read again from `next` for more.
 *
 * @param log The execution's output.
 * @param from Offset to start at; one past the end reads nothing. An offset
 * inside a character starts at the next one.
 * @param maxBytes Budget for stdout and stderr together (at least 4).
 * @returns The page and where it ends.
 * @example Page through output three bytes at a time
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputLog } from "./output_log.ts";
 * import { readOutput } from "./text.ts";
 * const log = new OutputLog(1024);
 * const data = new TextEncoder().encode("hello\n");
 * log.append({ stream: "stdout", seq: 0, bytes: data.length,
 *   truncated: false, chunkIndex: null, totalChunks: null }, data);
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
  const skipped = Math.max(0, Math.min(log.first, end) - at);
  let start = at + skipped;
  const ranges: Ranges = { stdout: [], stderr: [] };
  let pos = start;
  let budget = maxBytes;
  let first = true;
  for (const chunk of log.chunksFrom(pos)) {
    const chunkEnd = chunk.seq + chunk.bytes;
    if (chunk.seq < pos) {
      // Not from inside a character (stray bytes are text of their own: kept).
      pos = utf8CharEnd((i) => log.byteAt(i), Math.max(chunk.seq, log.first), pos, chunkEnd);
    }
    if (first) {
      // The page starts where its text does.
      start = pos;
      first = false;
    }
    const bytes = chunkEnd - pos;
    if (bytes <= budget) {
      if (bytes > 0) add(ranges[chunk.stream], pos, chunkEnd);
      budget -= bytes;
      pos = chunkEnd;
      continue;
    }
    const cut = utf8Boundary((i) => log.byteAt(i), pos, pos + budget);
    if (cut > pos) add(ranges[chunk.stream], pos, cut);
    pos = cut;
    break;
  }
  const text = decode(log, ranges);
  return { ...text, start, next: pos, skipped, remaining: end - pos };
}

/**
 * The last `maxBytes` of each stream's retained output (stdout and stderr
 * each get the full budget), starting on a character.
 *
 * @param log The execution's output.
 * @param maxBytes Budget per stream.
 * @returns The tails, and how many bytes of each they hold.
 * @example Keep the tail of a long output
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputLog } from "./output_log.ts";
 * import { tailOutput } from "./text.ts";
 * const log = new OutputLog(1024);
 * const data = new TextEncoder().encode("one\ntwo\n");
 * log.append({ stream: "stdout", seq: 0, bytes: data.length,
 *   truncated: false, chunkIndex: null, totalChunks: null }, data);
 * const tail = tailOutput(log, 4);
 * assert.equal(tail.stdout, "two\n");
 * assert.deepEqual(tail.kept, { stdout: 4, stderr: 0 });
 * ```
 */
export function tailOutput(log: OutputLog, maxBytes: number): OutputTail {
  const ranges: Ranges = { stdout: [], stderr: [] };
  const kept: Record<StreamName, number> = { stdout: 0, stderr: 0 };
  const full: Record<StreamName, boolean> = { stdout: false, stderr: false };
  for (const chunk of log.chunksBackward()) {
    if (full.stdout && full.stderr) break;
    const stream = chunk.stream;
    if (full[stream] || chunk.bytes === 0) continue;
    const budget = maxBytes - kept[stream];
    const end = chunk.seq + chunk.bytes;
    let from = chunk.seq;
    if (chunk.bytes > budget) {
      from = utf8CharEnd((i) => log.byteAt(i), Math.max(chunk.seq, log.first), end - budget, end);
      full[stream] = true;
    }
    if (from < end) {
      ranges[stream].push([from, end]);
      kept[stream] += end - from;
    }
  }
  ranges.stdout.reverse();
  ranges.stderr.reverse();
  return { ...decode(log, ranges), kept, next: log.next };
}
