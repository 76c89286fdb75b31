/**
 * cc-executor: run commands for remote clients over WebSocket, safely.
 *
 * Loads the config (flags, env, defaults), starts the server, and drains
 * gracefully on SIGINT/SIGTERM: every process group it started is gone
 * before the process exits.
 *
 * @module
 */
import { ConfigError, loadConfig, settingsTable } from "./lib/config.ts";
import { logger, setupLogging } from "./lib/log.ts";
import { startServer } from "./lib/server.ts";

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log("cc-executor: run commands over WebSocket.\n\nSettings:\n" + settingsTable());
    Deno.exit(0);
  }
  let config;
  try {
    config = loadConfig({ args: Deno.args });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`cc-executor: ${err.message}`);
    Deno.exit(2);
  }
  await setupLogging(config.logLevel);
  const log = logger("main");
  const server = startServer(config);
  log.info("cc-executor listening on {url}", { url: server.wsUrl });

  let stopping = false;
  const onSignal = (name: string) => {
    // deno task and terminals often deliver one Ctrl-C twice: repeats are
    // ignored, and shutdown is bounded by CC_EXECUTOR_SHUTDOWN_TIMEOUT anyway.
    if (stopping) return;
    stopping = true;
    log.info("{signal}: shutting down", { signal: name });
    void server.shutdown().then(() => {
      log.info("Shutdown complete");
      Deno.exit(0);
    });
  };
  Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
  // A bug in a handler must never take the server (and its children's supervision) down.
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    log.error("Unhandled rejection: {reason}", { reason: e.reason });
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    log.error("Uncaught error: {error}", { error: e.error });
  });
}
