import assert from "node:assert/strict";
import { resolveCwd, WorkspaceError } from "../../lib/security/workspace.ts";

/**
 * A temp tree:
 *   base/root/project/src   base/root/file.txt   base/outside/   base/root-sibling/
 *   base/root/escape -> base/outside      (symlink leading out)
 *   base/root/inner  -> base/root/project (symlink staying in)
 *   base/rootlink    -> base/root         (a root given through a symlink)
 */
async function withTree(fn: (base: string) => Promise<void>): Promise<void> {
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(`${base}/root/project/src`, { recursive: true });
    await Deno.mkdir(`${base}/outside`);
    await Deno.mkdir(`${base}/root-sibling`);
    await Deno.writeTextFile(`${base}/root/file.txt`, "x");
    await Deno.symlink(`${base}/outside`, `${base}/root/escape`);
    await Deno.symlink(`${base}/root/project`, `${base}/root/inner`);
    await Deno.symlink(`${base}/root`, `${base}/rootlink`);
    await fn(base);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

async function assertRefused(promise: Promise<string>, reason: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WorkspaceError, String(err));
    assert.equal(err.name, "WorkspaceError");
    assert.equal(err.code, -32602);
    assert.equal(err.message, `Invalid cwd: ${reason}`);
    assert.deepEqual(err.data, { field: "cwd", reason });
    return true;
  });
}

Deno.test("resolveCwd() accepts the root and directories inside it", async () => {
  await withTree(async (base) => {
    const roots = [`${base}/root`];
    assert.equal(await resolveCwd(`${base}/root`, roots), `${base}/root`);
    assert.equal(await resolveCwd(`${base}/root/`, roots), `${base}/root`);
    assert.equal(await resolveCwd(`${base}/root/project/src`, roots), `${base}/root/project/src`);
  });
});

Deno.test("resolveCwd() returns the real path, with .. and inner symlinks resolved", async () => {
  await withTree(async (base) => {
    const roots = [`${base}/root`];
    assert.equal(
      await resolveCwd(`${base}/root/project/src/../..`, roots),
      `${base}/root`,
    );
    assert.equal(await resolveCwd(`${base}/root/inner/src`, roots), `${base}/root/project/src`);
  });
});

Deno.test("resolveCwd() refuses a symlink escaping the root", async () => {
  await withTree(async (base) => {
    const roots = [`${base}/root`];
    await assertRefused(resolveCwd(`${base}/root/escape`, roots), "outside the workspace roots");
    await assertRefused(
      resolveCwd(`${base}/root/escape/.`, roots),
      "outside the workspace roots",
    );
  });
});

Deno.test("resolveCwd() refuses .. leading out of the root", async () => {
  await withTree(async (base) => {
    const roots = [`${base}/root`];
    await assertRefused(resolveCwd(`${base}/root/..`, roots), "outside the workspace roots");
    await assertRefused(
      resolveCwd(`${base}/root/project/../../outside`, roots),
      "outside the workspace roots",
    );
    await assertRefused(resolveCwd("/", roots), "outside the workspace roots");
  });
});

Deno.test("resolveCwd() compares path segments, not string prefixes", async () => {
  await withTree(async (base) => {
    // `${base}/root-sibling` starts with the string `${base}/root`.
    await assertRefused(
      resolveCwd(`${base}/root-sibling`, [`${base}/root`]),
      "outside the workspace roots",
    );
  });
});

Deno.test("resolveCwd() follows a root given through a symlink", async () => {
  await withTree(async (base) => {
    const roots = [`${base}/rootlink`];
    assert.equal(await resolveCwd(`${base}/root/project`, roots), `${base}/root/project`);
    assert.equal(await resolveCwd(`${base}/rootlink/project`, roots), `${base}/root/project`);
    await assertRefused(resolveCwd(`${base}/outside`, roots), "outside the workspace roots");
  });
});

Deno.test("resolveCwd() accepts a directory inside any of several roots", async () => {
  await withTree(async (base) => {
    const roots = [`${base}/missing-root`, `${base}/root`, `${base}/outside`];
    assert.equal(await resolveCwd(`${base}/outside`, roots), `${base}/outside`);
    assert.equal(await resolveCwd(`${base}/root/escape`, roots), `${base}/outside`);
    await assertRefused(resolveCwd(`${base}/root-sibling`, roots), "outside the workspace roots");
  });
});

Deno.test("resolveCwd() refuses a missing path or a file inside the root", async () => {
  await withTree(async (base) => {
    const roots = [`${base}/root`];
    await assertRefused(resolveCwd(`${base}/root/nope`, roots), "does not exist");
    await assertRefused(resolveCwd(`${base}/root/file.txt`, roots), "not a directory");
  });
});

Deno.test("resolveCwd() does not reveal whether paths outside the roots exist", async () => {
  await withTree(async (base) => {
    const roots = [`${base}/root`];
    await assertRefused(resolveCwd(`${base}/outside/nope`, roots), "outside the workspace roots");
    await assertRefused(resolveCwd(`${base}/root/../nope`, roots), "outside the workspace roots");
    await assertRefused(resolveCwd("/no/such/dir", roots), "outside the workspace roots");
  });
});

Deno.test("resolveCwd() allows any existing directory when no roots are set", async () => {
  await withTree(async (base) => {
    assert.equal(await resolveCwd(`${base}/root/escape`, []), `${base}/outside`);
    assert.equal(await resolveCwd(`${base}/root/..`, []), base);
    await assertRefused(resolveCwd(`${base}/nope`, []), "does not exist");
    await assertRefused(resolveCwd(`${base}/root/file.txt`, []), "not a directory");
  });
});

Deno.test("resolveCwd() refuses everything when no root exists", async () => {
  await withTree(async (base) => {
    await assertRefused(
      resolveCwd(`${base}/root`, [`${base}/missing-root`]),
      "outside the workspace roots",
    );
  });
});
