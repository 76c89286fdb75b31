/**
 * bwrap's options for a sandbox layout (lib/security/sandbox.ts): the
 * read-only root, the writable roots, the covers over hidden paths, the
 * namespaces and the capabilities, laid out parents first.
 *
 * @module
 */

/** What a sandbox is made of. Paths are real (symlink-free) and absolute. */
export interface SandboxLayout {
  network: "none" | "host";
  /** Directories bind-mounted writable at their own paths (the workspace roots). */
  writable: readonly string[];
  /** Paths covered over: a directory by an empty tmpfs, a file by /dev/null. */
  hidden: readonly { path: string; directory: boolean }[];
  /** Capabilities the command's first process keeps (setpriv needs CAP_SETUID and CAP_SETGID). */
  capabilities?: readonly string[];
}

const depth = (path: string) => path.split("/").filter((s) => s !== "").length;

/** Whether `path` is `dir` or below it. */
export function within(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

/**
 * bwrap's options for `layout`, without `--chdir` and the final `--`.
 * Mounts go parents first, so a workspace root inside a hidden directory
 * is shown again, and a hidden path inside a root (or a root inside /tmp)
 * is covered after the root is mounted; a hidden path that nothing shows
 * anyway (below /tmp outside any root) is left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bwrapOptions } from "./bwrap_options.ts";
 * const options = bwrapOptions({ network: "none", writable: ["/srv/ws"],
 *   hidden: [{ path: "/srv/ws/.keys", directory: false }, { path: "/tmp/k", directory: false }] });
 * assert.deepEqual(options.slice(0, 3), ["--ro-bind", "/", "/"]);
 * assert.ok(options.includes("--unshare-net"));
 * const text = options.join(" ");
 * assert.ok(text.indexOf("--bind /srv/ws /srv/ws") < text.indexOf("--ro-bind /dev/null /srv/ws/.keys"));
 * assert.ok(!text.includes("/tmp/k"));
 * ```
 */
export function bwrapOptions(layout: SandboxLayout): string[] {
  type Mount = { path: string; args: string[]; shows: boolean; hide: boolean };
  const mounts: Mount[] = [
    { path: "/dev", args: ["--dev", "/dev"], shows: false, hide: false },
    { path: "/proc", args: ["--proc", "/proc"], shows: false, hide: false },
    { path: "/tmp", args: ["--perms", "1777", "--tmpfs", "/tmp"], shows: false, hide: false },
    // Without a network, the Unix sockets of the machine's daemons (docker,
    // D-Bus, databases) live under /run: cover it too.
    ...(layout.network === "none"
      ? [{ path: "/run", args: ["--perms", "0755", "--tmpfs", "/run"], shows: false, hide: false }]
      : []),
    ...layout.writable.map((r) => ({ path: r, args: ["--bind", r, r], shows: true, hide: false })),
    ...layout.hidden.map(({ path, directory }) => ({
      path,
      args: directory ? ["--tmpfs", path] : ["--ro-bind", "/dev/null", path],
      shows: false,
      hide: true,
    })),
  ];
  // Stable: equal depths keep the order above.
  mounts.sort((a, b) => depth(a.path) - depth(b.path));
  const made: Mount[] = [{ path: "/", args: [], shows: true, hide: false }];
  const covering = (path: string) =>
    made.filter((m) => within(path, m.path)).reduce((a, b) =>
      depth(b.path) >= depth(a.path) ? b : a
    );
  for (const mount of mounts) {
    if (mount.hide && !covering(mount.path).shows) continue;
    if (!mount.hide && mount.shows) {
      // A root inside a tmpfs (/tmp, a hidden directory): bwrap would make
      // the directories on the way 0700, which only root could pass.
      const parts = mount.path.split("/").filter((s) => s !== "");
      for (let i = 1; i < parts.length; i++) {
        const dir = `/${parts.slice(0, i).join("/")}`;
        const over = covering(dir);
        if (!over.shows && over.path !== dir) {
          made.push({
            path: dir,
            args: ["--perms", "0755", "--dir", dir],
            shows: false,
            hide: false,
          });
        }
      }
    }
    made.push(mount);
  }
  return [
    "--ro-bind",
    "/",
    "/",
    ...made.flatMap((m) => m.args),
    "--unshare-pid",
    // lib/process/launch.ts's shell is PID 1: the group empties when bwrap exits.
    "--as-pid-1",
    "--unshare-ipc",
    ...(layout.network === "none" ? ["--unshare-net"] : []),
    "--die-with-parent",
    // As root, bwrap would keep every capability: CAP_SYS_ADMIN alone could
    // remount / read-write.
    "--cap-drop",
    "ALL",
    ...(layout.capabilities ?? []).flatMap((cap) => ["--cap-add", cap]),
  ];
}
