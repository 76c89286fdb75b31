/**
 * API key checks: where a client presents its key, a keyring that verifies
 * it without leaking through timing, and helpers that keep keys out of logs.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { type KeyEntry, parseKeyEntry, type Principal } from "./principal.ts";

/** Where {@linkcode extractKey} found a key. */
export type KeySource = "bearer" | "x-api-key" | "query";

/** What {@linkcode extractKey} returns: both null when no key was presented. */
export interface PresentedKey {
  key: string | null;
  source: KeySource | null;
}

/**
 * Query parameters whose values are secrets and never logged: the ones a
 * key is presented in, and the usual names of keys, tokens and passwords a
 * client may add by mistake (compared in lowercase).
 */
const SECRET_PARAMS = new Set([
  "token",
  "access_token",
  "key",
  "api_key",
  "apikey",
  "api-key",
  "password",
]);
const BEARER = /^bearer[ \t]+(.*)$/i;

/** SHA-256 of `text`, synchronously: a keyring swap must fail or succeed at once. */
function sha256(text: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(text, "utf8").digest());
}

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * A short, stable id of a key for logs and per-client limits: the first 8
 * hex characters of its SHA-256. Identifies which key was used without
 * revealing it.
 *
 * @param key The key.
 * @returns 8 lowercase hex characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyFingerprint } from "./auth.ts";
 * assert.equal(keyFingerprint("abc"), "ba7816bf");
 * ```
 */
export function keyFingerprint(key: string): string {
  return hex(sha256(key).subarray(0, 4));
}

/** A key's digest and the principal it authenticates. */
interface Credential {
  digest: Uint8Array;
  principal: Principal;
}

/** Parses the entries and checks that a name is not given two roles. */
function parseEntries(keys: Iterable<string>): KeyEntry[] {
  const entries = [...keys].map(parseKeyEntry);
  const roles = new Map<string, boolean>();
  for (const { name, admin } of entries) {
    if (name === null) continue;
    if (roles.has(name) && roles.get(name) !== admin) {
      throw new TypeError(`Key name '${name}' is given both with and without :admin`);
    }
    roles.set(name, admin);
  }
  return entries;
}

/**
 * The credentials of `entries`; one key given to two principals (or roles)
 * is refused. An unchanged entry keeps its principal object from `previous`,
 * so {@linkcode ApiKeyring.holds} can tell who survived a reload.
 */
function credentials(entries: KeyEntry[], previous: readonly Credential[]): Credential[] {
  const before = new Map(previous.map((c) => [hex(c.digest), c.principal]));
  const list = entries.map((entry) => credential(entry, before));
  const byDigest = new Map<string, Principal>();
  for (const { digest, principal } of list) {
    const key = hex(digest);
    const other = byDigest.get(key);
    if (other !== undefined && (other.id !== principal.id || other.admin !== principal.admin)) {
      // Names only: the key itself is never in a message.
      throw new TypeError(
        `One key is given to both '${other.id}' and '${principal.id}'${
          other.id === principal.id ? " (with and without :admin)" : ""
        }`,
      );
    }
    byDigest.set(key, principal);
  }
  return list;
}

function credential(entry: KeyEntry, before: Map<string, Principal>): Credential {
  const digest = sha256(entry.key);
  const id = entry.name ?? `key-${keyFingerprint(entry.key)}`;
  const kept = before.get(hex(digest));
  const principal = kept !== undefined && kept.id === id && kept.admin === entry.admin
    ? kept
    : Object.freeze({ id, admin: entry.admin });
  return { digest, principal };
}

/**
 * The configured API keys and the principals they authenticate (see
 * lib/security/principal.ts for the `name:key[:admin]` syntax). Only SHA-256 digests
 * of the keys are kept. A presented key is hashed too and compared with
 * every digest in constant time, so how long a check takes reveals neither
 * how much of a key matched (digests of near-identical keys share no
 * prefix) nor which key did.
 *
 * A keyring without keys verifies nothing: whether that means "no auth" is
 * the caller's decision, made with {@linkcode ApiKeyring.hasKeys}.
 *
 * @example Verify, then rotate keys
 * ```ts
 * import assert from "node:assert/strict";
 * import { ApiKeyring } from "./auth.ts";
 * const keyring = new ApiKeyring(["alice:alpha-key", "ops:beta-key:admin"]);
 * assert.deepEqual(await keyring.verify("beta-key"), { id: "ops", admin: true });
 * assert.equal(await keyring.verify("beta"), null);
 * keyring.replace(ApiKeyring.parseKeysFile("# rotated\ngamma-key\n"));
 * assert.equal(await keyring.verify("beta-key"), null);
 * assert.deepEqual(await keyring.verify("gamma-key"), { id: "key-36c2c0e2", admin: false });
 * ```
 */
export class ApiKeyring {
  #credentials: readonly Credential[] = [];
  /** The principal objects the current keys authenticate. */
  #held = new Set<Principal>();

  /**
   * Builds a keyring from entries `key`, `name:key` or `name:key:admin`;
   * surrounding whitespace of each is trimmed.
   *
   * @throws {TypeError} when a key is empty (which would let an empty key
   *   in), a name is invalid, or a name has two roles.
   */
  constructor(keys: Iterable<string> = []) {
    this.replace(keys);
  }

  /**
   * Parses a keys file: one entry (`key`, `name:key` or `name:key:admin`)
   * per line; blank lines and lines starting with `#` are skipped;
   * surrounding whitespace (and a CR) is trimmed. A `#` later in a line is
   * part of the key.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ApiKeyring } from "./auth.ts";
   * assert.deepEqual(ApiKeyring.parseKeysFile("# ops\n  k1  \r\n\nbob:k#2\n"), ["k1", "bob:k#2"]);
   * ```
   */
  static parseKeysFile(text: string): string[] {
    return text.split("\n").map((line) => line.trim()).filter((line) =>
      line !== "" && !line.startsWith("#")
    );
  }

  /** Whether any key is configured. */
  get hasKeys(): boolean {
    return this.#credentials.length > 0;
  }

  /**
   * Whether a key that authenticates exactly `principal` (the object
   * {@linkcode verify} returned) is still configured: after a reload, false
   * once that key is gone or its principal's name or role changed.
   */
  holds(principal: Principal): boolean {
    return this.#held.has(principal);
  }

  /** Whether some key still authenticates a principal of this id and role (another key of it may). */
  hasPrincipal(principal: Principal): boolean {
    for (const held of this.#held) {
      if (held.id === principal.id && held.admin === principal.admin) return true;
    }
    return false;
  }

  /**
   * Swaps in a new set of keys (on SIGHUP). Checks already running finish
   * against the keys they started with.
   *
   * @throws {TypeError} as the constructor does; the old keys then stay in place.
   */
  replace(keys: Iterable<string>): void {
    const next = credentials(parseEntries(keys), this.#credentials);
    this.#credentials = next;
    this.#held = new Set(next.map((c) => c.principal));
  }

  /**
   * The principal `presented` authenticates. Every configured key is
   * compared, whichever matches.
   *
   * @param presented The key a client sent, or null when it sent none.
   * @returns null for null, for an unknown key, and always when no key is configured.
   */
  verify(presented: string | null): Promise<Principal | null> {
    // A promise, so a keyring that must look keys up elsewhere fits the same callers.
    if (presented === null) return Promise.resolve(null);
    const credentials = this.#credentials;
    const candidate = sha256(presented);
    let found: Principal | null = null;
    for (const { digest, principal } of credentials) {
      // No early exit: every digest is compared, whichever matches.
      const match = timingSafeEqual(digest, candidate);
      found = match ? principal : found;
    }
    return Promise.resolve(found);
  }
}

/**
 * Finds the key a request presents, in order of preference:
 * `Authorization: Bearer <key>` (scheme in any case), `X-API-Key: <key>`,
 * then `?token=<key>` for clients that cannot set headers (browsers opening
 * a WebSocket). Other `Authorization` schemes and empty values are skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { extractKey } from "./auth.ts";
 * const req = new Request("http://host/ws", { headers: { authorization: "bearer k1" } });
 * assert.deepEqual(extractKey(req), { key: "k1", source: "bearer" });
 * assert.deepEqual(extractKey(new Request("http://host/ws?token=k2")), { key: "k2", source: "query" });
 * ```
 */
export function extractKey(req: Request): PresentedKey {
  const bearer = BEARER.exec(req.headers.get("authorization")?.trim() ?? "")?.[1]?.trim();
  if (bearer) return { key: bearer, source: "bearer" };
  const header = req.headers.get("x-api-key")?.trim();
  if (header) return { key: header, source: "x-api-key" };
  const token = queryToken(req.url);
  if (token) return { key: token, source: "query" };
  return { key: null, source: null };
}

/** The `token` query parameter of `url`; null when there is none or `url` does not parse. */
function queryToken(url: string): string | null {
  try {
    return new URL(url).searchParams.get("token");
  } catch {
    return null;
  }
}

function isSecretParam(rawName: string): boolean {
  let name = rawName.replaceAll("+", " ");
  try {
    name = decodeURIComponent(name);
  } catch {
    // Malformed escapes: compare the raw text.
  }
  return SECRET_PARAMS.has(name.toLowerCase());
}

/**
 * Replaces the values of the `token`, `access_token`, `key`, `api_key`,
 * `apikey`, `api-key` and `password` query parameters (names matched in any
 * case and percent-encoding) with `***`, leaving the rest of the text as it
 * was. A fragment after a secret is hidden too: a key may contain `#`, and a
 * client that does not percent-encode it sends the rest as a fragment.
 * Takes absolute URLs and bare paths alike and never throws, so it is safe
 * on any text bound for a log.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactUrl } from "./auth.ts";
 * assert.equal(redactUrl("http://h/ws?token=s3cret&x=1"), "http://h/ws?token=***&x=1");
 * assert.equal(redactUrl("/ws?API_KEY=s3cret"), "/ws?API_KEY=***");
 * assert.equal(
 *   redactUrl("/mcp?access_token=a&apikey=b&Api-Key=c&password=d&page=2"),
 *   "/mcp?access_token=***&apikey=***&Api-Key=***&password=***&page=2",
 * );
 * assert.equal(redactUrl("/ws?token=half#other-half"), "/ws?token=***#***");
 * ```
 */
export function redactUrl(url: string): string {
  const start = url.indexOf("?");
  if (start === -1) return url;
  const hash = url.indexOf("#", start);
  const end = hash === -1 ? url.length : hash;
  let secret = false;
  const query = url.slice(start + 1, end).split("&").map((pair) => {
    const eq = pair.indexOf("=");
    if (eq === -1 || !isSecretParam(pair.slice(0, eq))) return pair;
    secret = true;
    return `${pair.slice(0, eq)}=***`;
  }).join("&");
  const fragment = secret && hash !== -1 ? "#***" : url.slice(end);
  return url.slice(0, start + 1) + query + fragment;
}

/**
 * {@linkcode redactUrl} applied to every URL-like word (anything with a `?`)
 * of a text, such as an error message that quotes a request URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactText } from "./auth.ts";
 * assert.equal(
 *   redactText("TypeError: Invalid URL: 'http://h:1:1/ws?token=s3cret&x=1'"),
 *   "TypeError: Invalid URL: 'http://h:1:1/ws?token=***&x=1'",
 * );
 * ```
 */
export function redactText(text: string): string {
  return text.replace(/[^\s?]*\?\S*/g, (word) => redactUrl(word));
}
