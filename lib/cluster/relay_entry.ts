/**
 * The entries of a run's output stream, and of a node's control stream, as
 * fields: what the owning node writes for each event of its run, and what
 * every following node reads back (validated with zod: the stream is an
 * edge). Output bytes travel raw, never as text, so offsets and invalid
 * UTF-8 arrive exactly as the owner framed them.
 *
 * @module
 */
import { z } from "zod";
import type { Run } from "../core/run.ts";
import type { ExecutionEvent, ExitInfo, HookOutcome, LinePiece, StreamName } from "../types.ts";
import { type StreamEntry, text } from "./bus.ts";

/** A field pair list, as XADD takes it. */
export type Fields = [string, string | Uint8Array][];

/** What a node following a run needs to know of it (the owner's view, without env). */
export const RunMeta = z.object({
  id: z.string(),
  node: z.string(),
  principal: z.string(),
  display: z.string(),
  argv: z.array(z.string()),
  cwd: z.string().optional(),
  timeout: z.number().nullable(),
  timeoutSource: z.enum(["request", "history", "similar", "default"]),
  idleTimeout: z.number().nullable(),
  framing: z.enum(["chunk", "line"]),
  limitClass: z.string().optional(),
  detached: z.boolean(),
  stdinOpen: z.boolean(),
  stdinBuffer: z.number(),
  pid: z.number(),
  pgid: z.number(),
  startedAt: z.number(),
  /** On a stream written from the run's log on demand: the log's end when it began. */
  nextSeq: z.number().optional(),
});

/** {@linkcode RunMeta}, parsed. */
export type RunMeta = z.infer<typeof RunMeta>;

/** What followers on other nodes need of `run`, which runs on `node` (never its env). */
export function runMeta(run: Run, node: string): RunMeta {
  const spec = run.spec;
  return {
    id: run.id,
    node,
    principal: run.principal,
    display: spec.display,
    argv: [...spec.argv],
    ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
    timeout: spec.timeout,
    timeoutSource: spec.timeoutSource,
    idleTimeout: spec.idleTimeout,
    framing: spec.framing,
    ...(spec.limitClass !== undefined ? { limitClass: spec.limitClass } : {}),
    detached: run.detached,
    stdinOpen: run.stdinOpen,
    stdinBuffer: run.stdinBuffer,
    pid: run.pid,
    pgid: run.pgid,
    startedAt: run.startedAt,
  };
}

const Exit = z.object({
  status: z.enum(["completed", "failed", "canceled", "timeout", "lost"]),
  exitCode: z.number().nullable(),
  signal: z.string().nullable(),
  error: z.string().nullable(),
  executionTime: z.number(),
});

const Hook = z.object({
  kind: z.enum(["pre_execute", "post_execute", "on_timeout"]),
  name: z.string(),
  ok: z.boolean(),
  status: z.enum(["completed", "failed", "timeout", "error"]),
  exitCode: z.number().nullable(),
  duration: z.number(),
  required: z.boolean(),
  error: z.string().nullable(),
  output: z.string(),
});

const Refusal = z.object({ code: z.number(), message: z.string(), data: z.unknown() });

const Input = z.object({
  op: z.number(),
  accepted: z.number(),
  open: z.boolean(),
  error: Refusal.optional(),
});

/** One output entry, decoded. */
export interface RelayedOutput extends LinePiece {
  stream: StreamName;
  seq: number;
  bytes: Uint8Array;
}

/** An output stream entry, decoded. */
export type OutputEntry =
  | { t: "start"; meta: RunMeta }
  | { t: "err"; code: number; message: string; data: unknown }
  | { t: "started" }
  | { t: "out"; out: RelayedOutput }
  | { t: "paused" | "resumed" | "canceled" }
  | { t: "hook"; outcome: HookOutcome }
  | { t: "inp"; op: number; accepted: number; open: boolean; error?: z.infer<typeof Refusal> }
  | { t: "end"; exit: ExitInfo }
  | { t: "fin" };

const json = (v: unknown) => JSON.stringify(v);
const num = (v: number | null) => v === null ? "" : String(v);

/** The entry of an event of the owner's run; null for one that is not relayed (`gap`). */
export function encodeEvent(event: ExecutionEvent): Fields | null {
  switch (event.type) {
    case "output": {
      const c = event.chunk;
      // Copied: the chunk's bytes are reused once the event is over.
      const bytes = c.raw?.().slice() ?? new TextEncoder().encode(c.data);
      return [
        ["t", "out"],
        ["s", c.stream === "stdout" ? "o" : "e"],
        ["q", String(c.seq)],
        ["d", bytes],
        ["tr", c.truncated ? "1" : ""],
        ["ci", num(c.chunkIndex)],
        ["tc", num(c.totalChunks)],
      ];
    }
    case "started":
    case "paused":
    case "resumed":
    case "canceled":
      return [["t", event.type]];
    case "hook":
      return [["t", "hook"], ["j", json(event.outcome)]];
    case "completed":
      return [["t", "end"], ["j", json(event.exit)]];
    case "gap":
      return null;
  }
}

/** The first entry of a run that started: what followers need of it. */
export function startEntry(meta: RunMeta): Fields {
  return [["t", "start"], ["j", json(meta)]];
}

/** The only entry of a run its node refused (policy, workspace, a hook): the client's error. */
export function refusalEntry(code: number, message: string, data: unknown): Fields {
  return [["t", "err"], ["j", json({ code, message, data: data ?? null })]];
}

/** How an `input` went: bytes accepted so far, or why it was refused. */
export function inputEntry(
  op: number,
  accepted: number,
  open: boolean,
  error?: { code: number; message: string; data: unknown },
): Fields {
  return [["t", "inp"], ["j", json({ op, accepted, open, ...(error ? { error } : {}) })]];
}

/** The last entry: nothing more will be written (hooks after the end included). */
export const FIN: Fields = [["t", "fin"]];

/** The end entry of a run declared lost. */
export function lostExit(error: string, executionTime: number): ExitInfo {
  return { status: "lost", exitCode: null, signal: null, error, executionTime };
}

const optionalInt = (s: string) => s === "" ? null : Number(s);

/**
 * Decodes an output stream entry; null for one that does not parse (it is skipped).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeOutputEntry } from "./relay_entry.ts";
 * const entry = { id: "1-0", fields: { t: new TextEncoder().encode("fin") } };
 * assert.deepEqual(decodeOutputEntry(entry), { t: "fin" });
 * ```
 */
export function decodeOutputEntry(entry: StreamEntry): OutputEntry | null {
  const t = text(entry, "t");
  try {
    switch (t) {
      case "out": {
        const d = entry.fields.d;
        if (d === undefined) return null;
        return {
          t,
          out: {
            stream: text(entry, "s") === "e" ? "stderr" : "stdout",
            seq: Number(text(entry, "q")),
            bytes: d,
            truncated: text(entry, "tr") === "1",
            chunkIndex: optionalInt(text(entry, "ci")),
            totalChunks: optionalInt(text(entry, "tc")),
          },
        };
      }
      case "start":
        return { t, meta: RunMeta.parse(JSON.parse(text(entry, "j"))) };
      case "err":
        return { t, ...Refusal.parse(JSON.parse(text(entry, "j"))) };
      case "hook":
        return { t, outcome: Hook.parse(JSON.parse(text(entry, "j"))) };
      case "inp":
        return { t, ...Input.parse(JSON.parse(text(entry, "j"))) };
      case "end":
        return { t, exit: Exit.parse(JSON.parse(text(entry, "j"))) };
      case "started":
      case "paused":
      case "resumed":
      case "canceled":
      case "fin":
        return { t };
    }
  } catch {
    // A malformed entry is skipped, as an unknown one is.
  }
  return null;
}

/** A job on a node's job stream: a run to start there, as its client asked. */
export const Job = z.object({
  id: z.uuid(),
  /** The `execute` request, validated at the client's node and again at the owner. */
  request: z.record(z.string(), z.unknown()),
  principal: z.object({ id: z.string().min(1), admin: z.boolean() }),
  /** The node the client is connected to, and its epoch (a restart of it loses the client). */
  origin: z.string().min(1),
  originEpoch: z.number().optional(),
});

/** {@linkcode Job}, parsed. */
export type Job = z.infer<typeof Job>;

/** A message on a node's control stream. */
export const ControlMessage = z.discriminatedUnion("t", [
  z.object({ t: z.literal("pause"), id: z.string() }),
  z.object({ t: z.literal("resume"), id: z.string() }),
  z.object({
    t: z.literal("cancel"),
    id: z.string(),
    reason: z.enum(["canceled", "disconnect", "abandoned"]),
  }),
  z.object({
    t: z.literal("signal"),
    id: z.string(),
    signal: z.enum(["INT", "TERM", "KILL", "HUP", "QUIT", "USR1", "USR2"]),
  }),
  z.object({
    t: z.literal("input"),
    id: z.string(),
    op: z.number(),
    data: z.string(),
    close: z.boolean(),
  }),
  /** Entries of the run's stream the origin has read: the owner paces by it. */
  z.object({ t: z.literal("ack"), id: z.string(), n: z.number() }),
  /** The origin no longer paces the run (it shut down). */
  z.object({ t: z.literal("release"), id: z.string() }),
  /** Another node follows a run of this node: write its output to its stream from now on. */
  z.object({ t: z.literal("publish"), id: z.string() }),
]);

/** {@linkcode ControlMessage}, parsed. */
export type ControlMessage = z.infer<typeof ControlMessage>;

/** A control message as the fields of its entry. */
export function controlEntry(message: ControlMessage): { j: string } {
  return { j: json(message) };
}

/** Decodes a control stream entry; null for one that does not parse. */
export function decodeControl(entry: StreamEntry): ControlMessage | null {
  try {
    return ControlMessage.parse(JSON.parse(text(entry, "j")));
  } catch {
    return null;
  }
}

/** Flattens fields for XADD / the PUBLISH script. */
export function flatten(fields: Fields): (string | Uint8Array)[] {
  return fields.flat();
}
