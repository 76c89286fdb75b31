import assert from "node:assert/strict";
import {
  classify,
  classifyPrompt,
  COMPLEXITIES,
  complexityRank,
  parseClass,
} from "../lib/timing/classify.ts";

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
  assert.equal(classify("ls -la | grep foo").class, "cmd:ls");
  assert.equal(classify("mkdir -p out").class, "cmd:mkdir");
});

Deno.test("classify() gives sleep the complexity its duration needs", () => {
  assert.equal(classify("sleep 1").complexity, "trivial");
  assert.equal(classify("sleep 30").complexity, "low");
  assert.equal(classify("sleep 2m").class, "cmd:sleep:120");
  assert.equal(classify("sleep 2m").complexity, "medium");
  assert.equal(classify("sleep 1h").complexity, "extreme");
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
