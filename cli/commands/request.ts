/**
 * One request and its reply, for the subcommands that ask and print
 * (`ps`, `cancel`, `signal`, `estimate`), with their failures as exit
 * statuses: 1 for a refusal, 255 for no server.
 *
 * @module
 */
import { RpcClient, RpcError } from "../client.ts";
import { EXIT_REFUSED, EXIT_TRANSPORT } from "../exit_status.ts";
import type { Target } from "../options.ts";

/** A failure of a one-request subcommand, with the status to exit with. */
export class RequestFailure extends Error {
  readonly exit: number;

  /** A failure with `message`, exiting with `exit`. */
  constructor(message: string, exit: number) {
    super(message);
    this.name = "RequestFailure";
    this.exit = exit;
  }
}

/**
 * A request's failure as the subcommand exits with it: 1 for a refusal
 * (with its detail), 255 for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RpcError } from "../client.ts";
 * import { requestFailure } from "./request.ts";
 * const f = requestFailure(new RpcError(-32602, "Invalid params", { field: "signal" }));
 * assert.deepEqual([f.exit, f.message], [1, 'Invalid params (-32602) {"field":"signal"}']);
 * ```
 */
export function requestFailure(err: unknown): RequestFailure {
  if (err instanceof RpcError) {
    // The detail (`data`: which field and why) is the useful part of "Invalid params".
    const detail = err.data ? ` ${JSON.stringify(err.data)}` : "";
    return new RequestFailure(`${err.message} (${err.code})${detail}`, EXIT_REFUSED);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new RequestFailure(message, EXIT_TRANSPORT);
}

/**
 * Connects, sends `method` with `params`, and returns the result.
 *
 * @throws {RequestFailure} when the server cannot be reached or refuses.
 */
export async function requestOnce(
  target: Target,
  method: string,
  params: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  let client: RpcClient;
  try {
    client = await RpcClient.connect({ ...target, onNotification: () => {} });
  } catch (err) {
    throw new RequestFailure((err as Error).message, EXIT_TRANSPORT);
  }
  try {
    return await client.request(method, params) as Record<string, unknown>;
  } catch (err) {
    throw requestFailure(err);
  } finally {
    client.close();
  }
}
