/**
 * Pieces both store backends share: defaults, the unavailable error, and
 * validation of what comes back from storage.
 *
 * @module
 */

import { z } from "zod";
import type { ExecutionRecord, TimingRun } from "./store.ts";
import { utf16Prefix } from "../utf8.ts";

/** Runs kept per class unless configured. */
export const DEFAULT_MAX_RUNS = 100;
/** Execution records kept unless configured. */
export const DEFAULT_MAX_RECORDS = 10_000;
/** Seconds runs and records are kept unless configured: 7 days. */
export const DEFAULT_TTL_S = 7 * 24 * 3600;
/** Records returned when a query gives no limit. */
export const DEFAULT_RECORD_LIMIT = 100;

/**
 * The store's backend cannot be reached (or was closed). Callers are expected
 * to catch it and carry on without the store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StoreUnavailableError } from "./_common.ts";
 * const e = new StoreUnavailableError("redis", "The client is offline");
 * assert.equal(e.message, "Store (redis) unavailable: The client is offline");
 * ```
 */
export class StoreUnavailableError extends Error {
  /** Which backend failed. */
  readonly backend: "redis" | "embedded";
  /** The backend's own reason, without the prefix. */
  readonly reason: string;

  /** Creates the error; `reason` is the backend's message. */
  constructor(backend: "redis" | "embedded", reason: string, options?: { cause?: unknown }) {
    super(`Store (${backend}) unavailable: ${reason}`, options);
    this.name = "StoreUnavailableError";
    this.backend = backend;
    this.reason = reason;
  }
}

/** Bounds with defaults filled in. */
export interface ResolvedBounds {
  maxRuns: number;
  maxRecords: number;
  ttlMs: number;
}

/** Fills in default bounds and rejects nonsense, so a bad setting fails at start. */
export function resolveBounds(
  b: { maxRuns?: number | undefined; maxRecords?: number | undefined; ttlS?: number | undefined },
): ResolvedBounds {
  const maxRuns = b.maxRuns ?? DEFAULT_MAX_RUNS;
  const maxRecords = b.maxRecords ?? DEFAULT_MAX_RECORDS;
  const ttlS = b.ttlS ?? DEFAULT_TTL_S;
  if (!Number.isInteger(maxRuns) || maxRuns < 1) {
    throw new RangeError(`maxRuns must be a positive integer, got ${maxRuns}`);
  }
  if (!Number.isInteger(maxRecords) || maxRecords < 1) {
    throw new RangeError(`maxRecords must be a positive integer, got ${maxRecords}`);
  }
  if (!(ttlS > 0)) throw new RangeError(`ttlS must be positive, got ${ttlS}`);
  return { maxRuns, maxRecords, ttlMs: Math.round(ttlS * 1000) };
}

/** Clamps a query limit to 1..max. */
export function resolveLimit(limit: number | undefined, max: number): number {
  const n = Math.floor(limit ?? DEFAULT_RECORD_LIMIT);
  return Math.max(1, Math.min(Number.isFinite(n) ? n : DEFAULT_RECORD_LIMIT, max));
}

const status = z.enum(["completed", "failed", "canceled", "timeout"]);
const recordStatus = z.enum(["completed", "failed", "canceled", "timeout", "lost"]);

const runSchema: z.ZodType<TimingRun> = z.object({
  duration_s: z.number().nonnegative(),
  exit_code: z.number().int().nullable(),
  status,
  timed_out: z.boolean(),
  limit_s: z.number().nonnegative().nullable().optional(),
  auto: z.boolean().optional(),
  at: z.number(),
});

const recordSchema: z.ZodType<ExecutionRecord> = z.object({
  execution_id: z.string(),
  command: z.string(),
  class: z.string(),
  started_at: z.number(),
  duration_s: z.number().nonnegative(),
  status: recordStatus,
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  timeout_s: z.number().nullable(),
  timeout_source: z.enum(["request", "history", "similar", "default"]),
  bytes_out: z.number().int().nonnegative(),
  bytes_err: z.number().int().nonnegative(),
  principal: z.string().optional(),
});

/** Longest class name a store accepts. */
export const MAX_CLASS_CHARS = 512;
/** Longest command a record keeps; longer ones are cut. */
export const MAX_COMMAND_CHARS = 8192;

/** Checks a class name before it becomes part of a key. */
export function validClass(cls: string): string {
  if (typeof cls !== "string" || cls.length === 0 || cls.length > MAX_CLASS_CHARS) {
    throw new TypeError(`Class must be a string of 1..${MAX_CLASS_CHARS} characters`);
  }
  return cls;
}

/** Checks a run before it is written, so bad data never reaches storage. */
export function validRun(run: TimingRun): TimingRun {
  const r = runSchema.safeParse(run);
  if (!r.success) throw new TypeError(`Invalid timing run: ${z.prettifyError(r.error)}`);
  return r.data;
}

/** Checks a record before it is written; an over-long command is cut to {@linkcode MAX_COMMAND_CHARS}. */
export function validRecord(record: ExecutionRecord): ExecutionRecord {
  const r = recordSchema.safeParse(record);
  if (!r.success) throw new TypeError(`Invalid execution record: ${z.prettifyError(r.error)}`);
  return { ...r.data, command: cut(r.data.command, MAX_COMMAND_CHARS) };
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : utf16Prefix(text, max - 1) + "…";
}

/**
 * Parses a stored run; null for anything malformed (written by another
 * version, or by hand), which readers skip instead of failing on.
 */
export function parseRun(value: unknown): TimingRun | null {
  const r = runSchema.safeParse(typeof value === "string" ? safeJson(value) : value);
  return r.success ? r.data : null;
}

/** Parses a stored record; null for anything malformed. */
export function parseRecord(value: unknown): ExecutionRecord | null {
  const r = recordSchema.safeParse(typeof value === "string" ? safeJson(value) : value);
  return r.success ? r.data : null;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A message for any thrown value. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
