import assert from "node:assert/strict";
import { classify, parseClass } from "../../lib/timing/classify.ts";
import { classifyPrompt } from "../../lib/timing/prompt.ts";
import { COMPLEXITIES, complexityRank } from "../../lib/timing/complexity.ts";

Deno.test("COMPLEXITIES lists the levels from trivial to extreme", () => {
  assert.deepEqual(COMPLEXITIES, [
    "trivial",
    "simple",
    "low",
    "medium",
    "high",
    "complex",
    "extreme",
  ]);
  assert.equal(complexityRank("trivial"), 0);
  assert.equal(complexityRank("extreme"), 6);
  assert.ok(complexityRank("complex") > complexityRank("high"));
});

Deno.test("classify() classes a command by program and sub-command", () => {
  const cases: [string, string, string][] = [
    ["git clone https://github.com/x/y.git", "cmd:git:clone", "medium"],
    ["git status", "cmd:git:status", "trivial"],
    ["npm test", "cmd:npm:test", "medium"],
    ["npm run build -- --watch", "cmd:npm:run:build", "medium"],
    ["pytest -x tests/", "cmd:pytest", "medium"],
    ["cargo build --release", "cmd:cargo:build", "high"],
    ["cargo +nightly test", "cmd:cargo:test", "high"],
    ["make", "cmd:make", "medium"],
    ["make -j4 test", "cmd:make:test", "medium"],
    ["make CC=clang all", "cmd:make:all", "medium"],
    ["docker compose up -d", "cmd:docker:compose:up", "high"],
    ["kubectl -n prod get pods", "cmd:kubectl:get", "simple"],
    ["python tools/gen.py --fast", "cmd:python:gen.py", "low"],
    ["python -c 'print(1)'", "cmd:python:inline", "low"],
    ["ls -la", "cmd:ls", "trivial"],
    ["frobnicate --all", "cmd:frobnicate", "low"],
  ];
  for (const [command, cls, complexity] of cases) {
    const c = classify(command);
    assert.equal(c.class, cls, command);
    assert.equal(c.complexity, complexity, command);
    assert.equal(c.source, "program", command);
  }
  const clone = classify("git clone x");
  assert.equal(clone.program, "git");
  assert.equal(clone.subcommand, "clone");
  assert.equal(clone.category, "vcs");
});

Deno.test("classify() strips env assignments, wrappers and paths to find the program", () => {
  const cases: [string, string][] = [
    ["FOO=1 BAR='a b' git pull", "cmd:git:pull"],
    ["sudo -u root -E /usr/bin/git fetch", "cmd:git:fetch"],
    ["timeout 5 npm test", "cmd:npm:test"],
    ["timeout -s KILL -k 2 30s pytest", "cmd:pytest"],
    ["nice -n 10 ionice -c2 make install", "cmd:make:install"],
    ["env -i PATH=/bin HOME=/ ls", "cmd:ls"],
    ["nohup time ./node_modules/.bin/jest", "cmd:jest"],
    ["python3 -m pytest -q", "cmd:pytest"],
    ["/usr/local/bin/python3.12 -m pytest", "cmd:pytest"],
    ["uv run pytest", "cmd:pytest"],
    ["npx jest --watch", "cmd:jest"],
    ["git -C repo status", "cmd:git:status"],
  ];
  for (const [command, cls] of cases) assert.equal(classify(command).class, cls, command);
});

Deno.test("classify() looks past setup commands and into sh -c", () => {
  assert.equal(classify("cd /repo && source .venv/bin/activate && pytest").class, "cmd:pytest");
  assert.equal(classify("bash -lc 'cd x && npm test'").class, "cmd:npm:test");
  assert.equal(classify(`sh -c "cargo build"`).class, "cmd:cargo:build");
  assert.equal(classify("(cd sub && make test)").class, "cmd:make:test");
  // A pipeline or list is its heaviest program.
  assert.equal(classify("ls -la | grep foo").class, "cmd:grep");
  assert.equal(classify("git add . && git commit -m x && git push").class, "cmd:git:push");
  assert.equal(classify("echo start; make test 2>&1 | tee log").class, "cmd:make:test");
  assert.equal(classify("mkdir -p out").class, "cmd:mkdir");
});

Deno.test("classify() never classes a compound command by one trivial program in it", () => {
  const cases: [string, string][] = [
    ["for i in 1 2 3 4; do echo tick$i; sleep 0.4; done", "shell:loop:sleep"],
    ["while true; do make; done", "shell:loop:make"],
    ["until curl -s localhost:8080; do sleep 1; done", "shell:loop:curl"],
    ["for f in *.c; do gcc -c $f; done", "shell:loop:gcc"],
    ["if [ -f x ]; then make test; fi", "shell:if:make:test"],
    ["case $x in a) echo A;; b) cargo build;; esac", "shell:case:cargo:build"],
  ];
  for (const [command, cls] of cases) {
    const c = classify(command);
    assert.equal(c.class, cls, command);
    assert.equal(c.source, "shape", command);
  }
  // A loop is one level more work than its body.
  assert.equal(classify("while true; do make; done").complexity, "high");
  // Groups and subshells are transparent; a function body is what runs.
  assert.equal(classify("{ echo a; npm test; }").class, "cmd:npm:test");
  assert.equal(classify("f() { make; }; f").class, "cmd:make");
});

Deno.test("classify() keeps argument values out of class names", () => {
  for (const command of ["sleep 5", "sleep 77200.5", "sleep 2m", "sleep infinity"]) {
    assert.equal(classify(command).class, "cmd:sleep", command);
  }
  // What a command states about its duration is kept apart from its class.
  assert.equal(classify("sleep 2m").statedSeconds, 120);
  assert.equal(classify("sleep 1 && sleep 2").statedSeconds, 3);
  assert.equal(classify("timeout 600 make").statedSeconds, 600);
  assert.equal(classify("for i in 1 2; do sleep 9; done").statedSeconds, null);
  // Numbers and paths never become sub-commands.
  assert.equal(classify("git 123").class, "cmd:git");
  assert.equal(classify("make out/bar.o").class, "cmd:make");
  assert.equal(classify("make -j 8").class, "cmd:make");
  assert.equal(classify("python /tmp/a/b/run.py").class, "cmd:python:run.py");
  assert.equal(classify("./script.sh 5 /etc").class, "cmd:script.sh");
});

Deno.test("classify() classes an argv directly, as the shell string would be", () => {
  assert.equal(classify(["sh", "-c", "npm test"]).class, classify("sh -c 'npm test'").class);
  assert.equal(classify(["sh", "-c", "npm test"]).class, "cmd:npm:test");
  assert.equal(classify(["/usr/bin/git", "clone", "x"]).class, "cmd:git:clone");
  // An argv word with spaces or operators is one word, never re-parsed.
  assert.equal(classify(["echo", "a && make"]).class, "cmd:echo");
  assert.equal(classify(["sleep", "10"]).statedSeconds, 10);
  assert.equal(classify([]).class, "cmd:unknown");
});

Deno.test("classify() sees servers, watchers and REPLs as long-running", () => {
  for (
    const command of [
      "node server.js",
      "tail -f /var/log/syslog",
      "python3",
      "python -m http.server 8000",
      "npm start",
      "npm run dev",
    ]
  ) {
    const c = classify(command);
    assert.equal(c.category, "server", command);
    assert.equal(c.complexity, "extreme", command);
  }
  assert.equal(classify("tail -n 5 x").category, "shell");
});

Deno.test("classify() gives build and test classes at least medium complexity", () => {
  for (const command of ["tsc -p .", "cmake ..", "cargo", "go vet", "npm test", "make"]) {
    const c = classify(command);
    if (c.category === "build" || c.category === "test") {
      assert.ok(complexityRank(c.complexity) >= complexityRank("medium"), command);
    }
  }
});

Deno.test("classify() handles empty and odd input", () => {
  assert.equal(classify("").class, "cmd:unknown");
  assert.equal(classify("   ").class, "cmd:unknown");
  assert.equal(classify("FOO=bar").class, "cmd:unknown");
  assert.equal(classify(`echo "unterminated`).class, "cmd:echo");
  assert.equal(classify("a:b:c").program, "a-b-c");
});

Deno.test("classify() classes claude -p prompts by what they ask", () => {
  const cases: [string, string, string][] = [
    [`claude -p "What is 2+2?"`, "question", "trivial"],
    [`claude -p 'hello'`, "question", "trivial"],
    [`claude --print "Write a function that reverses a string"`, "code", "low"],
    [`claude -p "Write a Python function to parse dates, with unit tests"`, "test", "medium"],
    [`claude -p "Debug the failing login flow"`, "debug", "high"],
    [`claude -p "Implement a complete REST API service with auth"`, "build", "complex"],
    [`claude -p --model opus "Refactor the entire codebase to async"`, "refactor", "extreme"],
    [`claude -p "Design the architecture for a multi-file system"`, "build", "extreme"],
  ];
  for (const [command, kind, complexity] of cases) {
    const c = classify(command);
    assert.equal(c.source, "claude_prompt", command);
    assert.equal(c.class, `claude:${kind}:${complexity}`, command);
    assert.equal(c.category, "claude");
    assert.equal(c.program, "claude");
    assert.equal(c.subcommand, kind);
  }
});

Deno.test("classify() finds the prompt however it is quoted or placed", () => {
  const expected = "claude:code:low";
  for (
    const command of [
      `claude -p "Write a function that adds two numbers"`,
      `claude -p 'Write a function that adds two numbers'`,
      `claude -p Write\\ a\\ function\\ that\\ adds\\ two\\ numbers`,
      `claude --print="Write a function that adds two numbers"`,
      `claude --output-format stream-json --verbose -p "Write a function that adds two numbers"`,
      `claude "Write a function that adds two numbers" -p --max-turns 3`,
      `cd /repo && claude -p "Write a function that adds two numbers"`,
      `echo "Write a function that adds two numbers" | claude -p`,
      `timeout 600 claude -p "Write a function that adds two numbers"`,
    ]
  ) {
    assert.equal(classify(command).class, expected, command);
  }
  // Without -p it is an interactive session, classed as a program.
  assert.equal(classify("claude").class, "cmd:claude");
});

Deno.test("classifyPrompt() raises complexity with prompt length", () => {
  const short = classifyPrompt("Tell me a joke");
  assert.equal(short.complexity, "simple");
  const long = classifyPrompt("Tell me a joke about " + "cats and dogs ".repeat(100));
  assert.equal(long.complexity, "high");
  const huge = classifyPrompt("Summarize: " + "lorem ipsum ".repeat(500));
  assert.equal(huge.complexity, "extreme");
  assert.equal(huge.kind, "summary");
  assert.deepEqual(classifyPrompt(""), { kind: "general", complexity: "medium" });
});

Deno.test("classify() lets explicit tags win", () => {
  const c = classify(`[category:research][task:Lit Review][complexity:high] claude -p "hi"`);
  assert.deepEqual(c, {
    class: "tag:research:lit-review:high",
    category: "research",
    program: "claude",
    subcommand: "question",
    complexity: "high",
    source: "tags",
    statedSeconds: null,
  });
  // Missing tags are filled from the command; an unknown complexity is ignored.
  const partial = classify("[complexity:extreme] make");
  assert.equal(partial.class, "tag:build:any:extreme");
  assert.equal(partial.complexity, "extreme");
  const bad = classify("[category:etl][complexity:enormous] ./load.sh");
  assert.equal(bad.class, "tag:etl:any:low");
  assert.equal(bad.source, "tags");
});

Deno.test("parseClass() recovers what classify() put in a class name", () => {
  for (
    const command of [
      "git clone x",
      "npm run build",
      "sleep 2m",
      "while true; do make test; done",
      `claude -p "Refactor the whole project"`,
      "[category:etl][task:load][complexity:high] x",
    ]
  ) {
    const c = classify(command);
    const traits = parseClass(c.class);
    assert.ok(traits, command);
    assert.equal(traits.category, c.category, command);
    assert.equal(traits.complexity, c.complexity, command);
    if (c.source !== "tags") {
      assert.equal(traits.program, c.program, command);
      assert.equal(traits.subcommand, c.subcommand, command);
    }
  }
  assert.equal(parseClass("tag:etl:load:huge"), null);
  assert.equal(parseClass("claude:code"), null);
  assert.equal(parseClass(""), null);
});

Deno.test("classify() sees through substitutions, shell options, find -exec and xargs", () => {
  const cases: [string, string][] = [
    ["x=$(make); echo $x", "cmd:make"],
    ['echo "$(npm test)"', "cmd:npm:test"],
    ["echo `npm test`", "cmd:npm:test"],
    ["out=$(cargo build)", "cmd:cargo:build"],
    ["python3 -u -m pytest", "cmd:pytest"],
    ["python -X dev -W ignore -m pytest -q", "cmd:pytest"],
    ["python -m unittest discover", "cmd:unittest"],
    ["bash -o pipefail -c 'npm test'", "cmd:npm:test"],
    ["bash -euxo pipefail -c 'npm test'", "cmd:npm:test"],
    ["find . -name '*.py' -exec pytest {} \\;", "cmd:pytest"],
    ["ls | xargs -n1 -P4 make", "cmd:make"],
    ["parallel -j4 make ::: a b", "cmd:make"],
    ["$(which python3) -m pytest", "cmd:pytest"],
    ["npm run test:e2e", "cmd:npm:run:test:e2e"],
    ["npm run build:prod", "cmd:npm:run:build:prod"],
  ];
  for (const [command, cls] of cases) assert.equal(classify(command).class, cls, command);
  assert.equal(classify("yarn jest").category, "test");
  assert.equal(classify("npm run test:e2e").category, "test");
});

Deno.test("classify() keeps generated names and here-document bodies out of class names", () => {
  assert.equal(classify("cat <<EOF\nhello world\nEOF").class, "cmd:cat");
  assert.equal(
    classify("cat > x.py <<'EOF'\nimport sys\nwhile True: pass\nEOF\npython3 x.py").class,
    "cmd:python:x.py",
  );
  assert.equal(classify("cat <<-END\n\tfoo bar\n\tEND\nmake test").class, "cmd:make:test");
  assert.equal(
    classify("python3 /tmp/tmp_9f8e7d6c.py").class,
    classify("python3 /tmp/tmp_1a2b3c4d.py").class,
  );
  assert.equal(classify("./run-1234.sh").class, classify("./run-5678.sh").class);
  assert.equal(classify("make foo_1234").class, classify("make foo_9876").class);
  assert.equal(classify("1234").class, classify("5678").class);
  assert.equal(classify("$((1+2))").class, "cmd:unknown");
  // Short digit runs are names, not ids.
  assert.equal(classify("python3 test2.py").class, "cmd:python:test2.py");
  assert.equal(classify("md5sum x").class, "cmd:md5sum");
});

Deno.test("classify() stays linear on hostile input", () => {
  // Each of these once took seconds to hours in a backtracking regex.
  const inputs = [
    "[task:" + " ".repeat(60_000),
    "[category:" + " \t".repeat(30_000) + "b",
    "[task:".repeat(10_000),
    `claude -p '${"explain how ".repeat(5000)}'`,
    "$(".repeat(5000),
    "`".repeat(5001),
    "<<EOF ".repeat(5000),
  ];
  for (const input of inputs) assert.ok(classify(input).class.length > 0);
});
