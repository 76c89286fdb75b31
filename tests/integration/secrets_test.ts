/**
 * What a command can find of the API keys. A real server, started the way
 * an operator starts it (a shell holding the key in its environment, which
 * runs `deno task start`'s launcher, which runs the service), with one key
 * in the environment and another in a keys file. A command greps every
 * `/proc/*\/environ` it can read, every file descriptor it inherited and the keys
 * file: by default it finds both keys (README: the default mode lets
 * commands read what the service's user can read); under run-as or the
 * sandbox it finds neither.
 */
import assert from "node:assert/strict";
import { spawnServer, TestClient } from "../_helpers.ts";

const ENV_KEY = `env-key-${crypto.randomUUID()}`;
const FILE_KEY = `file-key-${crypto.randomUUID()}`;

const canRunAs = Deno.uid() === 0 &&
  await new Deno.Command("setpriv", { args: ["--reuid", "65534", "true"], stderr: "null" })
    .output().then((o) => o.success, () => false);
const canSandbox = await new Deno.Command("bwrap", {
  args: ["--ro-bind", "/", "/", "--unshare-pid", "true"],
  stderr: "null",
}).output().then((o) => o.success, () => false);

/**
 * Shell text that prints `found <where>` for each readable environ, inherited
 * descriptor and keys file holding a key. The keys are assembled at run time
 * from halves, so the command's own argv does not hold them.
 */
function scan(keysFile: string): string {
  const half = (key: string) => [key.slice(0, 12), key.slice(12)];
  const [e1, e2] = half(ENV_KEY);
  const [f1, f2] = half(FILE_KEY);
  return `k1="${e1}""${e2}"; k2="${f1}""${f2}"; n=0; ` +
    `for f in /proc/[0-9]*/environ /proc/$$/fd/* ${keysFile}; do ` +
    `case $f in /proc/$$/fd/0|/proc/$$/fd/1|/proc/$$/fd/2) continue ;; esac; ` +
    // Files only: an inherited pipe would block the read.
    `{ [ -f "$f" ] && [ -r "$f" ]; } || continue; n=$((n+1)); ` +
    `if grep -a -q -e "$k1" -e "$k2" "$f" 2>/dev/null; then echo "found $f"; fi; done; ` +
    `echo "scanned $n"`;
}

async function findings(
  flags: Record<string, string>,
): Promise<{ found: string[]; scanned: number }> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ dir: "/var/tmp", prefix: "cc-keys-" }));
  const keysFile = `${dir}/keys`;
  await Deno.writeTextFile(keysFile, `# the file's key\n${FILE_KEY}\n`, { mode: 0o600 });
  await Deno.chmod(dir, 0o755);
  const server = await spawnServer(
    { "api-keys-file": keysFile, ephemeral: "true", ...flags },
    { CC_EXECUTOR_API_KEYS: ENV_KEY },
    { script: "scripts/start.ts", shell: true },
  );
  try {
    const client = await TestClient.connect(server.wsUrl, undefined, {
      Authorization: `Bearer ${FILE_KEY}`,
    });
    await client.next((m) => m.method === "connected");
    const r = await client.run({ command: scan(keysFile) });
    await client.close();
    const lines = r.stdout.trim().split("\n");
    const scanned = Number(lines.at(-1)!.replace("scanned ", ""));
    return { found: lines.filter((l) => l.startsWith("found ")), scanned };
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("secrets: by default a command finds the keys (in the service's environ and the keys file)", async () => {
  const { found, scanned } = await findings({});
  assert.ok(scanned > 3, `scanned ${scanned}`);
  // The service, its launcher and the shell that started them hold the env key.
  assert.ok(found.filter((f) => f.endsWith("/environ")).length >= 3, found.join(", "));
  assert.ok(found.some((f) => f.endsWith("/keys")), found.join(", "));
});

Deno.test({
  name: "secrets: under run-as a command finds no key anywhere it can read",
  ignore: !canRunAs,
  fn: async () => {
    const { found, scanned } = await findings({ "run-as": "nobody" });
    // It did read something: its own processes' environ at least.
    assert.ok(scanned >= 1, `scanned ${scanned}`);
    assert.deepEqual(found, []);
  },
});

Deno.test({
  name: "secrets: in the sandbox a command finds no key anywhere it can read",
  ignore: !canSandbox,
  fn: async () => {
    const { found, scanned } = await findings({ sandbox: "bwrap" });
    assert.ok(scanned >= 2, `scanned ${scanned}`);
    assert.deepEqual(found, []);
  },
});

Deno.test({
  name: "secrets: sandboxed as a run-as user a command finds no key either",
  ignore: !canSandbox || !canRunAs,
  fn: async () => {
    const { found } = await findings({ sandbox: "bwrap", "run-as": "nobody" });
    assert.deepEqual(found, []);
  },
});
