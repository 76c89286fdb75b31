/**
 * The README's configuration table, generated from the settings table so it
 * cannot drift (`deno task config-table`).
 *
 * @module
 */
import { describe, type SettingSpec } from "./kind.ts";
import { envName, SETTINGS } from "./settings.ts";

/**
 * The README's configuration table, as Markdown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { settingsTable } from "./readme_table.ts";
 * assert.match(settingsTable(), /^\| `CC_EXECUTOR_PORT` \(alias `DEFAULT_PORT`\) \| `--port` /m);
 * ```
 */
export function settingsTable(): string {
  const rows = SETTINGS.map((s: SettingSpec) => {
    const alias = s.aliases?.length
      ? ` (alias ${s.aliases.map((a) => `\`${a}\``).join(", ")})`
      : "";
    return `| \`${envName(s)}\`${alias} | \`--${s.flag}\` | \`${s.default || '""'}\` | ` +
      `${s.doc}; ${describe(s.kind)} |`;
  });
  return ["| env var | flag | default | what |", "|---|---|---|---|", ...rows].join("\n");
}
