/**
 * One request and its reply, for the subcommands that ask and print
 * (`ps`, `cancel`, `signal`, `estimate`), with their failures as exit
 * statuses: 1 for a refusal, 255 for no server.
 *
 * @module
 */
import { ConnectionError, RpcClient, RpcError } from "../client.ts";
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
    if (err instanceof RpcError) {
      // The detail (`data`: which field and why) is the useful part of "Invalid params".
      const detail = err.data ? ` ${JSON.stringify(err.data)}` : "";
      throw new RequestFailure(`${err.message} (${err.code})${detail}`, EXIT_REFUSED);
    }
    const message = err instanceof ConnectionError ? err.message : String(err);
    throw new RequestFailure(message, EXIT_TRANSPORT);
  } finally {
    client.close();
  }
}
