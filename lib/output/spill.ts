/**
 * Output that memory no longer holds, on disk: one capped log per run, so a
 * long run can be read back from offset 0 while memory stays bounded.
 *
 * A run's spill is a directory of segment files
 * (`<dir>/<instance>/<run>/<n>.seg`, {@linkcode SEGMENT_BYTES} each at
 * most), holding chunk records in order: a 16-byte header (length, stream
 * and flags, piece index, piece count) and the chunk's bytes, so chunks read
 * back framed exactly as they were written. A sparse index in memory (one
 * entry every {@linkcode INDEX_EVERY} bytes of file) finds the record an
 * offset falls in after reading at most that much.
 *
 * Writes are gathered in a buffer of {@linkcode WRITE_BUFFER_BYTES}, written
 * synchronously when it fills (a page-cache copy). A run that has spilled
 * {@linkcode LARGE_AFTER} (a big streaming output) gathers them in buffers
 * of {@linkcode LARGE_BUFFER_BYTES} instead, while all runs' large buffers
 * stay within {@linkcode LARGE_TOTAL}: a full one joins the run's write
 * queue, written off the main thread (one write at a time, each at its
 * file position), so the pipe-reading path only copies bytes. At most
 * {@linkcode WRITE_QUEUE} buffers wait: past that a buffer is written at
 * once, synchronously, so a slow disk costs time as it did before, never
 * memory. Every buffer a run holds is charged to the output memory budget. Readers never wait for a write: bytes still in a
 * buffer are read from it. {@linkcode RunSpill.flush} and
 * {@linkcode RunSpill.finish} write what is queued synchronously.
 *
 * Past its cap (`output-spill-per-run`) a run's oldest segment is deleted;
 * past the server's cap (`output-spill-total`) the oldest finished runs'
 * spill is deleted first, then the writing run drops its own oldest output,
 * so its spill stops growing. A disk error (full, read-only, files removed)
 * discards that run's spill: its files are deleted where possible, a warning
 * is logged once, and what only the disk held becomes a gap. Nothing here
 * throws into the writer (the pipe-reading path); a read that fails throws.
 *
 * @module
 */
export { RunSpill } from "./run_spill.ts";
export {
  INDEX_EVERY,
  LARGE_AFTER,
  LARGE_BUFFER_BYTES,
  LARGE_TOTAL,
  RECORD_HEADER_BYTES,
  SEGMENT_BYTES,
  WRITE_BUFFER_BYTES,
  WRITE_QUEUE,
} from "./spill_format.ts";
export { type SpillOptions, SpillStore } from "./spill_store.ts";
