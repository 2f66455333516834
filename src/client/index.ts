/**
 * `seed-daemon/client`: everything a Node program (a desktop app's main process, a tool, a
 * test) needs to talk to a seed-daemon, or to run one as its sidecar.
 *
 * - {@link createDaemonTransport} and {@link createDaemonClients}: typed clients with the bearer
 *   token on every call.
 * - {@link readLocalDaemon}: the daemon running for a data dir, and its token;
 *   {@link localTokenSource}: that token as it is now, across rotations.
 * - {@link spawnDaemon}: a daemon as a child process with an in-memory token.
 *
 * It imports nothing of the daemon but the shared wire module and the generated protos, which
 * are re-exported here as namespaces for their enums and message schemas.
 *
 * @module
 */
export * as daemonV1alpha from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
export * as accessControlV3alpha from "../gen/com/seed/documents/v3alpha/access_control_pb.js";
export * as documentsV3alpha from "../gen/com/seed/documents/v3alpha/documents_pb.js";
export { bearerInterceptor } from "./auth.js";
export {
  type LocalDaemon,
  LocalDaemonError,
  type LocalDaemonErrorReason,
  localTokenSource,
  type ReadLocalDaemonOptions,
  readLocalDaemon,
} from "./local.js";
export {
  DEFAULT_READY_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  SpawnDaemonError,
  type SpawnDaemonOptions,
  type SpawnDaemonOutput,
  type SpawnedDaemon,
  spawnDaemon,
} from "./sidecar.js";
export {
  createDaemonClients,
  createDaemonTransport,
  type DaemonProtocol,
  type DaemonServiceClients,
  type DaemonTransportOptions,
} from "./transport.js";
