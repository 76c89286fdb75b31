/**
 * The one-line progress display on a terminal's stderr while a run goes:
 * elapsed time against the limit in force and where that limit came from,
 * and the output so far. It steps aside for output (it is cleared before
 * every write to the terminal and drawn again only at the start of a line,
 * so it never lands inside the run's own text) and is cleared at the end.
 *
 * @module
 */
import type { LocalStream, WriteObserver } from "./output_writer.ts";

/** How often the line is redrawn. */
const REDRAW_MS = 250;
const CLEAR = "\r\x1b[2K";

/** What the line shows. */
export interface ProgressState {
  /** When the run started (ms, `Date.now()` clock); null before it has. */
  startedAt: number | null;
  /** The limit in force, in seconds; null or 0 for none. */
  timeout: number | null;
  /** Where it came from: `request`, `history`, `similar`, `default`. */
  timeoutSource: string | null;
  /** Output bytes so far. */
  bytes: number;
  /** A word in place of the figures: `paused`, `reconnecting`. */
  status: string | null;
}

/**
 * Formats a byte count as a person reads it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatBytes } from "./progress.ts";
 * assert.equal(formatBytes(512), "512 B");
 * assert.equal(formatBytes(1536), "1.5 KiB");
 * assert.equal(formatBytes(3 * 1024 * 1024), "3.0 MiB");
 * ```
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * The text of the line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { progressText } from "./progress.ts";
 * const s = { startedAt: 0, timeout: 60, timeoutSource: "history", bytes: 2048, status: null };
 * assert.equal(progressText(s, 12_300), "[cc-executor] 12.3s of 60s limit (history) · 2.0 KiB");
 * assert.equal(progressText({ ...s, timeout: 0 }, 1000), "[cc-executor] 1.0s, no limit · 2.0 KiB");
 * ```
 */
export function progressText(s: ProgressState, now: number): string {
  const elapsed = s.startedAt === null ? 0 : Math.max(0, now - s.startedAt) / 1000;
  const limit = s.timeout
    ? ` of ${s.timeout}s limit${s.timeoutSource ? ` (${s.timeoutSource})` : ""}`
    : ", no limit";
  const status = s.status === null ? "" : ` · ${s.status}`;
  return `[cc-executor] ${elapsed.toFixed(1)}s${limit} · ${formatBytes(s.bytes)}${status}`;
}

/**
 * The line itself, on a terminal. It is a {@linkcode WriteObserver} of the
 * output writer: `terminals` names the local streams that are the same
 * terminal, whose writes it must step aside for.
 */
export class ProgressLine implements WriteObserver {
  readonly state: ProgressState = {
    startedAt: null,
    timeout: null,
    timeoutSource: null,
    bytes: 0,
    status: null,
  };
  readonly #terminals: ReadonlySet<LocalStream>;
  readonly #err: { writeSync(p: Uint8Array): number };
  readonly #columns: () => number;
  #shown = false;
  /** Whether the terminal's cursor is at the start of a line (nothing half-written). */
  #atLineStart = true;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** A line drawn on `err`, stepping aside for writes to `terminals`. */
  constructor(
    terminals: ReadonlySet<LocalStream>,
    err: { writeSync(p: Uint8Array): number } = Deno.stderr,
    columns: () => number = () => {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return 80;
      }
    },
  ) {
    this.#terminals = terminals;
    this.#err = err;
    this.#columns = columns;
  }

  /** Starts redrawing. */
  start(): void {
    this.#timer ??= setInterval(() => this.draw(), REDRAW_MS);
    this.draw();
  }

  /** Draws the line now, if the cursor is at the start of a line. */
  draw(): void {
    if (this.#timer === undefined || !this.#atLineStart) return;
    // Never wider than the terminal: a wrapped line could not be cleared with one \r.
    const text = progressText(this.state, Date.now()).slice(0, Math.max(0, this.#columns() - 1));
    this.#put(`${CLEAR}${text}`);
    this.#shown = true;
  }

  /** Clears the line and stops redrawing. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#hide();
  }

  beforeWrite(stream: LocalStream): void {
    if (this.#terminals.has(stream)) this.#hide();
  }

  afterWrite(stream: LocalStream, bytes: Uint8Array): void {
    if (!this.#terminals.has(stream) || bytes.length === 0) return;
    // Drawn again on the next tick, not per write: fast output would be mostly redraws.
    this.#atLineStart = bytes[bytes.length - 1] === 0x0a;
  }

  #hide(): void {
    if (!this.#shown) return;
    this.#put(CLEAR);
    this.#shown = false;
  }

  #put(text: string): void {
    try {
      const bytes = new TextEncoder().encode(text);
      let off = 0;
      while (off < bytes.length) off += this.#err.writeSync(bytes.subarray(off));
    } catch {
      // A terminal that went away: nothing to show it on.
    }
  }
}
