/**
 * cc-executor: run commands for remote clients over WebSocket, safely.
 *
 * Loads the config (flags, env, defaults), starts the server, and drains
 * gracefully on SIGINT/SIGTERM: every process group it started is gone
 * before the process exits.
 *
 * @module
 */
import { checkExposure, loadKeyring, reloadKeyring } from "./lib/security/access.ts";
import { ConfigError, loadConfig, settingsTable } from "./lib/config/config.ts";
import { logger, setupLogging } from "./lib/log.ts";
import { type ServerHandle, startServer } from "./routes/server.ts";

/** An env var, or undefined when it is unset or not granted. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log("cc-executor: run commands over WebSocket.\n\nSettings:\n" + settingsTable());
    Deno.exit(0);
  }
  let config, keyring, warning;
  try {
    config = loadConfig({ args: Deno.args });
    keyring = await loadKeyring(config);
    warning = checkExposure(config, keyring);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`cc-executor: ${err.message}`);
    Deno.exit(2);
  }
  await setupLogging(config.logLevel);
  const log = logger("main");
  if (warning !== null) log.warning(warning);
  // Signal handlers go in before the listener opens, so a SIGTERM that
  // arrives at any moment after startup still drains instead of killing us.
  // Set once the server listens; the handlers below may fire before that.
  const running: { server?: ServerHandle } = {};
  let stopping = false;
  const onSignal = (name: string) => {
    // deno task and terminals often deliver one Ctrl-C twice: repeats are
    // ignored, and shutdown is bounded by CC_EXECUTOR_SHUTDOWN_TIMEOUT anyway.
    if (stopping) return;
    stopping = true;
    log.info("{signal}: shutting down", { signal: name });
    if (running.server === undefined) Deno.exit(0);
    void running.server.shutdown().then(() => {
      log.info("Shutdown complete");
      Deno.exit(0);
    });
  };
  Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
  // Under `deno task start` the launcher forwards signals; if it dies without
  // one (SIGKILL), this process is reparented and drains as for SIGTERM.
  const launcher = Number(readEnv("CC_EXECUTOR_LAUNCHER_PID") ?? NaN);
  if (Number.isInteger(launcher) && launcher > 0) {
    const watch = setInterval(() => {
      if (Deno.ppid === launcher) return;
      clearInterval(watch);
      onSignal("launcher gone");
    }, 1000);
    Deno.unrefTimer(watch);
  }
  // SIGHUP re-reads the API keys; on any error the old keys stay in force.
  const keysConfig = config;
  Deno.addSignalListener("SIGHUP", () => {
    if (running.server === undefined) return;
    const server = running.server;
    reloadKeyring(server.keyring, keysConfig).then(
      (count) => {
        const revoked = server.revokeSessions();
        log.info("SIGHUP: {count} API keys loaded; {revoked} sessions of revoked keys ended", {
          count,
          revoked,
        });
      },
      (err) => log.error("SIGHUP: keys not reloaded: {error}", { error: String(err) }),
    );
  });

  let server: ServerHandle;
  try {
    server = await startServer(config, { keyring });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.fatal(err.message);
    Deno.exit(2);
  }
  running.server = server;
  log.info("cc-executor listening on {url}", { url: server.wsUrl });
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
