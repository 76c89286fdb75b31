import assert from "node:assert/strict";
import {
  type Config,
  configEnvNames,
  ConfigError,
  loadConfig,
  SETTINGS,
  settingsTable,
} from "../../lib/config/config.ts";

const from = (env: Record<string, string>, args: string[] = []) =>
  loadConfig({ args, getEnv: (n) => env[n] });

Deno.test("loadConfig() defaults match the documented ones", () => {
  const c = from({});
  assert.equal(c.port, 8003);
  assert.equal(c.host, "127.0.0.1");
  assert.equal(c.maxSessions, 100);
  assert.equal(c.sessionTimeout, 3600);
  assert.equal(c.maxMessageSize, 10 * 1024 * 1024);
  assert.equal(c.shell, "/bin/sh");
  assert.equal(c.logLevel, "info");
  assert.ok(Object.isFrozen(c));
});

Deno.test("loadConfig() takes flags over CC_EXECUTOR_ vars over the original's aliases", () => {
  const env = {
    DEFAULT_PORT: "1",
    CC_EXECUTOR_PORT: "2",
    MAX_SESSIONS: "7",
    SESSION_TIMEOUT: "60",
    WS_MAX_SIZE: "2048",
    WS_PING_INTERVAL: "5",
    LOG_LEVEL: "WARNING",
  };
  const c = from(env, ["--port=3"]);
  assert.equal(c.port, 3);
  assert.equal(from(env).port, 2);
  assert.equal(from({ DEFAULT_PORT: "1" }).port, 1);
  assert.equal(c.maxSessions, 7);
  assert.equal(c.sessionTimeout, 60);
  assert.equal(c.maxMessageSize, 2048);
  assert.equal(c.wsPingInterval, 5);
  assert.equal(c.logLevel, "warning");
  assert.equal(from({ LOG_LEVEL: "warn" }).logLevel, "warning");
  assert.equal(from({}, ["--max-sessions", "9"]).maxSessions, 9);
});

Deno.test("loadConfig() names the variable and the accepted range on a bad value", () => {
  assert.throws(
    () => from({ CC_EXECUTOR_PORT: "abc" }),
    (e: Error) =>
      e instanceof ConfigError && e.message.includes("CC_EXECUTOR_PORT") &&
      e.message.includes("an integer from 0 to 65535"),
  );
  assert.throws(() => from({ MAX_SESSIONS: "-5" }), /MAX_SESSIONS="-5".*from 1 to 100000/);
  assert.throws(() => from({}, ["--kill-grace", "999"]), /--kill-grace="999".*from 0.05 to 300/);
  assert.throws(() => from({ LOG_LEVEL: "loud" }), /LOG_LEVEL.*one of/);
  assert.throws(() => from({}, ["--nope", "1"]), /Unknown flag --nope/);
  assert.throws(() => from({}, ["--port"]), /needs a value/);
  assert.throws(
    () => from({ CC_EXECUTOR_CHUNK_SIZE: "4096", CC_EXECUTOR_LINE_LIMIT: "1024" }),
    /LINE_LIMIT.*at least/,
  );
});

Deno.test("loadConfig() builds the child env from PATH, HOME, LANG, TERM and the allowlist only", () => {
  const env = {
    PATH: "/p",
    HOME: "/h",
    SECRET: "x",
    MY_TOOL: "y",
    LD_PRELOAD: "z",
    PAGER: "less",
    GIT_PAGER: "less",
  };
  const c = from({ ...env, CC_EXECUTOR_ENV_ALLOWLIST: "MY_TOOL, MISSING, GIT_PAGER" });
  assert.deepEqual(c.childEnv, {
    PATH: "/p",
    HOME: "/h",
    LANG: "C.UTF-8",
    TERM: "dumb",
    MY_TOOL: "y",
    // Fixed values, not the server's (PAGER=less stays with the server),
    // unless the name is allowlisted.
    PYTHONUNBUFFERED: "1",
    PAGER: "cat",
    GIT_PAGER: "less",
    GIT_TERMINAL_PROMPT: "0",
    DEBIAN_FRONTEND: "noninteractive",
  });
  assert.throws(() => from({ CC_EXECUTOR_ENV_ALLOWLIST: "LD_PRELOAD" }), /may not be passed on/);
});

Deno.test("settingsTable() documents every setting, its env var, flag and default", () => {
  const table = settingsTable();
  for (const s of SETTINGS) {
    assert.ok(table.includes(`--${s.flag}`), s.flag);
  }
  for (const name of configEnvNames()) assert.ok(table.includes(name), name);
});

Deno.test("the README's configuration table is the generated one", async () => {
  // Compare cell by cell: deno fmt pads Markdown table columns.
  const cells = (text: string) =>
    text.split("\n").filter((l) => l.startsWith("| `CC_EXECUTOR_"))
      .map((l) => l.split(" | ").map((c) => c.replace(/^\|\s*|\s*\|$/g, "").trim()).join(" | "));
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const expected = cells(settingsTable());
  assert.equal(expected.length, SETTINGS.length);
  assert.deepEqual(cells(readme), expected, "run `deno task config-table` and paste it");
});

Deno.test("Config has one field per setting, typed from the setting's kind", () => {
  const c: Config = from({});
  assert.deepEqual(
    Object.keys(c).filter((k) => k !== "childEnv").sort(),
    SETTINGS.map((s) => s.key).sort(),
  );
  // Checked by the compiler: each field's type comes from its kind in the table.
  const port: number = c.port;
  const ephemeral: boolean = c.ephemeral;
  const roots: readonly string[] = c.workspaceRoots;
  const sandbox: "none" | "bwrap" = c.sandbox;
  const medium: number = c.timeoutMedium;
  // @ts-expect-error an enum setting holds only its values
  const docker: Config["sandbox"] = "docker";
  assert.deepEqual([port, ephemeral, roots, sandbox, medium, docker], [
    8003,
    false,
    [],
    "none",
    600,
    "docker",
  ]);
});
