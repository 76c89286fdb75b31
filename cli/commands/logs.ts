/**
 * `logs`: a run's output so far (the retained part), each stream to its
 * own, then exit; `attach` is the one that follows.
 *
 * @module
 */
import { ConnectionError, type Notification, RpcClient, RpcError } from "../client.ts";
import { EXIT_REFUSED, EXIT_TRANSPORT } from "../exit_status.ts";
import { numberFlag, parseFlags, resolveTarget, UsageError } from "../options.ts";
import { OutputWriter } from "../output_writer.ts";
import { RequestFailure } from "./request.ts";

/** `logs --help`. */
export const LOGS_HELP = `Usage: cc-executor logs ID [--tail BYTES]

Prints a run's output so far, stdout to stdout and stderr to stderr, byte for
byte, and exits (attach follows it live instead). Runs that ended stay
readable while the server retains them (execution-retention).

Flags:
  --tail BYTES  only the last BYTES bytes
  --url URL, --key-file FILE: as for run
`;

/** `cc-executor logs`. */
export async function logsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { tail: { type: "string" } });
  if (values.help) {
    console.log(LOGS_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("expected one execution id: logs ID");
  const id = positionals[0]!;
  const tail = values.tail === undefined ? undefined : numberFlag("tail", values.tail, true);
  const target = resolveTarget(values);
  const writer = new OutputWriter();
  const done = Promise.withResolvers<void>();
  let until = Infinity;
  const onNotification = (n: Notification) => {
    const p = n.params;
    if (p.execution_id !== id) return;
    if (n.method === "process.output") {
      const bytes = Uint8Array.fromBase64(String(p.data ?? ""));
      writer.write(p.type === "stderr" ? "stderr" : "stdout", bytes);
      if (Number(p.seq) + Number(p.bytes) >= until) done.resolve();
    } else if (n.method === "process.gap") {
      const note = `[cc-executor] ${Number(p.to) - Number(p.from)} bytes before offset ${p.to} ` +
        "are no longer retained\n";
      writer.write("stderr", new TextEncoder().encode(note));
    } else if (n.method === "process.completed") {
      done.resolve();
    }
  };
  let client: RpcClient;
  try {
    client = await RpcClient.connect({
      ...target,
      onNotification,
      onClose: (reason) => done.reject(new ConnectionError(reason, { retry: true })),
    });
  } catch (err) {
    throw new RequestFailure((err as Error).message, EXIT_TRANSPORT);
  }
  try {
    const r = await client.request("attach", {
      execution_id: id,
      encoding: "base64",
      ...(tail !== undefined ? { tail_bytes: tail } : {}),
    }) as Record<string, number>;
    until = r.next_seq!;
    if (r.from_seq! >= until) done.resolve();
    await done.promise;
  } catch (err) {
    if (err instanceof RpcError) {
      throw new RequestFailure(`${err.message} (${err.code})`, EXIT_REFUSED);
    }
    throw new RequestFailure((err as Error).message, EXIT_TRANSPORT);
  } finally {
    client.close();
  }
  await writer.drained();
  return 0;
}
