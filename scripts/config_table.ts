/**
 * Prints the README's configuration table from `lib/config.ts`, so the
 * documented settings can never drift from the real ones
 * (`tests/config_test.ts` checks the README holds exactly this table).
 *
 * @module
 */
import { settingsTable } from "../lib/config.ts";

console.log(settingsTable());
