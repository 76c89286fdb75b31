/**
 * Where cgroup hierarchies are mounted and where this server's cgroups are
 * on them: the layout {@linkcode detectLayout} reads from /proc, before
 * anything is made (lib/process/cgroup.ts).
 *
 * @module
 */
import { join, normalize } from "node:path";
import { WRAPPER_SHELL } from "./launch.ts";
import { reach } from "./_cgroup_util.ts";
import type { CgroupController } from "../types.ts";

/** The controllers runs can be limited with. */
export const CONTROLLERS: readonly CgroupController[] = ["memory", "pids"];

/** The directory `cgroup-root: auto` makes in the server's own cgroup. */
const AUTO_DIR = "cc-executor";

/** A mounted hierarchy: its mount point and the cgroup shown there ("/" unless bind-mounted). */
interface Mount {
  point: string;
  root: string;
}

interface Mounts {
  v2: Mount | null;
  v1: Partial<Record<CgroupController, Mount>>;
}

/** A process's cgroup paths, from /proc/<pid>/cgroup. */
interface OwnPaths {
  v2: string | null;
  v1: Partial<Record<CgroupController, string>>;
}

function parseMountinfo(text: string): Mounts {
  const mounts: Mounts = { v2: null, v1: {} };
  for (const line of text.split("\n")) {
    const [left, right] = line.split(" - ");
    if (right === undefined) continue;
    const fields = left!.split(" ");
    // Octal escapes (\040 for a space) are left alone: cgroup mount points have none.
    const mount = { root: fields[3] ?? "/", point: fields[4] ?? "" };
    const [type, , options = ""] = right.split(" ");
    if (type === "cgroup2") mounts.v2 ??= mount;
    if (type !== "cgroup") continue;
    const names = options.split(",");
    for (const c of CONTROLLERS) if (names.includes(c)) mounts.v1[c] ??= mount;
  }
  return mounts;
}

function parseOwn(text: string): OwnPaths {
  const own: OwnPaths = { v2: null, v1: {} };
  for (const line of text.split("\n")) {
    const [id, names, ...rest] = line.split(":");
    const path = rest.join(":");
    if (id === "0" && names === "") own.v2 = path;
    for (const c of (names ?? "").split(",")) {
      if ((CONTROLLERS as readonly string[]).includes(c)) own.v1[c as CgroupController] = path;
    }
  }
  return own;
}

/** The directory of cgroup `path` on `mount`; null when the mount does not show it. */
function dirOn(mount: Mount, path: string | null | undefined): string | null {
  if (path === null || path === undefined) return null;
  const root = mount.root === "/" ? "" : mount.root;
  if (root !== "" && path !== root && !path.startsWith(`${root}/`)) return null;
  return normalize(mount.point + (path.slice(root.length) || "/"));
}

/** Where this server's instance directories go, by hierarchy. */
export interface CgroupLayout {
  /** The cgroup v2 directory instances are made in (`cgroup-root`). */
  root: string;
  /** Whether `root` was found rather than set (then it is removed again when empty). */
  auto: boolean;
  /** The same on cgroup v1 hierarchies, for controllers the v2 one may lack. */
  v1: Partial<Record<CgroupController, string>>;
}

/**
 * Where runs' cgroups would go for the `cgroup-root` setting `setting`, from
 * this process's /proc/self/mountinfo and /proc/self/cgroup. Creates
 * nothing, and does not check that anything is writable.
 *
 * @returns the layout, or why there is none.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectLayout } from "./cgroup_layout.ts";
 * assert.deepEqual(await detectLayout("off"), { reason: "cgroup-root is off" });
 * ```
 */
export async function detectLayout(setting: string): Promise<CgroupLayout | { reason: string }> {
  if (setting === "off") return { reason: "cgroup-root is off" };
  const fs = reach();
  if (fs === null) {
    return {
      reason: "Deno reaches /sys only with --allow-all, and may not run the helper " +
        `${WRAPPER_SHELL} (a scoped --allow-run list)`,
    };
  }
  const [info, self] = [await fs.read("/proc/self/mountinfo"), await fs.read("/proc/self/cgroup")];
  if (info === null || self === null) return { reason: "/proc/self cannot be read" };
  const mounts = parseMountinfo(info);
  const own = parseOwn(self);
  const v1: CgroupLayout["v1"] = {};
  for (const c of CONTROLLERS) {
    const mount = mounts.v1[c];
    const dir = mount === undefined ? null : dirOn(mount, own.v1[c]);
    if (dir !== null) v1[c] = join(dir, AUTO_DIR);
  }
  if (setting !== "auto") {
    return { root: normalize(setting).replace(/(.)\/$/, "$1"), auto: false, v1 };
  }
  if (mounts.v2 === null) return { reason: "no cgroup v2 hierarchy is mounted" };
  const dir = dirOn(mounts.v2, own.v2);
  if (dir === null) return { reason: "the server's own cgroup v2 is not on its mount" };
  return { root: join(dir, AUTO_DIR), auto: true, v1 };
}
