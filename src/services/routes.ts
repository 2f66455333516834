import type { ConnectRouter } from "@connectrpc/connect";
import { Daemon } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl } from "../gen/com/seed/documents/v3alpha/access_control_pb.js";
import { Documents } from "../gen/com/seed/documents/v3alpha/documents_pb.js";
import { accessControlService, storeBlobsService } from "./access-control.js";
import type { ServiceDeps } from "./context.js";
import { daemonInfoService } from "./daemon.js";
import { documentsService } from "./documents.js";
import { keyService } from "./keys.js";
import { pairingService } from "./pairing.js";
import { tokenService } from "./token.js";

/**
 * Registers every service of the wire contract.
 */
export function registerRoutes(router: ConnectRouter, deps: ServiceDeps): void {
  router.service(Daemon, {
    ...daemonInfoService(deps),
    ...keyService(deps),
    ...pairingService(deps),
    ...storeBlobsService(deps),
    ...tokenService(deps),
  });
  router.service(Documents, documentsService(deps));
  router.service(AccessControl, accessControlService(deps));
}
