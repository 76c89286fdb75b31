/**
 * Who may connect: the API keyring (from the config list and the keys file,
 * re-read on SIGHUP), and the startup rule for exposure without keys
 * (loopback: allowed with a loud warning; anything else: refused unless
 * `--insecure-no-auth`).
 *
 * @module
 */
import { ApiKeyring } from "./auth.ts";
import { parseKeyEntry } from "./principal.ts";
import { type Config, ConfigError } from "../config/config.ts";
import { parseHostEntry } from "./host_check.ts";
import { normalizeOrigin } from "./origin_check.ts";

/** Settings access control depends on. */
export type AccessConfig = Pick<
  Config,
  "apiKeys" | "apiKeysFile" | "host" | "insecureNoAuth" | "allowedOrigins" | "allowedHosts"
>;

/**
 * Whether `host` only accepts connections from this machine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopbackHost } from "./access.ts";
 * assert.ok(isLoopbackHost("127.0.0.1"));
 * assert.ok(isLoopbackHost("::1"));
 * assert.ok(!isLoopbackHost("0.0.0.0"));
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Where keys come from. */
export type KeySources = Pick<AccessConfig, "apiKeys" | "apiKeysFile">;

/** Checks one entry where it was written; the message names its place, never its text. */
function checked(entry: string, where: string): string {
  try {
    parseKeyEntry(entry);
  } catch (e) {
    throw new ConfigError(`Invalid API key at ${where}: ${(e as Error).message}`);
  }
  return entry;
}

async function keysFromConfig(config: KeySources): Promise<string[]> {
  const keys = config.apiKeys.map((k, i) => checked(k, `CC_EXECUTOR_API_KEYS entry ${i + 1}`));
  if (config.apiKeysFile !== "") {
    let text: string;
    try {
      text = await Deno.readTextFile(config.apiKeysFile);
    } catch (err) {
      throw new ConfigError(
        `Cannot read CC_EXECUTOR_API_KEYS_FILE=${JSON.stringify(config.apiKeysFile)}: ` +
          (err instanceof Error ? err.message : String(err)),
      );
    }
    text.split("\n").forEach((line, i) => {
      if (ApiKeyring.parseKeysFile(line).length === 0) return;
      keys.push(checked(line, `line ${i + 1} of ${config.apiKeysFile}`));
    });
  }
  return keys;
}

/** A keyring of `keys`; a name given two roles is a config error. */
function keyringOf(keys: string[], keyring = new ApiKeyring()): ApiKeyring {
  try {
    keyring.replace(keys);
  } catch (e) {
    throw new ConfigError(`Invalid API keys: ${(e as Error).message}`);
  }
  return keyring;
}

/**
 * Builds the keyring from the config list and the keys file.
 *
 * @throws {ConfigError} for an unreadable file or an invalid entry (named by
 *   its place, never its text).
 */
export async function loadKeyring(config: KeySources): Promise<ApiKeyring> {
  return keyringOf(await keysFromConfig(config));
}

/**
 * Re-reads the keys (SIGHUP). On any failure the old keys stay in force.
 * A reload that finds no key while keys are in force is a failure too: an
 * emptied (or half-written) keys file must not turn authentication off.
 *
 * @returns the number of keys now configured.
 * @throws {ConfigError} as {@linkcode loadKeyring} does, or when no key is left.
 */
export async function reloadKeyring(keyring: ApiKeyring, config: KeySources): Promise<number> {
  const keys = await keysFromConfig(config);
  if (keys.length === 0 && keyring.hasKeys) {
    throw new ConfigError(
      "No API keys found: that would turn authentication off, so the old keys stay in " +
        "force (restart the service to run without keys)",
    );
  }
  keyringOf(keys, keyring);
  return keys.length;
}

/**
 * Checks the exposure rule and the origin and host lists at startup.
 *
 * @returns a warning to log loudly (loopback without keys), or null.
 * @throws {ConfigError} when listening beyond loopback without keys, or for
 *   an origin or host entry that can never match.
 */
export function checkExposure(config: AccessConfig, keyring: ApiKeyring): string | null {
  for (const origin of config.allowedOrigins) {
    if (origin !== "*" && normalizeOrigin(origin) === null) {
      throw new ConfigError(
        `Invalid CC_EXECUTOR_ALLOWED_ORIGINS entry ${JSON.stringify(origin)}: ` +
          "expected scheme://host[:port] or *",
      );
    }
  }
  for (const host of config.allowedHosts) {
    if (host !== "*" && parseHostEntry(host) === null) {
      throw new ConfigError(
        `Invalid CC_EXECUTOR_ALLOWED_HOSTS entry ${JSON.stringify(host)}: ` +
          "expected host, host:port or *",
      );
    }
  }
  if (keyring.hasKeys) return null;
  if (isLoopbackHost(config.host)) {
    return `No API keys configured: anyone who can reach ${config.host} on this machine can ` +
      "run commands as this user. Set CC_EXECUTOR_API_KEYS or CC_EXECUTOR_API_KEYS_FILE.";
  }
  if (config.insecureNoAuth) {
    return `INSECURE: listening on ${config.host} with no API keys (--insecure-no-auth): ` +
      "anyone who can reach this port can run commands as this user.";
  }
  throw new ConfigError(
    `Refusing to listen on ${config.host} without API keys: set CC_EXECUTOR_API_KEYS or ` +
      "CC_EXECUTOR_API_KEYS_FILE, listen on 127.0.0.1, or pass --insecure-no-auth",
  );
}
