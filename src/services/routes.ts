import type { ConnectRouter } from "@connectrpc/connect";
import { Daemon } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl } from "../gen/com/seed/documents/v3alpha/access_control_pb.js";
import { Documents } from "../gen/com/seed/documents/v3alpha/documents_pb.js";
import type { ServiceDeps } from "./context.js";
import { daemonInfoService } from "./daemon.js";
import { keyService } from "./keys.js";
import { pairingService } from "./pairing.js";

/**
 * Registers every service of the wire contract. Methods not implemented yet answer
 * `unimplemented` (Connect's default for a partial implementation).
 */
export function registerRoutes(router: ConnectRouter, deps: ServiceDeps): void {
  router.service(Daemon, {
    ...daemonInfoService(deps),
    ...keyService(deps),
    ...pairingService(deps),
  });
  router.service(Documents, {});
  router.service(AccessControl, {});
}
