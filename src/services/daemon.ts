import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { type Daemon, InfoSchema, State } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { VERSION } from "../version.js";
import type { ServiceDeps } from "./context.js";

/** Daemon service: info now; keys and pairing are added by their own modules. */
export function daemonInfoService(deps: ServiceDeps): Partial<ServiceImpl<typeof Daemon>> {
  return {
    getInfo() {
      return create(InfoSchema, {
        state: State.ACTIVE,
        startTime: timestampFromDate(deps.startTime),
        version: VERSION,
        publicOnly: deps.config.publicOnly,
        // The kind of source only: no path, account or key, so any credential may see it.
        kekSource: deps.keystore.kekSource,
      });
    },
  };
}
