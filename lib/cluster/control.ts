/**
 * Sending a control message to the node that owns a run: one entry on that
 * node's control stream, which its job worker reads in order
 * (lib/protocol/cluster/job_worker.ts).
 *
 * @module
 */
import type { ClusterBus } from "./bus.ts";
import { controlEntry, type ControlMessage } from "./relay_entry.ts";

/** Control stream length about which it is trimmed. */
const CONTROL_MAX = 10_000;

/**
 * Appends `message` to `node`'s control stream.
 *
 * @throws {ClusterDownError} when Redis cannot be reached.
 */
export async function sendControl(
  bus: ClusterBus,
  node: string,
  message: ControlMessage,
): Promise<void> {
  await bus.run((c) =>
    c.xAdd(bus.keys.control(node), "*", controlEntry(message), {
      TRIM: { strategy: "MAXLEN", strategyModifier: "~", threshold: CONTROL_MAX },
    })
  );
}
