import assert from "node:assert/strict";
import fc from "fast-check";
import { ApiKeyring, extractKey, keyFingerprint, redactUrl } from "../../lib/security/auth.ts";

const KEYS = ["first-key-0123456789", "second-key-abcdef", "third-key-ZYXWVU"];

/** Whether the keyring authenticates `key` as anyone. */
const accepts = async (keyring: ApiKeyring, key: string | null) =>
  (await keyring.verify(key)) !== null;

const request = (url: string, headers: Record<string, string> = {}) =>
  new Request(url, { headers });

Deno.test("ApiKeyring.verify() accepts every configured key, wherever it is in the list", async () => {
  const keyring = new ApiKeyring(KEYS);
  for (const key of KEYS) assert.equal(await accepts(keyring, key), true, key);
});

Deno.test("ApiKeyring.verify() refuses near misses of every key", async () => {
  const keyring = new ApiKeyring(KEYS);
  for (const key of KEYS) {
    for (
      const wrong of [
        key.slice(0, -1), // a prefix
        `${key}x`, // an extension
        key.toUpperCase(),
        `${key.slice(0, -1)}${key.at(-1) === "a" ? "b" : "a"}`, // last character differs
        ` ${key}`.slice(0, key.length), // shifted
      ]
    ) {
      assert.equal(await accepts(keyring, wrong), false, wrong);
    }
  }
  assert.equal(await accepts(keyring, ""), false);
  assert.equal(await accepts(keyring, null), false);
  assert.equal(await accepts(keyring, KEYS.join("")), false);
});

Deno.test("ApiKeyring.verify() agrees with set membership for arbitrary keys", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(
        fc.string({ minLength: 1 }).filter((k) => k.trim() === k && k !== "" && !k.includes(":")),
        {
          minLength: 1,
          maxLength: 5,
        },
      ),
      fc.string(),
      async (keys, other) => {
        const keyring = new ApiKeyring(keys);
        for (const key of keys) assert.equal(await accepts(keyring, key), true);
        assert.equal(await accepts(keyring, other), keys.includes(other));
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("ApiKeyring.verify() refuses everything when no key is configured", async () => {
  const keyring = new ApiKeyring([]);
  assert.equal(keyring.hasKeys, false);
  assert.equal(await accepts(keyring, ""), false);
  assert.equal(await accepts(keyring, "anything"), false);
  assert.equal(await accepts(keyring, null), false);
});

Deno.test("ApiKeyring trims keys and refuses an empty one", async () => {
  const keyring = new ApiKeyring(["  spaced-key \n"]);
  assert.equal(await accepts(keyring, "spaced-key"), true);
  assert.throws(() => new ApiKeyring(["ok", "  "]), TypeError);
  assert.throws(() => new ApiKeyring([""]), TypeError);
});

Deno.test("ApiKeyring.replace() swaps the keys and keeps them on bad input", async () => {
  const keyring = new ApiKeyring(["old-key"]);
  assert.equal(keyring.hasKeys, true);
  keyring.replace(["new-key"]);
  assert.equal(await accepts(keyring, "old-key"), false);
  assert.equal(await accepts(keyring, "new-key"), true);
  assert.throws(() => keyring.replace(["x", ""]), TypeError);
  assert.equal(await accepts(keyring, "new-key"), true);
  keyring.replace([]);
  assert.equal(keyring.hasKeys, false);
  assert.equal(await accepts(keyring, "new-key"), false);
});

Deno.test("ApiKeyring.verify() names the principal: the key's name, or an id from its hash", async () => {
  const keyring = new ApiKeyring([
    "alice:alice-key",
    "alice:alice-rotated",
    "ops:ops-key:admin",
    "colon:a:b",
    "plain-key",
  ]);
  assert.deepEqual(await keyring.verify("alice-key"), { id: "alice", admin: false });
  assert.deepEqual(await keyring.verify("alice-rotated"), { id: "alice", admin: false });
  assert.deepEqual(await keyring.verify("ops-key"), { id: "ops", admin: true });
  assert.deepEqual(await keyring.verify("a:b"), { id: "colon", admin: false });
  assert.deepEqual(await keyring.verify("plain-key"), {
    id: `key-${keyFingerprint("plain-key")}`,
    admin: false,
  });
  // The name is not a key, and the whole entry is not either.
  assert.equal(await keyring.verify("alice"), null);
  assert.equal(await keyring.verify("alice:alice-key"), null);
  // Stable across keyrings (restarts): the id depends on the key only.
  assert.deepEqual(
    await new ApiKeyring(["plain-key"]).verify("plain-key"),
    await keyring.verify("plain-key"),
  );
});

Deno.test("ApiKeyring refuses names that could pass for another principal or two roles", () => {
  for (const bad of ["local:k", "key-1234abcd:k", ":k", "a b:k", "-x:k", "alice::admin"]) {
    assert.throws(() => new ApiKeyring([bad]), TypeError, bad);
  }
  assert.throws(() => new ApiKeyring(["ops:k1:admin", "ops:k2"]), /both with and without/);
});

Deno.test("ApiKeyring.parseKeysFile() skips comments and blank lines and trims", () => {
  const text = [
    "# production keys",
    "",
    "   key-one   ",
    "\tkey-two\r",
    "  # indented comment",
    "key#three # not a comment: part of the key",
    "   ",
    "",
  ].join("\n");
  assert.deepEqual(ApiKeyring.parseKeysFile(text), [
    "key-one",
    "key-two",
    "key#three # not a comment: part of the key",
  ]);
  assert.deepEqual(ApiKeyring.parseKeysFile(""), []);
  assert.deepEqual(ApiKeyring.parseKeysFile("\r\n# only\r\n"), []);
});

Deno.test("ApiKeyring verifies keys read from a keys file", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "# keys\nfile-key-1\r\nfile-key-2\n");
    const keyring = new ApiKeyring(ApiKeyring.parseKeysFile(await Deno.readTextFile(path)));
    assert.equal(await accepts(keyring, "file-key-1"), true);
    assert.equal(await accepts(keyring, "file-key-2"), true);
    assert.equal(await accepts(keyring, "# keys"), false);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("keyFingerprint() gives the first 8 hex characters of SHA-256", () => {
  // SHA-256("abc") = ba7816bf 8f01cfea ...
  assert.equal(keyFingerprint("abc"), "ba7816bf");
  // SHA-256("") = e3b0c442 98fc1c14 ...
  assert.equal(keyFingerprint(""), "e3b0c442");
  const print = keyFingerprint(KEYS[0]!);
  assert.match(print, /^[0-9a-f]{8}$/);
  assert.ok(!KEYS[0]!.includes(print));
});

Deno.test("extractKey() reads a bearer token with the scheme in any case", () => {
  for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"]) {
    assert.deepEqual(extractKey(request("http://h/ws", { authorization: `${scheme} k-1` })), {
      key: "k-1",
      source: "bearer",
    });
  }
  assert.deepEqual(extractKey(request("http://h/ws", { authorization: "Bearer \t k-2  " })), {
    key: "k-2",
    source: "bearer",
  });
});

Deno.test("extractKey() reads X-API-Key", () => {
  assert.deepEqual(extractKey(request("http://h/ws", { "X-API-Key": " k-3 " })), {
    key: "k-3",
    source: "x-api-key",
  });
});

Deno.test("extractKey() reads the token query parameter", () => {
  assert.deepEqual(extractKey(request("http://h/ws?x=1&token=k%2B4")), {
    key: "k+4",
    source: "query",
  });
});

Deno.test("extractKey() prefers bearer, then X-API-Key, then the query", () => {
  const all = { authorization: "Bearer b", "x-api-key": "x" };
  assert.equal(extractKey(request("http://h/?token=q", all)).source, "bearer");
  assert.equal(extractKey(request("http://h/?token=q", { "x-api-key": "x" })).source, "x-api-key");
});

Deno.test("extractKey() skips other schemes and empty values", () => {
  const none = { key: null, source: null };
  assert.deepEqual(extractKey(request("http://h/ws")), none);
  assert.deepEqual(
    extractKey(request("http://h/ws", { authorization: "Basic dXNlcjpwYXNz" })),
    none,
  );
  assert.deepEqual(extractKey(request("http://h/ws", { authorization: "Bearer   " })), none);
  assert.deepEqual(extractKey(request("http://h/ws", { authorization: "Bearerk" })), none);
  assert.deepEqual(extractKey(request("http://h/ws", { "x-api-key": "" })), none);
  assert.deepEqual(extractKey(request("http://h/ws?token=")), none);
  assert.deepEqual(extractKey(request("http://h/ws?api_key=k")), none);
  assert.deepEqual(
    extractKey(request("http://h/ws?token=q", { authorization: "Basic abc" })),
    { key: "q", source: "query" },
  );
});

Deno.test("redactUrl() hides token, api_key and key values", () => {
  assert.equal(
    redactUrl("https://h:8080/ws?token=s3cret&session=abc"),
    "https://h:8080/ws?token=***&session=abc",
  );
  assert.equal(redactUrl("/ws?a=1&api_key=s3cret&key=k&b=2"), "/ws?a=1&api_key=***&key=***&b=2");
  assert.equal(redactUrl("/ws?token=a&token=b"), "/ws?token=***&token=***");
});

Deno.test("redactUrl() hides access_token, apikey, api-key and password values", () => {
  assert.equal(
    redactUrl("http://h/mcp?access_token=t0k&x=1"),
    "http://h/mcp?access_token=***&x=1",
  );
  assert.equal(redactUrl("/ws?apikey=a&api-key=b"), "/ws?apikey=***&api-key=***");
  assert.equal(redactUrl("/ws?user=u&password=p%40ss"), "/ws?user=u&password=***");
  assert.equal(redactUrl("/ws?PassWord=p&Access_Token=t"), "/ws?PassWord=***&Access_Token=***");
  assert.equal(redactUrl("/ws?api%2Dkey=s3cret"), "/ws?api%2Dkey=***");
  // Near names are not secrets.
  assert.equal(
    redactUrl("/ws?passwords=1&access_tokens=2&apikeys=3&api--key=4"),
    "/ws?passwords=1&access_tokens=2&apikeys=3&api--key=4",
  );
});

Deno.test("redactUrl() matches names in any case and encoding", () => {
  assert.equal(redactUrl("/ws?TOKEN=s3cret"), "/ws?TOKEN=***");
  assert.equal(redactUrl("/ws?%74oken=s3cret"), "/ws?%74oken=***");
  assert.equal(redactUrl("/ws?api%5Fkey=s3cret"), "/ws?api%5Fkey=***");
  assert.equal(redactUrl("/ws?%zz=keep&token=s3cret"), "/ws?%zz=keep&token=***");
});

Deno.test("redactUrl() leaves everything else as it was", () => {
  assert.equal(redactUrl("http://h/ws"), "http://h/ws");
  assert.equal(redactUrl("http://h/ws?"), "http://h/ws?");
  assert.equal(redactUrl("/ws?tokens=1&monkey=2&x"), "/ws?tokens=1&monkey=2&x");
  assert.equal(redactUrl("/ws?token"), "/ws?token");
  // A key may hold a "#": what follows a secret is hidden too, never a fragment elsewhere.
  assert.equal(redactUrl("/ws?token=s3cret#frag"), "/ws?token=***#***");
  assert.equal(redactUrl("/ws?page=2#frag"), "/ws?page=2#frag");
  assert.equal(redactUrl("/ws?q=a%20b&token=x=y"), "/ws?q=a%20b&token=***");
  assert.equal(redactUrl("not a url"), "not a url");
});

Deno.test("redactUrl() leaves no secret that URL parsing would read", () => {
  fc.assert(fc.property(fc.string({ minLength: 1 }), (secret) => {
    const encoded = encodeURIComponent(secret);
    const url = `http://h/ws?x=1&token=${encoded}&password=${encoded}` +
      `&key=${secret}&access_token=${secret}`;
    const params = new URL(redactUrl(url)).searchParams;
    assert.equal(params.get("token"), "***");
    assert.equal(params.get("password"), "***");
    assert.ok(params.getAll("access_token").every((v) => v.startsWith("***")));
    assert.ok(params.getAll("key").every((v) => v.startsWith("***")));
  }));
});
