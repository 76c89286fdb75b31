import assert from "node:assert/strict";
import { isOriginAllowed, normalizeOrigin } from "../../lib/security/origin_check.ts";

const ALLOWED = ["https://app.example.com", "http://localhost:3000", "http://[::1]:8080"];

Deno.test("isOriginAllowed() lets requests without Origin through", () => {
  assert.equal(isOriginAllowed(null, ALLOWED), true);
  assert.equal(isOriginAllowed(null, []), true);
});

Deno.test("isOriginAllowed() allows a listed origin", () => {
  assert.equal(isOriginAllowed("https://app.example.com", ALLOWED), true);
  assert.equal(isOriginAllowed("http://localhost:3000", ALLOWED), true);
  assert.equal(isOriginAllowed("http://[::1]:8080", ALLOWED), true);
});

Deno.test("isOriginAllowed() compares after normalising case and default ports", () => {
  assert.equal(isOriginAllowed("HTTPS://App.Example.COM", ALLOWED), true);
  assert.equal(isOriginAllowed("https://app.example.com:443", ALLOWED), true);
  assert.equal(isOriginAllowed("http://example.org", ["http://EXAMPLE.org:80/"]), true);
  assert.equal(isOriginAllowed("chrome-extension://abcdef", ["chrome-extension://ABCDEF"]), true);
});

Deno.test("isOriginAllowed() refuses a browser page from another site", () => {
  // What a malicious page's WebSocket upgrade carries.
  for (
    const origin of [
      "https://evil.example",
      "http://app.example.com", // scheme differs
      "https://app.example.com:8443", // port differs
      "http://localhost:3001",
      "http://localhost", // default port 80 is not 3000
      "http://127.0.0.1:3000", // same machine, different origin
      "https://app.example.com.evil.example", // suffix trick
      "https://evil-app.example.com",
      "https://example.com",
    ]
  ) {
    assert.equal(isOriginAllowed(origin, ALLOWED), false, origin);
  }
});

Deno.test("isOriginAllowed() refuses a malformed Origin", () => {
  for (
    const origin of [
      "",
      "null", // opaque origin: sandboxed iframe, file://, data: URL
      "app.example.com",
      "https://",
      "file:///etc/passwd",
      "https://app.example.com/path",
      "https://app.example.com?x=1",
      "https://app.example.com?",
      "https://app.example.com#",
      "https://user:pw@app.example.com",
      "http://localhost:99999",
      "https://app example.com",
    ]
  ) {
    assert.equal(isOriginAllowed(origin, ALLOWED), false, JSON.stringify(origin));
  }
});

Deno.test("isOriginAllowed() refuses every browser when the list is empty", () => {
  assert.equal(isOriginAllowed("http://localhost:3000", []), false);
});

Deno.test("isOriginAllowed() allows everything with a * entry", () => {
  assert.equal(isOriginAllowed("https://evil.example", ["*"]), true);
  assert.equal(isOriginAllowed("null", ["https://a.example", "*"]), true);
});

Deno.test("isOriginAllowed() never matches a malformed entry", () => {
  assert.equal(isOriginAllowed("https://app.example.com", ["app.example.com"]), false);
  assert.equal(isOriginAllowed("https://app.example.com", ["https://app.example.com/x"]), false);
  assert.equal(isOriginAllowed("null", ["null"]), false);
});

Deno.test("normalizeOrigin() gives scheme://host[:port] or null", () => {
  assert.equal(normalizeOrigin("HTTPS://Example.COM:443"), "https://example.com");
  assert.equal(normalizeOrigin("http://example.com:8080/"), "http://example.com:8080");
  assert.equal(normalizeOrigin("ws://example.com:80"), "ws://example.com");
  assert.equal(normalizeOrigin("http://bücher.example"), "http://xn--bcher-kva.example");
  assert.equal(normalizeOrigin(" http://a.example "), "http://a.example");
  assert.equal(normalizeOrigin("null"), null);
  assert.equal(normalizeOrigin("https://a.example/b"), null);
});

Deno.test("isOriginAllowed() allows the server's own origin, even with an empty list", () => {
  const own = "http://127.0.0.1:8003";
  assert.equal(isOriginAllowed("http://127.0.0.1:8003", [], own), true);
  assert.equal(isOriginAllowed("HTTP://127.0.0.1:8003/", [], own), true);
  assert.equal(isOriginAllowed("http://[::1]", ALLOWED, "http://[::1]:80"), true);
  for (
    const origin of [
      "http://127.0.0.1:8004", // another port
      "https://127.0.0.1:8003", // another scheme
      "http://localhost:8003", // another host, same machine
      "null",
    ]
  ) {
    assert.equal(isOriginAllowed(origin, [], own), false, origin);
  }
  // Without an own origin (the Host did not name the server), nothing is same-origin.
  assert.equal(isOriginAllowed("http://127.0.0.1:8003", [], null), false);
  // The list still applies beside it.
  assert.equal(isOriginAllowed("https://app.example.com", ALLOWED, own), true);
});
