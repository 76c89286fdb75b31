/**
 * The shape of one setting: the kinds of value a setting takes and the type
 * each loads to, shared by the settings table, the loader and the README
 * table.
 *
 * @module
 */

/** Bytes in a kibibyte, for sizes in the settings table. */
export const KiB = 1024;
/** Bytes in a mebibyte. */
export const MiB = 1024 * KiB;

/** How a setting's text is turned into a value and what range it accepts. */
export type Kind =
  | { readonly type: "int"; readonly min: number; readonly max: number; readonly unit?: string }
  | { readonly type: "number"; readonly min: number; readonly max: number; readonly unit?: string }
  | { readonly type: "string"; readonly pattern?: RegExp; readonly hint?: string }
  | { readonly type: "enum"; readonly values: readonly [string, ...string[]] }
  | { readonly type: "list" }
  | { readonly type: "bool" };

/** One documented setting. */
export interface SettingSpec {
  /** Field name in `Config`. */
  readonly key: string;
  /** Flag name, without the leading `--`; the env var is derived from it. */
  readonly flag: string;
  /** Names the Python original used, still accepted. */
  readonly aliases?: readonly string[];
  /** Default, as text (what the README shows). */
  readonly default: string;
  /** One line for the README table. */
  readonly doc: string;
  readonly kind: Kind;
}

/**
 * The value a setting of kind `K` loads to.
 *
 * @example
 * ```ts
 * import type { KindValue } from "./kind.ts";
 * const level: KindValue<{ type: "enum"; values: readonly ["a", "b"] }> = "b";
 * const roots: KindValue<{ type: "list" }> = ["/srv"];
 * void level, roots;
 * ```
 */
export type KindValue<K extends Kind> = K extends { type: "int" | "number" } ? number
  : K extends { type: "string" } ? string
  : K extends { type: "enum"; values: readonly (infer V)[] } ? V
  : K extends { type: "list" } ? readonly string[]
  : K extends { type: "bool" } ? boolean
  : never;

/**
 * What a kind accepts, in words: the tail of an error message and of a README row.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describe } from "./kind.ts";
 * assert.equal(describe({ type: "int", min: 0, max: 9, unit: "s" }), "an integer from 0 to 9 (s)");
 * ```
 */
export function describe(kind: Kind): string {
  switch (kind.type) {
    case "int":
      return `an integer from ${kind.min} to ${kind.max}${kind.unit ? ` (${kind.unit})` : ""}`;
    case "number":
      return `a number from ${kind.min} to ${kind.max}${kind.unit ? ` (${kind.unit})` : ""}`;
    case "string":
      return kind.hint ?? "a string";
    case "enum":
      return `one of ${kind.values.join(", ")}`;
    case "list":
      return "a comma-separated list";
    case "bool":
      return "true or false";
  }
}
