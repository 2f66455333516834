import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import {
  type Compression,
  createAsyncIterable,
  type EnvelopedMessage,
  pipe,
  transformJoinEnvelopes,
  transformSplitEnvelope,
  type UniversalHandler,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  codeFromString,
  codeToHttpStatus,
  endStreamFlag,
} from "@connectrpc/connect/protocol-connect";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { codeName, isUnexpectedError, storageFailure, toConnectError } from "../errors.js";
import { procedureOf } from "../security/interceptors.js";
import type { Metrics } from "./metrics.js";

/**
 * What the outermost interceptor saw of one call: whether the call got that far, and the error
 * it sent. {@link guardLibraryErrors} sets a fresh one per request and reads it back, so it can
 * tell the daemon's own errors from those the Connect library made up by itself.
 */
interface CallTrace {
  reached: boolean;
  sent: ConnectError | undefined;
}

const callTraceKey = createContextKey<CallTrace | undefined>(undefined, {
  description: "seed-daemon call trace",
});

/** A failure of the library's request decoding, seen while a handler iterated its input. */
class InputError extends Error {
  constructor(readonly reason: unknown) {
    super("request input failed");
  }
}

/**
 * The fixed text each code gets when the Connect library raised the error itself. Its own texts
 * quote parser messages, header values and limits; none of that reaches a client.
 */
const LIBRARY_MESSAGES: Readonly<Partial<Record<Code, string>>> = {
  [Code.InvalidArgument]: "malformed request",
  [Code.ResourceExhausted]: "message too large",
  [Code.Unimplemented]: "unsupported request",
  [Code.Internal]: "internal error",
};

/**
 * What a client sees of an error the Connect library raised, not the daemon: the same code with a
 * fixed message. A failure to decode the request (`stage` `"input"`) is the caller's mistake, so
 * the `internal` the library reports for an undecodable protobuf message or body is
 * `invalid_argument`; its plain "internal error" (a non-Connect error it caught) stays internal.
 *
 * @param err - what the library threw or sent.
 * @param stage - `"input"` while the request was being read and decoded, `"output"` after.
 */
export function libraryError(err: unknown, stage: "input" | "output"): ConnectError {
  const ce = err instanceof ConnectError ? err : undefined;
  let code = ce?.code ?? Code.Internal;
  if (stage === "input" && ce?.code === Code.Internal && ce.rawMessage !== "internal error") {
    code = Code.InvalidArgument;
  }
  return new ConnectError(LIBRARY_MESSAGES[code] ?? codeName(code).replaceAll("_", " "), code);
}

/** Re-raises a failure of the request's message stream as an {@link InputError}. */
async function* inputOf<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw new InputError(err);
  }
}

/**
 * Outermost interceptor: counts and times every RPC and maps errors through toConnectError, so
 * an unexpected error reaches the client as `internal` with no detail and is logged here once.
 *
 * For a server stream the handler's errors surface while its messages are iterated, after this
 * interceptor has already returned, so the message iterator is wrapped: an error thrown
 * mid-stream keeps its code, the metric counts how the stream really ended, and the latency
 * covers the whole stream. A streaming call's request messages are decoded while the handler
 * reads them, so a failure there is the library's and becomes {@link libraryError}. Every error
 * sent is noted for {@link guardLibraryErrors}, which lets exactly those through unchanged.
 */
export function errorAndMetricsInterceptor(metrics: Metrics, logger: Logger): Interceptor {
  return (next) => async (req) => {
    const method = procedureOf(req);
    const rpc = metrics.rpc(method);
    const end = rpc.startTimer();
    const trace = req.contextValues.get(callTraceKey);
    if (trace !== undefined) trace.reached = true;
    const fail = (err: unknown): never => {
      let ce: ConnectError;
      if (err instanceof InputError) ce = libraryError(err.reason, "input");
      else {
        const storage = storageFailure(err);
        if (storage !== undefined) {
          logger.error({ method, cause: storage.cause }, "a write to the data dir failed");
        } else if (isUnexpectedError(err)) {
          logger.error({ method, err: errorSummary(err) }, "unexpected error in handler");
        }
        ce = toConnectError(err);
      }
      rpc.count(Code[ce.code] ?? "unknown");
      if (trace !== undefined) trace.sent = ce;
      throw ce;
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      // A streaming call's request messages are decoded while they are iterated, inside `next`.
      res = await next(req.stream ? { ...req, message: inputOf(req.message) } : req);
    } catch (err) {
      end();
      return fail(err);
    }
    if (!res.stream) {
      rpc.count("ok");
      end();
      return res;
    }
    const messages = res.message;
    async function* observed() {
      let failed = false;
      try {
        yield* messages;
      } catch (err) {
        failed = true;
        fail(err);
      } finally {
        // A client that cancels ends the stream here too: that is not a handler failure.
        if (!failed) rpc.count("ok");
        end();
      }
    }
    return { ...res, message: observed() };
  };
}

/** Name and stack frames only: messages of unexpected errors may quote inputs. */
function errorSummary(err: unknown): { name: string; stack?: string } {
  if (err instanceof Error) {
    const frames = err.stack?.split("\n").slice(1, 8).join("\n");
    return frames === undefined ? { name: err.name } : { name: err.name, stack: frames };
  }
  return { name: typeof err };
}

/** Largest enveloped message the guard splits out of a response stream (the protocol's limit). */
const MAX_ENVELOPE_BYTES = 0xffffffff;
/** Largest compressed error body or trailer the guard inflates to read its code. */
const MAX_ERROR_BYTES = 1024 * 1024;
/** The response compressions connect-node offers by default, by name. */
const COMPRESSIONS: ReadonlyMap<string, Compression> = new Map(
  [compressionGzip, compressionBrotli].map((c) => [c.name, c]),
);

/**
 * Wraps every handler of a router, in place, so that an error the Connect library raised by
 * itself never reaches a client with its text. Such errors come from the library decoding a
 * request before any interceptor runs (a malformed protobuf or JSON body, a bad envelope, a bad
 * timeout or compression header, a body over `readMaxBytes`) or from encoding a response; their
 * messages quote the parser, header values or limits. The client gets {@link libraryError}
 * instead: the same code (`invalid_argument` for an undecodable request) and a fixed message.
 *
 * An error counts as the daemon's own when {@link errorAndMetricsInterceptor} sent it, so that
 * interceptor must be in the router's interceptors. The guard reads the error where each protocol
 * puts it: the JSON body of a Connect unary error, the end-of-stream message of a Connect stream,
 * the trailers of gRPC and the trailer message of gRPC-web.
 *
 * @param handlers - `router.handlers`, after every service is registered.
 */
export function guardLibraryErrors(handlers: UniversalHandler[]): void {
  for (const [i, handler] of handlers.entries()) handlers[i] = guarded(handler);
}

/** One handler behind the guard: a fresh {@link CallTrace} per request, the response checked. */
function guarded(handler: UniversalHandler): UniversalHandler {
  const handle = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const trace: CallTrace = { reached: false, sent: undefined };
    req.contextValues ??= createContextValues();
    req.contextValues.set(callTraceKey, trace);
    return guardResponse(await handler(req), trace);
  };
  return Object.assign(handle, handler);
}

/** The error to send instead of one with `code` and `message`, or undefined to keep it. */
function replacementOf(trace: CallTrace, code: Code, message: string): ConnectError | undefined {
  const sent = trace.sent;
  if (sent !== undefined && sent.code === code && sent.rawMessage === message) return undefined;
  const fixed = libraryError(new ConnectError(message, code), trace.reached ? "output" : "input");
  return fixed.code === code && fixed.rawMessage === message ? undefined : fixed;
}

/** The response with any error the library made itself replaced, wherever its protocol puts it. */
async function guardResponse(
  res: UniversalServerResponse,
  trace: CallTrace,
): Promise<UniversalServerResponse> {
  const header = res.header;
  const body = res.body;
  const type = header?.get("content-type")?.toLowerCase() ?? "";
  if (header === undefined || body === undefined) {
    if (res.trailer !== undefined) fixGrpcStatus(res.trailer, trace);
    return res;
  }
  if (type.startsWith("application/grpc-web")) {
    const compression = COMPRESSIONS.get(header.get("grpc-encoding") ?? "");
    return {
      ...res,
      body: mapEnvelopes(body, trailerFlag, (env) => fixGrpcWebTrailer(env, compression, trace)),
    };
  }
  if (type.startsWith("application/grpc")) {
    const trailer = res.trailer;
    if (trailer === undefined) return res;
    return { ...res, body: thenRun(body, () => fixGrpcStatus(trailer, trace)) };
  }
  if (type.startsWith("application/connect+")) {
    const compression = COMPRESSIONS.get(header.get("connect-content-encoding") ?? "");
    return {
      ...res,
      body: mapEnvelopes(body, endStreamFlag, (env) => fixEndStream(env, compression, trace)),
    };
  }
  if (res.status !== 200 && type.startsWith("application/json")) {
    return guardUnaryError(res, header, body, trace);
  }
  return res;
}

/** Yields `body`, then runs `done` (before the adapter reads the trailers). */
async function* thenRun(body: AsyncIterable<Uint8Array>, done: () => void) {
  yield* body;
  done();
}

/**
 * Splits a response stream into envelopes, passes the one with `flag` through `fix`, and joins
 * them again. Downstream errors (a failed write) still reach the library's iterator.
 */
function mapEnvelopes(
  body: AsyncIterable<Uint8Array>,
  flag: number,
  fix: (env: EnvelopedMessage) => Promise<EnvelopedMessage>,
): AsyncIterable<Uint8Array> {
  return pipe(
    body,
    transformSplitEnvelope(MAX_ENVELOPE_BYTES),
    async function* (envelopes: AsyncIterable<EnvelopedMessage>) {
      for await (const env of envelopes) yield (env.flags & flag) === flag ? await fix(env) : env;
    },
    transformJoinEnvelopes(),
    { propagateDownStreamError: true },
  );
}

/** An envelope's payload, inflated when its compressed flag is set; undefined if that fails. */
async function payloadOf(
  env: EnvelopedMessage,
  compression: Compression | undefined,
): Promise<Uint8Array | undefined> {
  if ((env.flags & 0b1) === 0) return env.data;
  if (compression === undefined) return undefined;
  try {
    return await compression.decompress(env.data, MAX_ERROR_BYTES);
  } catch {
    return undefined;
  }
}

/** `grpc-status` / `grpc-message` of gRPC trailers (or a gRPC-web trailer block), fixed in place. */
function fixGrpcStatus(trailer: Headers, trace: CallTrace): void {
  const status = trailer.get("grpc-status");
  if (status === null || status === "0") return;
  const code = /^\d{1,2}$/.test(status) && Code[Number(status)] !== undefined ? Number(status) : -1;
  let message = "";
  try {
    message = decodeURIComponent(trailer.get("grpc-message") ?? "");
  } catch {
    // Not what the daemon would have sent: no message of its own holds a NUL.
    message = "\0";
  }
  const fixed =
    code === -1
      ? new ConnectError("internal error", Code.Internal)
      : replacementOf(trace, code as Code, message);
  if (fixed === undefined) return;
  trailer.set("grpc-status", String(fixed.code));
  trailer.set("grpc-message", encodeURIComponent(fixed.rawMessage));
  trailer.delete("grpc-status-details-bin");
}

/** A gRPC-web trailer message with its status fixed, sent uncompressed. */
async function fixGrpcWebTrailer(
  env: EnvelopedMessage,
  compression: Compression | undefined,
  trace: CallTrace,
): Promise<EnvelopedMessage> {
  const data = await payloadOf(env, compression);
  const trailer = data === undefined ? undefined : trailerParse(data);
  if (trailer === undefined) {
    const internal = new Headers({ "grpc-status": String(Code.Internal) });
    internal.set("grpc-message", encodeURIComponent("internal error"));
    return { flags: trailerFlag, data: trailerSerialize(internal) };
  }
  fixGrpcStatus(trailer, trace);
  return { flags: trailerFlag, data: trailerSerialize(trailer) };
}

/** The `code` and `message` of a Connect error object, if it is one. */
function connectErrorOf(value: unknown): { code: Code; message: string } | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { code, message } = value as { code?: unknown; message?: unknown };
  const parsed = typeof code === "string" ? codeFromString(code) : undefined;
  if (parsed === undefined) return undefined;
  return { code: parsed, message: typeof message === "string" ? message : "" };
}

/** A Connect error object as the wire spells it (no details: the daemon sends none). */
function errorJson(err: ConnectError): { code: string; message: string } {
  return { code: codeName(err.code), message: err.rawMessage };
}

/** A Connect end-of-stream message with its error fixed, sent uncompressed. */
async function fixEndStream(
  env: EnvelopedMessage,
  compression: Compression | undefined,
  trace: CallTrace,
): Promise<EnvelopedMessage> {
  const data = await payloadOf(env, compression);
  let end: Record<string, unknown> | undefined;
  try {
    const parsed: unknown =
      data === undefined ? undefined : JSON.parse(Buffer.from(data).toString());
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      end = parsed as Record<string, unknown>;
    }
  } catch {
    end = undefined;
  }
  const internal = new ConnectError("internal error", Code.Internal);
  if (end === undefined) end = { error: errorJson(internal) };
  else if (end.error !== undefined) {
    const err = connectErrorOf(end.error);
    const fixed = err === undefined ? internal : replacementOf(trace, err.code, err.message);
    if (fixed !== undefined) end = { ...end, error: errorJson(fixed) };
  }
  return { flags: endStreamFlag, data: Buffer.from(JSON.stringify(end)) };
}

/**
 * A Connect unary error response with its error fixed. The body is one small JSON object, read
 * whole; a replacement goes out uncompressed, with the HTTP status of its code.
 */
async function guardUnaryError(
  res: UniversalServerResponse,
  header: Headers,
  body: AsyncIterable<Uint8Array>,
  trace: CallTrace,
): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const encoding = header.get("content-encoding");
  const data =
    encoding === null
      ? bytes
      : await payloadOf({ flags: 0b1, data: bytes }, COMPRESSIONS.get(encoding));
  let err: { code: Code; message: string } | undefined;
  try {
    err = data === undefined ? undefined : connectErrorOf(JSON.parse(Buffer.from(data).toString()));
  } catch {
    err = undefined;
  }
  const fixed =
    err === undefined
      ? new ConnectError("internal error", Code.Internal)
      : replacementOf(trace, err.code, err.message);
  if (fixed === undefined) return { ...res, body: createAsyncIterable([bytes]) };
  const out = Buffer.from(JSON.stringify(errorJson(fixed)));
  const headers = new Headers(header);
  headers.delete("content-encoding");
  headers.set("content-length", String(out.byteLength));
  return {
    ...res,
    status: codeToHttpStatus(fixed.code),
    header: headers,
    body: createAsyncIterable([out]),
  };
}
