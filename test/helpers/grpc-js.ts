import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/** A grpc-js call's outcome: the status code and, when OK, the response. */
export type GrpcJsResult<T> = { code: number; message?: string; response?: T };

function metadataOf(headers: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return md;
}

/**
 * One unary call through grpc-js (an independent gRPC implementation) over h2c, with protobuf-es
 * doing the (de)serialisation.
 */
export function grpcJsUnary<I extends DescMessage, O extends DescMessage>(
  addr: string,
  path: string,
  input: I,
  output: O,
  request: MessageInitShape<I>,
  headers: Record<string, string>,
): Promise<GrpcJsResult<MessageShape<O>>> {
  const client = new grpc.Client(addr, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
      (b: Buffer) => fromBinary(output, b),
      create(input, request),
      metadataOf(headers),
      (err, res) => {
        client.close();
        resolve(err ? { code: err.code, message: err.details } : { code: 0, response: res });
      },
    );
  });
}

/** A server stream through grpc-js: `onMessage` per message; `cancel()` ends it. */
export function grpcJsStream<I extends DescMessage, O extends DescMessage>(
  addr: string,
  path: string,
  input: I,
  output: O,
  request: MessageInitShape<I>,
  headers: Record<string, string>,
  onMessage: (m: MessageShape<O>) => void,
): { cancel(): void; ended: Promise<number> } {
  const client = new grpc.Client(addr, grpc.credentials.createInsecure());
  const call = client.makeServerStreamRequest(
    path,
    (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
    (b: Buffer) => fromBinary(output, b),
    create(input, request),
    metadataOf(headers),
  );
  call.on("data", onMessage);
  const ended = new Promise<number>((resolve) => {
    call.on("status", (s: grpc.StatusObject) => {
      client.close();
      resolve(s.code);
    });
    call.on("error", () => {});
  });
  return { cancel: () => call.cancel(), ended };
}
