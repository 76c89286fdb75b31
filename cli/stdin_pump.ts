/**
 * `run --stdin`: the CLI's stdin streamed to the remote process, one chunk
 * at a time (each sent once the child has taken the one before, so a child
 * that does not read holds the CLI's reading back, not the server's memory).
 * Every chunk names its offset in the stream, so one resent after a
 * reconnect is not written twice.
 *
 * @module
 */
import { RpcError, whileRateLimited } from "./client.ts";

/**
 * Bytes per `input` request: large enough that a fast producer stays under
 * the server's message rate limit (500/s by default), small enough that
 * the base64 message stays under its message size limit (1 MiB).
 */
const CHUNK = 256 * 1024;

/** Sends `params`, again while the server says it is over its message rate. */
function send(request: InputRequest, params: Record<string, unknown>): Promise<unknown> {
  return whileRateLimited(() => request(params));
}

/** Where the input goes: a request on the run's connection, which waits out reconnects. */
export type InputRequest = (params: Record<string, unknown>) => Promise<unknown>;

/**
 * Streams `input` to run `executionId` through `request`, then closes its
 * stdin. Resolves when all of it has been taken, or when the run no longer
 * takes input (it ended, or closed its stdin): there is nothing to report
 * then, the run's own end says what happened.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pumpStdin } from "./stdin_pump.ts";
 * const sent: Record<string, unknown>[] = [];
 * const input = ReadableStream.from([new TextEncoder().encode("hi\n")]);
 * await pumpStdin(input, "e1", (p) => (sent.push(p), Promise.resolve({})));
 * assert.deepEqual(sent.map((p) => [p.offset, p.data_base64, p.close]),
 *   [[0, "aGkK", undefined], [3, undefined, true]]);
 * ```
 */
export async function pumpStdin(
  input: ReadableStream<Uint8Array>,
  executionId: string,
  request: InputRequest,
): Promise<void> {
  let offset = 0;
  try {
    for await (const data of input) {
      for (let at = 0; at < data.length; at += CHUNK) {
        const piece = data.subarray(at, at + CHUNK);
        await send(request, { execution_id: executionId, data_base64: piece.toBase64(), offset });
        offset += piece.length;
      }
    }
    await send(request, { execution_id: executionId, close: true, offset });
  } catch (err) {
    // -32002: the run has ended or its stdin is closed; its own end says what happened.
    if (!(err instanceof RpcError)) throw err;
  }
}
