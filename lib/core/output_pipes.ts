/**
 * A run's two output pipes: each read (paced by the sink's back-pressure),
 * framed, numbered across both streams, retained in the run's output log
 * and emitted as `output` events, in the order it was read.
 *
 * @module
 */
import { CWD_CHANGED_MESSAGE } from "../process/launch.ts";
import { type Frame, OutputFramer } from "../output/framer.ts";
import type { OutputLog } from "../output/output_log.ts";
import type { Metrics } from "../ops/metrics.ts";
import { settlesWithin } from "../async.ts";
import type { ExecSpec, StreamName } from "../types.ts";
import { decoder, FramedChunk } from "./framed_chunk.ts";
import { PipeReader } from "./pipe_reader.ts";
import type { Sink } from "./sink.ts";
import type { ExecutionLimits } from "./execution_options.ts";

/** How long a pipe read may stay blocked after the group is gone before it is abandoned. */
const STALLED_READ_MS = 1000;

/** One pipe being read; tracked so a read held open by an escaped process can be abandoned. */
interface Pump {
  reader: PipeReader;
  reading: boolean;
  lastProgress: number;
  /** Sends the stream's held-back partial line now (see #pump). */
  flush: () => void;
}

const OTHER: Record<StreamName, StreamName> = { stdout: "stderr", stderr: "stdout" };

/** What the pipes of one run need. */
export interface OutputPipesOptions {
  executionId: string;
  spec: Pick<ExecSpec, "framing" | "cwdChecked">;
  limits: Pick<ExecutionLimits, "chunkSize" | "lineLimit" | "flushIntervalMs">;
  sink: Sink;
  metrics: Metrics;
  /** The run's retained output. */
  output: OutputLog;
  /** Resolves once the command has exited (a gone client's pipes wait for it). */
  exited: Promise<void>;
  /** Called on each read (the idle timer). */
  onRead: () => void;
}

/** The output side of one {@linkcode Execution}. */
export class OutputPipes {
  readonly #o: OutputPipesOptions;
  #seq = 0;
  readonly #bytes = { stdout: 0, stderr: 0 };
  #pumps: Partial<Record<StreamName, Pump>> = {};
  /** The start of stderr, kept only to tell the child's cwd check from the command. */
  stderrHead: string | null = null;

  /** Pipes of a run that has not started reading. */
  constructor(options: OutputPipesOptions) {
    this.#o = options;
  }

  /** Bytes read so far from each stream. */
  get bytes(): { stdout: number; stderr: number } {
    return { ...this.#bytes };
  }

  /** Reads one pipe to its end, framing it into output events. */
  async pump(stream: ReadableStream<Uint8Array>, name: StreamName): Promise<void> {
    const framer = new OutputFramer({
      framing: this.#o.spec.framing,
      chunkSize: this.#o.limits.chunkSize,
      lineLimit: this.#o.limits.lineLimit,
    });
    const reader = new PipeReader(stream);
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    const send = (frames: Frame[]) => {
      for (const frame of frames) this.#sendFrame(name, frame);
    };
    const flush = () => {
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      flushTimer = undefined;
      if (framer.pending > 0) send(framer.flushPartial());
    };
    const pump: Pump = { reader, reading: false, lastProgress: performance.now(), flush };
    this.#pumps[name] = pump;
    try {
      for (;;) {
        await this.#o.sink.ready();
        if (this.#o.sink.gone?.()) {
          // Nobody will see more output, and the run is being ended: leave the
          // child blocked on its pipe until it has exited rather than read
          // output only to drop it; then read what is left to the end.
          await this.#o.exited;
        }
        pump.reading = true;
        const { value, done } = await reader.read();
        pump.reading = false;
        pump.lastProgress = performance.now();
        if (done) break;
        this.#o.onRead();
        // The two pipes are read concurrently: what the other stream holds
        // back was read before this, so it goes first. Output is then sent
        // in the order it was read, and at most one stream holds a partial line.
        this.#pumps[OTHER[name]]?.flush();
        if (flushTimer !== undefined) clearTimeout(flushTimer);
        flushTimer = undefined;
        send(framer.push(value));
        if (framer.pending > 0) {
          flushTimer = setTimeout(flush, this.#o.limits.flushIntervalMs);
        }
      }
    } catch {
      // The read was abandoned (see drain) or the pipe failed: end this stream.
    } finally {
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      send(framer.end());
      reader.releaseLock();
    }
  }

  #sendFrame(stream: StreamName, frame: Frame): void {
    const bytes = frame.bytes.length;
    if (stream === "stderr" && this.stderrHead === null && this.#o.spec.cwdChecked) {
      this.stderrHead = decoder.decode(frame.bytes.subarray(0, CWD_CHANGED_MESSAGE.length));
    }
    // An empty frame still matters when it ends a split line (it carries total_chunks).
    if (bytes === 0 && frame.chunkIndex === null) return;
    const chunk = new FramedChunk(stream, this.#seq, frame, this.#o.metrics);
    this.#seq += bytes;
    this.#bytes[stream] += bytes;
    this.#o.metrics.bytesStreamed += bytes;
    this.#o.metrics.outputBytes[stream] += bytes;
    this.#o.output.append(chunk, frame.bytes);
    // A gone client's output is only retained: no event, so no text is decoded.
    if (this.#o.sink.gone?.()) return;
    this.#o.sink.emit({ type: "output", executionId: this.#o.executionId, chunk });
    chunk.seal();
  }

  /**
   * Waits for both pipes to end. A read still blocked a while after the group
   * is gone belongs to a process that escaped the group (setsid): abandon it
   * rather than wait forever. Reads paced by back-pressure are left alone.
   */
  async drain(pumps: Promise<unknown>): Promise<void> {
    while (!await settlesWithin(pumps, STALLED_READ_MS)) {
      const now = performance.now();
      for (const pump of Object.values(this.#pumps)) {
        if (pump.reading && now - pump.lastProgress >= STALLED_READ_MS) {
          await pump.reader.cancel().catch(() => {});
        }
      }
    }
  }
}
