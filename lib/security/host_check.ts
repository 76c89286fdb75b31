/**
 * The `Host` check: protection against DNS rebinding. A page on
 * `http://evil.example:8003` whose name the attacker then points at
 * 127.0.0.1 reaches a localhost executor, and to the browser that is the
 * page's own origin, so the Origin check cannot tell. But every request it
 * makes still names `evil.example` in `Host`. Only requests naming the
 * server itself get through:
 *
 * - the listen address (as configured, and as bound), on the served port;
 * - listening on loopback: any loopback name (`localhost`, `127.x.x.x`,
 *   `[::1]`), on the served port;
 * - listening on a wildcard (`0.0.0.0`, `::`): any loopback name, and the
 *   machine's own names: the addresses of its interfaces and its hostname,
 *   on the served port (the addresses are re-read, at most every few
 *   seconds, when a request names one not known yet);
 * - an `allowed-hosts` entry: `host` on any port (what a reverse proxy or a
 *   tunnel in front forwards), `host:port` on that port only; `*` turns the
 *   check off.
 *
 * A Host without a port means port 80. Names compare after URL
 * canonicalisation: in any case, IPv4 in any form `new URL` accepts, IPv6
 * compressed, one trailing dot ignored.
 *
 * @module
 */

/** The port a Host without one means (http's default). */
const DEFAULT_PORT = 80;

/** A host and port in canonical form. */
export interface Authority {
  /** Lowercase, IPv4 dotted, IPv6 in brackets and compressed, no trailing dot. */
  hostname: string;
  /** The port; 80 when the text named none. */
  port: number;
}

/**
 * Parses `host[:port]`, as a `Host` header carries it, into canonical form;
 * null when it is not one (empty, a path, credentials, whitespace, a bad
 * port, a percent sign or a zone id).
 *
 * @param text A Host header value or a URL's `host`.
 * @returns the canonical hostname and port, or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAuthority } from "./host_check.ts";
 * assert.deepEqual(parseAuthority("LocalHost.:8003"), { hostname: "localhost", port: 8003 });
 * assert.deepEqual(parseAuthority("[0:0::1]"), { hostname: "[::1]", port: 80 });
 * assert.deepEqual(parseAuthority("0x7f.1:9"), { hostname: "127.0.0.1", port: 9 });
 * assert.equal(parseAuthority("evil.example/x@127.0.0.1"), null);
 * ```
 */
export function parseAuthority(text: string): Authority | null {
  if (text === "" || /[\s/?#@\\%]/.test(text) || text.endsWith(":")) return null;
  let url: URL;
  try {
    url = new URL(`http://${text}`);
  } catch {
    return null;
  }
  const hostname = url.hostname.replace(/\.$/, "");
  if (hostname === "") return null;
  return { hostname, port: url.port === "" ? DEFAULT_PORT : Number(url.port) };
}

/** One `allowed-hosts` entry. */
export interface HostEntry {
  /** Canonical, as {@linkcode parseAuthority} gives it. */
  hostname: string;
  /** The one port it allows, or null for any port. */
  port: number | null;
}

/**
 * Parses an `allowed-hosts` entry: `host` (any port) or `host:port`. An
 * IPv6 address may be given bare (`::1`, no port) or in brackets
 * (`[::1]:8003`).
 *
 * @returns the entry, or null when it is not `host` or `host:port` (a host
 *   is a DNS name or an IP address: no wildcards such as `*.example.com`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHostEntry } from "./host_check.ts";
 * assert.deepEqual(parseHostEntry("Exec.Example.com"), { hostname: "exec.example.com", port: null });
 * assert.deepEqual(parseHostEntry("10.0.0.5:9000"), { hostname: "10.0.0.5", port: 9000 });
 * assert.deepEqual(parseHostEntry("::1"), { hostname: "[::1]", port: null });
 * assert.equal(parseHostEntry("https://exec.example.com"), null);
 * ```
 */
export function parseHostEntry(entry: string): HostEntry | null {
  const text = bracketBareIpv6(entry.trim());
  const authority = parseAuthority(text);
  // Only names DNS can hold, or IP addresses: `*.example.com` would be taken
  // literally and never match.
  if (
    authority === null ||
    !/^([a-z0-9_-]+(\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])$/.test(authority.hostname)
  ) {
    return null;
  }
  return { hostname: authority.hostname, port: /:\d+$/.test(text) ? authority.port : null };
}

function bracketBareIpv6(text: string): string {
  return !text.startsWith("[") && text.split(":").length > 2 ? `[${text}]` : text;
}

/** The canonical hostname of an address or name as `--host` or Deno give it, or null. */
function canonicalName(text: string): string | null {
  return parseAuthority(bracketBareIpv6(text.replace(/%.*$/, "")))?.hostname ?? null;
}

/** `allowed-hosts`, parsed. */
export interface AllowedHosts {
  /** Whether the list holds `*`: the check is off. */
  any: boolean;
  entries: readonly HostEntry[];
}

/**
 * Parses the `allowed-hosts` list.
 *
 * @throws {RangeError} naming the first entry that is neither `*`, `host`
 *   nor `host:port`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAllowedHosts } from "./host_check.ts";
 * assert.deepEqual(parseAllowedHosts(["a.example", "*"]), {
 *   any: true,
 *   entries: [{ hostname: "a.example", port: null }],
 * });
 * assert.throws(() => parseAllowedHosts(["a.example/x"]), RangeError);
 * ```
 */
export function parseAllowedHosts(list: readonly string[]): AllowedHosts {
  const entries: HostEntry[] = [];
  for (const item of list) {
    if (item.trim() === "*") continue;
    const entry = parseHostEntry(item);
    if (entry === null) {
      throw new RangeError(
        `Invalid allowed-hosts entry ${JSON.stringify(item)}: expected host, host:port or *`,
      );
    }
    entries.push(entry);
  }
  return { any: list.some((item) => item.trim() === "*"), entries };
}

/**
 * Whether a canonical hostname is a loopback name: `localhost`,
 * `127.0.0.0/8` or `[::1]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopbackName } from "./host_check.ts";
 * assert.ok(isLoopbackName("127.0.0.2") && isLoopbackName("[::1]"));
 * assert.ok(!isLoopbackName("localhost.evil.example"));
 * ```
 */
export function isLoopbackName(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * Whether a listen address is a wildcard (`0.0.0.0`, `::`): the server
 * then answers on every address of the machine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isWildcardAddress } from "./host_check.ts";
 * assert.ok(isWildcardAddress("0.0.0.0") && isWildcardAddress("::") && isWildcardAddress("[::]"));
 * assert.ok(!isWildcardAddress("127.0.0.1"));
 * ```
 */
export function isWildcardAddress(address: string): boolean {
  const name = canonicalName(address);
  return name === "0.0.0.0" || name === "[::]";
}

/** The machine's own names, for a server listening on a wildcard. */
export interface MachineNames {
  /** Addresses of its network interfaces. */
  addresses: readonly string[];
  /** Its hostname, or null when it cannot be read. */
  hostname: string | null;
}

/**
 * Reads the machine's interface addresses and hostname
 * (`--allow-sys=networkInterfaces,hostname`); whatever cannot be read
 * (not granted) is left out, so fewer names pass, never more.
 */
export function readMachineNames(): MachineNames {
  let addresses: string[] = [];
  let hostname: string | null = null;
  try {
    addresses = Deno.networkInterfaces().map((i) => i.address);
  } catch {
    // Not granted: only loopback names, the listen address and allowed-hosts pass.
  }
  try {
    hostname = Deno.hostname();
  } catch {
    // Likewise.
  }
  return { addresses, hostname };
}

/** What {@linkcode HostCheck} accepts. */
export interface HostCheckOptions {
  /** The listen address as configured (`--host`): an address or a name. */
  listen: string;
  /** The address actually bound, when known (`Deno.serve`'s `addr.hostname`). */
  bound?: string;
  /** The port actually served. */
  port: number;
  /** `allowed-hosts`, parsed ({@linkcode parseAllowedHosts}). */
  allowed: AllowedHosts;
  /** Reads the machine's names, for a wildcard listen address ({@linkcode readMachineNames}). */
  machineNames?: () => MachineNames;
  /** Least milliseconds between two reads of the machine's names (default 5000). */
  refreshMs?: number;
  /** The clock, in milliseconds (default `performance.now`). */
  now?: () => number;
}

/**
 * Which `Host` values name this server, and which requests may proceed.
 *
 * @example A server on 127.0.0.1:8003
 * ```ts
 * import assert from "node:assert/strict";
 * import { HostCheck, parseAllowedHosts } from "./host_check.ts";
 * const check = new HostCheck({
 *   listen: "127.0.0.1",
 *   port: 8003,
 *   allowed: parseAllowedHosts(["exec.example.com"]),
 * });
 * assert.ok(check.names("127.0.0.1:8003") && check.names("localhost:8003"));
 * assert.ok(check.names("exec.example.com")); // an entry without a port: any port
 * assert.ok(!check.names("localhost:9000")); // another port
 * assert.ok(!check.names("evil.example:8003"));
 * const rebound = new Request("http://evil.example:8003/mcp", { method: "POST" });
 * assert.equal(check.refused(rebound), "evil.example:8003");
 * const own = new Request("http://localhost:8003/mcp", { method: "POST" });
 * assert.equal(check.refused(own), null);
 * assert.equal(check.ownOrigin(own), "http://localhost:8003");
 * ```
 */
export class HostCheck {
  readonly #port: number;
  readonly #allowed: AllowedHosts;
  /** The listen address's names (none for a wildcard). */
  readonly #listen = new Set<string>();
  readonly #loopback: boolean;
  readonly #wildcard: boolean;
  readonly #readMachine: () => MachineNames;
  readonly #refreshMs: number;
  readonly #now: () => number;
  #machine = new Set<string>();
  #machineReadAt = -Infinity;

  /** Builds the check; reads the machine's names at once when listening on a wildcard. */
  constructor(options: HostCheckOptions) {
    this.#port = options.port;
    this.#allowed = options.allowed;
    this.#readMachine = options.machineNames ?? readMachineNames;
    this.#refreshMs = options.refreshMs ?? 5000;
    this.#now = options.now ?? (() => performance.now());
    const names = [options.listen, options.bound ?? options.listen].map(canonicalName);
    this.#wildcard = names.some((n) => n === "0.0.0.0" || n === "[::]");
    this.#loopback = this.#wildcard || names.some((n) => n !== null && isLoopbackName(n));
    if (!this.#wildcard) {
      for (const name of names) if (name !== null) this.#listen.add(name);
    } else this.#readMachineNames();
  }

  /** Whether the check is off (`allowed-hosts` holds `*`). */
  get off(): boolean {
    return this.#allowed.any;
  }

  /**
   * Whether `authority` (a Host value) names this server: by the listen
   * address, a loopback or machine name, or an `allowed-hosts` entry; never
   * by `*` alone.
   */
  names(authority: string): boolean {
    const a = parseAuthority(authority);
    if (a === null) return false;
    if (
      this.#allowed.entries.some((e) =>
        e.hostname === a.hostname && (e.port === null || e.port === a.port)
      )
    ) return true;
    if (a.port !== this.#port) return false;
    if (this.#listen.has(a.hostname) || (this.#loopback && isLoopbackName(a.hostname))) {
      return true;
    }
    if (!this.#wildcard) return false;
    // An address the machine gained since the last read (DHCP, a new
    // interface): read again, but not more often than refreshMs, so a flood
    // of foreign Hosts costs no more than one read per interval.
    if (!this.#machine.has(a.hostname) && this.#now() - this.#machineReadAt >= this.#refreshMs) {
      this.#readMachineNames();
    }
    return this.#machine.has(a.hostname);
  }

  /**
   * The first authority `req` names that this server refuses, or null when
   * it may proceed. A request names its URL's authority (Deno takes it from
   * `Host`, from HTTP/2's `:authority`, or from an absolute request target;
   * `localhost:<port>` when there is none) and its `Host` header.
   */
  refused(req: Request): string | null {
    if (this.#allowed.any) return null;
    return authoritiesOf(req).find((a) => !this.names(a)) ?? null;
  }

  /**
   * The server's own origin for `req` (`http://<its host>`), when every
   * authority it names is this server ({@linkcode HostCheck.names}, not `*`,
   * so a rebound page never counts as the server's own); else null.
   */
  ownOrigin(req: Request): string | null {
    const url = URL.parse(req.url);
    return url !== null && authoritiesOf(req).every((a) => this.names(a)) ? url.origin : null;
  }

  /** What passes, in one line for the startup log. */
  describe(): string {
    if (this.#allowed.any) return "any Host (allowed-hosts *)";
    const parts = [...this.#listen];
    if (this.#loopback) parts.push("localhost", "127.0.0.0/8", "[::1]");
    if (this.#wildcard) parts.push(...this.#machine);
    const listed = this.#allowed.entries.map((e) =>
      e.port === null ? `${e.hostname} (any port)` : `${e.hostname}:${e.port}`
    );
    return `${[...new Set(parts)].join(", ")} on port ${this.#port}` +
      (listed.length > 0 ? `; allowed-hosts ${listed.join(", ")}` : "");
  }

  #readMachineNames(): void {
    const { addresses, hostname } = this.#readMachine();
    const names = new Set<string>();
    for (const text of [...addresses, ...(hostname === null ? [] : [hostname])]) {
      const name = canonicalName(text);
      if (name !== null && name !== "0.0.0.0" && name !== "[::]") names.add(name);
    }
    this.#machine = names;
    this.#machineReadAt = this.#now();
  }
}

/** What {@linkcode authoritiesOf} reports for a request URL that does not parse: names nothing. */
const UNPARSABLE = "(unparsable URL)";

/**
 * The authorities a request names: its URL's, and its Host header when that
 * differs. Deno accepts some Host values that `new URL` refuses
 * (`localhost:1:1`, `[::1%lo]`): such a request names no server.
 */
function authoritiesOf(req: Request): string[] {
  const url = URL.parse(req.url)?.host ?? UNPARSABLE;
  const header = req.headers.get("host");
  return header === null || header === url ? [url] : [url, header];
}
