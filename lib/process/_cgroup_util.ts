/**
 * Helpers the cgroup modules share: how this process reaches cgroup files,
 * and how their flat-keyed files read.
 *
 * @module
 */
import { WRAPPER_SHELL } from "./launch.ts";
import { type CgroupFs, cgroupFs } from "./cgroup_fs.ts";

/** The number after `key` in a flat-keyed file (`populated 1`, `oom_kill 0`); null if absent. */
export function keyed(text: string | null, key: string): number | null {
  const m = text?.match(new RegExp(`^${key} (\\d+)$`, "m"));
  return m ? Number(m[1]) : null;
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How this process reaches cgroup hierarchies (lib/process/cgroup_fs.ts); null: it cannot. */
export const reach = (): CgroupFs | null => cgroupFs(WRAPPER_SHELL);
