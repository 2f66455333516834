/**
 * The performance baseline: a bare connect-node server with the daemon's GetInfo handler and
 * nothing else (no Host gate, no token, no interceptors, no metrics), on the same two listeners
 * (HTTP/1.1 for Connect and gRPC-web, h2c for gRPC). Run as a child by the benches; prints one
 * JSON line `{"httpPort":…,"grpcPort":…,"floorPort":…}` once all listen, and runs until killed.
 *
 * `floorPort` is the floor a refusal can reach on Node: a plain `node:http` server that answers
 * every request with the daemon's `401` (same body and headers) at once, never reading the body.
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
// The daemon's answer to a wrong token, byte for byte (src/server/pipeline.ts `refuse`).
const refusal = Buffer.from(
  '{"code":"unauthenticated","message":"missing or invalid bearer token"}',
);
const refusalHeaders = {
  vary: "Origin",
  "content-type": "application/json",
  "content-length": String(refusal.length),
  "cache-control": "no-store",
  "www-authenticate": 'Bearer realm="seed-daemon"',
};
const floor = createServer((_req, res) => {
  res.writeHead(401, refusalHeaders);
  res.end(refusal);
});
const [httpPort, grpcPort, floorPort] = await Promise.all([
  listen(http1),
  listen(h2),
  listen(floor),
]);
process.stdout.write(`${JSON.stringify({ httpPort, grpcPort, floorPort })}\n`);
