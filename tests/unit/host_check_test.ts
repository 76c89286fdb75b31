import assert from "node:assert/strict";
import {
  HostCheck,
  type HostCheckOptions,
  isLoopbackName,
  isWildcardAddress,
  type MachineNames,
  parseAllowedHosts,
  parseAuthority,
  parseHostEntry,
} from "../../lib/security/host_check.ts";

const P = 8003;

function check(
  listen: string,
  allowed: string[] = [],
  extra: Partial<HostCheckOptions> = {},
): HostCheck {
  return new HostCheck({ listen, port: P, allowed: parseAllowedHosts(allowed), ...extra });
}

/** A request as Deno.serve hands it over: URL from the authority, plus a Host header. */
function request(url: string, host?: string): Request {
  return new Request(url, host === undefined ? {} : { headers: { host } });
}

Deno.test("parseAuthority() canonicalises host and port", () => {
  assert.deepEqual(parseAuthority("127.0.0.1:8003"), { hostname: "127.0.0.1", port: 8003 });
  assert.deepEqual(parseAuthority("EXAMPLE.com"), { hostname: "example.com", port: 80 });
  assert.deepEqual(parseAuthority("example.com:80"), { hostname: "example.com", port: 80 });
  assert.deepEqual(parseAuthority("example.com.:1"), { hostname: "example.com", port: 1 });
  assert.deepEqual(parseAuthority("[::1]:8003"), { hostname: "[::1]", port: 8003 });
  assert.deepEqual(parseAuthority("[0:0:0:0:0:0:0:1]"), { hostname: "[::1]", port: 80 });
  assert.deepEqual(parseAuthority("2130706433:5"), { hostname: "127.0.0.1", port: 5 });
  assert.deepEqual(parseAuthority("bücher.example"), {
    hostname: "xn--bcher-kva.example",
    port: 80,
  });
});

Deno.test("parseAuthority() refuses what is not host[:port]", () => {
  for (
    const text of [
      "",
      " ",
      ".",
      "a b",
      "evil.example/x",
      "user@127.0.0.1",
      "a?b",
      "a#b",
      "a\\b",
      "a:",
      "a:99999",
      "a:-1",
      "a:x",
      "[::1",
      "::1",
      "%6c%6fcalhost",
      "[fe80::1%25eth0]",
      "http://a",
    ]
  ) {
    assert.equal(parseAuthority(text), null, JSON.stringify(text));
  }
});

Deno.test("parseHostEntry() reads host (any port) and host:port", () => {
  assert.deepEqual(parseHostEntry(" exec.example.com "), {
    hostname: "exec.example.com",
    port: null,
  });
  assert.deepEqual(parseHostEntry("exec.example.com:80"), {
    hostname: "exec.example.com",
    port: 80,
  });
  assert.deepEqual(parseHostEntry("[::1]:9"), { hostname: "[::1]", port: 9 });
  assert.deepEqual(parseHostEntry("[::1]"), { hostname: "[::1]", port: null });
  assert.deepEqual(parseHostEntry("fd00::2"), { hostname: "[fd00::2]", port: null });
  for (const bad of ["", "http://a", "a/b", "a:", "*.example.com", "a b"]) {
    assert.equal(parseHostEntry(bad), null, bad);
  }
});

Deno.test("parseAllowedHosts() reads * and entries, and names a bad entry", () => {
  assert.deepEqual(parseAllowedHosts([]), { any: false, entries: [] });
  assert.deepEqual(parseAllowedHosts([" * "]), { any: true, entries: [] });
  assert.throws(() => parseAllowedHosts(["ok.example", "https://x.example"]), {
    name: "RangeError",
    message: 'Invalid allowed-hosts entry "https://x.example": expected host, host:port or *',
  });
});

Deno.test("isLoopbackName() and isWildcardAddress() on canonical names", () => {
  for (const n of ["localhost", "127.0.0.1", "127.255.0.9", "[::1]"]) assert.ok(isLoopbackName(n));
  for (const n of ["0.0.0.0", "128.0.0.1", "localhost.evil.example", "[::]", "::1"]) {
    assert.ok(!isLoopbackName(n), n);
  }
  for (const a of ["0.0.0.0", "::", "[::]", "0:0::0"]) assert.ok(isWildcardAddress(a), a);
  for (const a of ["127.0.0.1", "::1", "localhost", "192.0.2.1"]) {
    assert.ok(!isWildcardAddress(a), a);
  }
});

Deno.test("HostCheck on loopback accepts any loopback name on the served port only", () => {
  for (const listen of ["127.0.0.1", "::1", "localhost"]) {
    const c = check(listen);
    for (
      const ok of [
        `127.0.0.1:${P}`,
        `localhost:${P}`,
        `LOCALHOST.:${P}`,
        `127.1.2.3:${P}`,
        `[::1]:${P}`,
        `[0::1]:${P}`,
      ]
    ) {
      assert.ok(c.names(ok), `${listen}: ${ok}`);
    }
    for (
      const bad of [
        "localhost", // port 80, not the served port
        `localhost:${P + 1}`,
        `evil.example:${P}`,
        `localhost.evil.example:${P}`,
        `0.0.0.0:${P}`,
        `192.0.2.2:${P}`,
        `[::ffff:127.0.0.1]:${P}`,
        "",
        `localhost:${P}/x`,
      ]
    ) {
      assert.ok(!c.names(bad), `${listen}: ${bad}`);
    }
  }
});

Deno.test("HostCheck: a Host without a port means port 80", () => {
  const c = new HostCheck({ listen: "127.0.0.1", port: 80, allowed: parseAllowedHosts([]) });
  assert.ok(c.names("localhost") && c.names("localhost:80"));
  assert.ok(!c.names("localhost:8080"));
});

Deno.test("HostCheck on a specific address accepts it, as configured and as bound", () => {
  const byAddress = check("192.0.2.10");
  assert.ok(byAddress.names(`192.0.2.10:${P}`));
  assert.ok(!byAddress.names(`localhost:${P}`), "loopback is not where it listens");
  assert.ok(!byAddress.names(`192.0.2.11:${P}`));
  const byName = check("exec.lan", [], { bound: "192.0.2.10" });
  assert.ok(byName.names(`EXEC.lan:${P}`) && byName.names(`192.0.2.10:${P}`));
  assert.ok(!byName.names(`evil.example:${P}`));
});

Deno.test("HostCheck on a wildcard accepts loopback and the machine's addresses and hostname", () => {
  const machine: MachineNames = {
    addresses: ["127.0.0.1", "192.0.2.2", "::1", "fd00::2", "fe80::fc:ff:fe00:1%eth0"],
    hostname: "Build-Box",
  };
  for (const listen of ["0.0.0.0", "::"]) {
    const c = check(listen, [], { machineNames: () => machine });
    for (
      const ok of [
        `localhost:${P}`,
        `127.0.0.5:${P}`,
        `192.0.2.2:${P}`,
        `[fd00::2]:${P}`,
        `[fe80::fc:ff:fe00:1]:${P}`,
        `build-box:${P}`,
      ]
    ) {
      assert.ok(c.names(ok), `${listen}: ${ok}`);
    }
    for (
      const bad of [`192.0.2.3:${P}`, `0.0.0.0:${P}`, `[::]:${P}`, `evil.example:${P}`, "192.0.2.2"]
    ) {
      assert.ok(!c.names(bad), `${listen}: ${bad}`);
    }
  }
});

Deno.test("HostCheck on a wildcard re-reads the machine's names on a miss, at most every refreshMs", () => {
  let now = 0;
  let reads = 0;
  const addresses = ["192.0.2.2"];
  const c = check("0.0.0.0", [], {
    machineNames: () => (reads++, { addresses: [...addresses], hostname: null }),
    refreshMs: 1000,
    now: () => now,
  });
  assert.equal(reads, 1, "read once at start");
  assert.ok(c.names(`192.0.2.2:${P}`));
  assert.equal(reads, 1, "a known address needs no read");
  addresses.push("198.51.100.7"); // the machine gains an address
  now = 500;
  assert.ok(!c.names(`198.51.100.7:${P}`), "not re-read within refreshMs");
  assert.ok(!c.names(`evil.example:${P}`));
  assert.equal(reads, 1);
  now = 1000;
  assert.ok(c.names(`198.51.100.7:${P}`), "re-read after refreshMs");
  assert.equal(reads, 2);
  // A flood of foreign names costs one read per interval.
  for (let i = 0; i < 100; i++) assert.ok(!c.names(`evil${i}.example:${P}`));
  assert.equal(reads, 2);
  // A foreign port never triggers a read.
  now = 5000;
  assert.ok(!c.names(`203.0.113.1:${P + 1}`));
  assert.equal(reads, 2);
});

Deno.test("HostCheck: allowed-hosts entries pass, with any port or the one given", () => {
  const c = check("127.0.0.1", ["exec.example.com", "tunnel.example:9000", "::1"]);
  assert.ok(c.names("exec.example.com") && c.names("exec.example.com:443"));
  assert.ok(c.names("tunnel.example:9000"));
  assert.ok(!c.names("tunnel.example") && !c.names(`tunnel.example:${P}`));
  assert.ok(c.names("[::1]:9999"), "a port-less entry widens a loopback name to any port");
  assert.ok(!c.names("localhost:9999"));
});

Deno.test("HostCheck.refused() judges the URL's authority and the Host header", () => {
  const c = check("127.0.0.1");
  const own = `127.0.0.1:${P}`;
  assert.equal(c.refused(request(`http://${own}/mcp`, own)), null);
  // HTTP/2 carries no Host header: the URL's authority decides.
  assert.equal(c.refused(request(`http://${own}/mcp`)), null);
  assert.equal(c.refused(request(`http://evil.example:${P}/mcp`)), `evil.example:${P}`);
  // An absolute request target names one host and the Host header another: both must pass.
  assert.equal(c.refused(request(`http://${own}/ws`, `evil.example:${P}`)), `evil.example:${P}`);
  assert.equal(c.refused(request(`http://evil.example/ws`, own)), "evil.example");
  // What Deno makes of `Host: evil.example/x`: the URL looks own-ish, the header is refused.
  assert.equal(c.refused(request(`http://${own}/ws`, "evil.example/x")), "evil.example/x");
  assert.equal(c.refused(request(`http://${own}/ws`, "")), "");
});

Deno.test("HostCheck with * refuses nothing, but a foreign host is still not the server's own", () => {
  const c = check("127.0.0.1", ["*"]);
  assert.ok(c.off);
  assert.equal(c.refused(request(`http://evil.example:${P}/mcp`, "evil.example/x")), null);
  assert.ok(!c.names(`evil.example:${P}`));
  assert.equal(c.ownOrigin(request(`http://evil.example:${P}/mcp`)), null);
  assert.equal(c.ownOrigin(request(`http://localhost:${P}/mcp`)), `http://localhost:${P}`);
});

Deno.test("HostCheck.ownOrigin() is http://<host> when every authority names the server", () => {
  const c = check("127.0.0.1");
  assert.equal(
    c.ownOrigin(request(`http://127.0.0.1:${P}/ws`, `127.0.0.1:${P}`)),
    `http://127.0.0.1:${P}`,
  );
  assert.equal(c.ownOrigin(request(`http://[::1]:${P}/ws`)), `http://[::1]:${P}`);
  assert.equal(c.ownOrigin(request(`http://127.0.0.1:${P}/ws`, `evil.example:${P}`)), null);
  assert.equal(c.ownOrigin(request(`http://evil.example:${P}/ws`)), null);
});

Deno.test("HostCheck.describe() lists what passes", () => {
  assert.equal(
    check("127.0.0.1", ["a.example", "b.example:9"]).describe(),
    `127.0.0.1, localhost, 127.0.0.0/8, [::1] on port ${P}; ` +
      "allowed-hosts a.example (any port), b.example:9",
  );
  assert.equal(
    check("0.0.0.0", [], { machineNames: () => ({ addresses: ["192.0.2.2"], hostname: "vm" }) })
      .describe(),
    `localhost, 127.0.0.0/8, [::1], 192.0.2.2, vm on port ${P}`,
  );
  assert.equal(check("127.0.0.1", ["*"]).describe(), "any Host (allowed-hosts *)");
});
