/**
 * Fails on an import that points up a layer (run by `deno task check`).
 *
 * Every relative import of every .ts file in lib/, routes/, cli/ and main.ts is
 * read, type-only imports and re-exports included, since a type import still
 * ties a lower layer to a higher one. An import may go to its own layer or a
 * lower one:
 *
 * | rank | where |
 * |---|---|
 * | 0 | lib/*.ts, lib/config/ |
 * | 1 | lib/output/, lib/process/, lib/security/, lib/store/ |
 * | 2 | lib/core/, lib/ops/, lib/timing/ |
 * | 3 | lib/cluster/ (runs of other nodes) |
 * | 4 | lib/session/ |
 * | 5 | lib/protocol/ (and its folders) |
 * | 6 | routes/, cli/ (the client) |
 * | 7 | main.ts |
 *
 * Imports in comments (doc examples) are not counted: they run as tests, not
 * as part of the service.
 *
 * @module
 */
import { dirname, join, normalize, relative } from "node:path";

/** Ranks by folder, below the repository root; a longer prefix wins. */
const LAYERS: ReadonlyArray<readonly [prefix: string, rank: number]> = [
  ["lib/", 0],
  ["lib/config/", 0],
  ["lib/output/", 1],
  ["lib/process/", 1],
  ["lib/security/", 1],
  ["lib/store/", 1],
  ["lib/core/", 2],
  ["lib/ops/", 2],
  ["lib/timing/", 2],
  ["lib/cluster/", 3],
  ["lib/session/", 4],
  ["lib/protocol/", 5],
  ["routes/", 6],
  ["cli/", 6],
  ["main.ts", 7],
];

/**
 * Files ranked apart from their folder. `lib/timing/complexity.ts` holds the
 * complexity levels and their default limits with no imports at all, and
 * the settings table (rank 0) needs them; it is the levels' one source.
 */
const FILE_RANKS: Readonly<Record<string, number>> = {
  "lib/timing/complexity.ts": 0,
};

/** One import that points up a layer. */
export interface Violation {
  /** The importing file, relative to the root. */
  file: string;
  /** 1-based line of the import. */
  line: number;
  /** The specifier as written. */
  specifier: string;
  /** The imported file, relative to the root. */
  target: string;
  fromRank: number;
  /** Null: the target is in no layer (a test or a script). */
  toRank: number | null;
}

/**
 * The layer of a file, by its path relative to the root; null outside the layers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerOf } from "./check_imports.ts";
 * assert.equal(layerOf("lib/errors.ts"), 0);
 * assert.equal(layerOf("lib/protocol/mcp/tools.ts"), 4);
 * assert.equal(layerOf("tests/_helpers.ts"), null);
 * ```
 */
export function layerOf(path: string): number | null {
  const fixed = FILE_RANKS[path];
  if (fixed !== undefined) return fixed;
  let best: readonly [string, number] | undefined;
  for (const layer of LAYERS) {
    const [prefix] = layer;
    const matches = prefix.endsWith("/") ? path.startsWith(prefix) : path === prefix;
    if (!matches || (best !== undefined && best[0].length >= prefix.length)) continue;
    best = layer;
  }
  // lib/<folder>/ not in the table has no rank: only lib/*.ts itself is rank 0.
  if (best?.[0] === "lib/" && path.slice(4).includes("/")) return null;
  return best?.[1] ?? null;
}

/** Blanks out comments, keeping line breaks so line numbers still match. */
function stripComments(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " "))
    .replace(/^\s*\/\/.*$/gm, "");
}

const IMPORT =
  /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

/**
 * The relative imports of one file: specifier and 1-based line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { relativeImports } from "./check_imports.ts";
 * const source = 'import type {\n  A,\n} from "../a.ts";\n// import "../b.ts";\nimport "npm:x";\n';
 * assert.deepEqual(relativeImports(source), [{ specifier: "../a.ts", line: 3 }]);
 * ```
 */
export function relativeImports(source: string): { specifier: string; line: number }[] {
  const code = stripComments(source);
  const out: { specifier: string; line: number }[] = [];
  for (const m of code.matchAll(IMPORT)) {
    const specifier = m[1] ?? m[2]!;
    if (!specifier.startsWith(".")) continue;
    const end = m.index + m[0].length;
    out.push({ specifier, line: code.slice(0, end).split("\n").length });
  }
  return out;
}

async function* tsFiles(root: string, dir: string): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(join(root, dir)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* tsFiles(root, path);
    else if (entry.isFile && entry.name.endsWith(".ts")) yield path;
  }
}

/**
 * Every import under `root` (lib/, routes/, main.ts) that points up a layer
 * or out of the layers.
 *
 * @example A lower layer that imports a higher one
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkImports } from "./check_imports.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/lib/store`, { recursive: true });
 * await Deno.mkdir(`${root}/lib/session`);
 * await Deno.writeTextFile(`${root}/lib/session/s.ts`, 'import "../store/x.ts";\n');
 * await Deno.writeTextFile(`${root}/lib/store/x.ts`, 'import type { S } from "../session/s.ts";\n');
 * const found = await checkImports(root);
 * assert.deepEqual(found.map((v) => [v.file, v.target]), [["lib/store/x.ts", "lib/session/s.ts"]]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function checkImports(root: string): Promise<Violation[]> {
  const files: string[] = [];
  for (const dir of ["lib", "routes", "cli"]) {
    files.push(...await Array.fromAsync(tsFiles(root, dir)));
  }
  try {
    if ((await Deno.stat(join(root, "main.ts"))).isFile) files.push("main.ts");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const violations: Violation[] = [];
  for (const file of files) {
    const fromRank = layerOf(file);
    if (fromRank === null) {
      throw new Error(
        `${file} is in no layer: add its folder to LAYERS in scripts/check_imports.ts`,
      );
    }
    const source = await Deno.readTextFile(join(root, file));
    for (const { specifier, line } of relativeImports(source)) {
      const target = relative(root, normalize(join(root, dirname(file), specifier)));
      const toRank = layerOf(target);
      if (toRank !== null && toRank <= fromRank) continue;
      violations.push({ file, line, specifier, target, fromRank, toRank });
    }
  }
  return violations;
}

if (import.meta.main) {
  const root = join(dirname(new URL(import.meta.url).pathname), "..");
  const violations = await checkImports(root);
  for (const v of violations) {
    const to = v.toRank === null ? "outside the layers" : `rank ${v.toRank}`;
    console.error(
      `${v.file}:${v.line}: imports ${v.specifier} (${v.target}, ${to}) from rank ${v.fromRank}`,
    );
  }
  if (violations.length > 0) {
    console.error(`${violations.length} import(s) point up a layer (scripts/check_imports.ts)`);
    Deno.exit(1);
  }
}
