import type { ServiceImpl } from "@connectrpc/connect";
import type { Daemon } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import type { ServiceDeps } from "./context.js";

/** Key methods of the Daemon service (issue 3). */
export function keyService(_deps: ServiceDeps): Partial<ServiceImpl<typeof Daemon>> {
  return {};
}
