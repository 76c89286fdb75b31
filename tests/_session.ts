/**
 * Sessions without a server, wired from real parts: a registry, metrics, the
 * learned time limits on an in-memory store, and no hooks. One place to
 * change when the session's collaborators change.
 *
 * @module
 */
import { type Config, loadConfig } from "../lib/config/config.ts";
import { ExecutionRegistry, type RegistryOptions } from "../lib/core/execution_registry.ts";
import { Metrics } from "../lib/ops/metrics.ts";
import { type CloseConnection, Session, type SessionDeps } from "../lib/session/session.ts";
import { SessionManager, type SessionManagerOptions } from "../lib/session/session_manager.ts";
import { sessionServices } from "./_helpers.ts";
import { HookRunner } from "../lib/ops/hooks.ts";
import type { TimeLimits } from "../lib/timing/time_limits.ts";

// One store per test file, made at import: the tests themselves open nothing long-lived.
const services = await sessionServices();

/** The service's config from command-line `args`, with this process's PATH. */
export function testConfig(args: string[] = []): Config {
  return loadConfig({ args, getEnv: (name) => name === "PATH" ? Deno.env.get("PATH") : undefined });
}

/** What to wire: `config` (or CLI `args` for a full config) and the registry's retention. */
export interface SessionFixtureOptions {
  /** A full config from these flags (ignored when `config` is given). */
  args?: string[];
  /** Just the settings a session reads. */
  config?: SessionDeps["config"];
  /** Retention of finished runs; 60 s and 10 runs unless given. */
  registry?: RegistryOptions;
  /** The hooks to run (none unless given). */
  hooks?: HookRunner;
}

/** The collaborators behind a session, each reachable by the test. */
export interface SessionFixture {
  deps: SessionDeps;
  /** The learned time limits and hooks, as the protocols are handed them. */
  services: { timeLimits: TimeLimits; hooks: HookRunner };
  registry: ExecutionRegistry;
  metrics: Metrics;
}

function wire(options: SessionFixtureOptions): SessionFixture {
  const registry = new ExecutionRegistry(
    options.registry ?? { retentionSeconds: 60, maxRetained: 10 },
  );
  const metrics = new Metrics();
  const config = options.config ?? testConfig(options.args);
  const wired = { ...services, hooks: options.hooks ?? services.hooks };
  return { deps: { registry, metrics, config, ...wired }, services: wired, registry, metrics };
}

/** One session of the local principal; `closeConnection` defaults to doing nothing. */
export function makeSession(
  options: SessionFixtureOptions & { closeConnection?: CloseConnection } = {},
): SessionFixture & { session: Session } {
  const fixture = wire(options);
  return { ...fixture, session: new Session(fixture.deps, options.closeConnection ?? (() => {})) };
}

/** A session manager on the same wiring. */
export function makeSessionManager(
  manager: SessionManagerOptions,
  options: SessionFixtureOptions = {},
): SessionFixture & { manager: SessionManager } {
  const fixture = wire(options);
  return { ...fixture, manager: new SessionManager(fixture.deps, manager) };
}

/**
 * Runs `fn` with hooks loaded from a hooks file holding `hooks` (e.g.
 * `{ pre_execute: [{ name: "before", argv: ["true"] }] }`), written to a
 * temporary directory that is removed after.
 */
export async function withHooks(
  hooks: Record<string, unknown>,
  fn: (hooks: HookRunner) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/hooks.json`, JSON.stringify({ hooks }));
    await fn(
      await HookRunner.load(`${dir}/hooks.json`, {
        childEnv: { PATH: "/usr/bin:/bin" },
        killGrace: 0.3,
      }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
