import type { ServiceImpl } from "@connectrpc/connect";
import type { Daemon } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import type { ServiceDeps } from "./context.js";

/** Origin pairing methods of the Daemon service (issue 4). */
export function pairingService(_deps: ServiceDeps): Partial<ServiceImpl<typeof Daemon>> {
  return {};
}
