/**
 * The part of `run` and `attach` after the run is known: signals handled as
 * a local command's would be (Ctrl-C, then Ctrl-C again; SIGTERM and SIGHUP
 * cancel), the progress line, stdin streamed, and the exit status.
 *
 * @module
 */
import { CtrlC } from "../ctrl_c.ts";
import { EXIT_INTERRUPTED, EXIT_TRANSPORT, exitStatus, signalStatus } from "../exit_status.ts";
import type { OutputWriter } from "../output_writer.ts";
import type { ProgressLine } from "../progress.ts";
import type { RemoteRun } from "../remote_run.ts";
import { pumpStdin } from "../stdin_pump.ts";

/** Options of {@linkcode follow}. */
export interface FollowOptions {
  writer: OutputWriter;
  progress: ProgressLine | null;
  json: boolean;
  /** Stream the CLI's stdin to the run. */
  stdin: boolean;
}

/**
 * Follows `run` (already started or attached) to its end.
 *
 * @returns the CLI's exit status.
 */
export async function follow(run: RemoteRun, options: FollowOptions): Promise<number> {
  const { writer, progress } = options;
  const keys = new CtrlC();
  /** A signal the CLI itself got that ended the run (SIGTERM, SIGHUP): its status wins. */
  let killedBy: string | null = null;
  const onInt = () => {
    switch (keys.press(performance.now())) {
      case "interrupt":
        run.say("interrupting the remote run (Ctrl-C again within 2 s cancels it)");
        run.control("INTERRUPT");
        return;
      case "cancel":
        run.say("canceling the remote run (Ctrl-C again stops waiting for its end)");
        run.control("CANCEL");
        return;
      case "abandon":
        run.abandon();
        return;
      case "ignore":
        return;
    }
  };
  const onStop = (signal: "SIGTERM" | "SIGHUP") => () => {
    if (killedBy !== null) return run.abandon();
    killedBy = signal;
    run.control("CANCEL");
  };
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", onInt],
    ["SIGTERM", onStop("SIGTERM")],
    ["SIGHUP", onStop("SIGHUP")],
  ];
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  progress?.start();
  if (options.stdin && run.id !== null) {
    const id = run.id;
    void pumpStdin(Deno.stdin.readable, id, (p) => run.request("input", p)).catch(() => {});
  }
  const outcome = await run.outcome;
  for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  run.close();
  // Output already here is the reader's, as a local pipe's buffer is; unless the user stopped waiting.
  if (outcome.kind !== "abandoned") await writer.drained();
  progress?.stop();
  const say = (message: string) => {
    if (options.json) {
      console.log(JSON.stringify({ event: "error", message, exit: EXIT_TRANSPORT }));
    } else {
      console.error(`[cc-executor] ${message}`);
    }
  };
  // Nobody reads the output any more (`| head`): as a local writer would die of SIGPIPE.
  if (writer.broken !== null || outcome.kind === "broken-pipe") {
    return signalStatus("SIGPIPE") ?? EXIT_TRANSPORT;
  }
  switch (outcome.kind) {
    case "caught-up":
      return 0;
    case "ended": {
      const end = outcome.end;
      if (killedBy !== null) return signalStatus(killedBy) ?? EXIT_TRANSPORT;
      // The server ended it as it shut down: not the command's doing (its text is the wire's).
      if (end.status === "canceled" && String(end.error ?? "").startsWith("Server shutting down")) {
        say(`the server shut down; the run was canceled`);
        return EXIT_TRANSPORT;
      }
      const status = exitStatus(end, { interrupted: keys.pressed });
      // Why a run was ended (its limit, a cancel) is news; a plain exit code is not.
      if (!options.json && typeof end.error === "string" && end.status !== "failed") {
        console.error(`[cc-executor] ${end.status}: ${end.error}`);
      }
      if (options.json) console.log(JSON.stringify({ event: "exit", exit: status }));
      return status;
    }
    case "abandoned":
      say(`stopped waiting; run ${run.id} may still be ending (cc-executor ps)`);
      return killedBy !== null ? signalStatus(killedBy) ?? EXIT_INTERRUPTED : EXIT_INTERRUPTED;
    case "failed":
      say(outcome.message);
      return EXIT_TRANSPORT;
  }
}
