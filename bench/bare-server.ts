/**
 * The performance baseline: a bare connect-node server with the daemon's GetInfo handler and
 * nothing else (no Host gate, no token, no interceptors, no metrics), on the same two listeners
 * (HTTP/1.1 for Connect and gRPC-web, h2c for gRPC). Run as a child by the benches; prints one
 * JSON line `{"httpPort":…,"grpcPort":…}` once both listen, and runs until killed.
 *
 * @module
 */
import { createServer } from "node:http";
import { createServer as createHttp2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Daemon, InfoSchema, State } from "../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { VERSION } from "../src/version.js";

const startTime = new Date();
const routes = (router: ConnectRouter) => {
  router.service(Daemon, {
    // The same message the daemon's GetInfo builds (src/services/daemon.ts).
    getInfo: () =>
      create(InfoSchema, {
        state: State.ACTIVE,
        startTime: timestampFromDate(startTime),
        version: VERSION,
        publicOnly: false,
        kekSource: "generated-file",
      }),
  });
};

const http1 = createServer(connectNodeAdapter({ routes, grpc: false }));
const h2 = createHttp2Server(connectNodeAdapter({ routes }));
const listen = (s: typeof http1 | typeof h2) =>
  new Promise<number>((resolve) =>
    s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port)),
  );
const [httpPort, grpcPort] = await Promise.all([listen(http1), listen(h2)]);
process.stdout.write(`${JSON.stringify({ httpPort, grpcPort })}\n`);
