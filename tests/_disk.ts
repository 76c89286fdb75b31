/**
 * Disks that fail on demand, for store failure tests (root only): `chattr +i`
 * makes files and directories immutable, a tiny tmpfs fills up.
 *
 * @module
 */

/** Whether the tests can use chattr and mount (they need root). */
export const canBreakDisks = Deno.uid() === 0;

async function run(program: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(program, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${program} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Makes `paths` immutable (`+i`) or writable again (`-i`). */
export function chattr(flag: "+i" | "-i", ...paths: string[]): Promise<void> {
  return run("chattr", [flag, ...paths]);
}

/** `dir` and every file in it, for {@linkcode chattr}. */
export async function dirAndFiles(dir: string): Promise<string[]> {
  const out = [dir];
  for await (const e of Deno.readDir(dir)) if (e.isFile) out.push(`${dir}/${e.name}`);
  return out;
}

/** Mounts a tmpfs of `size` (e.g. `"256k"`) on `dir`. */
export function mountTmpfs(dir: string, size: string): Promise<void> {
  return run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
}

/** Unmounts `dir` (lazily, so a process still holding a file cannot keep it). */
export function umount(dir: string): Promise<void> {
  return run("umount", ["-l", dir]);
}

/** Writes `path` until the disk is full. */
export async function fillDisk(path: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true });
  const block = new Uint8Array(4096);
  try {
    for (;;) await file.write(block);
  } catch {
    // ENOSPC: full.
  } finally {
    file.close();
  }
}
