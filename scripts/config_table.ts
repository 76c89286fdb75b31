/**
 * Prints the README's configuration table from `lib/config/settings.ts`, so the
 * documented settings can never drift from the real ones
 * (`tests/unit/config_test.ts` checks the README holds exactly this table).
 *
 * @module
 */
import { settingsTable } from "../lib/config/readme_table.ts";

console.log(settingsTable());
