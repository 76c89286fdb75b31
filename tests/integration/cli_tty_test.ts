/**
 * The CLI on a real terminal (tmux): Ctrl-C ends the remote group and
 * exits 130; the progress line shows on a terminal's stderr while a run
 * goes and is cleared at the end, and does not show when stderr is piped
 * or with --quiet.
 *
 * @module
 */
import assert from "node:assert/strict";
import { assertGroupGone, eventually, withServer } from "../_helpers.ts";
import { CLI_MAIN, CLI_PERMISSIONS } from "../_cli.ts";

const tmux = await (async () => {
  try {
    const s = await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .output();
    return s.success;
  } catch {
    return false;
  }
})();

/** A tmux server of the test's own, and a pane running `command`. */
class Pane {
  readonly #socket = `cc-cli-${crypto.randomUUID().slice(0, 8)}`;

  async #tmux(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", { args: ["-L", this.#socket, ...args] }).output();
    return new TextDecoder().decode(out.stdout);
  }

  /** Starts `command` in a 160x30 pane (the shell stays once it ends). */
  async start(command: string): Promise<void> {
    await this.#tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "30", command);
  }

  /** The pane's text now. */
  capture(): Promise<string> {
    return this.#tmux("capture-pane", "-p", "-t", "t");
  }

  /** Waits until the pane shows `pattern`. */
  async until(pattern: RegExp, what: string): Promise<string> {
    let text = "";
    await eventually(async () => pattern.test(text = await this.capture()), 30_000, what)
      .catch((err) => {
        throw new Error(`${err.message}; the pane:\n${text}`);
      });
    return text;
  }

  keys(...keys: string[]): Promise<string> {
    return this.#tmux("send-keys", "-t", "t", ...keys);
  }

  async kill(): Promise<void> {
    await this.#tmux("kill-server");
  }
}

/** The shell command line that runs the CLI with `args` against `url`. */
function cliLine(url: string, args: string): string {
  const deno = Deno.execPath();
  return `env CC_EXECUTOR_URL=${url} NO_COLOR=1 ${deno} run ${CLI_PERMISSIONS.join(" ")} ` +
    `${CLI_MAIN} ${args}`;
}

/** The progress line, as it reads: "[cc-executor] 1.2s of 180s limit (default) · 6 B". */
const PROGRESS = /\[cc-executor\] \d+\.\ds (of \d+s limit|, no limit)/;

Deno.test({
  name:
    "cli on a terminal: the progress line shows and is cleared; Ctrl-C ends the remote group, 130",
  ignore: !tmux,
  async fn() {
    await withServer({}, async (server) => {
      const pane = new Pane();
      try {
        await pane.start(
          `${cliLine(server.wsUrl, "run -- sh -c 'echo ready; exec sleep 60'")}; ` +
            "echo EXIT=$?; sleep 600",
        );
        await pane.until(/^ready$/m, "the run's output");
        // Drawn again below the output, which stands on its own line.
        const shown = await pane.until(PROGRESS, "the progress line");
        assert.match(shown, /^ready\n\[cc-executor\] /m);
        const exec = server.registry.running()[0]!;
        await pane.keys("C-c");
        const end = await pane.until(/EXIT=\d+/, "the CLI's exit");
        assert.match(end, /EXIT=130/);
        await assertGroupGone(exec.pgid);
        assert.equal(exec.exit?.signal, "SIGINT");
        assert.doesNotMatch(end, PROGRESS, "cleared at the end");
      } finally {
        await pane.kill();
      }
    });
  },
});

Deno.test({
  name: "cli on a terminal: no progress line when stderr is piped, nor with --quiet",
  ignore: !tmux,
  async fn() {
    await withServer({}, async (server) => {
      const errFile = await Deno.makeTempFile();
      const pane = new Pane();
      try {
        // Long enough for several redraws, were there any.
        const command = "-- sh -c 'echo begin; sleep 1.2; echo end'";
        await pane.start(
          `${cliLine(server.wsUrl, `run ${command}`)} 2>${errFile} | cat; ` +
            `${cliLine(server.wsUrl, `run --quiet ${command}`)}; echo DONE; sleep 600`,
        );
        const text = await pane.until(/DONE/, "both runs");
        assert.equal((text.match(/^begin$/gm) ?? []).length, 2, text);
        assert.doesNotMatch(text, /\[cc-executor\]/);
        assert.equal(await Deno.readTextFile(errFile), "");
      } finally {
        await pane.kill();
        await Deno.remove(errFile);
      }
    });
  },
});
