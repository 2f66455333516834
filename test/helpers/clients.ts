import type { DescService } from "@bufbuild/protobuf";
import {
  type Client,
  type Code,
  ConnectError,
  createClient,
  type Interceptor,
} from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

/** Interceptor that adds `Authorization: Bearer <token>` (and optional extra headers). */
export function withToken(token: string | undefined, extra: Record<string, string> = {}) {
  const interceptor: Interceptor = (next) => (req) => {
    if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
    for (const [k, v] of Object.entries(extra)) req.header.set(k, v);
    return next(req);
  };
  return interceptor;
}

/** The three protocols a test can speak. */
export type Protocol = "connect" | "grpc-web" | "grpc";

/**
 * A typed client for a service over one protocol: Connect and gRPC-web on the HTTP/1.1 listener,
 * native gRPC on the h2c listener.
 */
export function clientFor<T extends DescService>(
  service: T,
  protocol: Protocol,
  addrs: { httpAddr: string; grpcAddr: string },
  token: string | undefined,
  extraHeaders: Record<string, string> = {},
): Client<T> {
  const interceptors = [withToken(token, extraHeaders)];
  const transport =
    protocol === "connect"
      ? createConnectTransport({
          baseUrl: `http://${addrs.httpAddr}`,
          httpVersion: "1.1",
          interceptors,
        })
      : protocol === "grpc-web"
        ? createGrpcWebTransport({
            baseUrl: `http://${addrs.httpAddr}`,
            httpVersion: "1.1",
            interceptors,
          })
        : createGrpcTransport({ baseUrl: `http://${addrs.grpcAddr}`, interceptors });
  return createClient(service, transport);
}

/** The Connect code a call ended with, or "ok". */
export async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}
