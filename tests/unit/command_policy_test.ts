import assert from "node:assert/strict";
import fc from "fast-check";
import { checkArgv, checkCommand, CommandPolicyError } from "../../lib/security/command_policy.ts";

/** Quotes a word for sh so it is taken literally, whatever it contains. */
const singleQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

const SUFFIX = "is not allowed when ALLOWED_COMMANDS is set";

/** Asserts `command` is refused with code -32001 for `token`, and the message says so. */
function assertRefused(command: string, token: string, allowed = ["echo", "cat", "true", "a"]) {
  assert.throws(() => checkCommand(command, allowed), (err: unknown) => {
    assert.ok(err instanceof CommandPolicyError, `${JSON.stringify(command)}: ${err}`);
    assert.equal(err.code, -32001);
    assert.equal((err.data as { token: string }).token, token, JSON.stringify(command));
    assert.match(err.message, /^Command refused: /);
    if (token !== "\n") assert.ok(err.message.includes(`'${token}' ${SUFFIX}`), err.message);
    return true;
  });
}

async function run(argv: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(argv[0]!, { args: argv.slice(1), cwd, stderr: "null" })
    .output();
  return new TextDecoder().decode(out.stdout);
}

async function sentinelCreated(dir: string): Promise<boolean> {
  return await Deno.stat(`${dir}/X`).then(() => true, () => false);
}

Deno.test("checkCommand() refuses command separators and pipes", () => {
  assertRefused("echo ok; touch X", ";");
  assertRefused("echo ok;touch X", ";");
  assertRefused("a && touch X", "&&");
  assertRefused("echo ok || touch X", "||");
  assertRefused("| touch X", "|");
  assertRefused("echo ok | touch X", "|");
  assertRefused("echo ok & touch X", "&");
  assertRefused("(touch X)", "(");
  assertRefused("echo ok\ntouch X", "\n");
});

Deno.test("checkCommand() refuses redirections", () => {
  assertRefused("> X", ">");
  assertRefused("echo ok > X", ">");
  assertRefused("echo ok >> X", ">>");
  assertRefused("echo ok 2>X", ">");
  assertRefused("cat < X", "<");
  assertRefused("cat << EOF", "<<");
});

Deno.test("checkCommand() refuses substitutions, also inside double quotes", () => {
  assertRefused("$(touch X)", "$(");
  assertRefused("echo $(touch X)", "$(");
  assertRefused("echo `touch X`", "`");
  assertRefused('echo "$(touch X)"', "$(");
  assertRefused('echo "`touch X`"', "`");
  assertRefused('echo "a$(touch X)b"', "$(");
  assertRefused("echo $((1+1))", "$((");
  assertRefused("echo $[1+1]", "$[");
  assert.throws(
    () => checkCommand('echo "$(touch X)"', ["echo"]),
    {
      message: `Command refused: command substitution '$(' ${SUFFIX} (even inside double quotes)`,
    },
  );
});

Deno.test("checkCommand() refuses parameter expansion, quoted or not", () => {
  assertRefused("echo $HOME", "$HOME");
  assertRefused('echo "$HOME"', "$HOME");
  assertRefused("echo ${HOME}", "${");
  assertRefused('echo "${HOME:-x}"', "${");
  assertRefused("echo $1", "$1");
  assertRefused("echo $?", "$?");
  assertRefused("echo $$", "$$");
  assertRefused("echo $_x", "$_x");
  assertRefused("echo $'a'", "$'");
  assertRefused('echo $"a"', '$"');
  assertRefused("echo ~", "~");
  assertRefused("echo ~root/x", "~");
});

Deno.test("checkCommand() refuses a comment", () => {
  assertRefused("echo ok # touch X", "#");
  assertRefused("echo ok #", "#");
});

Deno.test("checkCommand() sees through quotes and escapes around operators", () => {
  assertRefused("echo 'a'; touch X", ";");
  assertRefused('echo "a";touch X', ";");
  assertRefused("echo \\\\; touch X", ";"); // an escaped backslash, then a real ';'
  assertRefused("echo 'it'\\''s'; touch X", ";");
  assertRefused("echo \\$(touch X)", "("); // `\$` is literal, the `(` is not
  assertRefused("echo ''&& touch X", "&&");
  // The escaped quote keeps the double quote open, so this never closes.
  assert.throws(() => checkCommand('echo "a\\"; touch X', ["echo"]), {
    code: -32001,
    message: "Command refused: unterminated double quote at index 5",
  });
  assert.throws(() => checkCommand("echo 'a; touch X", ["echo"]), {
    code: -32001,
    message: "Command refused: unterminated single quote at index 5",
  });
  assert.throws(() => checkCommand("echo ok\\", ["echo"]), {
    code: -32001,
    message: "Command refused: command ends with a backslash that escapes nothing",
  });
});

Deno.test("checkCommand() passes quoted and escaped shell characters literally", () => {
  const cases: [string, string[]][] = [
    ["echo '$(touch X)'", ["echo", "$(touch X)"]],
    ["echo '`touch X`; rm -rf / && x | y > z'", ["echo", "`touch X`; rm -rf / && x | y > z"]],
    ["echo \\; ok", ["echo", ";", "ok"]],
    ["echo \\>X \\|", ["echo", ">X", "|"]],
    ['echo "a;b|c>d&e(f)#g~h"', ["echo", "a;b|c>d&e(f)#g~h"]],
    ["echo \\$HOME \"\\$HOME\" '$HOME'", ["echo", "$HOME", "$HOME", "$HOME"]],
    ['echo "\\`touch X\\`"', ["echo", "`touch X`"]],
    ["echo a#b a~b \\#c \\~d", ["echo", "a#b", "a~b", "#c", "~d"]],
    ['echo $ a$ "$" "cost: 5$" $% $/', ["echo", "$", "a$", "$", "cost: 5$", "$%", "$/"]],
    ["echo \"$'x'\"", ["echo", "$'x'"]],
    ["echo *.ts ? [ab] {a,b}", ["echo", "*.ts", "?", "[ab]", "{a,b}"]],
    ["echo 'two\nlines' \"and\nmore\"", ["echo", "two\nlines", "and\nmore"]],
    ["echo a\\\nb", ["echo", "ab"]],
    ["echo ok\n", ["echo", "ok"]],
    ["\n  echo ok \n\n", ["echo", "ok"]],
  ];
  for (const [command, argv] of cases) {
    assert.deepEqual(checkCommand(command, ["echo"]).argv, argv, JSON.stringify(command));
  }
});

Deno.test("checkCommand() payloads create the sentinel in sh but not under the policy", async () => {
  const live = [
    "echo ok; touch X",
    "$(touch X)",
    "echo `touch X`",
    "true && touch X",
    "echo ok | touch X",
    "echo ok\ntouch X",
    "> X",
    'echo "$(touch X)"',
    "echo ok & touch X",
  ];
  for (const payload of live) {
    const shDir = await Deno.makeTempDir();
    const policyDir = await Deno.makeTempDir();
    try {
      // The payload is a real attack: a shell runs it and creates X.
      await new Deno.Command("/bin/sh", { args: ["-c", payload], cwd: shDir }).output();
      assert.ok(await sentinelCreated(shDir), `sh did not create X for ${JSON.stringify(payload)}`);
      // The policy refuses it, so nothing runs in policyDir.
      assert.throws(() => checkCommand(payload, ["echo", "true", "touch"]), CommandPolicyError);
      assert.equal(await sentinelCreated(policyDir), false);
    } finally {
      await Deno.remove(shDir, { recursive: true });
      await Deno.remove(policyDir, { recursive: true });
    }
  }
});

Deno.test("checkCommand() literal payloads run without a shell and create nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string, string][] = [
      ["echo '$(touch X)'", "$(touch X)\n"],
      ["echo \\; touch X", "; touch X\n"],
      ['echo "a && touch X" \\> X', "a && touch X > X\n"],
      ["echo '`touch X`' \\| touch X", "`touch X` | touch X\n"],
    ];
    for (const [command, stdout] of cases) {
      const { argv } = checkCommand(command, ["echo"]);
      assert.equal(await run(argv, dir), stdout);
    }
    assert.equal(await sentinelCreated(dir), false);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkCommand() splits accepted commands exactly as sh does", async () => {
  // Differential test against the real shell: for any command the policy
  // accepts, sh (with globbing off, since the policy passes globs literally)
  // must see the same words, and must not create any file.
  const unit = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom("a", "b", " ", "'", '"', "\\") },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        ..."\t\n$`;|&><()#~*?[]{}=!%é😀".split(/(?:)/u),
      ),
    },
  );
  const dir = await Deno.makeTempDir();
  let accepted = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit, maxLength: 14 }), async (s) => {
        const command = `printf '%s\\0' ${s} END`;
        let argv: string[];
        try {
          argv = checkCommand(command, ["printf"]).argv;
        } catch (err) {
          if (err instanceof CommandPolicyError) return;
          throw err;
        }
        accepted++;
        const out = await run(["/bin/sh", "-c", `set -f\n${command}`], dir);
        assert.deepEqual(out.split("\0").slice(0, -1), argv.slice(2), JSON.stringify(s));
        assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
      }),
      { numRuns: 300 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(accepted > 50, `only ${accepted} commands were accepted; the test proves little`);
});

Deno.test("checkCommand() refuses an empty command", () => {
  for (const command of ["", "   ", "\n\t", "\\\n"]) {
    assert.throws(() => checkCommand(command, ["echo"]), {
      name: "CommandPolicyError",
      code: -32001,
      message: "Command cannot be empty",
    });
  }
});

Deno.test("checkCommand() refuses a program that is not on the list", () => {
  assert.throws(() => checkCommand("rm -rf /", ["echo"]), {
    code: -32001,
    message: "Command 'rm' is not allowed",
  });
  assert.throws(() => checkCommand("'' x", ["echo"]), { message: "Command '' is not allowed" });
  assert.throws(() => checkCommand("FOO=1 echo", ["echo"]), {
    message: "Command 'FOO=1' is not allowed",
  });
  assert.throws(() => checkCommand("echo hi", []), { message: "Command 'echo' is not allowed" });
});

Deno.test("checkCommand() matches a path by its basename", () => {
  assert.deepEqual(checkCommand("/bin/echo hi", ["echo"]).argv, ["/bin/echo", "hi"]);
  assert.deepEqual(checkCommand("'/bin/ec'ho hi", ["echo"]).argv, ["/bin/echo", "hi"]);
  assert.throws(() => checkCommand("/bin/rm x", ["echo"]), {
    message: "Command '/bin/rm' is not allowed",
  });
  assert.throws(() => checkCommand("/bin/echo/ x", ["echo"]), {
    message: "Command '/bin/echo/' is not allowed",
  });
});

Deno.test("checkArgv() allows a listed path only exactly", () => {
  assert.deepEqual(checkArgv(["/usr/bin/env"], ["/usr/bin/env"]).argv, ["/usr/bin/env"]);
  assert.throws(() => checkArgv(["env"], ["/usr/bin/env"]), {
    message: "Command 'env' is not allowed",
  });
  assert.throws(() => checkArgv(["/bin/env"], ["/usr/bin/env"]), {
    message: "Command '/bin/env' is not allowed",
  });
});

Deno.test("checkArgv() checks args arrays and returns a copy", () => {
  const argv = ["echo", "a; b"];
  const result = checkArgv(argv, ["echo"]);
  assert.deepEqual(result.argv, argv);
  assert.notEqual(result.argv, argv);
  assert.throws(() => checkArgv([], ["echo"]), {
    code: -32001,
    message: "Command cannot be empty",
  });
  assert.throws(() => checkArgv(["sh", "-c", "echo"], ["echo"]), (err: unknown) => {
    assert.ok(err instanceof CommandPolicyError);
    assert.deepEqual(err.data, { reason: "not_allowed", program: "sh" });
    return true;
  });
});

Deno.test("checkCommand() returns argv for any single-quoted words", () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "binary" }), { maxLength: 6 }), (words) => {
      const command = ["echo", ...words].map(singleQuote).join(" ");
      assert.deepEqual(checkCommand(command, ["echo"]).argv, ["echo", ...words]);
    }),
    { numRuns: 300 },
  );
});
