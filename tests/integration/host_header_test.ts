/**
 * The Host check (DNS rebinding) and the same-origin rule against real
 * servers on ephemeral ports: WebSocket upgrades and `/mcp` POSTs naming
 * this server or another, with and without `Origin`.
 */
import assert from "node:assert/strict";
import { checkExposure } from "../../lib/security/access.ts";
import { ApiKeyring } from "../../lib/security/auth.ts";
import { loadConfig } from "../../lib/config/config.ts";
import type { ServerHandle } from "../../main.ts";
import { spawnServer, testServer, withServer } from "../_helpers.ts";
import { INIT } from "../_mcp.ts";
import { rawRequest, type RawResponse, UPGRADE_HEADERS } from "../_raw_http.ts";

/** A WebSocket upgrade of `path` naming `host`. */
function upgrade(
  server: ServerHandle,
  host: string | null,
  headers: Record<string, string> = {},
  path = "/ws/mcp",
): Promise<RawResponse> {
  return rawRequest(server.port, {
    target: path,
    host,
    headers: { ...UPGRADE_HEADERS, ...headers },
  });
}

/** An MCP `initialize` POSTed to `/mcp` naming `host`. */
function initialize(
  server: ServerHandle,
  host: string | null,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return rawRequest(server.port, {
    method: "POST",
    target: "/mcp",
    host,
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      ...headers,
    },
    body: JSON.stringify(INIT),
  });
}

/** Statuses of an upgrade and an initialize naming `host`, as `[ws, mcp]`. */
async function statuses(
  server: ServerHandle,
  host: string | null,
  headers: Record<string, string> = {},
): Promise<[number, number]> {
  return [
    (await upgrade(server, host, headers)).status,
    (await initialize(server, host, headers)).status,
  ];
}

Deno.test("host: an upgrade and an /mcp POST naming a foreign Host get 403 and a clear body", async () => {
  await withServer({}, async (server) => {
    const foreign = `evil.example:${server.port}`;
    for (const path of ["/ws/mcp", "/ws"]) {
      const res = await upgrade(server, foreign, {}, path);
      assert.equal(res.status, 403, path);
      assert.deepEqual(JSON.parse(res.body), {
        error: "Host not allowed",
        host: foreign,
        hint: "Connect by an address the server listens on, or add this host to " +
          "CC_EXECUTOR_ALLOWED_HOSTS (--allowed-hosts)",
      });
    }
    const mcp = await initialize(server, foreign);
    assert.equal(mcp.status, 403);
    const body = JSON.parse(mcp.body);
    assert.equal(body.jsonrpc, "2.0");
    assert.equal(body.id, null);
    assert.equal(body.error.code, -32000);
    assert.equal(body.error.message, "Forbidden: Host not allowed");
    assert.equal(body.error.data.host, foreign);
    assert.equal(mcp.headers.get("mcp-session-id"), null);
    // Nothing was opened for them.
    assert.equal(server.metrics.sessionsOpened, 0);
    // The right name with the wrong port, and names that only look local, are foreign too.
    for (
      const host of [
        `127.0.0.1:${server.port + 1}`,
        "localhost",
        `localhost.evil.example:${server.port}`,
        `0.0.0.0:${server.port}`,
        `evil.example/x@127.0.0.1:${server.port}`,
        "",
      ]
    ) {
      assert.deepEqual(await statuses(server, host), [403, 403], JSON.stringify(host));
    }
  });
});

Deno.test("host: the listen address, loopback names and allowed-hosts entries pass", async () => {
  await withServer({ "allowed-hosts": "exec.example.com,tunnel.example:9000" }, async (server) => {
    const p = server.port;
    for (
      const host of [
        `127.0.0.1:${p}`,
        `localhost:${p}`,
        `LocalHost.:${p}`,
        `127.0.0.2:${p}`,
        `[::1]:${p}`,
        "exec.example.com", // an entry without a port: any port, or none
        "exec.example.com:443",
        "tunnel.example:9000",
      ]
    ) {
      assert.deepEqual(await statuses(server, host), [101, 200], host);
    }
    for (const host of ["tunnel.example", `tunnel.example:${p}`, "other.example.com"]) {
      assert.deepEqual(await statuses(server, host), [403, 403], host);
    }
  });
});

Deno.test("host: an absolute request target must name the server too", async () => {
  await withServer({}, async (server) => {
    const own = `127.0.0.1:${server.port}`;
    const res = await rawRequest(server.port, {
      target: `http://evil.example:${server.port}/ws/mcp`,
      host: own,
      headers: UPGRADE_HEADERS,
    });
    assert.equal(res.status, 403);
    const ok = await rawRequest(server.port, {
      target: `http://${own}/ws/mcp`,
      host: own,
      headers: UPGRADE_HEADERS,
    });
    assert.equal(ok.status, 101);
  });
});

Deno.test("origin: the server's own origin passes by default; any other gets 403", async () => {
  await withServer({}, async (server) => {
    const p = server.port;
    const own = `127.0.0.1:${p}`;
    assert.deepEqual(await statuses(server, own, { Origin: `http://${own}` }), [101, 200]);
    assert.deepEqual(
      await statuses(server, `localhost:${p}`, { Origin: `http://localhost:${p}` }),
      [101, 200],
    );
    for (
      const [host, origin] of [
        [own, "https://evil.example"],
        [own, `http://localhost:${p}`], // same machine, another origin
        [own, `http://127.0.0.1:${p + 1}`],
        [own, `https://${own}`],
        [own, "null"],
        // A rebound page: its Origin and Host agree, but the Host is not this server's.
        [`evil.example:${p}`, `http://evil.example:${p}`],
      ] as const
    ) {
      assert.deepEqual(await statuses(server, host, { Origin: origin }), [403, 403], origin);
    }
  });
  // The list still works beside the own origin.
  await withServer({ "allowed-origins": "https://app.example" }, async (server) => {
    const own = `127.0.0.1:${server.port}`;
    assert.deepEqual(await statuses(server, own, { Origin: "https://app.example" }), [101, 200]);
    assert.deepEqual(await statuses(server, own, { Origin: `http://${own}` }), [101, 200]);
    assert.deepEqual(await statuses(server, own, { Origin: "https://evil.example" }), [403, 403]);
  });
});

Deno.test("host: allowed-hosts * turns the Host check off, but a rebound page is still refused", async () => {
  await withServer({ "allowed-hosts": "*" }, async (server) => {
    const p = server.port;
    assert.deepEqual(await statuses(server, `evil.example:${p}`), [101, 200]);
    assert.deepEqual(await statuses(server, "anything.example"), [101, 200]);
    // Its Origin matches its Host, but `*` does not make evil.example the server's own origin.
    assert.deepEqual(
      await statuses(server, `evil.example:${p}`, { Origin: `http://evil.example:${p}` }),
      [403, 403],
    );
    assert.deepEqual(
      await statuses(server, `127.0.0.1:${p}`, { Origin: `http://127.0.0.1:${p}` }),
      [101, 200],
    );
  });
});

Deno.test("host: /healthz answers any Host; /health and unknown paths check it", async () => {
  await withServer({}, async (server) => {
    const get = (target: string, host: string) => rawRequest(server.port, { target, host });
    const foreign = `evil.example:${server.port}`;
    const own = `127.0.0.1:${server.port}`;
    assert.equal((await get("/healthz", foreign)).status, 200);
    assert.equal((await get("/health", foreign)).status, 403);
    assert.equal((await get("/nowhere", foreign)).status, 403);
    assert.equal((await get("/health", own)).status, 200);
    assert.equal((await get("/nowhere", own)).status, 404);
  });
});

Deno.test("host: on 0.0.0.0 the machine's addresses and hostname pass, other names do not", async () => {
  // Keys: the server is reachable from the network while the test runs.
  await withServer({ host: "0.0.0.0", "api-keys": "k" }, async (server) => {
    const p = server.port;
    const key = { "X-API-Key": "k" };
    const external = Deno.networkInterfaces().find((i) =>
      i.family === "IPv4" && !i.address.startsWith("127.")
    );
    const hosts = [`localhost:${p}`, `127.0.0.1:${p}`, `${Deno.hostname()}:${p}`];
    if (external !== undefined) hosts.push(`${external.address}:${p}`);
    for (const host of hosts) {
      assert.deepEqual(await statuses(server, host, key), [101, 200], host);
    }
    assert.deepEqual(await statuses(server, `evil.example:${p}`, key), [403, 403]);
    assert.deepEqual(await statuses(server, `0.0.0.0:${p}`, key), [403, 403]);
    assert.deepEqual(await statuses(server, `203.0.113.9:${p}`, key), [403, 403]);
  });
});

Deno.test("host: under the scoped flags of deno task start, 0.0.0.0 reads the machine's names", async () => {
  const server = await spawnServer(
    { host: "0.0.0.0", "api-keys": "k", ephemeral: "true" },
    {},
    { script: "scripts/start.ts" },
  );
  try {
    const health = await fetch(`${server.httpUrl}/health`, { headers: { "X-API-Key": "k" } })
      .then((r) => r.json());
    assert.equal(health.permissions.sys.state, "scoped");
    const names = [Deno.hostname().toLowerCase()];
    for (const i of Deno.networkInterfaces()) {
      if (i.family === "IPv4" && !i.address.startsWith("127.")) names.push(i.address);
    }
    for (const name of names) {
      const host = `${name}:${server.port}`;
      const res = await rawRequest(server.port, {
        target: "/ws/mcp",
        host,
        headers: { ...UPGRADE_HEADERS, "X-API-Key": "k" },
      });
      assert.equal(res.status, 101, host);
    }
    assert.match(server.output(), new RegExp(`Host check: .*${names[0]}`));
  } finally {
    await server.stop();
  }
});

Deno.test("allowed-hosts entries are validated at startup", async () => {
  const config = (hosts: string) =>
    loadConfig({ args: ["--allowed-hosts", hosts], getEnv: () => undefined });
  const keyring = new ApiKeyring();
  assert.equal(
    typeof checkExposure(config("a.example,b.example:9,[::1]:8003,*"), keyring),
    "string",
  );
  for (const bad of ["https://a.example", "a.example/x", "*.a.example", "a.example:"]) {
    assert.throws(() => checkExposure(config(bad), keyring), {
      name: "ConfigError",
      message: `Invalid CC_EXECUTOR_ALLOWED_HOSTS entry ${JSON.stringify(bad)}: ` +
        "expected host, host:port or *",
    });
  }
  // A direct caller of startServer is refused before anything listens.
  await assert.rejects(testServer({ "allowed-hosts": "a.example/x" }), RangeError);
});

Deno.test("host: a Host that Deno takes but a URL cannot hold is refused, and no key reaches the log", async () => {
  for (const flags of [{}, { "allowed-hosts": "*" }] as Record<string, string>[]) {
    const server = await spawnServer({ "api-keys": "raw-secret-key", ...flags });
    try {
      for (const host of [`localhost:${server.port}:${server.port}`, `[::1%lo]:${server.port}`]) {
        for (
          const target of ["/ws?token=raw-secret-key&password=hunter2", "/mcp?token=raw-secret-key"]
        ) {
          const res = await rawRequest(server.port, {
            target,
            host,
            headers: target.startsWith("/ws") ? UPGRADE_HEADERS : {},
          });
          assert.ok([400, 401, 403].includes(res.status), `${host} ${target}: ${res.status}`);
        }
      }
    } finally {
      await server.stop();
    }
    const out = server.output();
    assert.ok(!out.includes("raw-secret-key"), "a key reached the log");
    assert.ok(!out.includes("hunter2"), "a password reached the log");
    assert.ok(!out.includes("Unhandled error"), out);
  }
});
