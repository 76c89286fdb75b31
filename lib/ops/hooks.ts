/**
 * Hooks: programs run before a command (`pre_execute`), after it
 * (`post_execute`) and when its time limit ends it (`on_timeout`), from a
 * JSON config file. Each is an argv array run with the process-group
 * machinery (never through a shell), with its own time limit and env, and
 * the execution's id, command and (afterwards) status, exit code and
 * duration as `CC_EXECUTOR_*` env vars.
 *
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../config/config.ts";
import { ProcessGroup } from "../process/process_group.ts";
import { utf8Tail } from "../utf8.ts";
import type { Run } from "../core/run.ts";
import type { ExitInfo, HookOutcome } from "../types.ts";

export type { HookOutcome };

/**
 * A hook's outcome as both protocols send it (snake_case): `hook.*`
 * notifications in the legacy protocol, log messages in MCP.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hookFields } from "./hooks.ts";
 * const fields = hookFields({ kind: "pre_execute", name: "lint", ok: false, status: "failed",
 *   exitCode: 1, duration: 0.2, required: false, error: "exit 1", output: "" });
 * assert.equal(fields.exit_code, 1);
 * assert.equal(fields.hook, "pre_execute");
 * ```
 */
export function hookFields(o: HookOutcome) {
  return {
    hook: o.kind,
    name: o.name,
    status: o.status,
    exit_code: o.exitCode,
    duration: o.duration,
    required: o.required,
    error: o.error,
    output: o.output,
  };
}

/** When a hook runs. */
export type HookKind = HookOutcome["kind"];

const HOOK_KINDS: readonly HookKind[] = ["pre_execute", "post_execute", "on_timeout"];

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "env names are letters, digits and _");

const HookSpec = z.strictObject({
  name: z.string().min(1).optional(),
  argv: z.array(z.string().min(1)).min(1),
  timeout: z.number().positive().max(3600).optional(),
  env: z.record(EnvName, z.string()).optional(),
  /** A failing required pre_execute hook stops the command from running. */
  required: z.boolean().optional(),
});

/** The hooks config file. */
export const HooksFile = z.strictObject({
  /** Default time limit of a hook, seconds. */
  timeout: z.number().positive().max(3600).default(30),
  /** Run the hooks of one kind concurrently rather than in order. */
  parallel: z.boolean().default(false),
  hooks: z.strictObject({
    pre_execute: z.array(HookSpec).default([]),
    post_execute: z.array(HookSpec).default([]),
    on_timeout: z.array(HookSpec).default([]),
  }),
});

/** One hook, resolved. */
export interface Hook {
  kind: HookKind;
  name: string;
  argv: string[];
  timeout: number;
  env: Record<string, string>;
  required: boolean;
}

/** What a hook is told about the run. */
export interface HookContext {
  executionId: string;
  command: string;
  /** How the run ended (post_execute, on_timeout); absent before it runs. */
  exit?: ExitInfo;
}

/** What `hook_status` reports. */
export interface HookStatus {
  enabled: boolean;
  config_path: string | null;
  hooks_configured: string[];
  timeout: number | null;
  parallel: boolean;
}

const OUTPUT_TAIL_BYTES = 4096;

/** Reads a stream to the end, keeping only its last bytes. */
async function tail(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (text.length > OUTPUT_TAIL_BYTES * 2) text = text.slice(-OUTPUT_TAIL_BYTES * 2);
  }
  return text;
}

/**
 * The configured hooks and the means to run them.
 *
 * @example No config file: nothing runs, and hook_status says so
 * ```ts
 * import assert from "node:assert/strict";
 * import { HookRunner } from "./hooks.ts";
 * const hooks = await HookRunner.load(null, { childEnv: {}, killGrace: 1 });
 * assert.equal(hooks.status().enabled, false);
 * assert.deepEqual(await hooks.run("pre_execute", { executionId: "e", command: "true" }), []);
 * ```
 */
export class HookRunner {
  readonly #path: string | null;
  readonly #hooks: Hook[];
  readonly #timeout: number | null;
  readonly #parallel: boolean;
  readonly #childEnv: Readonly<Record<string, string>>;
  readonly #killGraceMs: number;

  private constructor(
    path: string | null,
    file: z.output<typeof HooksFile> | null,
    options: { childEnv: Readonly<Record<string, string>>; killGrace: number },
  ) {
    this.#path = path;
    this.#timeout = file?.timeout ?? null;
    this.#parallel = file?.parallel ?? false;
    this.#childEnv = options.childEnv;
    this.#killGraceMs = options.killGrace * 1000;
    this.#hooks = [];
    for (const kind of HOOK_KINDS) {
      (file?.hooks[kind] ?? []).forEach((h, i) =>
        this.#hooks.push({
          kind,
          name: h.name ?? `${kind}[${i}]`,
          argv: h.argv,
          timeout: h.timeout ?? file!.timeout,
          env: h.env ?? {},
          required: h.required ?? false,
        })
      );
    }
  }

  /** No hooks at all (no config file). */
  static none(): HookRunner {
    return new HookRunner(null, null, { childEnv: {}, killGrace: 1 });
  }

  /**
   * Loads the hooks config file (`path` null: no hooks).
   *
   * @throws {ConfigError} naming the file and what is wrong with it.
   */
  static async load(
    path: string | null,
    options: { childEnv: Readonly<Record<string, string>>; killGrace: number },
  ): Promise<HookRunner> {
    if (path === null || path === "") return HookRunner.none();
    let raw: unknown;
    try {
      raw = JSON.parse(await Deno.readTextFile(path));
    } catch (err) {
      throw new ConfigError(
        `Cannot read hooks config ${path}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const parsed = HooksFile.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ConfigError(
        `Invalid hooks config ${path} at ${issue.path.join(".") || "top level"}: ${issue.message}`,
      );
    }
    return new HookRunner(path, parsed.data, options);
  }

  /** What `hook_status` answers. */
  status(): HookStatus {
    return {
      enabled: this.#hooks.length > 0,
      config_path: this.#path,
      hooks_configured: HOOK_KINDS.filter((k) => this.#hooks.some((h) => h.kind === k)),
      timeout: this.#timeout,
      parallel: this.#parallel,
    };
  }

  /** The programs hooks run (argv[0]), for a scoped --allow-run. */
  programs(): string[] {
    return [...new Set(this.#hooks.map((h) => h.argv[0]!))];
  }

  /** Whether any hook of `kind` is configured. */
  has(kind: HookKind): boolean {
    return this.#hooks.some((h) => h.kind === kind);
  }

  /** Runs every hook of `kind` (in order, or together when `parallel`). */
  async run(kind: HookKind, context: HookContext): Promise<HookOutcome[]> {
    const hooks = this.#hooks.filter((h) => h.kind === kind);
    if (this.#parallel) return await Promise.all(hooks.map((h) => this.#runOne(h, context)));
    const outcomes: HookOutcome[] = [];
    for (const hook of hooks) outcomes.push(await this.#runOne(hook, context));
    return outcomes;
  }

  /**
   * After a run ends: `on_timeout` hooks when its time limit ended it, then
   * `post_execute` hooks; returns their outcomes, for the session to report.
   */
  async afterRun(exec: Run): Promise<HookOutcome[]> {
    const exit = exec.exit;
    if (exit === null) return [];
    const context: HookContext = { executionId: exec.id, command: exec.spec.display, exit };
    const kinds: HookKind[] = exit.status === "timeout"
      ? ["on_timeout", "post_execute"]
      : ["post_execute"];
    const outcomes: HookOutcome[] = [];
    for (const kind of kinds) {
      if (this.has(kind)) outcomes.push(...await this.run(kind, context));
    }
    return outcomes;
  }

  async #runOne(hook: Hook, context: HookContext): Promise<HookOutcome> {
    const t0 = performance.now();
    const outcome = (fields: Partial<HookOutcome>): HookOutcome => ({
      kind: hook.kind,
      name: hook.name,
      ok: false,
      status: "error",
      exitCode: null,
      duration: Math.round(performance.now() - t0) / 1000,
      required: hook.required,
      error: null,
      output: "",
      ...fields,
    });
    const env: Record<string, string> = {
      ...this.#childEnv,
      ...hook.env,
      CC_EXECUTOR_HOOK: hook.kind,
      CC_EXECUTOR_EXECUTION_ID: context.executionId,
      CC_EXECUTOR_COMMAND: context.command,
    };
    const exit = context.exit;
    if (exit !== undefined) {
      env.CC_EXECUTOR_STATUS = exit.status;
      env.CC_EXECUTOR_EXIT_CODE = String(exit.exitCode ?? "");
      env.CC_EXECUTOR_DURATION = String(exit.executionTime);
    }
    let group: ProcessGroup;
    try {
      group = ProcessGroup.spawn({ argv: hook.argv, env, stdin: false });
    } catch (err) {
      return outcome({ error: `cannot start: ${err instanceof Error ? err.message : err}` });
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void group.terminate(this.#killGraceMs);
    }, hook.timeout * 1000);
    try {
      const [out, err, status] = await Promise.all([
        tail(group.stdout),
        tail(group.stderr),
        group.status,
      ]);
      // Nothing a hook started may outlive it.
      await group.terminate(this.#killGraceMs);
      const output = utf8Tail(out + err, OUTPUT_TAIL_BYTES);
      if (timedOut) {
        return outcome({ status: "timeout", output, error: `timed out after ${hook.timeout}s` });
      }
      if (status.success) return outcome({ ok: true, status: "completed", exitCode: 0, output });
      return outcome({
        status: "failed",
        exitCode: status.signal ? null : status.code,
        output,
        error: status.signal ? `killed by ${status.signal}` : `exit code ${status.code}`,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
