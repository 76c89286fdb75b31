/**
 * Prints the README's configuration table from `lib/config/config.ts`, so the
 * documented settings can never drift from the real ones
 * (`tests/unit/config_test.ts` checks the README holds exactly this table).
 *
 * @module
 */
import { settingsTable } from "../lib/config/config.ts";

console.log(settingsTable());
