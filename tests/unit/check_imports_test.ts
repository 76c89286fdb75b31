import assert from "node:assert/strict";
import { checkImports, layerOf, relativeImports } from "../../scripts/check_imports.ts";

async function tree(files: Record<string, string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "check_imports_" });
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(`${root}/${path.slice(0, path.lastIndexOf("/") + 1)}`, { recursive: true });
    await Deno.writeTextFile(`${root}/${path}`, text);
  }
  return root;
}

Deno.test("checkImports() lists every import that points up a layer, type-only ones too", async () => {
  const root = await tree({
    "main.ts": 'import { app } from "./routes/app.ts";\n',
    "routes/app.ts": 'import { s } from "../lib/session/session.ts";\nexport const app = s;\n',
    "lib/errors.ts": "export class E extends Error {}\n",
    "lib/session/session.ts": 'import { E } from "../errors.ts";\nexport const s = E;\n',
    // Up: store (1) -> session (3), as a multi-line type import.
    "lib/store/store.ts": 'import type {\n  s,\n} from "../session/session.ts";\n',
    // Up: config (0) -> routes (5), as a re-export.
    "lib/config/config.ts": 'export { app } from "../../routes/app.ts";\n',
    // Not counted: a doc example and a line comment.
    "lib/output/text.ts": '/**\n * import { app } from "../../routes/app.ts";\n */\n' +
      '// import "../protocol/x.ts";\nexport {};\n',
  });
  try {
    const found = await checkImports(root);
    assert.deepEqual(
      found.map((v) => [v.file, v.line, v.target, v.fromRank, v.toRank]),
      [
        ["lib/config/config.ts", 1, "routes/app.ts", 0, 6],
        ["lib/store/store.ts", 3, "lib/session/session.ts", 1, 4],
      ],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("checkImports() passes a tree whose imports all point down", async () => {
  const root = await tree({
    "main.ts": 'import "./routes/app.ts";\nimport "./lib/log.ts";\n',
    "routes/app.ts": 'import "../lib/protocol/mcp/tools.ts";\n',
    "lib/protocol/mcp/tools.ts": 'import "../jsonrpc.ts";\nimport "../../core/execution.ts";\n',
    "lib/protocol/jsonrpc.ts": "",
    "lib/core/execution.ts": 'import "../timing/complexity.ts";\n',
    "lib/timing/complexity.ts": "",
    "lib/log.ts": 'import "./config/config.ts";\n',
    "lib/config/config.ts": 'import "../timing/complexity.ts";\n',
  });
  try {
    assert.deepEqual(await checkImports(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("checkImports() refuses a file in a folder with no layer", async () => {
  const root = await tree({ "lib/misc/x.ts": "" });
  try {
    await assert.rejects(checkImports(root), /lib\/misc\/x\.ts is in no layer/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("layerOf() ranks folders, the timing levels' leaf and nothing outside", () => {
  assert.equal(layerOf("lib/utf8.ts"), 0);
  assert.equal(layerOf("lib/config/load.ts"), 0);
  assert.equal(layerOf("lib/security/auth.ts"), 1);
  assert.equal(layerOf("lib/timing/classify.ts"), 2);
  assert.equal(layerOf("lib/timing/complexity.ts"), 0);
  assert.equal(layerOf("lib/cluster/cluster.ts"), 3);
  assert.equal(layerOf("lib/session/session.ts"), 4);
  assert.equal(layerOf("lib/protocol/legacy/legacy.ts"), 5);
  assert.equal(layerOf("routes/health.ts"), 6);
  assert.equal(layerOf("main.ts"), 7);
  assert.equal(layerOf("scripts/bench.ts"), null);
});

Deno.test("relativeImports() reads dynamic imports and skips bare specifiers", () => {
  assert.deepEqual(
    relativeImports('import { z } from "zod";\nconst m = await import("./m.ts");\n'),
    [{ specifier: "./m.ts", line: 2 }],
  );
});
