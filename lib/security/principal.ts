/**
 * Principals: who a request acts for. Every execution, session, history
 * record and rate-limit bucket belongs to the principal that created it; a
 * principal sees and controls only its own, an admin everything. A key is
 * written `key`, `name:key` or `name:key:admin` (keys file lines and the
 * entries of `CC_EXECUTOR_API_KEYS` alike); an unnamed key's principal is
 * `key-<8 hex digits of its SHA-256>`, stable across restarts and reveals
 * nothing of the key. Without keys, everything belongs to `local`.
 *
 * @module
 */

/** Who a request acts for. */
export interface Principal {
  /** The name from the keys file, `key-<fingerprint>` for an unnamed key, or `local`. */
  readonly id: string;
  /** Sees and controls every principal's executions and history. */
  readonly admin: boolean;
}

/** The principal of a server without keys: everything is its own. */
export const LOCAL: Principal = Object.freeze({ id: "local", admin: false });

/** One configured key, parsed: its principal's name (null: derive one) and role. */
export interface KeyEntry {
  key: string;
  name: string | null;
  admin: boolean;
}

/** Names a key may carry: short, printable in logs, and never mistaken for a derived id. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

/**
 * Parses one key entry: `key`, `name:key` or `name:key:admin`. The first
 * `:` ends the name, so a key that contains `:` must be written with a name.
 * Surrounding whitespace is trimmed.
 *
 * @throws {TypeError} for an empty key, or a name that is not 1-64 of
 *   `A-Z a-z 0-9 _ . @ -` (first a letter or digit), `local`, or `key-…`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKeyEntry } from "./principal.ts";
 * assert.deepEqual(parseKeyEntry("s3cret"), { key: "s3cret", name: null, admin: false });
 * assert.deepEqual(parseKeyEntry("alice:s3cret"), { key: "s3cret", name: "alice", admin: false });
 * assert.deepEqual(parseKeyEntry("ops:a:b:admin"), { key: "a:b", name: "ops", admin: true });
 * assert.throws(() => parseKeyEntry("alice:"), TypeError);
 * ```
 */
export function parseKeyEntry(entry: string): KeyEntry {
  const text = entry.trim();
  const colon = text.indexOf(":");
  if (colon === -1) {
    if (text === "") throw new TypeError("an API key cannot be empty");
    return { key: text, name: null, admin: false };
  }
  const name = text.slice(0, colon);
  let key = text.slice(colon + 1);
  const admin = key.endsWith(":admin");
  if (admin) key = key.slice(0, -":admin".length);
  key = key.trim();
  // Messages never quote the entry: what precedes a `:` may be part of a key.
  if (key === "") throw new TypeError("the key after the name is empty");
  if (!NAME.test(name) || name === LOCAL.id || name.startsWith("key-")) {
    throw new TypeError(
      "the text before the first ':' is not a valid name: 1-64 of A-Z a-z 0-9 _ . @ -, " +
        "starting with a letter or digit, not 'local' nor 'key-…' (write name:key[:admin]; " +
        "a key that contains ':' needs a name)",
    );
  }
  return { key, name, admin };
}
