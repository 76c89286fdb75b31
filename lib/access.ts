/**
 * Who may connect: the API keyring (from the config list and the keys file,
 * re-read on SIGHUP), and the startup rule for exposure without keys
 * (loopback: allowed with a loud warning; anything else: refused unless
 * `--insecure-no-auth`).
 *
 * @module
 */
import { ApiKeyring } from "./auth.ts";
import { type Config, ConfigError } from "./config.ts";
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

async function keysFromConfig(config: AccessConfig): Promise<string[]> {
  const keys = [...config.apiKeys];
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
    keys.push(...ApiKeyring.parseKeysFile(text));
  }
  return keys;
}

/** Builds the keyring from the config list and the keys file. */
export async function loadKeyring(config: AccessConfig): Promise<ApiKeyring> {
  return new ApiKeyring(await keysFromConfig(config));
}

/**
 * Re-reads the keys (SIGHUP). On any failure the old keys stay in force.
 *
 * @returns the number of keys now configured.
 */
export async function reloadKeyring(keyring: ApiKeyring, config: AccessConfig): Promise<number> {
  const keys = await keysFromConfig(config);
  keyring.replace(keys);
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
